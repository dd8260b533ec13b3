//! The access log and the HTTP metrics: one `tracing` event per request, target `access`
//! (filter it with `KIOSK_LOG`, e.g. `info,access=warn`), with structured fields —
//! `method`, `route`, `status`, `duration_ms`, `bytes` — that journald keeps as fields of
//! their own (`METHOD=`, `ROUTE=`, …, through tracing-journald).
//!
//! The route is the router's template (`/api/sms/{sms_id}`), never the path asked and
//! never the query string, so no id, phone number or key ever reaches the log through it;
//! a request no route matched is `unmatched`. Bodies and headers are not logged at all.
//!
//! The line is written, and the request counted in [`crate::metrics`], when the answer's
//! body has been sent (or dropped by a client that went away): the duration and the bytes
//! are those of the whole answer, downloads included.

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;

use crate::clock::Stopwatch;
use crate::metrics::{method_label, Metrics, UNMATCHED};

/// The middleware (`axum::middleware::from_fn_with_state(metrics, access_log::track)`).
pub async fn track(
    axum::extract::State(metrics): axum::extract::State<Metrics>,
    req: Request,
    next: Next,
) -> Response {
    let started = Stopwatch::start();
    let method = method_label(req.method());
    let route: String = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_string();
    let resp = next.run(req).await;
    let mut done = Done {
        metrics,
        method,
        route,
        status: resp.status().as_u16(),
        started,
        bytes: 0,
    };
    resp.map(|body| {
        // A method call takes `done` whole into the closure (a field use would move only
        // the field, and `done` would be dropped, and logged, right here).
        Body::new(body.map_frame(move |frame| {
            done.count(frame.data_ref().map_or(0, |d| d.len()));
            frame
        }))
    })
}

/// What is known of a request once its answer started; logged and counted when dropped,
/// i.e. when the body is finished with.
struct Done {
    metrics: Metrics,
    method: &'static str,
    route: String,
    status: u16,
    started: Stopwatch,
    bytes: u64,
}

impl Done {
    fn count(&mut self, n: usize) {
        self.bytes += n as u64;
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        self.metrics
            .http_request(self.method, &self.route, self.status, elapsed);
        let duration_ms = (elapsed.as_secs_f64() * 10_000.0).round() / 10.0;
        tracing::info!(
            target: "access",
            method = %self.method,
            route = %self.route,
            status = self.status,
            duration_ms,
            bytes = self.bytes,
            "request"
        );
    }
}
