//! `GET /admin/sms` (keyset pages of SMS requests) and `POST /admin/sms/{id}/retry`.
//!
//! Numbers are only ever shown masked; errors recorded from OVH are scrubbed of the
//! daemon's secrets and of anything that looks like a phone number before they are shown.

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{parse_page, parse_range};
use crate::api::error::{ApiError, ApiResult};
use crate::api::{json_object, json_response, query, read_body};
use crate::app::{App, SharedApp};
use crate::catalog::{self, SmsFilter, SmsRow};
use crate::sms::SmsStatus;

/// Scrubs texts that came from outside (OVH answers, remote errors) before staff see them.
pub(super) struct Scrubber(crate::diag::Secrets);

impl Scrubber {
    pub(super) fn new(app: &App) -> Scrubber {
        Scrubber(crate::diag::Secrets::from_app(app))
    }

    pub(super) fn text(&self, s: &str) -> String {
        crate::diag::mask_phones(&self.0.scrub(s))
    }
}

/// One SMS request as staff see it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SmsItem {
    id: String,
    capture_id: String,
    /// The catalog's status: `waiting_for_sync`, `queued`, `sending`, `sent`, `failed`,
    /// `expired`, `cancelled`.
    status: String,
    /// Masked: country code and the last two digits.
    phone: String,
    attempts: i64,
    /// Scrubbed of secrets and phone numbers.
    last_error: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    sent_at: Option<String>,
    /// Until when it may be sent (and, once failed, retried).
    expires_at: String,
    /// Whether `POST /admin/sms/{id}/retry` would take it (limits aside), given the
    /// guest's number typed again: it failed.
    retryable: bool,
}

impl SmsItem {
    pub(super) fn new(r: &SmsRow, scrub: &Scrubber) -> SmsItem {
        SmsItem {
            id: r.id.clone(),
            capture_id: r.capture_id.clone(),
            status: r.status.clone(),
            phone: r.phone_masked.clone(),
            attempts: r.attempts,
            last_error: r.last_error.as_deref().map(|e| scrub.text(e)),
            created_at: catalog::format_ms(r.created_ms),
            sent_at: r.sent_ms.map(catalog::format_ms),
            expires_at: catalog::format_ms(r.expires_ms),
            retryable: crate::sms::retry::is_retryable(r),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    capture_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// One page of `GET /admin/sms`.
#[derive(Debug, Serialize, ToSchema)]
struct SmsPage {
    /// Newest first.
    items: Vec<SmsItem>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// `GET /admin/sms`: newest first, `{"items": […], "next_cursor": "…" | null}`, paged
/// like `GET /admin/captures`.
#[utoipa::path(
    get,
    path = "/admin/sms",
    tag = "admin",
    summary = "List SMS requests, newest first, by pages",
    description = "Dates are RFC 3339 date-times or `YYYY-MM-DD` days (UTC), on the request's \
                   creation; `from` and `to` are inclusive (a day means the whole day).",
    params(
        ("status" = Option<String>, Query, description = "`waiting_for_sync`, `queued`, `sending`, `sent`, `failed`, `expired` or `cancelled`"),
        ("from" = Option<String>, Query, description = "Created at or after"),
        ("to" = Option<String>, Query, description = "Created at or before"),
        ("capture_id" = Option<String>, Query, description = "Only this capture's requests"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page", body = SmsPage),
        (status = 400, description = "`invalid_query`, `invalid_status`, `invalid_from`, `invalid_to`, `invalid_range`, `invalid_capture_id`, `invalid_limit`, `invalid_cursor`"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
pub(super) async fn list_sms_requests(
    State(app): State<SharedApp>,
    uri: Uri,
) -> ApiResult<Response> {
    let q: ListQuery = query(&uri)?;
    let (from_ms, to_ms) = parse_range(q.from.as_deref(), q.to.as_deref())?;
    let status = match q.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(
            SmsStatus::parse(s)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_status",
                        "status must be one of waiting_for_sync, queued, sending, sent, failed, expired, cancelled",
                    )
                })?
                .as_str()
                .to_string(),
        ),
    };
    let capture_id = match q.capture_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(id) if crate::ids::is_valid_id(id) => Some(id.to_string()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_capture_id",
                "capture_id is not a valid id",
            ))
        }
    };
    let (limit, before) = parse_page(q.limit.as_deref(), q.cursor.as_deref())?;
    let filter = SmsFilter {
        status,
        from_ms,
        to_ms,
        capture_id,
    };
    let mut rows = app
        .catalog
        .read(move |c| catalog::list_sms_page(c, &filter, before, limit + 1))
        .await?;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| r.seq.to_string())
    } else {
        None
    };
    let scrub = Scrubber::new(&app);
    let items = rows.iter().map(|r| SmsItem::new(&r.row, &scrub)).collect();
    Ok(json_response(
        StatusCode::OK,
        &SmsPage { items, next_cursor },
    ))
}

/// The optional body of `POST /admin/sms/{id}/retry`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(super) struct RetrySms {
    /// The guest's number typed again (E.164, or a French national number): it must be
    /// the number of the original request. Needed once the request has forgotten it, as
    /// every failed one has.
    #[schema(example = "06 12 34 56 78")]
    phone: Option<String>,
}

/// `POST /admin/sms/{id}/retry`: a failed request back in the queue, with the guest's
/// number typed again.
#[utoipa::path(
    post,
    path = "/admin/sms/{id}/retry",
    tag = "admin",
    summary = "Put a failed SMS back in the queue",
    description = "Only a `failed` request is retried, with a fresh validity. A failed request \
                   has forgotten the guest's number, so the body gives it again, \
                   `{\"phone\": \"…\"}`: it must normalise to the original number (compared by \
                   its HMAC), else 422 `phone_mismatch` and nothing changes; the number is \
                   kept again until the request is final. The abuse limits apply as to a new \
                   request, counted over the other requests (the retried one is the same \
                   text, not a second one). A sent SMS is never sent again.",
    params(("id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$")),
    request_body(content = Option<RetrySms>, content_type = "application/json",
        description = "Optional: the guest's number typed again"),
    responses(
        (status = 202, description = "Queued again", body = crate::sms::SmsAnswer),
        (status = 400, description = "`invalid_id`, `invalid_json`, `invalid_phone`, `premium_number`, `body_read_error`"),
        (status = 404, description = "`not_found`, `capture_not_found`"),
        (status = 409, description = "`already_sent`, `not_failed` (still on its way, expired or cancelled), `number_forgotten` (no number given, and the request no longer holds it)"),
        (status = 413, description = "`payload_too_large`"),
        (status = 422, description = "`phone_mismatch`: not the number of this request"),
        (status = 429, description = "`rate_limited_phone`, `rate_limited_capture`, `rate_limited_hourly`, `rate_limited_daily`"),
        (status = 503, description = "`sms_not_configured`, `catalog_unavailable`, `outbox_unavailable`"),
    )
)]
pub(super) async fn retry_sms_request(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let (_, body) = read_body(req, 4 * 1024).await?;
    // No body (or an empty one, or JSON `null`, as the document allows) is a retry
    // without a number.
    let r: RetrySms = if body.trim_ascii().is_empty() || body.trim_ascii() == b"null" {
        RetrySms::default()
    } else {
        json_object(&body).map_err(|_| {
            ApiError::bad_request(
                "invalid_json",
                "the body must be empty or {\"phone\": \"…\"} (the guest's number)",
            )
        })?
    };
    let phone = r.phone.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let answer = crate::sms::retry::retry(&app, &id, phone).await?;
    Ok(json_response(StatusCode::ACCEPTED, &answer))
}
