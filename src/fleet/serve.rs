//! `selfie-kiosk fleet serve --listen ADDR`: the fleet page for the VPS, behind its web
//! server. A static page (`assets/fleet/`, compiled in, served by
//! [`crate::api::static_files`] like the staff console) and two JSON routes that read the
//! remote database ([`super::store`]) behind `FLEET_API_KEY`.
//!
//! The key is checked like the admin key ([`crate::api::admin::check_key`]): constant
//! time, wrong attempts slowed per client address, the right key never delayed. Behind a
//! reverse proxy every request comes from loopback, so from a loopback peer the address
//! in `X-Real-IP` (which the README's nginx snippet sets) is the one counted; from any
//! other peer the header is ignored, so it cannot be forged from outside.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::store::{FleetDb, HistoryPoint, KioskStatus, DEFAULT_DAYS, MAX_DAYS};
use super::FleetError;
use crate::api::admin::{check_key, peer_ip, AuthFailures};
use crate::api::error::{ApiError, ApiResult};
use crate::api::routing::{route, Document, MethodRouter, Mode, Routes, Serve};
use crate::api::static_files::{self, Assets, File};
use crate::config::{Config, Secret};

/// Every answer's policy: the page's own scripts, styles and API only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
                       base-uri 'none'; form-action 'none'";

/// Where `fleet serve` listens unless `--listen` says otherwise (loopback: the VPS's web
/// server is in front).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";

const INDEX: &str = "index.html";

const FILES: &[File] = &[
    static_files::page_file!("index.html", "text/html; charset=utf-8", "fleet/index.html"),
    static_files::page_file!("style.css", "text/css; charset=utf-8", "fleet/style.css"),
    static_files::page_file!("app.js", "text/javascript; charset=utf-8", "fleet/app.js"),
    static_files::page_file!("api.js", "text/javascript; charset=utf-8", "fleet/api.js"),
    static_files::page_file!(
        "chart.js",
        "text/javascript; charset=utf-8",
        "fleet/chart.js"
    ),
    // The console's DOM helpers (text-only rendering) and icon, shared rather than copied.
    static_files::page_file!("dom.js", "text/javascript; charset=utf-8", "console/dom.js"),
    static_files::page_file!("icon.svg", "image/svg+xml", "console/icon.svg"),
];

/// What the handlers share.
#[derive(Clone)]
pub struct Fleet {
    db: Arc<FleetDb>,
    key: Arc<Secret>,
    failures: Arc<AuthFailures>,
    assets: Arc<Assets>,
    /// The document [`openapi`] builds, compiled in (`assets/openapi/fleet.json`).
    doc: Arc<Assets>,
}

impl Fleet {
    pub fn new(db: FleetDb, key: Secret) -> Fleet {
        Fleet {
            db: Arc::new(db),
            key: Arc::new(key),
            failures: Arc::default(),
            assets: Arc::new(Assets::new(FILES, CSP, "the fleet page")),
            doc: Arc::new(Assets::new(DOC_FILES, CSP, "the fleet API document")),
        }
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "selfie-kiosk fleet page",
        description = "`selfie-kiosk fleet serve`: the fleet page and its JSON, read from the \
                       shared remote database. The `/fleet/api/kiosks` routes need the fleet \
                       key (`FLEET_API_KEY`) as `X-API-Key: <key>` or `Authorization: Bearer \
                       <key>`; every error is `{\"error\": {\"code\", \"message\"}}`.",
        license(name = "MIT", identifier = "MIT"),
    ),
    components(schemas(crate::api::error::ErrorBody)),
    tags((name = "fleet", description = "Every kiosk of the fleet, read-only"))
)]
struct FleetDoc;

const DOC_FILES: &[File] = &[static_files::page_file!(
    "openapi.json",
    "application/json",
    "openapi/fleet.json"
)];

/// Every route of `fleet serve`, each with its OpenAPI operation, built in either mode (as
/// in [`crate::api`]); `guard` wraps the keyed group.
fn documented<M: Mode<Fleet>>(
    guard: impl FnOnce(Routes<Fleet, M>) -> Routes<Fleet, M>,
) -> Routes<Fleet, M> {
    let api = Routes::new()
        .with(route!(get_kiosks).map(json_405))
        .with(route!(get_kiosk).map(json_405));
    Routes::with_openapi(<FleetDoc as utoipa::OpenApi>::openapi)
        .with(route!(get_root).map(json_405))
        .with(route!(get_fleet_bare).map(json_405))
        .with(route!(get_fleet).map(json_405))
        .with(route!(get_fleet_file).map(json_405))
        .with(route!(get_openapi).map(json_405))
        .merge(guard(api))
}

/// The OpenAPI document of `fleet serve`, built from the code: what
/// `assets/openapi/fleet.json` must hold (`cargo run --example openapi` writes it), and so
/// what `GET /fleet/api/openapi.json` serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    crate::api::openapi::finish(documented::<Document>(|api| api).into_openapi())
}

