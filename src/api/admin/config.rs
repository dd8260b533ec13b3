//! `GET`/`PUT /admin/config`: the run-time settings (read/write) and the read-only facts,
//! both from the one configuration view ([`crate::config::view`]).

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::api::error::{ApiError, ApiResult};
use crate::api::read_body;
use crate::app::{App, SharedApp};
use crate::config::{self, ConfigView, Keys};
use crate::settings::{Change, ChangeError, SettingError};

/// A partial object of run-time settings, for `PUT /admin/config` (the keys are those of
/// `RuntimeSettings`; any other key is refused).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documentation only: the body is read as a JSON object
struct SettingsChange {
    #[schema(nullable = false, minimum = 1, maximum = 3650)]
    retention_days: Option<u32>,
    /// Local time (`KIOSK_TZ`).
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
    /// Days of heartbeat history kept in the remote database.
    #[schema(nullable = false, minimum = 1, maximum = 3650)]
    heartbeat_history_days: Option<u32>,
    /// Minutes without a touch or a key before the staff console signs out.
    #[schema(nullable = false, minimum = 1, maximum = 1440)]
    console_idle_minutes: Option<u32>,
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
pub(super) async fn get_config(State(app): State<SharedApp>) -> Json<ConfigView> {
    Json(config_view(&app))
}

/// The effective configuration: the run-time settings (what `PUT` may change) and the
/// facts from the environment (read-only; secrets as "set"/"unset" only).
fn config_view(app: &App) -> ConfigView {
    config::view(&app.config, Some(&app.settings.get()), Keys::Running)
}

/// The error answer of a refused setting: the usual one, plus the key.
#[derive(Serialize)]
struct InvalidSettingBody<'a> {
    error: InvalidSettingDetail<'a>,
}

#[derive(Serialize)]
struct InvalidSettingDetail<'a> {
    code: &'static str,
    message: String,
    key: &'a str,
}

fn invalid_setting(e: &SettingError) -> Response {
    let body = InvalidSettingBody {
        error: InvalidSettingDetail {
            code: "invalid_setting",
            message: format!("{}: {}", e.key, e.message),
            key: &e.key,
        },
    };
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

/// The environment variable behind a name that is read-only here: the names of
/// `read_only` in `GET /admin/config` and the lower-case names of the variables read only
/// at start. Addresses, directories, remotes and secrets are fixed for the life of the
/// process (a listener cannot move under its clients; a secret never travels this way).
fn read_only_source(key: &str) -> Option<&'static str> {
    const FIXED: &[(&str, &str)] = &[
        ("listen", "KIOSK_LISTEN"),
        ("kiosk_listen", "KIOSK_LISTEN"),
        ("health_listen", "HEALTH_LISTEN"),
        ("admin_listen", "ADMIN_LISTEN"),
        ("data_dir", "KIOSK_DATA_DIR"),
        ("kiosk_data_dir", "KIOSK_DATA_DIR"),
        ("uploads_dir", "UPLOADS_DIR"),
        ("kiosk_id", "KIOSK_ID"),
        ("max_capture_bytes", "MAX_CAPTURE_BYTES"),
        ("cors_origins", "KIOSK_CORS_ORIGINS"),
        ("kiosk_cors_origins", "KIOSK_CORS_ORIGINS"),
        ("heartbeat_secs", "KIOSK_HEARTBEAT_SECS"),
        ("kiosk_heartbeat_secs", "KIOSK_HEARTBEAT_SECS"),
        ("remote_database", "REMOTE_DATABASE_URL"),
        ("remote_database_url", "REMOTE_DATABASE_URL"),
        ("remote_storage", "REMOTE_STORAGE_URL"),
        ("remote_storage_url", "REMOTE_STORAGE_URL"),
        ("public_base_url", "PUBLIC_BASE_URL"),
        ("admin_api_key", "ADMIN_API_KEY"),
        ("secret_key", "SECRET_KEY"),
        ("ovh_endpoint", "OVH_ENDPOINT"),
        ("ovh_app_key", "OVH_APP_KEY"),
        ("ovh_app_secret", "OVH_APP_SECRET"),
        ("ovh_consumer_key", "OVH_CONSUMER_KEY"),
        ("ovh_timeout_secs", "OVH_TIMEOUT_SECS"),
        ("sms_service_name", "SMS_SERVICE_NAME"),
        ("sms_sender", "SMS_SENDER"),
        ("kiosk_tz", "KIOSK_TZ"),
        ("fleet_api_key", "FLEET_API_KEY"),
        ("redis_url", "REDIS_URL"),
    ];
    FIXED.iter().find(|(k, _)| *k == key).map(|(_, var)| *var)
}

/// 422 for a read-only name: which variable sets it, and that a restart applies it.
fn read_only_setting(key: &str, var: &str) -> Response {
    let body = InvalidSettingBody {
        error: InvalidSettingDetail {
            code: "read_only_setting",
            message: format!(
                "{key} is read-only here: it comes from the environment variable {var} \
                 (set it in the environment or the env file, then restart selfie-kiosk); \
                 nothing was changed"
            ),
            key,
        },
    };
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
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
        (status = 422, description = "`invalid_setting`: an unknown key or a bad value; `read_only_setting`: a value that comes from an environment variable (`listen`, `kiosk_listen`, `remote_database_url`, …), named in the message (both errors have a `key` field)"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
pub(super) async fn put_config(State(app): State<SharedApp>, req: Request) -> ApiResult<Response> {
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
    if let Some((key, var)) = changes
        .keys()
        .find_map(|k| read_only_source(k).map(|v| (k, v)))
    {
        return Ok(read_only_setting(key, var));
    }
    let Change { old, new } = match app.settings.change(&app.catalog, &changes).await {
        Ok(change) => change,
        Err(ChangeError::Invalid(e)) => return Ok(invalid_setting(&e)),
        Err(ChangeError::Catalog(e)) => return Err(e.into()),
    };
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
    Ok(Json(config_view(&app)).into_response())
}
