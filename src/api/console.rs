//! The staff console: a static web page (`assets/console/`, compiled into the binary) that
//! is a client of the admin JSON API, served at `/console/`, with `/` redirecting there and
//! `/docs` showing the API reference rendered from `/openapi.json`.
//!
//! The files are served by [`static_files`] (shared with the fleet page): strong ETags,
//! compressed at build time, and on every answer, the 404 and the 304 included, the strict
//! Content-Security-Policy below: no inline code, nothing from another host.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;

use super::routing::{route, Mode, Routes};
use super::static_files::{self, Assets};
use crate::app::SharedApp;

/// What every console answer carries. `img-src blob:` for the previews of files about to
/// be uploaded, `data:` for nothing yet but harmless; `connect-src 'self'` keeps the page's
/// requests on this daemon.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; \
                       base-uri 'none'; form-action 'self'";

/// The page every route of the console shows (the scripts choose the view).
const INDEX: &str = "index.html";

/// Name, media type and bytes of every file of the console.
const FILES: &[static_files::File] = &[
    static_files::page_file!(
        "index.html",
        "text/html; charset=utf-8",
        "console/index.html"
    ),
    static_files::page_file!("style.css", "text/css; charset=utf-8", "console/style.css"),
    static_files::page_file!("icon.svg", "image/svg+xml", "console/icon.svg"),
    static_files::page_file!("app.js", "text/javascript; charset=utf-8", "console/app.js"),
    static_files::page_file!("api.js", "text/javascript; charset=utf-8", "console/api.js"),
    static_files::page_file!("dom.js", "text/javascript; charset=utf-8", "console/dom.js"),
    static_files::page_file!(
        "i18n.js",
        "text/javascript; charset=utf-8",
        "console/i18n.js"
    ),
    static_files::page_file!(
        "overview.js",
        "text/javascript; charset=utf-8",
        "console/overview.js"
    ),
    static_files::page_file!(
        "gallery.js",
        "text/javascript; charset=utf-8",
        "console/gallery.js"
    ),
    static_files::page_file!("sms.js", "text/javascript; charset=utf-8", "console/sms.js"),
    static_files::page_file!(
        "stats.js",
        "text/javascript; charset=utf-8",
        "console/stats.js"
    ),
    static_files::page_file!(
        "backgrounds.js",
        "text/javascript; charset=utf-8",
        "console/backgrounds.js"
    ),
    static_files::page_file!(
        "settings.js",
        "text/javascript; charset=utf-8",
        "console/settings.js"
    ),
    static_files::page_file!(
        "docs.js",
        "text/javascript; charset=utf-8",
        "console/docs.js"
    ),
    static_files::page_file!(
        "events.js",
        "text/javascript; charset=utf-8",
        "console/events.js"
    ),
];

/// The console's routes. Public (the page holds no data; the data comes from `/admin/*`
/// with the key the user types), merged into the API router and the admin listener's.
pub fn routes<M: Mode<SharedApp>>() -> Routes<SharedApp, M> {
    Routes::new()
        .with(route!(get_root))
        .with(route!(get_console_bare))
        .with(route!(get_console))
        .with(route!(get_console_file))
        .with(route!(get_docs))
        .route_layer(Extension(Arc::new(assets())))
}

fn assets() -> Assets {
    Assets::new(FILES, CSP, "the staff console")
}

fn redirect(to: &'static str) -> Response {
    static_files::redirect(to, CSP)
}

/// `GET /`: to the console.
#[utoipa::path(
    get,
    path = "/",
    tag = "console",
    summary = "Redirect to the staff console",
    responses((status = 302, description = "To `/console/`",
        headers(("location" = String, description = "`/console/`"))))
)]
async fn get_root() -> Response {
    redirect("/console/")
}

/// `GET /console`: to the console's own address (its files are named relative to it).
#[utoipa::path(
    get,
    path = "/console",
    tag = "console",
    summary = "Redirect to the staff console",
    responses((status = 302, description = "To `/console/`",
        headers(("location" = String, description = "`/console/`"))))
)]
async fn get_console_bare() -> Response {
    redirect("/console/")
}

/// `GET /console/`: the staff console.
#[utoipa::path(
    get,
    path = "/console/",
    tag = "console",
    summary = "The staff console (a web page)",
    description = "Sign in with the admin key; the page reads `/admin/*` with it. Cached by \
                   ETag (`If-None-Match` → 304), gzip when accepted.",
    responses(
        (status = 200, description = "The page", content_type = "text/html"),
        (status = 304, description = "Not modified"),
    )
)]
async fn get_console(Extension(assets): Extension<Arc<Assets>>, headers: HeaderMap) -> Response {
    assets.serve(INDEX, &headers)
}

/// `GET /console/{file}`: a script, style sheet or icon of the console.
#[utoipa::path(
    get,
    path = "/console/{file}",
    tag = "console",
    summary = "A file of the staff console",
    params(("file" = String, Path, description = "e.g. `app.js`, `style.css`")),
    responses(
        (status = 200, description = "The file", content(
            ("text/javascript"), ("text/css"), ("image/svg+xml"), ("text/html"))),
        (status = 304, description = "Not modified"),
        (status = 404, description = "`not_found`"),
    )
)]
async fn get_console_file(
    Extension(assets): Extension<Arc<Assets>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    assets.serve(&file, &headers)
}

/// `GET /docs`: the API reference, drawn by the console from `/openapi.json`.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "console",
    summary = "The API reference (a web page)",
    description = "Rendered in the browser from `/openapi.json`; needs no key and no network.",
    responses(
        (status = 200, description = "The page", content_type = "text/html"),
        (status = 304, description = "Not modified"),
    )
)]
async fn get_docs(Extension(assets): Extension<Arc<Assets>>, headers: HeaderMap) -> Response {
    assets.serve(INDEX, &headers)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use axum::http::{header, HeaderValue, StatusCode};

    #[test]
    fn every_file_is_listed_once_and_compresses() {
        static_files::check_files(&assets());
    }

    #[test]
    fn no_file_of_the_console_is_left_out() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/console");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        assert_eq!(static_files::sources_from(&assets(), "console"), on_disk);
    }

    #[test]
    fn a_304_and_a_404_carry_the_policy() {
        let assets = assets();
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        let first = assets.serve("app.js", &h);
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()[header::CONTENT_ENCODING], "gzip");
        let tag = first.headers()[header::ETAG].clone();
        h.insert(header::IF_NONE_MATCH, tag.clone());
        let again = assets.serve("app.js", &h);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        // The plain form is another representation: the gzip tag does not match it.
        let mut plain = HeaderMap::new();
        plain.insert(header::IF_NONE_MATCH, tag);
        let plain = assets.serve("app.js", &plain);
        assert_eq!(plain.status(), StatusCode::OK);
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let missing = assets.serve("nope.js", &HeaderMap::new());
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(missing.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(
            redirect("/console/").headers()[header::CONTENT_SECURITY_POLICY],
            CSP
        );
    }
}
