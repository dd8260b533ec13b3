//! Health checks and the aggregate status (`GET /health`, heartbeats, `diag`).
//!
//! `down` (HTTP 503) only for what stops captures: the catalog or the disk. Anything
//! remote is at worst `degraded`: the kiosk works offline. No check here touches the
//! network: the remote checks combine what the sync worker last saw ([`crate::sync::Circuits`])
//! with the cached result of [`probe_loop`], a background task that probes each remote
//! every [`PROBE_INTERVAL`] with a [`PROBE_TIMEOUT`] bound. So `/health` answers in
//! milliseconds even when the network is a black hole.
//!
//! Figures other subsystems keep are read from the [`App`]: `app.sms_health` (credits,
//! last send) and `app.scheduler` (cleanup runs). The probe cache lives in
//! [`HealthState`], reached through [`state`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::catalog::format_ms;

/// A fixed date shortly before this build (2026-11-01T00:00:00Z), in Unix seconds. A system
/// clock earlier than this cannot be right (boards without an RTC boot in 1970 until NTP
/// answers): timestamps, retention and TLS would all be wrong, so the clock check reports
/// `unsynchronized`. A constant rather than a build script keeps builds reproducible; bump
/// it now and then when releasing.
pub const BUILD_EPOCH_S: i64 = 1_793_491_200;

/// How often the remotes are probed while they answer…
pub const PROBE_INTERVAL: Duration = Duration::from_secs(15);
/// …and while one of them does not (so "reachable again" shows quickly).
pub const PROBE_INTERVAL_FAILING: Duration = Duration::from_secs(5);
/// Longest a single probe may take; a black-holed remote counts as unreachable after it.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a database connection started by a probe may go on after the probe gave up.
const CONNECT_IN_BACKGROUND: Duration = Duration::from_secs(15);

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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------------------
// State fed by the probe loop and by other subsystems.

/// What the last probes of one remote saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProbeSnapshot {
    pub last_probe_ms: Option<i64>,
    /// Outcome of the last probe.
    pub last_ok: Option<bool>,
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    pub latency_ms: Option<f64>,
}

impl ProbeSnapshot {
    fn record(&mut self, now_ms: i64, latency: Duration, result: Result<(), String>) {
        self.last_probe_ms = Some(now_ms);
        self.latency_ms = Some(ms(latency));
        match result {
            Ok(()) => {
                self.last_ok = Some(true);
                self.last_success_ms = Some(now_ms);
            }
            Err(e) => {
                self.last_ok = Some(false);
                self.last_error = Some(e.chars().take(300).collect());
                self.last_error_ms = Some(now_ms);
            }
        }
    }
}

/// Everything health keeps between calls, per [`App`].
#[derive(Debug, Default)]
pub struct HealthState {
    remote_db: Mutex<ProbeSnapshot>,
    remote_storage: Mutex<ProbeSnapshot>,
}

impl HealthState {
    pub fn remote_db_probe(&self) -> ProbeSnapshot {
        lock(&self.remote_db).clone()
    }
    pub fn remote_storage_probe(&self) -> ProbeSnapshot {
        lock(&self.remote_storage).clone()
    }
}

type Registry = Vec<((usize, Instant), Arc<HealthState>)>;
static REGISTRY: Mutex<Registry> = Mutex::new(Vec::new());

/// The [`HealthState`] of `app` (created on first use).
///
/// Kept beside the [`App`] rather than in it, keyed by the App's address and start time
/// (unique per App), so this module needs no change to `App`. Bounded: a process runs one
/// daemon; tests running many Apps in one process keep the newest 64.
pub fn state(app: &App) -> Arc<HealthState> {
    let key = (app as *const App as usize, app.started);
    let mut reg = lock(&REGISTRY);
    if let Some((_, s)) = reg.iter().find(|(k, _)| *k == key) {
        return s.clone();
    }
    if reg.len() >= 64 {
        reg.remove(0);
    }
    let s = Arc::new(HealthState::default());
    reg.push((key, s.clone()));
    s
}

// ---------------------------------------------------------------------------------------
// The report.

