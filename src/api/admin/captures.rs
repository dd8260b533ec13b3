//! `GET /admin/captures` (keyset pages), `GET`/`DELETE /admin/captures/{id}` and
//! `GET /admin/captures/{id}/thumbnail`.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{parse_bool, parse_page, parse_range};
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
    event_id: Option<String>,
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
    /// The event it belongs to (`null`: none) and its name.
    event_id: Option<String>,
    event_name: Option<String>,
    url: String,
    download_url: String,
    /// `GET /admin/captures/{id}/thumbnail` (admin key needed).
    thumbnail_url: String,
    /// `GET /admin/captures/{id}/photo`: the JPEG behind the admin key, on every listener
    /// that serves `/admin/*` (`ADMIN_LISTEN` serves neither `url` nor `download_url`).
    photo_url: String,
}

impl From<CaptureListItem> for CaptureItem {
    fn from(c: CaptureListItem) -> Self {
        CaptureItem {
            url: format!("/uploads/{}.jpg", c.id),
            download_url: format!("/api/download/{}", c.id),
            thumbnail_url: format!("/admin/captures/{}/thumbnail", c.id),
            photo_url: format!("/admin/captures/{}/photo", c.id),
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
            event_id: c.event_id,
            event_name: c.event_name,
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
        ("event_id" = Option<String>, Query, description = "Only this event's captures"),
    ),
    responses(
        (status = 200, description = "One page", body = CapturePage),
        (status = 400, description = "`invalid_query`, `invalid_from`, `invalid_to`, `invalid_range`, `invalid_synced`, `invalid_has_sms`, `invalid_limit`, `invalid_cursor`, `unknown_event`"),
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
        event_id: super::event_filter(&app, q.event_id.as_deref()).await?,
    };
    let (limit, before) = parse_page(q.limit.as_deref(), q.cursor.as_deref())?;
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

/// Where a capture's copy to the remotes stands.
#[derive(Debug, Serialize, ToSchema)]
struct SyncState {
    /// As in the listing.
    is_synced: bool,
    synced_at: Option<String>,
    /// When the file reached remote storage (`null`: not yet, or none configured).
    remote_file_at: Option<String>,
    /// When the row reached the remote database (`null`: not yet, or none configured).
    remote_db_at: Option<String>,
    /// The pending sync job, if any.
    job: Option<SyncJob>,
}

/// A pending sync job.
#[derive(Debug, Serialize, ToSchema)]
struct SyncJob {
    attempts: u32,
    /// Scrubbed of secrets and phone numbers.
    last_error: Option<String>,
    next_attempt_at: String,
}

/// `GET /admin/captures/{id}`.
#[derive(Debug, Serialize, ToSchema)]
struct CaptureDetail {
    #[serde(flatten)]
    capture: CaptureItem,
    sync: SyncState,
    /// Every SMS request of this capture, oldest first.
    sms: Vec<super::sms::SmsItem>,
}

fn check_id(id: &str) -> ApiResult<()> {
    if crate::ids::is_valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_id",
            "not a valid capture id",
        ))
    }
}

/// `GET /admin/captures/{id}`: metadata, sync state, SMS history (numbers masked).
#[utoipa::path(
    get,
    path = "/admin/captures/{id}",
    tag = "admin",
    summary = "One capture: metadata, sync state, SMS history",
    params(("id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The capture", body = CaptureDetail),
        (status = 400, description = "`invalid_id`"),
        (status = 404, description = "`not_found`"),
        (status = 503, description = "`catalog_unavailable`, `outbox_unavailable`"),
    )
)]
pub(super) async fn get_capture_detail(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    check_id(&id)?;
    let scope = app.sync_scope();
    let lookup = id.clone();
    let found = app
        .catalog
        .read(move |c| {
            let Some(item) = catalog::get_capture_item(c, &lookup, scope)? else {
                return Ok(None);
            };
            let row = catalog::get_capture(c, &lookup)?;
            let sms = catalog::sms_for_capture(c, &lookup)?;
            Ok(Some((item, row, sms)))
        })
        .await?;
    let Some((item, row, sms)) = found else {
        return Err(ApiError::not_found("no capture with this id"));
    };
    let scrub = super::sms::Scrubber::new(&app);
    let job = app
        .outbox
        .get(crate::outbox::JobKind::Sync, &id)?
        .map(|j| SyncJob {
            attempts: j.attempts,
            last_error: j.last_error.as_deref().map(|e| scrub.text(e)),
            next_attempt_at: catalog::format_ms(j.next_at_ms),
        });
    let sync = SyncState {
        is_synced: item.is_synced,
        synced_at: item.synced_ms.map(catalog::format_ms),
        remote_file_at: row
            .as_ref()
            .and_then(|r| r.remote_file_ms)
            .map(catalog::format_ms),
        remote_db_at: row
            .as_ref()
            .and_then(|r| r.remote_db_ms)
            .map(catalog::format_ms),
        job,
    };
    let sms = sms
        .iter()
        .map(|r| super::sms::SmsItem::new(r, &scrub))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &CaptureDetail {
            capture: item.into(),
            sync,
            sms,
        },
    ))
}

