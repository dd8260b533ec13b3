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
//! Three layers:
//!
//! - **Faces**: [`api`] (HTTP: one file per resource; `api/error.rs` is the only place where
//!   domain errors become status codes and JSON) and the command-line tools ([`diag`],
//!   [`fleet`], `sms::cli`, and [`cli`]: the exit codes, `check-config`, `serve`'s start
//!   banner).
//! - **Domain**: what the kiosk does, on an [`App`], each module with its own error and
//!   outcome types: [`capture`], [`cleanup`], [`events`], [`export`], [`sms`], [`sync`], [`health`],
//!   [`heartbeat`], [`scheduler`], [`startup`], and [`jobs`], whose runner alone acknowledges,
//!   reschedules and buries outbox jobs from the outcomes the `sync` and `sms` handlers
//!   return. Nothing here imports `api`.
//! - **Handles**: the types the [`App`] is made of, none of which knows the `App` or HTTP:
//!   stores ([`catalog`], [`outbox`], [`storage`]), remotes (`sync::{RemoteFiles, Circuits}`,
//!   `sync::remote_db::RemoteDb`, `sms::ovh::OvhClient`), status ([`workers`],
//!   `health::probe::Probes`, `sms::SmsHealth`, `metrics::Metrics`), [`settings`], [`config`], and the plumbing
//!   under them all ([`net`], [`clock`], [`ids`], [`buffers`], [`logging`], [`systemd`]).
//!
//! | module | job |
//! | --- | --- |
//! | [`config`] | environment / `.env` → validated [`config::Config`] (`parse`: sizes, URLs), secrets redacted; `view`: the one view of it that `check-config`, `/admin/config` and `diag` show |
//! | [`api`] | axum router and server loop; `capture`, `sms`, `files`, `backgrounds`, `health`, `diag`, `gdpr`, `admin/{auth,config,captures,stats,export,events}`; `error` maps every domain error to HTTP |
//! | [`capture`] | the capture path: validate → durable file → catalog row → outbox job; `stream` (bodies written as they arrive), `json_field` (base64 decoded as it streams), `error` |
//! | [`catalog`] | SQLite (WAL, `synchronous=FULL`), migrations, typed queries — the truth; every write in a transaction guard ([`catalog::Tx`]) |
//! | [`storage`] | durable file writes (`incoming`), per-id locks, free space, image validation and PNG → JPEG, the backgrounds handle |
//! | [`outbox`] | sled job queue: push, claim with lease, backoff, dead letter — the schedule |
//! | [`jobs`] | the job runner (the `jobs` worker) and the outcome protocol its handlers answer in |
//! | [`sync`] | the sync and remote-delete handlers (`job`), each remote's circuit, WebDAV, S3 (`s3/{config,client,sigv4}`), remote PostgreSQL and its migrations |
//! | [`sms`] | `request` (limits), `job` (the sending handler, decisions as plain functions), `status` (status enums, credits worker), `cli` (`sms-test`); `ovh/` client; phone numbers |
//! | [`workers`] | the `Worker` trait every background loop implements, its supervisor (backoff, panics) and the status registry |
//! | [`net`] | one TLS config, HTTP client builder and error description, one PostgreSQL connect, percent-encoding sets, `block_on` for the one-shot commands |
//! | [`settings`] | run-time settings (`/admin/config`) and their write lock, SMS segment counting |
//! | [`scheduler`], [`cleanup`] | the daily cleanup and clock fix-up workers; retention, erasure, clock fix-up |
//! | [`health`] | `/health`: the report, `checks` (one function each), `probe` (the remote probes worker and its cache) |
//! | [`metrics`] | `/metrics`: the counters and histograms only events can tell (a handle in the [`App`]), the text encoder, and the scrape, which reads every gauge from the handles `/health` reads |
//! | [`heartbeat`], [`fleet`] | health reports into the remote database (a worker), history pruned by age; `selfie-kiosk fleet`, and `fleet serve`: the fleet page (`serve`, on the shared `api::static_files`) reading `kiosk_status` (`store`) |
//! | [`diag`] | `selfie-kiosk diag`: `scrub`, `collect`, `offline`, `config`, `render`, `bundle` (and `GET /admin/diag`) |
//! | [`events`] | events (issue 20): named spans captures belong to, their rules (no overlap), the `event_sync` job that copies them to PostgreSQL |
//! | [`share`] | the guest's side: public tokens' file names, the share page (template, escaping, local dates), links, `qr` codes |
//! | [`export`] | the Excel export: chunked catalog reads → constant-memory workbook → streamed file |
//! | [`startup`] | opening stores, reconciling files with rows, rebuilding the outbox |
//! | [`systemd`] | sd_notify: READY, STOPPING, and the watchdog worker that pings only while the job runner reports in |
//! | [`localtime`] | `KIOSK_TZ`: the zone (system tz database or a POSIX rule, else UTC) and local days and hours (23 or 25 of them across DST) for stats, the daily cleanup and Excel |
//! | [`clock`], [`ids`] | time as an input (the only place the system clock is read: `clippy.toml` enforces it; the "clock not set yet" rule), ids and randomness |
//! | [`app`], [`logging`] | the shared handles; journald/stderr logging, run-time log level, recent-log buffer |

