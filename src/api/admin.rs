//! Admin routes (`X-API-Key: <key>` or `Authorization: Bearer <key>`).
//!
//! The key is compared in constant time. Failed attempts are counted per client address
//! and each further failure from that address is delayed (up to a few seconds), so a
//! brute force over the localhost API crawls.
//!
//! | route | what |
//! | --- | --- |
//! | `GET`/`PUT /admin/config` | run-time settings (read/write) and read-only facts |
//! | `GET /admin/captures` | keyset pages: `from`, `to`, `synced`, `has_sms`, `limit`, `cursor` |
//! | `DELETE /admin/captures/{id}` | local now, remote through the outbox |
//! | `POST /admin/sync`, `POST /admin/cleanup` | run the sync / retention cleanup now |
//! | `GET /admin/stats` | SQL aggregates: totals, per day, per hour, SMS, backgrounds, outbox |
//! | `GET /admin/export/excel` | the workbook ([`crate::export`]) |
//! | `/admin/backgrounds…` | see [`super::backgrounds`] |
//!
//! Dates in filters are RFC 3339 date-times or `YYYY-MM-DD` days (UTC); `from` is
//! inclusive, `to` too (a day means the whole day).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio_util::io::ReaderStream;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult};
use super::{json_response, read_body};
use crate::app::{App, SharedApp};
use crate::catalog::{self, CaptureFilter, CaptureListItem, DAY_MS, HOUR_MS};
use crate::settings::SettingError;

/// The admin group (the caller puts it behind [`require_admin`]).
pub fn routes() -> OpenApiRouter<SharedApp> {
    OpenApiRouter::new()
        .routes(routes!(post_sync))
        .routes(routes!(post_cleanup))
        .routes(routes!(get_config, put_config))
        .routes(routes!(list_captures))
        .routes(routes!(delete_capture))
        .routes(routes!(get_stats))
        .routes(routes!(get_export_excel))
        .merge(super::backgrounds::admin_routes())
        .merge(super::diag::routes())
        .merge(super::gdpr::routes())
}

/// Failed admin attempts per address (bounded: old entries are forgotten).
#[derive(Debug, Default)]
pub struct AuthFailures(Mutex<HashMap<IpAddr, (u32, Instant)>>);

impl AuthFailures {
    fn delay_for(&self, ip: IpAddr) -> Duration {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&ip) {
            Some((n, at)) if at.elapsed() < Duration::from_secs(600) && *n >= 3 => {
                Duration::from_millis((250u64 << (n - 3).min(4)).min(4000))
            }
            _ => Duration::ZERO,
        }
    }
    fn fail(&self, ip: IpAddr) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 4096 {
            map.retain(|_, (_, at)| at.elapsed() < Duration::from_secs(600));
        }
        let e = map.entry(ip).or_insert((0, Instant::now()));
        e.0 = e.0.saturating_add(1);
        e.1 = Instant::now();
    }
    fn succeed(&self, ip: IpAddr) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&ip);
    }
}

fn presented_key(req: &Request) -> Option<String> {
    if let Some(v) = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_string());
    }
    let auth = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Middleware: 401 unless the admin key is presented.
pub async fn require_admin(
    State(app): State<SharedApp>,
    req: Request,
    next: Next,
) -> ApiResult<Response> {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let delay = app.auth_failures.delay_for(ip);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let ok = match presented_key(&req) {
        Some(k) => bool::from(k.as_bytes().ct_eq(app.admin_api_key.expose().as_bytes())),
        None => {
            app.auth_failures.fail(ip);
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this route needs the admin key (X-API-Key or Authorization: Bearer)",
            ));
        }
    };
    if !ok {
        app.auth_failures.fail(ip);
        tracing::warn!(%ip, "admin request with a wrong key");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong admin key",
        ));
    }
    app.auth_failures.succeed(ip);
    Ok(next.run(req).await)
}

/// What `POST /admin/sync` answers.
#[derive(Debug, Serialize, ToSchema)]
struct SyncAnswer {
    /// Jobs made due now.
    expedited: usize,
    /// Jobs pending in the outbox.
    pending: usize,
}

