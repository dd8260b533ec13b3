//! Health checks and the aggregate status (`GET /health`, heartbeats, `diag`).
//!
//! `down` (HTTP 503) only for what stops captures: the catalog or the disk. Anything
//! remote is at worst `degraded`: the kiosk works offline. No check here touches the
//! network: the remote checks combine what the sync worker last saw with the cached result
//! of the [`probe::ProbeWorker`], which probes each remote every [`PROBE_INTERVAL`] with a
//! [`PROBE_TIMEOUT`] bound. So `/health` answers in milliseconds even when the network is
//! a black hole.
//!
//! Figures other subsystems keep are read from the [`App`]'s handles: the SMS figures
//! (credits, last send), the workers registry (cleanup runs, every loop's state) and the
//! probe cache ([`probe::Probes`]).
//!
//! - [`checks`]: one function per check, pure where it can be (unit-tested);
//! - [`probe`]: the probe cache and its worker.

pub mod checks;
pub mod probe;

pub use checks::{
    catalog_path, clock, disk_check, local_db_counts, outbox_check, verify_catalog_file,
};

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::app::App;
use crate::catalog::format_ms;
use checks::*;

/// The build date the clock check compares against (see [`crate::clock::BUILD_EPOCH_MS`]).
pub use crate::clock::BUILD_EPOCH_S;

/// How often the remotes are probed while they answer…
pub const PROBE_INTERVAL: Duration = Duration::from_secs(15);
/// …and while one of them does not (so "reachable again" shows quickly).
pub const PROBE_INTERVAL_FAILING: Duration = Duration::from_secs(5);
/// Longest a single probe may take; a black-holed remote counts as unreachable after it.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Degraded,
    Down,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Down => "down",
        }
    }
}

/// One check: its status and its own figures next to it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Check {
    pub status: Status,
    #[serde(flatten)]
    #[schema(ignore)]
    pub details: Value,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub status: Status,
    pub version: &'static str,
    pub kiosk_id: String,
    pub uptime_s: u64,
    /// When this report was made (the kiosk's clock, see the `clock` check).
    pub generated_at: String,
    pub checks: BTreeMap<&'static str, Check>,
}

fn check(status: Status, details: Value) -> Check {
    Check { status, details }
}

// ---------------------------------------------------------------------------------------
// The report.

pub async fn report(app: &App) -> Report {
    let mut checks = BTreeMap::new();
    // The outbox is read before the catalog: the sync worker marks a capture synced in
    // the catalog before it acknowledges the job, so read in this order a report never
    // shows an empty backlog beside captures that were synced after the catalog count.
    checks.insert("outbox", outbox(app).await);
    checks.insert("local_db", local_db(app).await);
    checks.insert("disk", disk(app));
    checks.insert(
        "scheduler",
        scheduler(
            &crate::scheduler::snapshot(&app.workers),
            cleanup_running(&app.workers),
            app.clock.now_ms(),
            app.started.elapsed(),
        ),
    );
    let sync = app.remotes.circuits.snapshot();
    checks.insert(
        "remote_db",
        remote_check(&sync.remote_db, &app.probes.remote_db()),
    );
    checks.insert(
        "remote_storage",
        remote_check(&sync.remote_storage, &app.probes.remote_storage()),
    );
    checks.insert("sms", sms(app, &app.sms.health.snapshot()));
    checks.insert("clock", clock(crate::clock::system_now_ms()));
    checks.insert("workers", workers(&app.workers.list()));
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
        generated_at: format_ms(app.clock.now_ms()),
        checks,
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}