pub async fn report(app: &App) -> Report {
    let hs = state(app);
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
            &app.scheduler.snapshot(),
            app.clock.now_ms(),
            app.started.elapsed(),
        ),
    );
    let sync = app.circuits.snapshot();
    checks.insert(
        "remote_db",
        remote_check(&sync.remote_db, &hs.remote_db_probe()),
    );
    checks.insert(
        "remote_storage",
        remote_check(&sync.remote_storage, &hs.remote_storage_probe()),
    );
    checks.insert("sms", sms(app, &app.sms_health.snapshot()));
    checks.insert("clock", clock(crate::catalog::now_ms()));
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

/// The catalog's path under the data directory.
pub fn catalog_path(data_dir: &Path) -> PathBuf {
    data_dir.join("catalog.sqlite3")
}

/// Opens the catalog file afresh, read-only, and reads its header, schema and the
/// captures table's last page. The daemon's own connections keep pages cached and their
/// file open, so they go on answering from memory when the file on disk is overwritten,
/// replaced or deleted; a fresh connection sees what a restart would see.
pub fn verify_catalog_file(path: &Path) -> Result<(), String> {
    use rusqlite::OpenFlags;
    // Never open the catalog file with std::fs here: closing any descriptor of a file
    // releases every POSIX lock this process holds on it, including SQLite's, and another
    // process could then checkpoint and delete the WAL under the daemon's feet (lost
    // commits — a test caught exactly that). Only SQLite touches the file.
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(1))
        .map_err(|e| e.to_string())?;
    let _: i64 = conn
        .query_row("PRAGMA schema_version", [], |r| r.get(0))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let _: Option<i64> = conn
        .query_row("SELECT MAX(seq) FROM captures", [], |r| r.get(0))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

async fn local_db(app: &App) -> Check {
    let t = Instant::now();
    let counts = app.catalog.read(crate::catalog::count_captures).await;
    let path = catalog_path(&app.config.data_dir);
    let file = tokio::task::spawn_blocking(move || verify_catalog_file(&path))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    let latency_ms = ms(t.elapsed());
    match (counts, file) {
        (Ok((total, unsynced)), Ok(())) => check(
            Status::Ok,
            json!({"captures": total, "unsynced": unsynced, "latency_ms": latency_ms}),
        ),
        (Err(e), _) => check(
            Status::Down,
            json!({"error": e.to_string(), "latency_ms": latency_ms}),
        ),
        (_, Err(e)) => check(
            Status::Down,
            json!({"error": format!("catalog file unreadable: {e}"), "latency_ms": latency_ms}),
        ),
    }
}

fn disk(app: &App) -> Check {
    disk_check(app.uploads.dir(), app.disk_reserve_bytes())
}

/// Free space of the file system holding `dir` against `reserve`.
pub fn disk_check(dir: &Path, reserve: u64) -> Check {
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
            let (status, message) = if free < reserve {
                (
                    Status::Down,
                    Some("below the reserve: captures are refused (507)"),
                )
            } else if free < reserve.saturating_mul(2) {
                (
                    Status::Degraded,
                    Some("less than twice the reserve left: free some space soon"),
                )
            } else {
                (Status::Ok, None)
            };
            check(
                status,
                json!({"free_bytes": free, "total_bytes": total, "free_percent": free_percent,
                       "reserve_bytes": reserve, "message": message}),
            )
        }
        (Err(e), _) | (_, Err(e)) => check(Status::Down, json!({"error": e.to_string()})),
    }
}

async fn outbox(app: &App) -> Check {
    let ob = app.outbox.clone();
    let stats = tokio::task::spawn_blocking(move || ob.stats().map_err(|e| e.to_string()))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    match stats {
        Ok(s) => outbox_check(&s, app.clock.now_ms()),
        Err(e) => check(Status::Degraded, json!({"error": e})),
    }
}

/// The outbox figures; dead letters need a human, so they degrade.
pub fn outbox_check(s: &crate::outbox::OutboxStats, now_ms: i64) -> Check {
    let oldest_age_s = s.oldest_created_ms.map(|c| (now_ms - c).max(0) / 1000);
    let status = if s.dead > 0 {
        Status::Degraded
    } else {
        Status::Ok
    };
    check(
        status,
        json!({"pending": s.pending, "in_progress": s.leased, "dead": s.dead,
               "oldest_pending_age_s": oldest_age_s,
               "oldest_pending_since": s.oldest_created_ms.map(format_ms),
               "by_kind": s.by_kind}),
    )
}

