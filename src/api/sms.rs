//! `POST /api/send-sms`, `GET /api/sms/{sms_id}`.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::{json_response, read_body};
use crate::app::SharedApp;

#[derive(Debug, Deserialize)]
pub struct SendSms {
    pub capture_id: String,
    pub phone: String,
}

pub async fn post_send_sms(State(app): State<SharedApp>, req: Request) -> ApiResult<Response> {
    let (_, body) = read_body(req, 16 * 1024).await?;
    let r: SendSms = serde_json::from_slice(&body).map_err(|_| {
        ApiError::bad_request(
            "invalid_json",
            "the body must be {\"capture_id\": \"…\", \"phone\": \"…\"}",
        )
    })?;
    let (status, answer) = crate::sms::request(&app, &r.capture_id, &r.phone).await?;
    // 202 for a new request, 200 for the same request repeated.
    let status = if status == StatusCode::OK {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(json_response(status, &answer))
}

pub async fn get_sms(State(app): State<SharedApp>, Path(id): Path<String>) -> ApiResult<Response> {
    let answer = crate::sms::get(&app, &id).await?;
    Ok(json_response(StatusCode::OK, &answer))
}
