//! `GET /health`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::json_response;
use crate::app::SharedApp;

/// `GET /health`
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    summary = "Health of the kiosk",
    description = "Remote trouble is `degraded`, never `down`: the kiosk works offline. `down` \
                   (503) is for what stops captures: the catalog or the disk.",
    responses(
        (status = 200, description = "`ok` or `degraded`", body = crate::health::Report),
        (status = 503, description = "`down`", body = crate::health::Report),
    )
)]
pub async fn get_health(State(app): State<SharedApp>) -> Response {
    let report = crate::health::report(&app).await;
    let status = if report.status == crate::health::Status::Down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    json_response(status, &report)
}
