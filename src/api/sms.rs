//! `POST /api/send-sms`, `GET /api/sms/{sms_id}`.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::{json_response, read_body};
use crate::app::SharedApp;
use crate::sms::{Requested, SmsAnswer};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SendSms {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub capture_id: String,
    /// E.164, or a French national number.
    #[schema(example = "06 12 34 56 78")]
    pub phone: String,
    /// The id of the consent text the guest agreed to (issue 20), stored with the request
    /// and in the remote SMS log. Required when the setting `sms_require_consent` is on.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", example = "cgu-2026-06")]
    pub consent: Option<String>,
}

/// `POST /api/send-sms`
#[utoipa::path(
    post,
    path = "/api/send-sms",
    tag = "sms",
    summary = "Text a guest the link to their photo",
    description = "Recorded now, sent once the capture is in remote storage. The same capture \
                   and number again answer 200 with the same request, not a second text.",
    request_body(content = SendSms, content_type = "application/json"),
    responses(
        (status = 202, description = "Recorded; will be sent", body = SmsAnswer),
        (status = 200, description = "The same request already exists", body = SmsAnswer),
        (status = 400, description = "`invalid_json`, `invalid_id`, `invalid_phone`, `premium_number`, `body_read_error`, `invalid_consent`, `consent_required`"),
        (status = 404, description = "`capture_not_found`"),
        (status = 413, description = "`payload_too_large`"),
        (status = 429, description = "`rate_limited_phone`, `rate_limited_capture`, `rate_limited_hourly`, `rate_limited_daily`"),
        (status = 503, description = "`sms_not_configured` (or disabled), `catalog_unavailable`, `outbox_unavailable`"),
    )
)]
pub async fn post_send_sms(State(app): State<SharedApp>, req: Request) -> ApiResult<Response> {
    let (_, body) = read_body(req, 16 * 1024).await?;
    let r: SendSms = super::json_object(&body).map_err(|_| {
        ApiError::bad_request(
            "invalid_json",
            "the body must be {\"capture_id\": \"…\", \"phone\": \"…\"}",
        )
    })?;
    // 202 for a new request, 200 for the same request repeated.
    let consent = r.consent.as_deref();
    let (status, answer) = match crate::sms::request(&app, &r.capture_id, &r.phone, consent).await?
    {
        Requested::Created(answer) => (StatusCode::ACCEPTED, answer),
        Requested::Existing(answer) => (StatusCode::OK, answer),
    };
    Ok(json_response(status, &answer))
}

/// `GET /api/sms/{sms_id}`
#[utoipa::path(
    get,
    path = "/api/sms/{sms_id}",
    tag = "sms",
    summary = "Where an SMS request stands",
    params(("sms_id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The request (the phone masked)", body = SmsAnswer),
        (status = 400, description = "`invalid_id`"),
        (status = 404, description = "`not_found`"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
pub async fn get_sms(State(app): State<SharedApp>, Path(id): Path<String>) -> ApiResult<Response> {
    let answer = crate::sms::get(&app, &id).await?;
    Ok(json_response(StatusCode::OK, &answer))
}