/// `POST /admin/sync`: retry every pending remote job now.
#[utoipa::path(
    post,
    path = "/admin/sync",
    tag = "admin",
    summary = "Retry every pending remote job now",
    responses(
        (status = 202, description = "The jobs are due now", body = SyncAnswer),
        (status = 503, description = "`outbox_unavailable`"),
    )
)]
async fn post_sync(State(app): State<SharedApp>) -> ApiResult<Response> {
    let expedited = crate::jobs::sync_now(&app)?;
    let stats = app.outbox.stats()?;
    Ok(json_response(
        StatusCode::ACCEPTED,
        &SyncAnswer {
            expedited,
            pending: stats.pending,
        },
    ))
}

/// `POST /admin/cleanup`: apply the retention now.
#[utoipa::path(
    post,
    path = "/admin/cleanup",
    tag = "admin",
    summary = "Apply the retention now",
    responses(
        (status = 200, description = "What was removed", body = crate::cleanup::CleanupReport),
        (status = 503, description = "`catalog_unavailable`, `outbox_unavailable`, `storage_error`"),
    )
)]
async fn post_cleanup(State(app): State<SharedApp>) -> ApiResult<Response> {
    let report = crate::cleanup::run(&app).await?;
    Ok(json_response(StatusCode::OK, &report))
}

// ---------------------------------------------------------------------------------------
// Configuration

/// `"set"`/`"unset"`: all that is ever said about a secret.
fn presence(set: bool) -> &'static str {
    if set {
        "set"
    } else {
        "unset"
    }
}

/// The effective configuration: the run-time settings (what `PUT` may change) and the
/// facts from the environment (read-only; secrets as "set"/"unset" only).
fn config_view(app: &App) -> Value {
    let c = &app.config;
    let storage = c.remote_storage.as_ref();
    let storage_password = matches!(
        storage,
        Some(crate::config::RemoteStorage::WebDav {
            password: Some(_),
            ..
        })
    );
    let ovh = c.ovh.as_ref();
    json!({
        "settings": app.settings.get().to_map(),
        "read_only": {
            "kiosk_id": c.kiosk_id,
            "version": env!("CARGO_PKG_VERSION"),
            "listen": c.listen.to_string(),
            "health_listen": c.health_listen.map(|a| a.to_string()),
            "data_dir": c.data_dir.display().to_string(),
            "uploads_dir": c.uploads_dir.display().to_string(),
            "max_capture_bytes": c.max_capture_bytes,
            "cors_origins": c.cors_origins,
            "remote_database": {
                "configured": c.remote_database_url.is_some(),
            },
            "remote_storage": {
                "configured": storage.is_some(),
                "url": storage.map(|s| s.display_url()),
            },
            "public_base_url": c.public_base_url,
            "sms": {
                "configured": c.sms_configured(),
                "endpoint": ovh.map(|o| o.endpoint.as_str()),
                "service_name": ovh.map(|o| o.service_name.as_str()),
                "sender": ovh.map(|o| o.sender.as_str()),
            },
            "secrets": {
                "admin_api_key": presence(true),
                "secret_key": presence(true),
                "remote_database_url": presence(c.remote_database_url.is_some()),
                "remote_storage_password": presence(storage_password),
                "ovh_app_key": presence(ovh.is_some()),
                "ovh_app_secret": presence(ovh.is_some()),
                "ovh_consumer_key": presence(ovh.is_some()),
            },
        },
    })
}

/// The shape of `GET`/`PUT /admin/config` (built as JSON by `config_view`).
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
struct ConfigView {
    /// What `PUT /admin/config` may change.
    settings: crate::settings::RuntimeSettings,
    /// From the environment; secrets only as "set"/"unset".
    read_only: ConfigFacts,
}

#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
struct ConfigFacts {
    kiosk_id: String,
    version: String,
    listen: String,
    health_listen: Option<String>,
    data_dir: String,
    uploads_dir: String,
    max_capture_bytes: u64,
    cors_origins: Vec<String>,
    remote_database: RemoteDatabaseFacts,
    remote_storage: RemoteStorageFacts,
    public_base_url: Option<String>,
    sms: SmsFacts,
    secrets: SecretFacts,
}

