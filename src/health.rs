//! Health checks and the aggregate status.
//!
//! `down` (HTTP 503) only for what stops captures: the catalog or the disk. Anything
//! remote is at worst `degraded`: the kiosk works offline. No check here touches the
//! network: remote states come from what the workers last saw, so `/health` answers in
//! milliseconds even when the network hangs.

use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Value};

use crate::app::App;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Degraded,
    Down,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub status: Status,
    #[serde(flatten)]
    pub details: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub status: Status,
    pub version: &'static str,
    pub kiosk_id: String,
    pub uptime_s: u64,
    pub checks: std::collections::BTreeMap<&'static str, Check>,
}

fn check(status: Status, details: Value) -> Check {
    Check { status, details }
}

pub async fn report(app: &App) -> Report {
    let mut checks = std::collections::BTreeMap::new();
    checks.insert("local_db", local_db(app).await);
    checks.insert("disk", disk(app));
    checks.insert("outbox", outbox(app));
    checks.insert("scheduler", check(Status::Ok, json!({"running": true})));
    let sync = app.sync_state.snapshot();
    checks.insert("remote_db", remote_check(&sync.remote_db));
    checks.insert("remote_storage", remote_check(&sync.remote_storage));
    checks.insert(
        "sms",
        if app.config.sms_configured() {
            check(Status::Ok, json!({"configured": true}))
        } else {
            check(
                Status::Ok,
                json!({"configured": false, "message": "not configured"}),
            )
        },
    );
    let status = checks
        .values()
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Ok);
    Report {
        status,
        version: env!("CARGO_PKG_VERSION"),
        kiosk_id: app.config.kiosk_id.clone(),
        uptime_s: app.started.elapsed().as_secs(),
        checks,
    }
}

async fn local_db(app: &App) -> Check {
    let t = Instant::now();
    let res = app.catalog.read(crate::catalog::count_captures).await;
    let latency_ms = t.elapsed().as_secs_f64() * 1000.0;
    match res {
        Ok((total, unsynced)) => check(
            Status::Ok,
            json!({"captures": total, "unsynced": unsynced, "latency_ms": latency_ms}),
        ),
        Err(e) => check(Status::Down, json!({"error": e.to_string()})),
    }
}

fn disk(app: &App) -> Check {
    let dir = app.uploads.dir();
    let reserve = app.disk_reserve_bytes();
    match (
        crate::storage::free_bytes(dir),
        crate::storage::total_bytes(dir),
    ) {
        (Ok(free), Ok(total)) => {
            let free_percent = if total > 0 {
                (free as f64 / total as f64 * 1000.0).round() / 10.0
            } else {
                0.0
            };
            // Below the reserve captures are refused: down. Within twice the reserve:
            // degraded, so staff hear about it before the event stops.
            let status = if free < reserve {
                Status::Down
            } else if free < reserve.saturating_mul(2) {
                Status::Degraded
            } else {
                Status::Ok
            };
            check(
                status,
                json!({"free_bytes": free, "total_bytes": total, "free_percent": free_percent, "reserve_bytes": reserve}),
            )
        }
        (Err(e), _) | (_, Err(e)) => check(Status::Down, json!({"error": e.to_string()})),
    }
}

fn outbox(app: &App) -> Check {
    match app.outbox.stats() {
        Ok(s) => {
            let now = app.clock.now_ms();
            let oldest_age_s = s.oldest_created_ms.map(|c| ((now - c).max(0)) / 1000);
            check(
                Status::Ok,
                json!({"pending": s.pending, "in_progress": s.leased, "dead": s.dead,
                       "oldest_pending_age_s": oldest_age_s, "by_kind": s.by_kind}),
            )
        }
        Err(e) => check(Status::Degraded, json!({"error": e.to_string()})),
    }
}

fn remote_check(r: &crate::sync::RemoteSnapshot) -> Check {
    if !r.configured {
        return check(
            Status::Ok,
            json!({"configured": false, "message": "not configured"}),
        );
    }
    let status = if r.last_error.is_some() && r.consecutive_failures > 0 {
        Status::Degraded
    } else {
        Status::Ok
    };
    check(
        status,
        json!({
            "configured": true,
            "reachable": r.consecutive_failures == 0 && r.last_success_ms.is_some(),
            "last_success": r.last_success_ms.map(crate::catalog::format_ms),
            "last_error": r.last_error,
            "last_error_at": r.last_error_ms.map(crate::catalog::format_ms),
            "consecutive_failures": r.consecutive_failures,
        }),
    )
}