/// The scheduler (retention cleanup and its timer), from [`crate::scheduler::SchedulerState`].
/// Degraded when the last cleanup failed, when the loop is not running (after a short
/// grace at start) or when the next cleanup is more than an hour overdue (a stuck loop).
fn scheduler(s: &crate::scheduler::SchedulerSnapshot, now_ms: i64, uptime: Duration) -> Check {
    let overdue = s.next_cleanup_ms.is_some_and(|t| t < now_ms - 3_600_000);
    let not_running = !s.running && uptime > Duration::from_secs(5);
    let message = if s.last_cleanup_error.is_some() {
        Some("the last retention cleanup failed: see last_cleanup_error")
    } else if not_running {
        Some("the scheduler is not running: retention cleanup will not happen")
    } else if overdue {
        Some("the retention cleanup is overdue")
    } else {
        None
    };
    check(
        if message.is_some() {
            Status::Degraded
        } else {
            Status::Ok
        },
        json!({
            "running": s.running || !not_running,
            "next_runs": {"cleanup": s.next_cleanup_ms.map(format_ms)},
            "next_cleanup": s.next_cleanup_ms.map(format_ms),
            "last_cleanup": s.last_cleanup_ms.map(format_ms),
            "last_cleanup_removed": s.last_cleanup_removed,
            "last_cleanup_error": s.last_cleanup_error,
            "message": message,
        }),
    )
}

/// One remote: what the sync worker saw, merged with the probe's cache.
///
/// Degraded when the worker's last attempts failed (that includes a server that answers
/// but refuses, which a probe cannot see), or when the last probe failed after the
/// worker's last success. `reachable` is the newest observation of either.
fn remote_check(w: &crate::sync::RemoteSnapshot, p: &ProbeSnapshot) -> Check {
    if !w.configured {
        return check(
            Status::Ok,
            json!({"configured": false, "message": "not configured"}),
        );
    }
    let worker_failing = w.consecutive_failures > 0 && w.last_error.is_some();
    let probe_failing =
        p.last_ok == Some(false) && p.last_error_ms > w.last_success_ms.or(Some(i64::MIN));
    let status = if worker_failing || probe_failing {
        Status::Degraded
    } else {
        Status::Ok
    };
    // Newest observation wins.
    let mut seen: Vec<(i64, bool)> = Vec::new();
    if let (Some(t), Some(ok)) = (p.last_probe_ms, p.last_ok) {
        seen.push((t, ok));
    }
    if let Some(t) = w.last_success_ms {
        seen.push((t, true));
    }
    if worker_failing {
        if let Some(t) = w.last_error_ms {
            seen.push((t, false));
        }
    }
    let reachable = seen.iter().max_by_key(|(t, _)| *t).map(|(_, ok)| *ok);
    let last_success = w.last_success_ms.max(p.last_success_ms);
    let (last_error, last_error_ms) = if p.last_error_ms > w.last_error_ms {
        (p.last_error.clone(), p.last_error_ms)
    } else {
        (w.last_error.clone(), w.last_error_ms)
    };
    check(
        status,
        json!({
            "configured": true,
            "reachable": reachable,
            "last_success": last_success.map(format_ms),
            "last_sync_success": w.last_success_ms.map(format_ms),
            "last_error": last_error,
            "last_error_at": last_error_ms.map(format_ms),
            "consecutive_failures": w.consecutive_failures,
            "last_probe_at": p.last_probe_ms.map(format_ms),
            "probe_latency_ms": p.latency_ms,
        }),
    )
}

fn sms(app: &App, s: &crate::sms::SmsHealthState) -> Check {
    if !app.config.sms_configured() {
        return check(
            Status::Ok,
            json!({"configured": false, "message": "not configured"}),
        );
    }
    let settings = app.settings.get();
    let low = settings.sms_credits_low;
    let (status, message) = match s.credits_left {
        Some(c) if c <= 0.0 => (
            Status::Degraded,
            Some("no SMS credits left: buy credits in the OVH manager"),
        ),
        Some(c) if c < low => (
            Status::Degraded,
            Some("SMS credits are low: buy credits in the OVH manager"),
        ),
        _ => (Status::Ok, None),
    };
    check(
        status,
        json!({
            "configured": true,
            "enabled": settings.sms_enabled,
            "credits_left": s.credits_left,
            "credits_low": low,
            "credits_checked_at": s.credits_checked_ms.map(format_ms),
            "last_sent": s.last_sent_ms.map(format_ms),
            "last_error": s.last_error,
            "last_error_at": s.last_error_ms.map(format_ms),
            "message": message,
        }),
    )
}