#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
struct RemoteDatabaseFacts {
    configured: bool,
}

#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
struct RemoteStorageFacts {
    configured: bool,
    /// Without credentials.
    url: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
struct SmsFacts {
    configured: bool,
    endpoint: Option<String>,
    service_name: Option<String>,
    sender: Option<String>,
}

/// `"set"` or `"unset"`: all that is ever said about a secret.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documentation only
enum Presence {
    Set,
    Unset,
}

#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
struct SecretFacts {
    admin_api_key: Presence,
    secret_key: Presence,
    remote_database_url: Presence,
    remote_storage_password: Presence,
    ovh_app_key: Presence,
    ovh_app_secret: Presence,
    ovh_consumer_key: Presence,
}

/// A partial object of run-time settings, for `PUT /admin/config` (the keys are those of
/// `RuntimeSettings`; any other key is refused).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documentation only: the body is read as a JSON object
struct SettingsChange {
    #[schema(nullable = false, minimum = 1, maximum = 3650)]
    retention_days: Option<u32>,
    /// UTC.
    #[schema(nullable = false, minimum = 0, maximum = 23)]
    cleanup_hour: Option<u32>,
    #[schema(nullable = false)]
    sync_enabled: Option<bool>,
    #[schema(nullable = false)]
    sms_enabled: Option<bool>,
    /// Must contain `{link}`; at most 3 SMS segments.
    #[schema(nullable = false)]
    sms_template: Option<String>,
    #[schema(nullable = false, minimum = 0, maximum = 100)]
    sms_per_phone_per_hour: Option<u32>,
    #[schema(nullable = false, minimum = 0, maximum = 100)]
    sms_per_capture: Option<u32>,
    #[schema(nullable = false, minimum = 0, maximum = 100000)]
    sms_per_hour: Option<u32>,
    #[schema(nullable = false, minimum = 0, maximum = 1000000)]
    sms_per_day: Option<u32>,
    #[schema(nullable = false, minimum = 1, maximum = 10080)]
    sms_expiry_minutes: Option<u32>,
    #[schema(nullable = false)]
    sms_credits_low: Option<f64>,
    #[schema(nullable = false)]
    kiosk_disk_reserve: Option<SizeSetting>,
    /// A log filter (`RUST_LOG` syntax).
    #[schema(nullable = false)]
    kiosk_log: Option<String>,
}

/// A size: bytes, or text such as `"64MB"` (`B`, `KB`, `MB`, `GB`, binary units).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // documentation only
#[serde(untagged)]
enum SizeSetting {
    Bytes(u64),
    Text(String),
}

/// `GET /admin/config`
#[utoipa::path(
    get,
    path = "/admin/config",
    tag = "admin",
    summary = "The effective configuration",
    responses((status = 200, description = "Run-time settings and read-only facts", body = ConfigView))
)]
async fn get_config(State(app): State<SharedApp>) -> ApiResult<Response> {
    Ok(json_response(StatusCode::OK, &config_view(&app)))
}

/// Serializes configuration changes (read-modify-write of the live settings).
static CONFIG_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn invalid_setting(e: &SettingError) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"error": {
            "code": "invalid_setting",
            "message": format!("{}: {}", e.key, e.message),
            "key": e.key,
        }})),
    )
        .into_response()
}