/// The fleet server's routes: the page, and the API behind the key. Every answer carries
/// the page's safety headers; a wrong method is 405 in the JSON error shape.
pub fn router(fleet: Fleet) -> Router {
    let guard = fleet.clone();
    let routes = documented::<Serve>(move |api| {
        api.route_layer(axum::middleware::from_fn_with_state(
            guard,
            require_fleet_key,
        ))
    })
    .into_router();
    routes
        .fallback(fallback)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            Duration::from_secs(10),
        ))
        .layer(axum::middleware::map_response(|r: Response| async move {
            static_files::secure(r, CSP)
        }))
        .with_state(fleet)
}

fn json_405(m: MethodRouter<Fleet>) -> MethodRouter<Fleet> {
    m.fallback(method_not_allowed)
}

async fn method_not_allowed(method: Method) -> ApiError {
    let shown: String = method.as_str().chars().take(20).collect();
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{shown} is not allowed here: the fleet page is read-only (GET)"),
    )
}

async fn fallback() -> ApiError {
    ApiError::not_found("no such route (the fleet page is at /fleet/)")
}

/// The address a wrong key is counted against (see the module doc).
fn client_ip(req: &Request) -> IpAddr {
    let peer = peer_ip(req);
    if peer.is_loopback() {
        if let Some(ip) = req
            .headers()
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
        {
            return ip;
        }
    }
    peer
}

async fn require_fleet_key(
    State(fleet): State<Fleet>,
    req: Request,
    next: Next,
) -> ApiResult<Response> {
    let ip = client_ip(&req);
    check_key(
        &fleet.failures,
        ip,
        req.headers(),
        fleet.key.expose(),
        "fleet key",
    )
    .await?;
    let mut resp = next.run(req).await;
    // Fleet data is behind a key: no cache keeps it.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `GET /fleet/api/kiosks`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KioskList {
    /// Every kiosk that has sent a heartbeat, by id.
    pub kiosks: Vec<KioskStatus>,
    /// How many are stale, and how many report `down` (stale ones not counted twice).
    pub stale: usize,
    pub down: usize,
}

/// `GET /fleet/api/kiosks/{id}`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KioskDetail {
    pub kiosk: KioskStatus,
    /// The days the history covers.
    pub days: u32,
    /// Oldest first; at most 720 points (longer histories are folded).
    pub history: Vec<HistoryPoint>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DetailQuery {
    days: Option<u32>,
}

/// `GET /fleet/api/kiosks`
#[utoipa::path(get, path = "/fleet/api/kiosks", tag = "fleet",
    summary = "Every kiosk: status, last seen, backlog, disk, SMS credits, captures today",
    responses(
        (status = 200, body = KioskList),
        (status = 401, description = "`unauthorized`", body = crate::api::error::ErrorBody),
        (status = 503, description = "`remote_db_unavailable`", body = crate::api::error::ErrorBody),
    ))]
async fn get_kiosks(State(fleet): State<Fleet>) -> ApiResult<Response> {
    let kiosks = fleet.db.kiosks().await?;
    let stale = kiosks.iter().filter(|k| k.stale).count();
    let down = kiosks
        .iter()
        .filter(|k| !k.stale && k.status == "down")
        .count();
    Ok(crate::api::json_response(
        StatusCode::OK,
        &KioskList {
            kiosks,
            stale,
            down,
        },
    ))
}

/// `GET /fleet/api/kiosks/{id}`
#[utoipa::path(get, path = "/fleet/api/kiosks/{id}", tag = "fleet",
    summary = "One kiosk and its heartbeat history",
    params(("id" = String, Path, description = "The kiosk's `KIOSK_ID`"),
           ("days" = Option<u32>, Query, description = "Days of history, 1-31 (default 7)")),
    responses(
        (status = 200, body = KioskDetail),
        (status = 400, description = "`invalid_query`", body = crate::api::error::ErrorBody),
        (status = 401, description = "`unauthorized`", body = crate::api::error::ErrorBody),
        (status = 404, description = "`unknown_kiosk`", body = crate::api::error::ErrorBody),
        (status = 503, description = "`remote_db_unavailable`", body = crate::api::error::ErrorBody),
    ))]
async fn get_kiosk(
    State(fleet): State<Fleet>,
    Path(id): Path<String>,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let q: DetailQuery = crate::api::query(&uri)?;
    let days = q.days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("days must be between 1 and {MAX_DAYS}"),
        ));
    }
    let (kiosk, history) = fleet.db.kiosk(&id, days).await?;
    Ok(crate::api::json_response(
        StatusCode::OK,
        &KioskDetail {
            kiosk,
            days,
            history,
        },
    ))
}

