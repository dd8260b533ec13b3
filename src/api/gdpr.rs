//! `POST /admin/gdpr/erase {"phone": …}`: removes every capture sent to that number,
//! locally now and remotely through the outbox, and answers a receipt.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::{json_response, read_body};
use crate::app::SharedApp;

#[derive(Debug, Deserialize)]
struct EraseRequest {
    phone: String,
}

pub fn routes() -> Router<SharedApp> {
    Router::new().route("/admin/gdpr/erase", post(post_erase))
}

async fn post_erase(State(app): State<SharedApp>, req: Request) -> ApiResult<Response> {
    let (_, body) = read_body(req, 16 * 1024).await?;
    let r: EraseRequest = serde_json::from_slice(&body).map_err(|_| {
        ApiError::bad_request("invalid_json", "the body must be {\"phone\": \"…\"}")
    })?;
    let receipt = crate::cleanup::erase_phone(&app, &r.phone).await?;
    Ok(json_response(StatusCode::OK, &receipt))
}