/// `GET /admin/captures/{id}/photo`: the capture's JPEG for staff, as an attachment named
/// `{id}.jpg` (the console shows and downloads it from here on any listener).
#[utoipa::path(
    get,
    path = "/admin/captures/{id}/photo",
    tag = "admin",
    summary = "A capture's JPEG, behind the admin key",
    params(
        ("id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer"),
    ),
    responses(
        (status = 200, description = "The JPEG", content_type = "image/jpeg",
            headers(("ETag" = String, description = "The quoted sha256"), ("Cache-Control" = String), ("Content-Disposition" = String))),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 400, description = "`invalid_id`"),
        (status = 404, description = "`not_found`: no such capture, or its file is missing"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
pub(super) async fn get_capture_photo(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    crate::api::files::serve_capture(&app, &id, &headers, true).await
}

/// `GET /admin/captures/{id}/thumbnail`: made once and kept; made now if missing.
#[utoipa::path(
    get,
    path = "/admin/captures/{id}/thumbnail",
    tag = "admin",
    summary = "A capture's thumbnail (JPEG, longest side at most 320 px)",
    params(
        ("id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer"),
    ),
    responses(
        (status = 200, description = "The thumbnail", content_type = "image/jpeg",
            headers(("ETag" = String, description = "Derived from the capture's sha256"), ("Cache-Control" = String))),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 400, description = "`invalid_id`"),
        (status = 404, description = "`not_found`: no such capture, or its file is missing"),
        (status = 422, description = "`invalid_image`: the stored file cannot be decoded"),
        (status = 503, description = "`catalog_unavailable`, `storage_error`"),
    )
)]
pub(super) async fn get_capture_thumbnail(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;

    check_id(&id)?;
    let lookup = id.clone();
    let row = app
        .catalog
        .read(move |c| catalog::get_capture(c, &lookup))
        .await?
        .ok_or_else(|| ApiError::not_found("no capture with this id"))?;
    // A capture's bytes never change under its id, nor does the thumbnail made of them.
    let etag = HeaderValue::from_str(&format!("\"t-{}\"", row.sha256))
        .map_err(|_| ApiError::internal("unprintable ETag"))?;
    let cache = HeaderValue::from_static("private, max-age=86400");
    let fresh = etag
        .to_str()
        .is_ok_and(|tag| crate::api::files::if_none_match(&headers, tag));
    if fresh {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        r.headers_mut().insert(header::ETAG, etag);
        r.headers_mut().insert(header::CACHE_CONTROL, cache);
        return Ok(r);
    }
    let thumbs = app.thumbnails.clone();
    let stored = {
        let (t, i) = (thumbs.clone(), id.clone());
        tokio::task::spawn_blocking(move || t.read(&i))
            .await
            .map_err(|e| ApiError::internal(format!("thumbnail task failed: {e}")))?
    };
    let jpeg = match stored {
        Some(j) => j,
        None => {
            // Under the id's lock, so that a deletion does not race the new file in.
            let _guard = app.uploads.lock_id(&id).await;
            let source = app.uploads.path_for(&id);
            let i = id.clone();
            tokio::task::spawn_blocking(move || match thumbs.read(&i) {
                Some(j) => Ok(j),
                None => thumbs.make(&source, &i),
            })
            .await
            .map_err(|e| ApiError::internal(format!("thumbnail task failed: {e}")))??
        }
    };
    let mut r = jpeg.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, cache);
    Ok(r)
}