/// `PUT /admin/config`: a partial object of run-time settings. Every key is validated
/// before anything is stored; then all are stored in one transaction and take effect at
/// once. Answers like `GET`.
#[utoipa::path(
    put,
    path = "/admin/config",
    tag = "admin",
    summary = "Change run-time settings",
    description = "Any of the keys; all are validated before any is stored, then all take \
                   effect at once, without a restart.",
    request_body(content = SettingsChange, content_type = "application/json",
        example = json!({"retention_days": 14})),
    responses(
        (status = 200, description = "The configuration now", body = ConfigView),
        (status = 400, description = "`invalid_json` (not a JSON object), `body_read_error`"),
        (status = 413, description = "`payload_too_large`"),
        (status = 422, description = "`invalid_setting`: an unknown key or a bad value (the error has a `key` field)"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
async fn put_config(State(app): State<SharedApp>, req: Request) -> ApiResult<Response> {
    let (_, body) = read_body(req, 64 * 1024).await?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    let Value::Object(changes) = value else {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body must be a JSON object of settings, e.g. {\"retention_days\": 14}",
        ));
    };
    let _guard = CONFIG_WRITES.lock().await;
    let old = app.settings.get();
    let mut new = old.clone();
    for (k, v) in &changes {
        if let Err(e) = new.set(k, v) {
            return Ok(invalid_setting(&e));
        }
    }
    // Stored normalized (e.g. "64MB" → 67108864), as JSON text, all or nothing.
    let normalized = new.to_map();
    let rows: Vec<(String, String)> = changes
        .keys()
        .filter_map(|k| normalized.get(k).map(|v| (k.clone(), v.to_string())))
        .collect();
    app.catalog
        .write(move |tx| {
            for (k, v) in &rows {
                catalog::put_setting(tx, k, v)?;
            }
            Ok(())
        })
        .await?;
    app.settings.replace(new.clone());
    if new.kiosk_log != old.kiosk_log {
        if let Err(e) = crate::logging::set_level(&new.kiosk_log) {
            tracing::warn!("the new log filter could not be applied: {e}");
        }
    }
    if new.sync_enabled && !old.sync_enabled {
        // Jobs held while sync was off are due again now.
        crate::jobs::resume_sync(&app);
    }
    let keys: Vec<&String> = changes.keys().collect();
    tracing::info!(?keys, "run-time settings changed");
    Ok(json_response(StatusCode::OK, &config_view(&app)))
}

// ---------------------------------------------------------------------------------------
// Captures

/// Most captures in one page.
pub const MAX_PAGE: usize = 500;
pub const DEFAULT_PAGE: usize = 50;

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    from: Option<String>,
    to: Option<String>,
    synced: Option<String>,
    has_sms: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn query<T: serde::de::DeserializeOwned + Default>(uri: &Uri) -> ApiResult<T> {
    match uri.query() {
        None | Some("") => Ok(T::default()),
        Some(_) => Query::<T>::try_from_uri(uri)
            .map(|q| q.0)
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text())),
    }
}

/// A `from`/`to` bound in Unix milliseconds: RFC 3339 or `YYYY-MM-DD` (UTC). `end`: the
/// exclusive end of what the bound includes (the instant after it, the day after it).
fn parse_time_bound(v: &str, end: bool, code: &'static str) -> ApiResult<i64> {
    let v = v.trim();
    let bad = || {
        ApiError::bad_request(
            code,
            format!("'{v}' is not a date (YYYY-MM-DD) or an RFC 3339 date-time"),
        )
    };
    if let Ok(t) = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339) {
        let ms = (t.unix_timestamp_nanos() / 1_000_000) as i64;
        return Ok(if end { ms + 1 } else { ms });
    }
    let day = time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| bad())?;
    let ms = day.midnight().assume_utc().unix_timestamp() * 1000;
    Ok(if end { ms + DAY_MS } else { ms })
}

fn parse_bool(v: Option<&str>, code: &'static str, name: &str) -> ApiResult<Option<bool>> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some("true") | Some("1") => Ok(Some(true)),
        Some("false") | Some("0") => Ok(Some(false)),
        Some(_) => Err(ApiError::bad_request(
            code,
            format!("{name} must be true or false"),
        )),
    }
}

fn parse_range(from: Option<&str>, to: Option<&str>) -> ApiResult<(i64, i64)> {
    let from_ms = match from.filter(|s| !s.trim().is_empty()) {
        Some(v) => parse_time_bound(v, false, "invalid_from")?,
        None => i64::MIN,
    };
    let to_ms = match to.filter(|s| !s.trim().is_empty()) {
        Some(v) => parse_time_bound(v, true, "invalid_to")?,
        None => i64::MAX,
    };
    if from_ms >= to_ms {
        return Err(ApiError::bad_request(
            "invalid_range",
            "'from' must be before 'to'",
        ));
    }
    Ok((from_ms, to_ms))
}

