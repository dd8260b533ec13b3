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
//! | `GET /admin/captures/{id}` | one capture: metadata, sync state, SMS history (masked) |
//! | `GET /admin/captures/{id}/thumbnail` | JPEG ≤ 320 px, kept on disk ([`crate::storage::thumbnails`]) |
//! | `GET /admin/captures/{id}/photo` | the JPEG for staff (an attachment), on `ADMIN_LISTEN` too |
//! | `GET /admin/sms` | keyset pages of SMS requests: `status`, `from`, `to`, `capture_id`, `limit`, `cursor` |
//! | `POST /admin/sms/{id}/retry` | a failed SMS back in the queue ([`crate::sms::retry`]) |
//! | `POST /admin/sync`, `POST /admin/cleanup` | run the sync / retention cleanup now |
//! | `GET /admin/stats` | SQL aggregates: totals, per day, per hour, SMS, backgrounds, outbox |
//! | `GET /admin/export/excel` | the workbook ([`crate::export`]) |
//! | `/admin/backgrounds…` | see [`super::backgrounds`] |
//! | `GET`/`POST /admin/events`, `GET`/`PATCH /admin/events/{id}` | events ([`crate::events`]) |
//!
//! Dates in filters are RFC 3339 date-times or `YYYY-MM-DD` days (UTC); `from` is
//! inclusive, `to` too (a day means the whole day).

mod auth;
mod captures;
mod config;
mod events;
mod export;
mod sms;
mod stats;

use super::routing::{route, Mode, Routes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

pub use auth::{check_key, peer_ip, require_admin, AdminGuard, AuthFailures};
pub use captures::{DEFAULT_PAGE, MAX_PAGE};

use super::error::{ApiError, ApiResult};
use super::json_response;
use crate::app::SharedApp;
use crate::catalog::DAY_MS;

/// The admin group (the caller puts it behind [`require_admin`]).
pub fn routes<M: Mode<SharedApp>>() -> Routes<SharedApp, M> {
    Routes::new()
        .with(route!(post_sync))
        .with(route!(post_cleanup))
        .with(route!(config::get_config, config::put_config))
        .with(route!(captures::list_captures))
        .with(route!(captures::delete_capture))
        // The staff console's reads and actions.
        .with(route!(captures::get_capture_detail))
        .with(route!(captures::get_capture_thumbnail))
        .with(route!(captures::get_capture_photo))
        .with(route!(sms::list_sms_requests))
        .with(route!(sms::retry_sms_request))
        .with(route!(stats::get_stats))
        .with(route!(export::get_export_excel))
        .with(route!(events::list_events, events::post_event))
        .with(route!(events::get_event, events::patch_event))
        .merge(super::backgrounds::admin_routes())
        .merge(super::diag::routes())
        .merge(super::gdpr::routes())
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
// Query strings shared by the listing and the export

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

pub(super) fn parse_bool(
    v: Option<&str>,
    code: &'static str,
    name: &str,
) -> ApiResult<Option<bool>> {
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

/// `limit` and `cursor` of a paged listing (`/admin/captures`, `/admin/sms`): the page size
/// (1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when absent) and the `seq` to list below.
pub(super) fn parse_page(limit: Option<&str>, cursor: Option<&str>) -> ApiResult<(usize, i64)> {
    let limit = match limit.map(str::trim) {
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
    let before = match cursor.map(str::trim) {
        None | Some("") => i64::MAX,
        Some(v) => v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                "the cursor is not one this server gave (use next_cursor as is)",
            )
        })?,
    };
    Ok((limit, before))
}

pub(super) fn parse_range(from: Option<&str>, to: Option<&str>) -> ApiResult<(i64, i64)> {
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

/// An `event_id` filter: checked to exist (400 `unknown_event` otherwise).
pub(super) async fn event_filter(app: &SharedApp, v: Option<&str>) -> ApiResult<Option<String>> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        Some(id) => Ok(Some(crate::events::require(app, id).await?.id)),
        None => Ok(None),
    }
}