/// `GET /fleet/api/openapi.json`
#[utoipa::path(get, path = "/fleet/api/openapi.json", tag = "fleet",
    summary = "This OpenAPI document",
    description = "Public (no key): it holds the shapes of the answers, no data.",
    responses((status = 200, description = "The OpenAPI document", body = Object),
        (status = 304, description = "Not modified (`If-None-Match`)")))]
async fn get_openapi(State(fleet): State<Fleet>, headers: HeaderMap) -> Response {
    fleet.doc.serve("openapi.json", &headers)
}

/// `GET /`: to the page.
#[utoipa::path(get, path = "/", tag = "fleet", summary = "Redirect to the fleet page",
    responses((status = 302, description = "To `/fleet/`")))]
async fn get_root() -> Response {
    static_files::redirect("/fleet/", CSP)
}

/// `GET /fleet`: to the page's own address (its files are named relative to it).
#[utoipa::path(get, path = "/fleet", tag = "fleet", summary = "Redirect to the fleet page",
    responses((status = 302, description = "To `/fleet/`")))]
async fn get_fleet_bare() -> Response {
    static_files::redirect("/fleet/", CSP)
}

/// `GET /fleet/`: the page.
#[utoipa::path(get, path = "/fleet/", tag = "fleet", summary = "The fleet page",
    responses((status = 200, description = "The page", content_type = "text/html"),
              (status = 304, description = "Not modified")))]
async fn get_fleet(State(fleet): State<Fleet>, headers: HeaderMap) -> Response {
    fleet.assets.serve(INDEX, &headers)
}

/// `GET /fleet/{file}`: a script or style sheet of the page.
#[utoipa::path(get, path = "/fleet/{file}", tag = "fleet", summary = "A file of the fleet page",
    params(("file" = String, Path, description = "e.g. `app.js`")),
    responses((status = 200, description = "The file"), (status = 304, description = "Not modified"),
              (status = 404, description = "`not_found`")))]
async fn get_fleet_file(
    State(fleet): State<Fleet>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    fleet.assets.serve(&file, &headers)
}

/// Checks what `fleet serve` needs before it listens: the key, the database URL, and that
/// the database answers.
async fn prepare(config: &Config) -> Result<Fleet, FleetError> {
    let key = config.fleet_api_key.clone().ok_or(FleetError::NoKey)?;
    if key.expose().len() < 16 {
        return Err(FleetError::ShortKey);
    }
    let db = FleetDb::new(config)?;
    db.check().await?;
    Ok(Fleet::new(db, key))
}

/// The `fleet serve` command: until SIGTERM or SIGINT. Exit codes from [`crate::cli`]:
/// 64 without a key or with a bad URL, 69 when the database does not answer, 1 when the
/// address cannot be bound.
pub fn cli(config: &Config, listen: SocketAddr) -> ExitCode {
    use crate::cli::{exit, FAILURE, OK, UNAVAILABLE, USAGE};
    let ran = crate::net::block_on(async {
        let fleet = match prepare(config).await {
            Ok(f) => f,
            Err(e) => {
                eprintln!("selfie-kiosk fleet serve: {e}");
                return exit(match e {
                    FleetError::Unavailable(_) => UNAVAILABLE,
                    _ => USAGE,
                });
            }
        };
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("selfie-kiosk fleet serve: cannot listen on {listen}: {e}");
                return exit(FAILURE);
            }
        };
        // Logging from here on (journald under systemd, else stderr): wrong keys are
        // logged with their address, for the VPS's fail2ban or its administrator.
        let _log = crate::logging::init(&config.log_filter);
        tracing::info!("fleet page listening on http://{listen}/fleet/");
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        crate::api::serve(listener, router(fleet), shutdown, Duration::from_secs(5)).await;
        exit(OK)
    });
    ran.unwrap_or_else(|e| {
        eprintln!("selfie-kiosk fleet serve: cannot start the runtime: {e}");
        exit(FAILURE)
    })
}

async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    if let (Ok(mut term), Ok(mut int)) = (term, int) {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        shutdown.cancel();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_file_is_listed_once_and_compresses() {
        static_files::check_files(&Assets::new(FILES, CSP, "the fleet page"));
    }

    fn req(peer: &str, real_ip: Option<&str>) -> Request {
        let mut r = Request::new(axum::body::Body::empty());
        let peer: SocketAddr = peer.parse().unwrap();
        r.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        if let Some(ip) = real_ip {
            r.headers_mut()
                .insert("x-real-ip", HeaderValue::from_str(ip).unwrap());
        }
        r
    }

    #[test]
    fn x_real_ip_counts_only_from_a_loopback_proxy() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            client_ip(&req("127.0.0.1:5000", Some("203.0.113.7"))),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_ip(&req("198.51.100.2:5000", Some("203.0.113.7"))),
            ip("198.51.100.2")
        );
        assert_eq!(
            client_ip(&req("127.0.0.1:5000", Some("garbage"))),
            ip("127.0.0.1")
        );
        assert_eq!(client_ip(&req("[::1]:5000", None)), ip("::1"));
    }
}
