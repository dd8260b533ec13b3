//! `GET /health`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::json_response;
use crate::app::SharedApp;

pub async fn get_health(State(app): State<SharedApp>) -> Response {
    let report = crate::health::report(&app).await;
    let status = if report.status == crate::health::Status::Down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    json_response(status, &report)
}
