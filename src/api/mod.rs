//! The HTTP API: router, limits, CORS, and the server loop with its timeouts.

pub mod access_log;
pub mod admin;
pub mod backgrounds;
pub mod capture;
pub mod console;
pub mod diag;
pub mod error;
pub mod files;
pub mod gdpr;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod routing;
pub mod share;
pub mod sms;
pub mod static_files;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::app::SharedApp;
use error::ApiError;
use routing::{route, Document, Mode, Routes, Serve};

/// Time allowed for a client to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a whole request body (a 25 MB upload over loopback takes well under
/// a second; a stalled client must not hold a connection forever).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Time a keep-alive connection may sit idle between requests.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Every route the daemon serves, written once and built in either [`routing::Mode`]:
/// [`routing::route!`] takes the method and the path from the handler's
/// `#[utoipa::path]`, so the router and `/openapi.json` cannot disagree. No route is added
/// any other way (`tests/openapi.rs` checks the sources for plain `.route(` calls).
/// `guard_admin` wraps the admin group: the server passes the `require_admin` route layer,
/// [`openapi()`] nothing (the layer changes no route; the group's security is documented
/// by [`openapi::require_admin_key`]).
fn documented_routes<M: Mode<SharedApp>>(
    guard_admin: impl FnOnce(Routes<SharedApp, M>) -> Routes<SharedApp, M>,
) -> Routes<SharedApp, M> {
    let admin = admin::routes().edit_document(openapi::require_admin_key);
    Routes::with_openapi(openapi::base)
        .merge(guard_admin(admin))
        .merge(backgrounds::public_routes())
        .with(route!(capture::post_capture))
        .with(route!(capture::post_batch))
        .with(route!(capture::get_status))
        // The guest's links and their QR codes (issue 20).
        .with(route!(share::get_share))
        .with(route!(share::get_qr_svg))
        .with(route!(share::get_qr_png))
        .with(route!(sms::post_send_sms))
        .with(route!(sms::get_sms))
        .with(route!(files::download))
        .with(route!(files::uploads))
        .with(route!(health::get_health))
        // Public, like /health: counts and states only, nothing secret or personal.
        .merge(metrics::routes())
        // Public, like /health: the API is on localhost and the document holds no secret.
        .with(route!(openapi::get_openapi_json))
        // The staff console: a static page, public like /openapi.json (the data it shows
        // comes from /admin/* with the key the user types).
        .merge(console::routes())
}

/// The OpenAPI document of [`router`], built from the code: what `assets/openapi/kiosk.json`
/// must hold (`cargo run --example openapi` writes it), and so what `GET /openapi.json`
/// serves. The daemon itself never builds it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::finish(documented_routes::<Document>(|admin| admin).into_openapi())
}

/// The full router: public routes, the admin group behind `require_admin`, and
/// `/openapi.json` describing them all.
pub fn router(app: SharedApp) -> Router {
    let cors = cors_layer(&app.config.cors_origins);
    let guard = admin::AdminGuard::new(app.clone());
    let routes = documented_routes::<Serve>(move |admin| {
        admin.route_layer(axum::middleware::from_fn_with_state(
            guard,
            admin::require_admin,
        ))
    })
    .into_router();
    json_fallbacks(routes)
        .layer(Extension(openapi::document()))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            BODY_TIMEOUT,
        ))
        .layer(cors)
        // Outermost: every answer is logged and counted, CORS refusals and timeouts too.
        .layer(axum::middleware::from_fn_with_state(
            app.metrics.clone(),
            access_log::track,
        ))
        .with_state(app)
}

/// The router of `HEALTH_LISTEN`: `/health` and `/metrics`.
pub fn health_router(app: SharedApp) -> Router {
    let routes = Routes::<SharedApp, Serve>::new()
        .with(route!(health::get_health))
        .merge(metrics::routes())
        .into_router();
    json_fallbacks(routes)
        .layer(axum::middleware::from_fn_with_state(
            app.metrics.clone(),
            access_log::track,
        ))
        .with_state(app)
}

/// The router of `ADMIN_LISTEN`, for staff on the kiosk's LAN: the console (`/`,
/// `/console/*`, `/docs`), `/admin/*` behind the admin key, `/health`, `/metrics` and
/// `/openapi.json` (the whole API's document, which `/docs` renders). None of the guest
/// routes: captures, SMS, downloads, `/uploads/`, backgrounds answer the JSON 404 here, so
/// the LAN reaches the console without reaching what the touchscreen app uses. Logged and
/// counted like the API listener; no CORS (the console is same-origin).
pub fn admin_router(app: SharedApp) -> Router {
    let guard = admin::AdminGuard::new(app.clone());
    let routes = Routes::<SharedApp, Serve>::new()
        .merge(
            admin::routes().route_layer(axum::middleware::from_fn_with_state(
                guard,
                admin::require_admin,
            )),
        )
        .with(route!(health::get_health))
        .merge(metrics::routes())
        .with(route!(openapi::get_openapi_json))
        .merge(console::routes())
        .into_router();
    json_fallbacks(routes)
        .layer(Extension(openapi::document()))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            BODY_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.metrics.clone(),
            access_log::track,
        ))
        .with_state(app)
}

