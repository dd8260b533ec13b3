//! `GET /admin/diag`: what `selfie-kiosk diag` needs from a running daemon — the health
//! report, outbox and catalog summaries, the effective configuration and the recent log
//! lines, all scrubbed of secrets and phone numbers (see [`crate::diag`]).

use super::routing::{route, Mode, Routes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::json_response;
use crate::app::SharedApp;

pub fn routes<M: Mode<SharedApp>>() -> Routes<SharedApp, M> {
    Routes::new().with(route!(get_diag))
}

/// The shape of `GET /admin/diag` (built as JSON by [`crate::diag::daemon_snapshot`]).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only
struct DiagSnapshot {
    daemon: DiagDaemon,
    health: crate::health::Report,
    /// Every background worker's status.
    workers: Vec<crate::workers::WorkerInfo>,
    /// Outbox summary (or `{"error"}`).
    outbox: Value,
    /// Catalog summary (or `{"error"}`).
    catalog: Value,
    /// The effective configuration, secrets as "set"/"unset".
    config: Value,
    /// Recent log lines, scrubbed.
    logs: Vec<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only
struct DiagDaemon {
    pid: u32,
    version: String,
    uptime_s: u64,
}

/// `GET /admin/diag`
#[utoipa::path(
    get,
    path = "/admin/diag",
    tag = "admin",
    summary = "What `selfie-kiosk diag` needs from the running daemon",
    description = "Health, outbox and catalog summaries, configuration and recent logs, \
                   scrubbed of secrets and phone numbers.",
    responses((status = 200, description = "The snapshot", body = DiagSnapshot))
)]
async fn get_diag(State(app): State<SharedApp>) -> Response {
    let snapshot = crate::diag::daemon_snapshot(&app).await;
    json_response(StatusCode::OK, &snapshot)
}
