//! `GET /admin/diag`: what `selfie-kiosk diag` needs from a running daemon — the health
//! report, outbox and catalog summaries, the effective configuration and the recent log
//! lines, all scrubbed of secrets and phone numbers (see [`crate::diag`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::json_response;
use crate::app::SharedApp;

pub fn routes() -> Router<SharedApp> {
    Router::new().route("/admin/diag", get(get_diag))
}

async fn get_diag(State(app): State<SharedApp>) -> Response {
    let snapshot = crate::diag::daemon_snapshot(&app).await;
    json_response(StatusCode::OK, &snapshot)
}
