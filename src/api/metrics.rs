//! `GET /metrics` (Prometheus text format), on the API listener and on `HEALTH_LISTEN`;
//! and the mapping of capture answers to the `captures_total` result label.
//!
//! No key, like `/health`: nothing in it is secret or personal (see [`crate::metrics`]),
//! and Prometheus scrapers are configured most simply without one. Any other method
//! than GET/HEAD is 405 with the JSON error body and an `Allow` header.

use axum::extract::State;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ApiResult};
use super::routing::{route, Mode, Routes};
use crate::app::SharedApp;
use crate::metrics::encode::CONTENT_TYPE;

/// `GET /metrics`
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    summary = "Prometheus metrics",
    description = "The Prometheus text exposition format (0.0.4): build info, captures by result, \
                   HTTP requests by route template and status with durations, sync backlog, \
                   uploads by remote and result, remote reachability, SMS by status and credits, \
                   disk, outbox dead letters, workers, clock. No key (like `/health`); no secret \
                   and no personal data in any label. The README lists every metric.",
    responses(
        (status = 200, description = "One scrape", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 405, description = "`method_not_allowed`: only GET (and HEAD)", body = super::error::ErrorBody),
    )
)]
pub async fn get_metrics(State(app): State<SharedApp>) -> Response {
    let text = crate::metrics::scrape::render(&app).await;
    (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

/// A scrape with another method: 405, JSON like every error (axum adds `Allow`).
async fn method_not_allowed(method: Method) -> ApiError {
    let shown: String = method.as_str().chars().take(20).collect();
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{shown} is not allowed on /metrics: scrape it with GET"),
    )
}

/// `/metrics` with its 405 answer, to merge into a router.
pub fn routes<M: Mode<SharedApp>>() -> Routes<SharedApp, M> {
    Routes::new().with(route!(get_metrics).map(|m| m.fallback(method_not_allowed)))
}

/// The `captures_total` result of a capture answer: `created` (201), `repeated` (200), or
/// the error code.
pub fn capture_result(r: &ApiResult<Response>) -> &'static str {
    match r {
        Ok(resp) if resp.status() == StatusCode::CREATED => "created",
        Ok(_) => "repeated",
        Err(e) => e.code,
    }
}

/// Counts one batch item.
pub fn count_batch_item<T>(
    app: &SharedApp,
    item: &Result<(crate::capture::Ingested, T), ApiError>,
) {
    app.metrics.capture(match item {
        Ok((crate::capture::Ingested::Created, _)) => "created",
        Ok((crate::capture::Ingested::Repeated, _)) => "repeated",
        Err(e) => e.code,
    });
}