#[derive(Debug, Serialize, ToSchema)]
struct CaptureItem {
    id: String,
    #[schema(format = DateTime)]
    created_at: String,
    taken_at: Option<String>,
    bytes: i64,
    width: i64,
    height: i64,
    sha256: String,
    background_id: Option<String>,
    background_name: Option<String>,
    is_synced: bool,
    synced_at: Option<String>,
    file_missing: bool,
    sms_count: i64,
    url: String,
    download_url: String,
}

impl From<CaptureListItem> for CaptureItem {
    fn from(c: CaptureListItem) -> Self {
        CaptureItem {
            url: format!("/uploads/{}.jpg", c.id),
            download_url: format!("/api/download/{}", c.id),
            created_at: catalog::format_ms(c.created_ms),
            synced_at: c.synced_ms.map(catalog::format_ms),
            is_synced: c.synced_ms.is_some(),
            id: c.id,
            taken_at: c.taken_at,
            bytes: c.bytes,
            width: c.width,
            height: c.height,
            sha256: c.sha256,
            background_id: c.background_id,
            background_name: c.background_name,
            file_missing: c.file_missing,
            sms_count: c.sms_count,
        }
    }
}

/// One page of `GET /admin/captures`.
#[derive(Debug, Serialize, ToSchema)]
struct CapturePage {
    /// Newest first.
    items: Vec<CaptureItem>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// `GET /admin/captures`: newest first, `{"items": […], "next_cursor": "…" | null}`.
/// The cursor is the `seq` of the last item: captures that arrive while a client pages
/// have larger ones, so each capture that existed is seen exactly once.
#[utoipa::path(
    get,
    path = "/admin/captures",
    tag = "admin",
    summary = "List captures, newest first, by pages",
    description = "Dates are RFC 3339 date-times or `YYYY-MM-DD` days (UTC); `from` and `to` \
                   are inclusive (a day means the whole day).",
    params(
        ("from" = Option<String>, Query, description = "Created at or after"),
        ("to" = Option<String>, Query, description = "Created at or before"),
        ("synced" = Option<bool>, Query),
        ("has_sms" = Option<bool>, Query),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page", body = CapturePage),
        (status = 400, description = "`invalid_query`, `invalid_from`, `invalid_to`, `invalid_range`, `invalid_synced`, `invalid_has_sms`, `invalid_limit`, `invalid_cursor`"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
async fn list_captures(State(app): State<SharedApp>, uri: Uri) -> ApiResult<Response> {
    let q: ListQuery = query(&uri)?;
    let (from_ms, to_ms) = parse_range(q.from.as_deref(), q.to.as_deref())?;
    let filter = CaptureFilter {
        from_ms,
        to_ms,
        synced: parse_bool(q.synced.as_deref(), "invalid_synced", "synced")?,
        has_sms: parse_bool(q.has_sms.as_deref(), "invalid_has_sms", "has_sms")?,
    };
    let limit = match q.limit.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_PAGE,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    format!("limit must be a whole number from 1 to {MAX_PAGE}"),
                )
            })?,
    };
    let before = match q.cursor.as_deref().map(str::trim) {
        None | Some("") => i64::MAX,
        Some(v) => v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                "the cursor is not one this server gave (use next_cursor as is)",
            )
        })?,
    };
    let mut rows = app
        .catalog
        .read(move |c| catalog::list_captures_page(c, &filter, before, limit + 1))
        .await?;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| r.seq.to_string())
    } else {
        None
    };
    let items: Vec<CaptureItem> = rows.into_iter().map(Into::into).collect();
    Ok(json_response(
        StatusCode::OK,
        &CapturePage { items, next_cursor },
    ))
}