pub mod api;
pub mod app;
pub mod buffers;
pub mod capture;
pub mod catalog;
pub mod cleanup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod diag;
pub mod events;
pub mod export;
pub mod fleet;
pub mod health;
pub mod heartbeat;
pub mod ids;
pub mod jobs;
pub mod localtime;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod outbox;
pub mod scheduler;
pub mod settings;
pub mod share;
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
    admin_listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    install_crypto();
    let app = startup::open(config, Arc::new(clock::SystemClock))?;
    if let Ok(api) = listener.local_addr() {
        let at = cli::banner::Listeners {
            api,
            health: health_listener.as_ref().and_then(|l| l.local_addr().ok()),
            admin: admin_listener.as_ref().and_then(|l| l.local_addr().ok()),
        };
        cli::banner::show(&app.config, &app.settings.get(), at);
    }
    run_app(app, listener, health_listener, admin_listener, shutdown).await;
    Ok(())
}

/// [`run`] for an [`App`] already opened.
pub async fn run_app(
    app: Arc<App>,
    listener: TcpListener,
    health_listener: Option<TcpListener>,
    admin_listener: Option<TcpListener>,
    shutdown: CancellationToken,
) {
    // Background files left by an upload a crash interrupted before its row.
    app.backgrounds.reconcile().await;
    let tracker = TaskTracker::new();
    let workers = CancellationToken::new();

    // Files against rows and the outbox rebuild grow with the catalog: after READY.
    workers::spawn(
        &tracker,
        &app.workers,
        startup::recovery::RecoveryWorker::new(app.clone()),
        workers.clone(),
    );
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
            db: app.remotes.db.clone(),
            files: app.remotes.files.clone(),
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
    workers::spawn(
        &tracker,
        &app.workers,
        storage::thumbnails::ThumbnailWorker::new(
            app.thumbnails.clone(),
            app.uploads.clone(),
            app.catalog.clone(),
        ),
        workers.clone(),
    );

    if let Some(hl) = health_listener {
        let router = api::health_router(app.clone());
        tracker.spawn(api::serve(hl, router, shutdown.clone(), DRAIN_DEADLINE));
    }
    // The staff's listener (ADMIN_LISTEN): drained with the API one, on the same signal.
    if let Some(al) = admin_listener {
        if let Ok(addr) = al.local_addr() {
            tracing::info!(%addr, "staff console and admin API listening (ADMIN_LISTEN)");
        }
        let router = api::admin_router(app.clone());
        tracker.spawn(api::serve(al, router, shutdown.clone(), DRAIN_DEADLINE));
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
