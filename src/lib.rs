//! selfie-kiosk: the backend of an autonomous selfie kiosk, in one daemon.
//!
//! It receives photos from the touchscreen app over localhost HTTP, keeps them durably on
//! the kiosk (SQLite catalog + files), copies them to the company's VPS (PostgreSQL rows +
//! WebDAV files) whenever the network is there, texts guests a link through OVH, and
//! deletes everything after the retention period. It works offline and survives power
//! cuts: a `201` for a capture means the photo is on disk for good.
//!
//! # Layout
//!
//! | module | job |
//! | --- | --- |
//! | [`config`] | environment / `.env` → validated [`config::Config`], secrets redacted |
//! | [`api`] | axum router, one file per resource, JSON errors, the server loop and its timeouts |
//! | [`capture`] | the capture path: validate → durable file → catalog row → outbox job |
//! | [`buffers`] | photo-sized buffers reused across captures (bounded, trimmed when idle) |
//! | [`catalog`] | SQLite (WAL, `synchronous=FULL`), migrations, typed queries — the truth |
//! | [`storage`] | durable file writes, free space, image header validation, PNG → JPEG |
//! | [`outbox`] | sled job queue: push, claim with lease, backoff, dead letter — the schedule |
//! | [`jobs`] | the outbox job runner (the `jobs` worker) and the outcome protocol its handlers answer in |
//! | [`sync`] | sync and remote-delete handlers, remote circuits, WebDAV and S3 uploads, remote PostgreSQL and its migrations |
//! | [`sms`] | SMS requests and abuse limits, the sending job, status enums and health; OVH client (signing, time delta); phone numbers |
//! | [`settings`] | run-time settings (`/admin/config`), SMS segment counting |
//! | [`scheduler`], [`cleanup`] | recurring tasks (timer loop), retention, erasure, clock fix-up |
//! | [`health`] | `/health` checks and the aggregate status, the cached remote probes |
//! | [`heartbeat`], [`fleet`] | health reports into the remote database; `selfie-kiosk fleet` |
//! | [`diag`] | `selfie-kiosk diag`: the technicians' bundle (and `GET /admin/diag`) |
//! | [`export`] | the Excel export: chunked catalog reads → constant-memory workbook → streamed file |
//! | [`startup`] | opening stores, reconciling files with rows, rebuilding the outbox |
//! | [`systemd`] | sd_notify: READY, WATCHDOG, STOPPING |
//! | [`clock`], [`ids`] | injected time (and the "clock not set yet" rule), ids and randomness |
//! | [`app`], [`logging`] | the shared state; journald/stderr logging, run-time log level, recent-log buffer |

pub mod api;
pub mod app;
pub mod buffers;
pub mod capture;
pub mod catalog;
pub mod cleanup;
pub mod clock;
pub mod config;
pub mod diag;
pub mod export;
pub mod fleet;
pub mod health;
pub mod heartbeat;
pub mod ids;
pub mod jobs;
pub mod logging;
pub mod net;
pub mod outbox;
pub mod scheduler;
pub mod settings;
pub mod sms;
pub mod startup;
pub mod storage;
pub mod sync;
pub mod systemd;
pub mod workers;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use app::App;
pub use config::Config;
pub use startup::StartError;

/// How long in-flight requests get to finish after a stop signal (systemd's default stop
/// timeout is 90 s; ours is well inside it).
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Installs the process-wide rustls crypto provider (ring). Idempotent.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Runs the daemon on already-bound listeners until `shutdown` is cancelled, then drains:
/// in-flight requests finish, workers stop, the catalog is checkpointed and the outbox
/// flushed. Tests bind port 0 and pass the listener in.
pub async fn run(
    config: Config,
    listener: TcpListener,
    health_listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    install_crypto();
    let app = startup::open(config, Arc::new(clock::SystemClock))?;
    run_app(app, listener, health_listener, shutdown).await;
    Ok(())
}

/// [`run`] for an [`App`] already opened.
pub async fn run_app(
    app: Arc<App>,
    listener: TcpListener,
    health_listener: Option<TcpListener>,
    shutdown: CancellationToken,
) {
    // Background files left by an upload a crash interrupted before its row.
    app.backgrounds.reconcile().await;
    let tracker = TaskTracker::new();
    let workers = CancellationToken::new();

    workers::spawn(
        &tracker,
        &app.workers,
        jobs::JobRunner::new(app.clone()),
        workers.clone(),
    );
    scheduler::spawn(&tracker, &app, workers.clone());
    workers::spawn(
        &tracker,
        &app.workers,
        sms::CreditsWorker::new(app.clone()),
        workers.clone(),
    );
    workers::spawn(
        &tracker,
        &app.workers,
        systemd::WatchdogWorker::new(app.workers.clone(), jobs::JobRunner::NAME),
        workers.clone(),
    );
    workers::spawn(
        &tracker,
        &app.workers,
        health::probe::ProbeWorker {
            db: app.remote_db.clone(),
            files: app.remote_files.clone(),
            probes: app.probes.clone(),
            clock: app.clock.clone(),
        },
        workers.clone(),
    );
    workers::spawn(
        &tracker,
        &app.workers,
        heartbeat::HeartbeatWorker::new(app.clone()),
        workers.clone(),
    );
    workers::spawn(&tracker, &app.workers, buffers::TrimWorker, workers.clone());

    if let Some(hl) = health_listener {
        let router = api::health_router(app.clone());
        tracker.spawn(api::serve(hl, router, shutdown.clone(), DRAIN_DEADLINE));
    }
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, kiosk_id = %app.config.kiosk_id, "listening");
    }
    systemd::notify_ready();
    api::serve(
        listener,
        api::router(app.clone()),
        shutdown.clone(),
        DRAIN_DEADLINE,
    )
    .await;

    tracing::info!("stopping: requests drained, stopping workers");
    systemd::notify_stopping();
    workers.cancel();
    tracker.close();
    if tokio::time::timeout(DRAIN_DEADLINE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("workers did not stop within {:?}", DRAIN_DEADLINE);
    }
    if let Err(e) = app.outbox.flush().await {
        tracing::error!("outbox flush at shutdown failed: {e}");
    }
    if let Err(e) = app.catalog.checkpoint().await {
        tracing::error!("catalog checkpoint at shutdown failed: {e}");
    }
    tracing::info!("stopped");
}
