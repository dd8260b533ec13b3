//! `POST /admin/gdpr/erase {"phone": …}`: removes every capture sent to that number,
//! locally now and remotely through the outbox, and answers a receipt.

use super::routing::{route, Mode, Routes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::{json_response, read_body};
use crate::app::SharedApp;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct EraseRequest {
    /// E.164, or a French national number.
    #[schema(example = "+33612345678")]
    phone: String,
    /// Only the captures of this event (issue 20); unknown: 400 `unknown_event`.
    event_id: Option<String>,
}

pub fn routes<M: Mode<SharedApp>>() -> Routes<SharedApp, M> {
    Routes::new().with(route!(post_erase))
}

/// `POST /admin/gdpr/erase`
#[utoipa::path(
    post,
    path = "/admin/gdpr/erase",
    tag = "admin",
    summary = "Erase everything sent to a phone number",
    description = "Every capture sent to that number: locally now, remotely through the outbox.",
    request_body(content = EraseRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The receipt", body = crate::cleanup::ErasureReceipt),
        (status = 400, description = "`invalid_json`, `invalid_phone`, `body_read_error`, `unknown_event`"),
        (status = 413, description = "`payload_too_large`"),
        (status = 503, description = "`catalog_unavailable`, `outbox_unavailable`, `storage_error`"),
    )
)]
async fn post_erase(State(app): State<SharedApp>, req: Request) -> ApiResult<Response> {
    let (_, body) = read_body(req, 16 * 1024).await?;
    let r: EraseRequest = super::json_object(&body).map_err(|_| {
        ApiError::bad_request("invalid_json", "the body must be {\"phone\": \"…\"}")
    })?;
    let event = match r.event_id.as_deref() {
        Some(id) => Some(crate::events::require(&app, id).await?.id),
        None => None,
    };
    let receipt = crate::cleanup::erase_phone_in(&app, &r.phone, event).await?;
    Ok(json_response(StatusCode::OK, &receipt))
}