/// The system clock against [`BUILD_EPOCH_S`].
pub fn clock(now_ms: i64) -> Check {
    if now_ms / 1000 < BUILD_EPOCH_S {
        check(
            Status::Degraded,
            json!({
                "synchronized": false,
                "state": "unsynchronized",
                "system_time": format_ms(now_ms),
                "message": "the system clock is earlier than this build: check NTP (timedatectl) or the RTC battery",
            }),
        )
    } else {
        check(
            Status::Ok,
            json!({"synchronized": true, "state": "ok", "system_time": format_ms(now_ms)}),
        )
    }
}

// ---------------------------------------------------------------------------------------
// The probe loop.

async fn probe_db(db: &crate::sync::remote_db::RemoteDb) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + PROBE_TIMEOUT;
    // Connecting (TCP, TLS, authentication, migration check) may take longer than the
    // probe's bound on a slow mobile link; it goes on in its own task, bounded by
    // CONNECT_IN_BACKGROUND, so the next probe (and the sync worker) finds the connection
    // made instead of starting over every time.
    let connecting = {
        let db = db.clone();
        tokio::spawn(async move { tokio::time::timeout(CONNECT_IN_BACKGROUND, db.client()).await })
    };
    let client = match tokio::time::timeout_at(deadline, connecting).await {
        Ok(Ok(Ok(Ok(c)))) => c,
        Ok(Ok(Ok(Err(e)))) => return Err(e.to_string()),
        Ok(Ok(Err(_))) => return Err("remote database: connection timed out".into()),
        Ok(Err(e)) => return Err(format!("remote database: probe task failed: {e}")),
        Err(_) => {
            return Err(format!(
                "remote database: no answer within {} s (probe)",
                PROBE_TIMEOUT.as_secs()
            ))
        }
    };
    let res = tokio::time::timeout_at(deadline, client.simple_query("SELECT 1")).await;
    let err = match res {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => format!("remote database: SELECT 1 failed: {e}"),
        Err(_) => format!(
            "remote database: SELECT 1 got no answer within {} s (probe)",
            PROBE_TIMEOUT.as_secs()
        ),
    };
    // A broken connection: make the next user reconnect. Detached: `reset` waits for the
    // connection lock, which a stalled connect elsewhere may hold for a while.
    let db = db.clone();
    tokio::spawn(async move { db.reset().await });
    Err(err)
}

