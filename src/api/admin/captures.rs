//! `GET /admin/captures` (keyset pages) and `DELETE /admin/captures/{id}`.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{parse_bool, parse_range};
use crate::api::error::{ApiError, ApiResult};
use crate::api::{json_response, query};
use crate::app::SharedApp;
use crate::catalog::{self, CaptureFilter, CaptureListItem};

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
    /// Every configured remote has it; always `true` when no remote is configured
    /// (nothing to sync to), as `GET /api/captures/status` says.
    is_synced: bool,
    /// When it was synced; `null` while not, and always when no remote is configured.
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
            is_synced: c.is_synced,
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
        ("synced" = Option<bool>, Query, description = "As `is_synced`: with no remote configured every capture is synced"),
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
pub(super) async fn list_captures(State(app): State<SharedApp>, uri: Uri) -> ApiResult<Response> {
    let q: ListQuery = query(&uri)?;
    let (from_ms, to_ms) = parse_range(q.from.as_deref(), q.to.as_deref())?;
    let filter = CaptureFilter {
        from_ms,
        to_ms,
        synced: parse_bool(q.synced.as_deref(), "invalid_synced", "synced")?,
        has_sms: parse_bool(q.has_sms.as_deref(), "invalid_has_sms", "has_sms")?,
        scope: app.sync_scope(),
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
pub(super) async fn delete_capture(
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
