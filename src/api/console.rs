//! The staff console: a static web page (`assets/console/`, compiled into the binary) that
//! is a client of the admin JSON API, served at `/console/`, with `/` redirecting there and
//! `/docs` showing the API reference rendered from `/openapi.json`.
//!
//! Every file is sent with a strong ETag (a SHA-256 of its bytes) and `Cache-Control:
//! no-cache`, so a browser revalidates and gets a 304 until the binary changes: no version
//! in file names is needed and an upgrade is seen at the next load. A client that accepts
//! gzip gets the file compressed once, on first demand (the page is small; compressing it
//! at start-up would cost every boot for a page most boots never serve). Every answer, the
//! 404 and the 304 included, carries the strict Content-Security-Policy: no inline code,
//! nothing from another host.

use std::sync::{Arc, OnceLock};

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
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
const FILES: &[(&str, &str, &[u8])] = &[
    (
        INDEX,
        "text/html; charset=utf-8",
        include_bytes!("../../assets/console/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/console/style.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../../assets/console/icon.svg"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console/dom.js"),
    ),
    (
        "i18n.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console/i18n.js"),
    ),
    (
        "overview.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console/overview.js"),
    ),
    (
        "gallery.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console/gallery.js"),
    ),
    (
        "sms.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console/sms.js"),
    ),
    (
        "stats.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console/stats.js"),
    ),
    (
        "backgrounds.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console/backgrounds.js"),
    ),
    (
        "settings.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console/settings.js"),
    ),
    (
        "docs.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console/docs.js"),
    ),
];

/// One file of the console, with its ETags and (once asked for) its gzip form.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    bytes: &'static [u8],
    etag: String,
    gzip: OnceLock<Option<Vec<u8>>>,
}

impl Asset {
    fn new(name: &'static str, media_type: &'static str, bytes: &'static [u8]) -> Asset {
        let digest = Sha256::digest(bytes);
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Asset {
            name,
            media_type,
            bytes,
            etag: hex,
            gzip: OnceLock::new(),
        }
    }

    /// The compressed bytes; `None` when compression failed (then the plain file is sent)
    /// or would not make it smaller.
    fn gzipped(&self) -> Option<&[u8]> {
        self.gzip
            .get_or_init(|| {
                use std::io::Write;
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                enc.write_all(self.bytes).ok()?;
                let out = enc.finish().ok()?;
                (out.len() < self.bytes.len()).then_some(out)
            })
            .as_deref()
    }
}

/// The console's files, owned by its router (an [`Extension`] on the console routes).
pub struct Assets {
    files: Vec<Asset>,
}

impl Assets {
    fn new() -> Assets {
        Assets {
            files: FILES
                .iter()
                .map(|(name, media_type, bytes)| Asset::new(name, media_type, bytes))
                .collect(),
        }
    }

    fn get(&self, name: &str) -> Option<&Asset> {
        self.files.iter().find(|a| a.name == name)
    }
}

/// The console's routes. Public (the page holds no data; the data comes from `/admin/*`
/// with the key the user types), merged into the API router and the admin listener's.
pub fn routes() -> OpenApiRouter<SharedApp> {
    OpenApiRouter::new()
        .routes(routes!(get_root))
        .routes(routes!(get_console_bare))
        .routes(routes!(get_console))
        .routes(routes!(get_console_file))
        .routes(routes!(get_docs))
        .layer(Extension(Arc::new(Assets::new())))
}

fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

fn redirect(to: &'static str) -> Response {
    secure((StatusCode::FOUND, [(header::LOCATION, to)]).into_response())
}

/// Does `Accept-Encoding` allow gzip? (`gzip;q=0` refuses it.)
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// Does `If-None-Match` name `etag` (or `*`)? The one matching rule of the daemon.
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    super::files::if_none_match(headers, etag)
}

/// `asset` as the request asks: 304 when the client has it, gzip when accepted.
fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let gz = if accepts_gzip(headers) {
        asset.gzipped()
    } else {
        None
    };
    // Each encoding is its own representation, so its own strong tag.
    let etag = match gz {
        Some(_) => format!("\"{}-gz\"", asset.etag),
        None => format!("\"{}\"", asset.etag),
    };
    let mut fixed: Vec<(HeaderName, HeaderValue)> = vec![
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::VARY, HeaderValue::from_static("Accept-Encoding")),
    ];
    if let Ok(v) = HeaderValue::from_str(&etag) {
        fixed.push((header::ETAG, v));
    }
    let resp = if matches(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        fixed.push((
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.media_type),
        ));
        let body = match gz {
            Some(bytes) => {
                fixed.push((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")));
                bytes.to_vec()
            }
            None => asset.bytes.to_vec(),
        };
        (StatusCode::OK, body).into_response()
    };
    let mut resp = resp;
    // `insert`, not `extend`: the body's default Content-Type must be replaced.
    for (k, v) in fixed {
        resp.headers_mut().insert(k, v);
    }
    secure(resp)
}

fn not_found() -> Response {
    secure(ApiError::not_found("no such file in the staff console").into_response())
}

fn serve_named(assets: &Assets, name: &str, headers: &HeaderMap) -> Response {
    match assets.get(name) {
        Some(a) => serve(a, headers),
        None => not_found(),
    }
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
    serve_named(&assets, INDEX, &headers)
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
    serve_named(&assets, &file, &headers)
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
    serve_named(&assets, INDEX, &headers)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn gzip_is_chosen_only_when_accepted() {
        assert!(accepts_gzip(&headers(&[("accept-encoding", "gzip, br")])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br;q=1, GZIP;q=0.5"
        )])));
        assert!(accepts_gzip(&headers(&[("accept-encoding", "*")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[(
            "accept-encoding",
            "br, deflate"
        )])));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn if_none_match_lists_are_read() {
        let h = headers(&[("if-none-match", "\"a\", W/\"b\"")]);
        assert!(matches(&h, "\"a\""));
        assert!(matches(&h, "\"b\""));
        assert!(!matches(&h, "\"c\""));
        assert!(matches(&headers(&[("if-none-match", "*")]), "\"x\""));
    }

    #[test]
    fn every_file_is_listed_once_and_compresses() {
        let assets = Assets::new();
        for (i, a) in assets.files.iter().enumerate() {
            assert!(
                assets.files[..i].iter().all(|b| b.name != a.name),
                "{} twice",
                a.name
            );
            let gz = a.gzipped().expect("compressible");
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut plain).unwrap();
            assert_eq!(plain, a.bytes, "{}", a.name);
        }
    }

    #[test]
    fn a_304_and_a_404_carry_the_policy() {
        let assets = Assets::new();
        let a = assets.get("app.js").unwrap();
        let first = serve(a, &headers(&[("accept-encoding", "gzip")]));
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()[header::CONTENT_ENCODING], "gzip");
        let tag = first.headers()[header::ETAG].to_str().unwrap().to_string();
        let again = serve(
            a,
            &headers(&[("accept-encoding", "gzip"), ("if-none-match", &tag)]),
        );
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        // The plain form is another representation: the gzip tag does not match it.
        let plain = serve(a, &headers(&[("if-none-match", &tag)]));
        assert_eq!(plain.status(), StatusCode::OK);
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(not_found().headers()[header::CONTENT_SECURITY_POLICY], CSP);
    }
}