/// `DELETE /admin/captures/{id}`: file and row now, remote copies through the outbox.
#[utoipa::path(
    delete,
    path = "/admin/captures/{id}",
    tag = "admin",
    summary = "Delete a capture",
    description = "File and row now, remote copies through the outbox.",
    params(("id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "Deleted", body = crate::capture::DeleteReceipt),
        (status = 400, description = "`invalid_id`"),
        (status = 404, description = "`not_found`"),
        (status = 503, description = "`catalog_unavailable`, `outbox_unavailable`, `storage_error`"),
    )
)]
async fn delete_capture(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    if !crate::ids::is_valid_id(&id) {
        return Err(ApiError::bad_request(
            "invalid_id",
            "not a valid capture id",
        ));
    }
    let receipt = crate::capture::delete_capture(&app, &id).await?;
    if !receipt.local_removed {
        return Err(ApiError::not_found("no capture with this id"));
    }
    Ok(json_response(StatusCode::OK, &receipt))
}

// ---------------------------------------------------------------------------------------
// Statistics

fn day_label(ms: i64) -> String {
    catalog::format_ms(ms).chars().take(10).collect()
}

fn hour_label(ms: i64) -> String {
    let s: String = catalog::format_ms(ms).chars().take(13).collect();
    format!("{s}:00:00Z")
}

/// Every bucket of `[from, from + n·width)`, zero where nothing happened.
fn series(
    buckets: &[catalog::Bucket],
    from: i64,
    width: i64,
    n: i64,
    label: fn(i64) -> String,
    key: &str,
) -> Vec<Value> {
    let by_start: HashMap<i64, &catalog::Bucket> =
        buckets.iter().map(|b| (b.start_ms, b)).collect();
    (0..n)
        .map(|i| {
            let start = from + i * width;
            let b = by_start.get(&start).copied().copied().unwrap_or_default();
            json!({key: label(start), "captures": b.captures, "synced": b.synced, "sms_sent": b.sms_sent})
        })
        .collect()
}

/// The shape of `GET /admin/stats` (built as JSON by [`get_stats`]).
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
struct Stats {
    #[schema(format = DateTime)]
    generated_at: String,
    /// All captures.
    captures: catalog::CaptureTotals,
    today: StatsToday,
    sms: StatsSms,
    /// The last 30 days (UTC), oldest first, zero where nothing happened.
    per_day: Vec<StatsDay>,
    /// The last 48 hours, oldest first.
    per_hour: Vec<StatsHour>,
    /// Most used first.
    per_background: Vec<catalog::BackgroundCount>,
    outbox: StatsOutbox,
}

