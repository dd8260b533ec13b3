//! The checks of the health report, one function each; those that only read figures are
//! plain functions of them, unit-tested below.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::probe::ProbeSnapshot;
use super::{check, ms, Check, Status, BUILD_EPOCH_S};
use crate::app::App;
use crate::catalog::{format_ms, SyncScope};
use crate::clock::Stopwatch;

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

pub(super) async fn local_db(app: &App) -> Check {
    let t = Stopwatch::start();
    let counts = app.catalog.read(crate::catalog::count_captures).await;
    let path = catalog_path(&app.config.data_dir);
    let file = tokio::task::spawn_blocking(move || verify_catalog_file(&path))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    let latency_ms = ms(t.elapsed());
    match (counts, file) {
        (Ok((total, unmarked)), Ok(())) => check(Status::Ok, {
            let mut v = local_db_counts(app.sync_scope(), total, unmarked);
            v.insert("latency_ms".into(), json!(latency_ms));
            Value::Object(v)
        }),
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

/// The capture figures of `local_db` (and of diag's catalog summary), from
/// [`crate::catalog::count_captures`]: `unsynced` is the sync backlog, and a kiosk with no
/// remote says so in `sync` rather than showing a backlog that never drains.
pub fn local_db_counts(scope: SyncScope, total: i64, unmarked: i64) -> Map<String, Value> {
    let mut v = Map::new();
    v.insert("captures".into(), json!(total));
    v.insert("unsynced".into(), json!(scope.backlog(unmarked)));
    if let Some(label) = scope.label() {
        v.insert("sync".into(), json!(label));
    }
    v
}

pub(super) fn disk(app: &App) -> Check {
    disk_check(app.uploads.dir(), app.disk_reserve_bytes())
}

/// Free space of the file system holding `dir` against `reserve`.
pub fn disk_check(dir: &Path, reserve: u64) -> Check {
    match crate::storage::space(dir) {
        Ok(Some(space)) => {
            let free = space.free;
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
                json!({"free_bytes": free, "total_bytes": space.total,
                       "free_percent": space.free_percent(), "size_known": true,
                       "reserve_bytes": reserve, "message": message}),
            )
        }
        // Some FUSE file systems report no size: captures are accepted (nothing to check
        // them against), and staff are told why no figure is shown.
        Ok(None) => check(
            Status::Ok,
            json!({"free_bytes": null, "total_bytes": null, "free_percent": null,
                   "size_known": false, "reserve_bytes": reserve,
                   "message": "the file system reports no size: free space unknown, the reserve is not enforced"}),
        ),
        Err(e) => check(Status::Down, json!({"error": e.to_string()})),
    }
}

pub(super) async fn outbox(app: &App) -> Check {
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

/// Whether the cleanup worker is there and has not stopped.
pub(super) fn cleanup_running(workers: &crate::workers::Workers) -> bool {
    use crate::workers::WorkerState;
    workers
        .get(crate::scheduler::CLEANUP)
        .is_some_and(|w| !matches!(w.state, WorkerState::Stopped | WorkerState::Done))
}

/// The scheduler (retention cleanup and its timer), from the `cleanup` worker.
/// Degraded when the last cleanup failed, when the loop is not running (after a short
/// grace at start) or when the next cleanup is more than an hour overdue (a stuck loop).
pub(super) fn scheduler(
    s: &crate::scheduler::SchedulerSnapshot,
    running: bool,
    now_ms: i64,
    uptime: Duration,
) -> Check {
    let overdue = s.next_cleanup_ms.is_some_and(|t| t < now_ms - 3_600_000);
    let not_running = !running && uptime > Duration::from_secs(5);
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
            "running": running || !not_running,
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
pub(crate) fn remote_check(w: &crate::sync::RemoteSnapshot, p: &ProbeSnapshot) -> Check {
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

pub(super) fn sms(app: &App, s: &crate::sms::SmsHealthState) -> Check {
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

/// Every background worker, by name: degraded while one is failed (its last round
/// returned an error or panicked; it is retried with backoff and shown here meanwhile).
pub(super) fn workers(list: &[crate::workers::WorkerInfo]) -> Check {
    use crate::workers::WorkerState;
    let failed: Vec<&str> = list
        .iter()
        .filter(|w| w.state == WorkerState::Failed)
        .map(|w| w.name)
        .collect();
    let all: serde_json::Map<String, Value> = list
        .iter()
        .map(|w| {
            let mut v = json!({
                "state": w.state,
                "runs": w.runs,
                "last_run": w.last_run_ms.map(format_ms),
                "last_error": w.last_error,
                "last_error_at": w.last_error_ms.map(format_ms),
                "consecutive_failures": w.consecutive_failures,
                "panics": w.panics,
                "next_wake": w.next_wake_ms.map(format_ms),
            });
            if let Some(d) = &w.details {
                v["details"] = d.clone();
            }
            (w.name.to_string(), v)
        })
        .collect();
    let message = (!failed.is_empty()).then(|| {
        format!(
            "failing: {} (see each worker's last_error)",
            failed.join(", ")
        )
    });
    check(
        if failed.is_empty() {
            Status::Ok
        } else {
            Status::Degraded
        },
        json!({"workers": all, "failed": failed, "message": message}),
    )
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
            next_cleanup_ms: Some(10_000_000),
            ..Default::default()
        };
        let up = Duration::from_secs(60);
        assert_eq!(scheduler(&s, true, 9_000_000, up).status, Status::Ok);
        assert_eq!(scheduler(&s, true, 9_000_000, up).details["running"], true);
        // Overdue by more than an hour: stuck.
        assert_eq!(scheduler(&s, true, 14_000_000, up).status, Status::Degraded);
        s.last_cleanup_error = Some("disk I/O error".into());
        assert_eq!(scheduler(&s, true, 9_000_000, up).status, Status::Degraded);
        s.last_cleanup_error = None;
        assert_eq!(
            scheduler(&s, false, 9_000_000, Duration::from_secs(1)).status,
            Status::Ok
        );
        assert_eq!(scheduler(&s, false, 9_000_000, up).status, Status::Degraded);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_worker_degrades_the_workers_check() {
        use crate::workers::{self, Next, Worker, Workers};
        struct Broken;
        impl Worker for Broken {
            fn name(&self) -> &'static str {
                "broken"
            }
            async fn work(&mut self) -> Result<Next, String> {
                Err("outbox claim failed".into())
            }
        }
        let registry = Workers::new(std::sync::Arc::new(crate::clock::SystemClock));
        let tracker = tokio_util::task::TaskTracker::new();
        let stop = tokio_util::sync::CancellationToken::new();
        assert_eq!(workers(&registry.list()).status, Status::Ok);
        workers::spawn(&tracker, &registry, Broken, stop.clone());
        tokio::time::sleep(Duration::from_millis(10)).await;
        let c = workers(&registry.list());
        assert_eq!(c.status, Status::Degraded);
        assert_eq!(c.details["failed"], json!(["broken"]));
        assert_eq!(c.details["workers"]["broken"]["state"], "failed");
        assert_eq!(
            c.details["workers"]["broken"]["last_error"],
            "outbox claim failed"
        );
        stop.cancel();
        tracker.close();
        tracker.wait().await;
    }
}