async fn probe_files(files: &crate::sync::RemoteFiles) -> Result<(), String> {
    match tokio::time::timeout(PROBE_TIMEOUT, files.probe()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "remote storage: no answer within {} s (probe)",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

async fn timed<F: std::future::Future<Output = Result<(), String>>>(
    f: Option<F>,
) -> Option<(Duration, Result<(), String>)> {
    let f = f?;
    let t = Instant::now();
    let r = f.await;
    Some((t.elapsed(), r))
}

/// Probes the configured remotes until `shutdown`, caching the outcome for [`report`].
/// Returns at once when no remote is configured.
pub async fn probe_loop(app: Arc<App>, shutdown: CancellationToken) {
    if app.remote_db.is_none() && app.remote_files.is_none() {
        return;
    }
    let hs = state(&app);
    loop {
        let db = timed(app.remote_db.as_ref().map(probe_db));
        let files = timed(app.remote_files.as_ref().map(probe_files));
        let (db, files) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = async { tokio::join!(db, files) } => r,
        };
        let now = app.clock.now_ms();
        let mut failing = false;
        for (slot, name, outcome) in [
            (&hs.remote_db, "remote database", db),
            (&hs.remote_storage, "remote storage", files),
        ] {
            let Some((took, res)) = outcome else { continue };
            let mut g = lock(slot);
            let was_ok = g.last_ok;
            match &res {
                Ok(()) if was_ok == Some(false) => {
                    tracing::info!("health probe: {name} reachable again")
                }
                Err(e) if was_ok != Some(false) => {
                    tracing::warn!("health probe: {name} unreachable ({e})")
                }
                _ => {}
            }
            failing |= res.is_err();
            g.record(now, took, res);
        }
        let wait = if failing {
            PROBE_INTERVAL_FAILING
        } else {
            PROBE_INTERVAL
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::sync::RemoteSnapshot;

    fn configured() -> RemoteSnapshot {
        RemoteSnapshot {
            configured: true,
            ..Default::default()
        }
    }

    #[test]
    fn build_epoch_is_2026_11_01() {
        assert_eq!(format_ms(BUILD_EPOCH_S * 1000), "2026-11-01T00:00:00.000Z");
        assert_eq!(clock(0).status, Status::Degraded);
        assert_eq!(clock(0).details["state"], "unsynchronized");
        assert_eq!(clock((BUILD_EPOCH_S + 86_400) * 1000).status, Status::Ok);
    }

    #[test]
    fn remote_unknown_is_ok_probe_failure_degrades_until_a_newer_success() {
        let w = configured();
        let c = remote_check(&w, &ProbeSnapshot::default());
        assert_eq!(c.status, Status::Ok);
        assert_eq!(c.details["reachable"], Value::Null);

        let mut p = ProbeSnapshot::default();
        p.record(
            1_000,
            Duration::from_millis(5),
            Err("cannot connect".into()),
        );
        let c = remote_check(&w, &p);
        assert_eq!(c.status, Status::Degraded);
        assert_eq!(c.details["reachable"], false);
        assert_eq!(c.details["last_error"], "cannot connect");

        // The worker synced after the failed probe: the remote is back.
        let w2 = RemoteSnapshot {
            last_success_ms: Some(2_000),
            ..configured()
        };
        let c = remote_check(&w2, &p);
        assert_eq!(c.status, Status::Ok);
        assert_eq!(c.details["reachable"], true);
    }

    #[test]
    fn worker_failure_degrades_even_when_the_probe_answers() {
        // A WebDAV server answering 403: reachable, but nothing syncs.
        let w = RemoteSnapshot {
            last_error: Some("PUT answered 403".into()),
            last_error_ms: Some(1_000),
            consecutive_failures: 2,
            ..configured()
        };
        let mut p = ProbeSnapshot::default();
        p.record(2_000, Duration::from_millis(5), Ok(()));
        let c = remote_check(&w, &p);
        assert_eq!(c.status, Status::Degraded);
        assert_eq!(c.details["last_error"], "PUT answered 403");
    }

    #[test]
    fn outbox_dead_letters_degrade() {
        let mut s = crate::outbox::OutboxStats {
            pending: 3,
            oldest_created_ms: Some(10_000),
            ..Default::default()
        };
        let c = outbox_check(&s, 70_000);
        assert_eq!(c.status, Status::Ok);
        assert_eq!(c.details["oldest_pending_age_s"], 60);
        s.dead = 1;
        assert_eq!(outbox_check(&s, 70_000).status, Status::Degraded);
    }

    #[test]
    fn scheduler_states() {
        let mut s = crate::scheduler::SchedulerSnapshot {
            running: true,
            next_cleanup_ms: Some(10_000_000),
            ..Default::default()
        };
        let up = Duration::from_secs(60);
        assert_eq!(scheduler(&s, 9_000_000, up).status, Status::Ok);
        assert_eq!(scheduler(&s, 9_000_000, up).details["running"], true);
        // Overdue by more than an hour: stuck.
        assert_eq!(scheduler(&s, 14_000_000, up).status, Status::Degraded);
        s.last_cleanup_error = Some("disk I/O error".into());
        assert_eq!(scheduler(&s, 9_000_000, up).status, Status::Degraded);
        s.last_cleanup_error = None;
        s.running = false;
        assert_eq!(
            scheduler(&s, 9_000_000, Duration::from_secs(1)).status,
            Status::Ok
        );
        assert_eq!(scheduler(&s, 9_000_000, up).status, Status::Degraded);
    }
}
