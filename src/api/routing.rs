//! One list of routes, built two ways: into the server's router, or into the OpenAPI
//! document. Every route is written once, with `route!`, from the handler's
//! `#[utoipa::path]`, which names the method and the path; the list is a function generic
//! over the [`Mode`] it is built in.
//!
//! - [`Serve`] registers each handler at its path and builds no document at all: the
//!   daemon's binary holds none of utoipa's document builders (they were about 580 KB of a
//!   10 MB binary on a small board), and serves the document as a file compiled in
//!   (`assets/openapi/`).
//! - [`Document`] builds the OpenAPI document (and an equivalent router): the tests and
//!   `cargo run --example openapi`, which writes the files under `assets/openapi/`. A test
//!   fails when a committed file is not the document the code builds, and another probes
//!   the live server for every operation the document lists, so the two cannot drift.

use std::marker::PhantomData;

use axum::extract::Request;
use axum::handler::Handler;
use axum::response::IntoResponse;
pub use axum::routing::MethodRouter;
use axum::routing::Route as AxumRoute;
use axum::Router;
use tower::{Layer, Service};
use utoipa::openapi::path::HttpMethod;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::PathItemExt;

/// A route written with `route!`: its paths, its method router, and how to build its
/// documentation (called only by [`Document`]).
pub struct Route<S, D> {
    paths: Vec<String>,
    methods: MethodRouter<S>,
    document: D,
}

impl<S, D> Route<S, D>
where
    S: Clone + Send + Sync + 'static,
    D: FnOnce() -> UtoipaMethodRouter<S>,
{
    pub fn new(paths: Vec<String>, methods: MethodRouter<S>, document: D) -> Self {
        Route {
            paths,
            methods,
            document,
        }
    }

    /// Changes the method router (a layer, a fallback); the documentation stays.
    pub fn map(self, f: impl FnOnce(MethodRouter<S>) -> MethodRouter<S>) -> Self {
        Route {
            methods: f(self.methods),
            ..self
        }
    }
}

/// Adds `handler` for each of `methods` to `router` (what `route!` calls per handler).
pub fn on<S, H, T>(router: MethodRouter<S>, methods: Vec<HttpMethod>, handler: H) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
    H: Handler<T, S>,
    T: 'static,
{
    methods
        .iter()
        .fold(router, |r, m| r.on(m.to_method_filter(), handler.clone()))
}

/// `route!(handler)` or `route!(get_x, put_x)`: a [`Route`] of handlers that share a
/// path, from their `#[utoipa::path]`.
macro_rules! route {
    // Handlers as plain identifiers (`module::handler`), which utoipa-axum's own macro can
    // take apart to name the `__path_handler` item `#[utoipa::path]` made.
    ($($head:ident $(:: $tail:ident)*),+ $(,)?) => {{
        let methods = axum::routing::MethodRouter::new();
        $( let methods = $crate::api::routing::on(
            methods,
            utoipa_axum::routes!(@path [methods()] of $head $(:: $tail)*),
            $head $(:: $tail)*,
        ); )+
        $crate::api::routing::Route::new(
            vec![$( utoipa_axum::routes!(@path [path()] of $head $(:: $tail)*) ),+],
            methods,
            || utoipa_axum::routes!($( $head $(:: $tail)* ),+),
        )
    }};
}
pub(crate) use route;

/// How a list of routes is built: [`Serve`] or [`Document`].
pub trait Mode<S>: Sized + 'static {
    /// What is kept besides the router: nothing, or the document.
    type Doc;
    fn start(base: fn() -> OpenApi) -> Self::Doc;
    fn add(doc: Self::Doc, document: impl FnOnce() -> UtoipaMethodRouter<S>) -> Self::Doc;
    fn merge(doc: Self::Doc, other: Self::Doc) -> Self::Doc;
    fn edit(doc: &mut Self::Doc, f: fn(&mut OpenApi));
}

/// Routes for the server: no document.
pub enum Serve {}

/// Routes and their OpenAPI document.
pub enum Document {}

impl<S> Mode<S> for Serve {
    type Doc = ();
    fn start(_: fn() -> OpenApi) {}
    fn add(_: (), _: impl FnOnce() -> UtoipaMethodRouter<S>) {}
    fn merge(_: (), _: ()) {}
    fn edit(_: &mut (), _: fn(&mut OpenApi)) {}
}

impl<S: Clone + Send + Sync + 'static> Mode<S> for Document {
    type Doc = OpenApiRouter<S>;
    fn start(base: fn() -> OpenApi) -> OpenApiRouter<S> {
        OpenApiRouter::with_openapi(base())
    }
    fn add(
        doc: OpenApiRouter<S>,
        document: impl FnOnce() -> UtoipaMethodRouter<S>,
    ) -> OpenApiRouter<S> {
        doc.routes(document())
    }
    fn merge(doc: OpenApiRouter<S>, other: OpenApiRouter<S>) -> OpenApiRouter<S> {
        doc.merge(other)
    }
    fn edit(doc: &mut OpenApiRouter<S>, f: fn(&mut OpenApi)) {
        f(doc.get_openapi_mut());
    }
}

/// A list of routes being built in mode `M`.
pub struct Routes<S, M: Mode<S>> {
    router: Router<S>,
    doc: M::Doc,
    mode: PhantomData<M>,
}

impl<S, M> Routes<S, M>
where
    S: Clone + Send + Sync + 'static,
    M: Mode<S>,
{
    pub fn new() -> Self {
        Self::with_openapi(OpenApi::default)
    }

    /// A list whose document starts as `base()` (info, tags, common components).
    pub fn with_openapi(base: fn() -> OpenApi) -> Self {
        Routes {
            router: Router::new(),
            doc: M::start(base),
            mode: PhantomData,
        }
    }

    pub fn with<D: FnOnce() -> UtoipaMethodRouter<S>>(self, route: Route<S, D>) -> Self {
        let mut paths = route.paths;
        paths.dedup();
        let router = paths.iter().fold(self.router, |r, p| {
            r.route(if p.is_empty() { "/" } else { p }, route.methods.clone())
        });
        Routes {
            router,
            doc: M::add(self.doc, route.document),
            mode: PhantomData,
        }
    }

    pub fn merge(self, other: Self) -> Self {
        Routes {
            router: self.router.merge(other.router),
            doc: M::merge(self.doc, other.doc),
            mode: PhantomData,
        }
    }

    /// Changes the document (in [`Document`] mode; nothing in [`Serve`]).
    pub fn edit_document(mut self, f: fn(&mut OpenApi)) -> Self {
        M::edit(&mut self.doc, f);
        self
    }

    /// [`Router::route_layer`], for the routes so far (an `Extension` their handlers read,
    /// a guard).
    pub fn route_layer<L>(self, layer: L) -> Self
    where
        L: Layer<AxumRoute> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<std::convert::Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        Routes {
            router: self.router.route_layer(layer),
            ..self
        }
    }

    pub fn into_router(self) -> Router<S> {
        self.router
    }
}

impl<S, M: Mode<S>> Default for Routes<S, M>
where
    S: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S, Document> {
    pub fn into_openapi(self) -> OpenApi {
        self.doc.into_openapi()
    }
}