#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
struct StatsToday {
    /// `YYYY-MM-DD`
    date: String,
    captures: i64,
    synced: i64,
    sms_sent: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
struct StatsSms {
    total: i64,
    sent: i64,
    failed: i64,
    pending: i64,
    expired: i64,
    cancelled: i64,
    /// Every internal status with its count.
    by_status: HashMap<String, i64>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
struct StatsDay {
    /// `YYYY-MM-DD`
    date: String,
    captures: i64,
    synced: i64,
    sms_sent: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
struct StatsHour {
    /// `YYYY-MM-DDTHH:00:00Z`
    hour: String,
    captures: i64,
    synced: i64,
    sms_sent: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
struct StatsOutbox {
    pending: usize,
    leased: usize,
    dead: usize,
    oldest_created_at: Option<String>,
    /// Pending jobs per kind.
    by_kind: HashMap<String, usize>,
}

/// `GET /admin/stats`: every figure is an SQL aggregate; no row is loaded.
#[utoipa::path(
    get,
    path = "/admin/stats",
    tag = "admin",
    summary = "Statistics",
    responses(
        (status = 200, description = "Totals, per day, per hour, SMS, backgrounds, outbox", body = Stats),
        (status = 503, description = "`catalog_unavailable`, `outbox_unavailable`"),
    )
)]
async fn get_stats(State(app): State<SharedApp>) -> ApiResult<Response> {
    let now = app.clock.now_ms();
    let today = now - now.rem_euclid(DAY_MS);
    let days_from = today - 29 * DAY_MS;
    let this_hour = now - now.rem_euclid(HOUR_MS);
    let hours_from = this_hour - 47 * HOUR_MS;
    let (totals, today_totals, days, hours, sms, per_background) = app
        .catalog
        .read(move |c| {
            Ok((
                catalog::capture_totals(c, i64::MIN, i64::MAX)?,
                catalog::capture_totals(c, today, today + DAY_MS)?,
                catalog::buckets(c, days_from, today + DAY_MS, DAY_MS)?,
                catalog::buckets(c, hours_from, this_hour + HOUR_MS, HOUR_MS)?,
                catalog::sms_by_status(c)?,
                catalog::captures_per_background(c)?,
            ))
        })
        .await?;
    let outbox = {
        let outbox = app.outbox.clone();
        tokio::task::spawn_blocking(move || outbox.stats())
            .await
            .map_err(|e| ApiError::internal(format!("outbox task failed: {e}")))??
    };
    let sms_count = |s: &str| sms.get(s).copied().unwrap_or(0);
    let sms_today = days
        .iter()
        .find(|b| b.start_ms == today)
        .map_or(0, |b| b.sms_sent);
    let body = json!({
        "generated_at": catalog::format_ms(now),
        "captures": totals,
        "today": {
            "date": day_label(today),
            "captures": today_totals.total,
            "synced": today_totals.synced,
            "sms_sent": sms_today,
        },
        "sms": {
            "total": sms.values().sum::<i64>(),
            "sent": sms_count("sent"),
            "failed": sms_count("failed"),
            "pending": sms_count("waiting_for_sync") + sms_count("queued") + sms_count("sending"),
            "expired": sms_count("expired"),
            "cancelled": sms_count("cancelled"),
            "by_status": sms,
        },
        "per_day": series(&days, days_from, DAY_MS, 30, day_label, "date"),
        "per_hour": series(&hours, hours_from, HOUR_MS, 48, hour_label, "hour"),
        "per_background": per_background,
        "outbox": {
            "pending": outbox.pending,
            "leased": outbox.leased,
            "dead": outbox.dead,
            "oldest_created_at": outbox.oldest_created_ms.map(catalog::format_ms),
            "by_kind": outbox.by_kind,
        },
    });
    Ok(json_response(StatusCode::OK, &body))
}

// ---------------------------------------------------------------------------------------
// Excel export

#[derive(Debug, Default, Deserialize)]
struct ExportQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /admin/export/excel[?from=…&to=…]`: the workbook as an attachment.
#[utoipa::path(
    get,
    path = "/admin/export/excel",
    tag = "admin",
    summary = "The captures as an Excel workbook",
    params(
        ("from" = Option<String>, Query, description = "RFC 3339 or `YYYY-MM-DD`, inclusive"),
        ("to" = Option<String>, Query, description = "RFC 3339 or `YYYY-MM-DD`, inclusive"),
    ),
    responses(
        (status = 200, description = "The workbook, as an attachment",
            content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers(
                ("Content-Disposition" = String),
                ("X-Export-Rows" = u64, description = "Rows written"),
                ("X-Export-Truncated" = Option<u64>, description = "Rows left out (the sheet is full)"),
            )),
        (status = 400, description = "`invalid_query`, `invalid_from`, `invalid_to`, `invalid_range`"),
        (status = 429, description = "`export_busy`: another export is running"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
async fn get_export_excel(State(app): State<SharedApp>, uri: Uri) -> ApiResult<Response> {
    let q: ExportQuery = query(&uri)?;
    let (from_ms, to_ms) = parse_range(q.from.as_deref(), q.to.as_deref())?;
    let filter = CaptureFilter {
        from_ms,
        to_ms,
        ..Default::default()
    };
    let started = Instant::now();
    let out = crate::export::export(&app, filter).await?;
    tracing::info!(
        rows = out.rows,
        bytes = out.len,
        ms = started.elapsed().as_millis() as u64,
        "Excel export built"
    );
    let name = crate::export::file_name(&app.config.kiosk_id, app.clock.now_ms());
    let file = tokio::fs::File::from_std(out.file);
    let mut r = Response::new(Body::from_stream(ReaderStream::with_capacity(
        file,
        64 * 1024,
    )));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(out.len));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("x-export-rows", HeaderValue::from(out.rows));
    if out.truncated > 0 {
        h.insert("x-export-truncated", HeaderValue::from(out.truncated));
    }
    Ok(r)
}