/// Every listener's router ends with these: an unknown route is 404 `not_found`, a known
/// route asked with another method 405 `method_not_allowed` (axum adds `Allow`), both in
/// the JSON error shape (axum's own 405 has an empty body). Apply after the last route.
pub fn json_fallbacks<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::method_not_allowed(&method)
}

async fn fallback(method: Method) -> ApiError {
    if method == Method::GET || method == Method::HEAD {
        ApiError::not_found("no such route")
    } else {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }
}

fn cors_layer(origins: &[String]) -> CorsLayer {
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    // No configured origin: no CORS headers at all, so browsers keep same-origin only.
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(list))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::HeaderName::from_static("x-api-key"),
        ])
        .max_age(Duration::from_secs(600))
}

/// Reads a whole body up to `limit` bytes. A declared Content-Length over the limit is
/// refused before anything is read.
pub async fn read_body(
    req: Request,
    limit: u64,
) -> Result<(http::request::Parts, bytes::Bytes), ApiError> {
    // The declared length sizes the buffer (no regrowth), within reason: a client may
    // announce a size it never sends.
    let capacity = declared_length(&req)
        .unwrap_or(0)
        .min(limit)
        .min(PREALLOCATE_MAX);
    let mut buf = bytes::BytesMut::with_capacity(capacity as usize);
    let parts = read_body_chunks(req, limit, |chunk| buf.extend_from_slice(&chunk)).await?;
    Ok((parts, buf.freeze()))
}

/// The request's Content-Length, when it declares one.
pub fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Reads a body of at most `limit` bytes, handing each chunk to `each` as it arrives (so
/// work such as hashing or writing overlaps with the transfer). Same limits and errors
/// as [`read_body`].
pub async fn read_body_chunks(
    req: Request,
    limit: u64,
    mut each: impl FnMut(bytes::Bytes) + Send,
) -> Result<http::request::Parts, ApiError> {
    use http_body_util::BodyExt;

    if declared_length(&req).is_some_and(|len| len > limit) {
        return Err(ApiError::too_large(limit));
    }
    let (parts, mut body) = req.into_parts();
    // The whole body within BODY_TIMEOUT (tower-http's body timeout restarts at every
    // chunk, so a client dripping one byte a second would never be cut).
    let read = async {
        let mut total = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "body_read_error",
                    format!("could not read the request body: {e}"),
                )
            })?;
            if let Ok(data) = frame.into_data() {
                total += data.len() as u64;
                if total > limit {
                    return Err(ApiError::too_large(limit));
                }
                each(data);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Ok(Ok(())) => Ok(parts),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            ),
        )),
    }
}

pub use crate::capture::PREALLOCATE_MAX;

/// Serves `router` on `listener` until `shutdown` fires, then lets in-flight requests
/// finish (up to `drain`). Header, body and idle timeouts guard against slow clients.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Plain HTTP/1 (the kiosk's clients speak nothing else): unlike the auto builder, it
    // does not wait without a deadline for a first byte to sniff the protocol, so the
    // header timeout also closes a connection that never says anything.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let conn_limit = Arc::new(tokio::sync::Semaphore::new(256));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = conn_limit.clone().try_acquire_owned() else {
            // Over the connection limit: close at once rather than queue.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let svc =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let router = router.clone();
                async move {
                    let resp: Response = router
                        .oneshot(req.map(Body::new))
                        .await
                        .unwrap_or_else(|e| match e {});
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
        let conn = builder.serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _permit = permit;
            let idle = tokio::time::timeout(Duration::from_secs(3600), conn);
            let _ = idle.await;
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(drain) => {
            tracing::warn!("some connections were still open after {:?}; closing", drain);
        }
    }
}

/// A tiny helper for handlers that answer JSON with a status.
pub fn json_response<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    (status, axum::Json(body)).into_response()
}

/// The request's media type: its Content-Type without parameters, lower-cased (empty
/// when there is none).
pub fn media_type(headers: &http::HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// The query string as a `T` (none or empty: `T::default()`); one that does not fit is
/// 400 `invalid_query`.
pub fn query<T: serde::de::DeserializeOwned + Default>(uri: &http::Uri) -> Result<T, ApiError> {
    match uri.query() {
        None | Some("") => Ok(T::default()),
        Some(_) => axum::extract::Query::<T>::try_from_uri(uri)
            .map(|q| q.0)
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text())),
    }
}

/// Parses a JSON object body into `T`. serde would also accept a JSON array holding the
/// fields in order; a body that is not an object is refused like any other bad JSON.
pub fn json_object<'de, T: serde::Deserialize<'de>>(body: &'de [u8]) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body must be a JSON object",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("the body is not valid JSON for this route: {e}"),
        )
    })
}
