//! One scrape: the registry's counters and histograms, and the gauges read now from the
//! [`App`]'s handles — the same sources `/health` reads (its `checks` functions where it
//! has one), so the two never disagree. Nothing here touches the network: the remotes'
//! reachability is the probe cache's, like `/health`'s.

use super::encode::{Encoder, Kind};
use super::{Snapshot, REMOTE_DB, REMOTE_STORAGE};
use crate::app::App;
use crate::outbox::JobKind;
use crate::workers::WorkerState;

const P: &str = "selfie_kiosk_";

/// Every state a worker can be in (`worker_state` shows each, 1 for the current one).
const WORKER_STATES: [(WorkerState, &str); 6] = [
    (WorkerState::Starting, "starting"),
    (WorkerState::Busy, "busy"),
    (WorkerState::Idle, "idle"),
    (WorkerState::Failed, "failed"),
    (WorkerState::Done, "done"),
    (WorkerState::Stopped, "stopped"),
];

const JOB_KINDS: [JobKind; 5] = [
    JobKind::Sync,
    JobKind::Sms,
    JobKind::RemoteDelete,
    JobKind::SmsLog,
    JobKind::EventSync,
];

/// The commit the binary was built from, when the build said (`SELFIE_KIOSK_COMMIT`).
pub const COMMIT: &str = match option_env!("SELFIE_KIOSK_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

/// The text of one scrape.
pub async fn render(app: &App) -> String {
    let mut e = Encoder::with_capacity(16 * 1024);
    let now_ms = app.clock.now_ms();
    build(&mut e, app);
    registry(&mut e, &app.metrics.snapshot());
    // The outbox before the catalog, as in `/health` (see `health::report`).
    outbox(&mut e, app, now_ms).await;
    catalog(&mut e, app).await;
    remotes(&mut e, app);
    sms(&mut e, app);
    disk(&mut e, app);
    workers(&mut e, app);
    e.finish()
}

fn name(n: &str) -> String {
    format!("{P}{n}")
}

fn build(e: &mut Encoder, app: &App) {
    let n = name("build_info");
    e.family(
        &n,
        Kind::Gauge,
        "The running build: always 1, its version and commit as labels.",
    );
    e.sample(
        &n,
        &[("version", env!("CARGO_PKG_VERSION")), ("commit", COMMIT)],
        1u64,
    );
    e.single(
        &name("uptime_seconds"),
        Kind::Gauge,
        "Seconds since the daemon started.",
        app.started.elapsed().as_secs_f64(),
    );
    let synced = crate::health::clock(crate::clock::system_now_ms()).details["synchronized"]
        .as_bool()
        .unwrap_or(false);
    e.single(
        &name("clock_synchronized"),
        Kind::Gauge,
        "1 when the system clock is sane (not earlier than this build), as /health's clock check.",
        synced,
    );
}

fn registry(e: &mut Encoder, s: &Snapshot) {
    let n = name("captures_total");
    e.family(
        &n,
        Kind::Counter,
        "Capture requests (batch items included) by result: created, repeated, or the error code answered.",
    );
    for (result, v) in &s.captures {
        e.sample(&n, &[("result", result)], *v);
    }
    let n = name("capture_duration_seconds");
    e.family(&n, Kind::Histogram, "Time to answer POST /api/capture.");
    e.histogram(&n, &[], &s.capture_seconds);

    let n = name("http_requests_total");
    e.family(
        &n,
        Kind::Counter,
        "HTTP requests by method, route template (unmatched: no route) and status.",
    );
    for (route, stats) in &s.http {
        for ((method, status), v) in &stats.requests {
            let status = status.to_string();
            e.sample(
                &n,
                &[("method", method), ("route", route), ("status", &status)],
                *v,
            );
        }
    }
    let n = name("http_request_duration_seconds");
    e.family(
        &n,
        Kind::Histogram,
        "HTTP request durations, to the last byte of the answer, by method and route template.",
    );
    for (route, stats) in &s.http {
        for (method, h) in &stats.seconds {
            e.histogram(&n, &[("method", method), ("route", route)], h);
        }
    }

    let n = name("uploads_total");
    e.family(
        &n,
        Kind::Counter,
        "Attempts to copy captures to a remote (remote_storage: the file, remote_db: the row), by result.",
    );
    for ((remote, result), v) in &s.uploads {
        e.sample(&n, &[("remote", remote), ("result", result)], *v);
    }
    let n = name("sms_attempts_total");
    e.family(
        &n,
        Kind::Counter,
        "SMS send attempts at OVH by result (retry: a transient failure, sent again later).",
    );
    for (result, v) in &s.sms {
        e.sample(&n, &[("result", result)], *v);
    }
}

async fn outbox(e: &mut Encoder, app: &App, now_ms: i64) {
    let ob = app.outbox.clone();
    let stats = match tokio::task::spawn_blocking(move || ob.stats()).await {
        Ok(Ok(s)) => s,
        Ok(Err(err)) => return tracing::debug!("metrics: outbox stats failed: {err}"),
        Err(err) => return tracing::debug!("metrics: outbox stats task failed: {err}"),
    };
    let n = name("outbox_jobs");
    e.family(&n, Kind::Gauge, "Jobs waiting in the outbox, by kind.");
    // Every kind from zero, so a dashboard's series exist before the first job.
    let mut by_kind: std::collections::BTreeMap<&str, usize> =
        JOB_KINDS.iter().map(|k| (k.as_str(), 0)).collect();
    for (k, v) in &stats.by_kind {
        by_kind.insert(k, *v);
    }
    for (k, v) in by_kind {
        e.sample(&n, &[("kind", k)], v as u64);
    }
    e.single(
        &name("outbox_jobs_in_progress"),
        Kind::Gauge,
        "Outbox jobs claimed by the job runner right now.",
        stats.leased as u64,
    );
    e.single(
        &name("outbox_dead_letters"),
        Kind::Gauge,
        "Jobs that gave up for good and wait for a person (see /admin/diag).",
        stats.dead as u64,
    );
    let age = stats
        .oldest_created_ms
        .map_or(0.0, |c| (now_ms - c).max(0) as f64 / 1000.0);
    e.single(
        &name("outbox_oldest_pending_age_seconds"),
        Kind::Gauge,
        "Age of the oldest job waiting in the outbox (0 when none waits).",
        age,
    );
}

async fn catalog(e: &mut Encoder, app: &App) {
    let counts = app
        .catalog
        .read(|c| {
            Ok((
                crate::catalog::count_captures(c)?,
                crate::catalog::sms_by_status(c)?,
            ))
        })
        .await;
    let ((total, unmarked), sms) = match counts {
        Ok(v) => v,
        Err(err) => return tracing::debug!("metrics: catalog counts failed: {err}"),
    };
    e.single(
        &name("captures_stored"),
        Kind::Gauge,
        "Captures kept on the kiosk (until retention removes them).",
        total,
    );
    e.single(
        &name("sync_backlog_captures"),
        Kind::Gauge,
        "Captures not yet copied to every configured remote (0 without remotes).",
        app.sync_scope().backlog(unmarked),
    );
    let n = name("sms");
    e.family(
        &n,
        Kind::Gauge,
        "SMS requests kept on the kiosk, by status.",
    );
    for (status, v) in &sms {
        e.sample(&n, &[("status", status)], *v);
    }
}

fn remotes(e: &mut Encoder, app: &App) {
    let sync = app.remotes.circuits.snapshot();
    let list = [
        (REMOTE_DB, &sync.remote_db, app.probes.remote_db()),
        (
            REMOTE_STORAGE,
            &sync.remote_storage,
            app.probes.remote_storage(),
        ),
    ];
    let n = name("remote_configured");
    e.family(&n, Kind::Gauge, "1 when the remote is configured.");
    for (remote, w, _) in &list {
        e.sample(&n, &[("remote", remote)], w.configured);
    }
    let n = name("remote_reachable");
    e.family(
        &n,
        Kind::Gauge,
        "1 when the newest observation of a configured remote (probe or sync) succeeded; absent until one is made.",
    );
    for (remote, w, p) in &list {
        let check = crate::health::checks::remote_check(w, p);
        if let Some(ok) = check.details["reachable"].as_bool() {
            e.sample(&n, &[("remote", remote)], ok);
        }
    }
}

fn sms(e: &mut Encoder, app: &App) {
    e.single(
        &name("sms_configured"),
        Kind::Gauge,
        "1 when SMS sending is configured (OVH credentials and PUBLIC_BASE_URL).",
        app.config.sms_configured(),
    );
    if let Some(c) = app.sms.health.snapshot().credits_left {
        e.single(
            &name("sms_credits_left"),
            Kind::Gauge,
            "SMS credits left at OVH, as last checked.",
            c,
        );
    }
}

fn disk(e: &mut Encoder, app: &App) {
    let dir = app.uploads.dir();
    // A file system that reports no size has no figure to show (absent, not zero).
    if let Ok(Some(space)) = crate::storage::space(dir) {
        e.single(
            &name("disk_free_bytes"),
            Kind::Gauge,
            "Free bytes on the file system of the uploads directory.",
            space.free,
        );
        e.single(
            &name("disk_total_bytes"),
            Kind::Gauge,
            "Size of the file system of the uploads directory.",
            space.total,
        );
    }
    e.single(
        &name("disk_reserve_bytes"),
        Kind::Gauge,
        "Free space kept in reserve: below it captures are refused (507).",
        app.disk_reserve_bytes(),
    );
}

fn workers(e: &mut Encoder, app: &App) {
    let list = app.workers.list();
    let n = name("worker_state");
    e.family(
        &n,
        Kind::Gauge,
        "Each background worker's state: 1 for the state it is in, 0 for the others.",
    );
    for w in &list {
        for (state, label) in WORKER_STATES {
            e.sample(
                &n,
                &[("worker", w.name), ("state", label)],
                w.state == state,
            );
        }
    }
    let n = name("worker_runs_total");
    e.family(
        &n,
        Kind::Counter,
        "Rounds each worker has completed (successfully or not).",
    );
    for w in &list {
        e.sample(&n, &[("worker", w.name)], w.runs);
    }
    let n = name("worker_consecutive_failures");
    e.family(
        &n,
        Kind::Gauge,
        "Failed rounds in a row of each worker (0 once one succeeds).",
    );
    for w in &list {
        e.sample(&n, &[("worker", w.name)], u64::from(w.consecutive_failures));
    }
    let n = name("worker_last_run_timestamp_seconds");
    e.family(
        &n,
        Kind::Gauge,
        "When each worker last finished a round (Unix time); absent before its first.",
    );
    for w in &list {
        if let Some(ms) = w.last_run_ms {
            e.sample(&n, &[("worker", w.name)], ms as f64 / 1000.0);
        }
    }
}
