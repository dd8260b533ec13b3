//! Start-up: open the stores and the remotes' clients, before READY. Only work that does
//! not grow with the number of captures is done here; making files and rows agree and
//! rebuilding the outbox from the catalog is the [`recovery`] worker's, after READY.

pub mod recovery;

use std::path::Path;
use std::sync::Arc;

use crate::app::App;
use crate::catalog::{self, Catalog};
use crate::clock::Clock;
use crate::config::{Config, Secret};
use crate::outbox::Outbox;
use crate::storage::{self, Uploads};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the data directory {path}: {error}")]
    DataDir { path: String, error: String },
    #[error("{0}")]
    Catalog(#[from] catalog::CatalogError),
    #[error("{0}")]
    Storage(#[from] storage::StorageError),
    #[error("cannot open the outbox at {path}: {error} (is another selfie-kiosk running on this data directory?)")]
    Outbox { path: String, error: String },
    #[error("{var}: {message}")]
    Remote { var: &'static str, message: String },
    #[error("start-up recovery: {0}")]
    Recovery(String),
}

/// Opens everything and returns the shared state, ready to serve.
pub fn open(config: Config, clock: Arc<dyn Clock>) -> Result<Arc<App>, StartError> {
    create_dir(&config.data_dir)?;
    let uploads = Uploads::open(&config.uploads_dir)?;
    let admin_api_key = key_or_file(
        config.admin_api_key.clone(),
        &config.data_dir.join("admin_api_key"),
        "ADMIN_API_KEY",
    )?;
    let secret_key = key_or_file(
        config.secret_key.clone(),
        &config.data_dir.join("secret_key"),
        "SECRET_KEY",
    )?;
    if config.redis_url_set {
        tracing::warn!("REDIS_URL is set but ignored: selfie-kiosk needs no Redis any more (its queue is built in)");
    }

    let catalog = Catalog::open(&config.data_dir.join("catalog.sqlite3"))?;
    let outbox = open_outbox(&config.data_dir.join("outbox"))?;

    let remote_files = config
        .remote_storage
        .as_ref()
        .map(crate::sync::RemoteFiles::new)
        .transpose()
        .map_err(|message| StartError::Remote {
            var: "REMOTE_STORAGE_URL",
            message,
        })?;
    let remote_db = config
        .remote_database_url
        .as_ref()
        .map(|u| crate::sync::remote_db::RemoteDb::new(u, &config.kiosk_id))
        .transpose()
        .map_err(|message| StartError::Remote {
            var: "REMOTE_DATABASE_URL",
            message,
        })?;

    let stored = catalog.write_blocking(|c| catalog::all_settings(c))?;
    let settings = crate::settings::overlay(
        crate::settings::RuntimeSettings::from_config(&config),
        &stored,
    );

    let sms_client =
        crate::sms::client_from_config(&config).map_err(|message| StartError::Remote {
            var: "OVH_ENDPOINT",
            message,
        })?;

    prepare(&uploads, &outbox, clock.now_ms())?;

    let circuits = crate::sync::Circuits::new(remote_db.is_some(), remote_files.is_some());
    let sms_health = crate::sms::SmsHealth::new(clock.clone());
    let backgrounds =
        crate::storage::Backgrounds::new(config.data_dir.join("backgrounds"), catalog.clone());
    let exports = crate::export::Exports::new(catalog.clone(), &config.data_dir);
    let thumbnails = crate::storage::Thumbnails::open(&config.data_dir.join("thumbnails"))?;
    Ok(Arc::new(App {
        thumbnails,
        config: Arc::new(config),
        catalog,
        outbox,
        uploads,
        workers: crate::workers::Workers::new(clock.clone()),
        recovery: Default::default(),
        probes: Default::default(),
        metrics: crate::metrics::Metrics::new(),
        backgrounds,
        exports,
        clock,
        started: crate::clock::Stopwatch::start(),
        keys: crate::app::Keys {
            admin_api_key,
            secret_key,
        },
        remotes: crate::app::Remotes {
            files: remote_files,
            db: remote_db,
            circuits,
        },
        settings: crate::settings::Settings::new(settings),
        sms: crate::app::Sms {
            client: sms_client,
            health: sms_health,
        },
    }))
}

fn create_dir(dir: &Path) -> Result<(), StartError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
        .map_err(|e| StartError::DataDir {
            path: dir.display().to_string(),
            error: e.to_string(),
        })
}

fn key_or_file(given: Option<Secret>, path: &Path, var: &str) -> Result<Secret, StartError> {
    if let Some(k) = given {
        return Ok(k);
    }
    let (value, created) = storage::ensure_secret_file(path)?;
    if created {
        tracing::info!(path = %path.display(), "{var} was not set: generated one into this file (mode 0600)");
    }
    Ok(Secret::new(value))
}

/// Opens the outbox; a corrupt one is moved aside and started afresh (the catalog will
/// refill it). A locked one (another daemon running) is an error.
fn open_outbox(dir: &Path) -> Result<Outbox, StartError> {
    match Outbox::open(dir) {
        Ok(o) => Ok(o),
        Err(e) => {
            let text = e.to_string();
            if e.is_disk_full() {
                // A full disk must not keep the kiosk down (the cleanup that frees space
                // runs only when it is up): a temporary outbox off the data disk for this
                // run; the catalog refills the real one at the next start.
                tracing::error!("the disk is full: the outbox cannot be opened; using a temporary one until the next start");
                return Outbox::open_temporary().map_err(|e| StartError::Outbox {
                    path: dir.display().to_string(),
                    error: e.to_string(),
                });
            }
            if text.contains("lock")
                || text.contains("WouldBlock")
                || text.contains("Resource temporarily unavailable")
            {
                return Err(StartError::Outbox {
                    path: dir.display().to_string(),
                    error: text,
                });
            }
            let aside = dir.with_extension(format!("corrupt-{}", crate::clock::system_now_ms()));
            tracing::error!(error = %text, moved_to = %aside.display(), "the outbox is unreadable: moved aside, rebuilding it from the catalog");
            std::fs::rename(dir, &aside).map_err(|e| StartError::Outbox {
                path: dir.display().to_string(),
                error: e.to_string(),
            })?;
            Outbox::open(dir).map_err(|e| StartError::Outbox {
                path: dir.display().to_string(),
                error: e.to_string(),
            })
        }
    }
}

/// Start-up work done before READY: only what does not grow with the catalog.
/// Unfinished uploads are cleared before any new one can start, and the leases of jobs the
/// last stop interrupted are released.
fn prepare(uploads: &Uploads, outbox: &Outbox, now_ms: i64) -> Result<(), StartError> {
    let cleared = uploads.clear_incoming()?;
    if cleared > 0 {
        tracing::info!(
            files = cleared,
            "removed unfinished uploads left by a crash"
        );
    }
    uploads.prepare_spare();
    let released = outbox
        .release_leases(now_ms)
        .map_err(|e| StartError::Outbox {
            path: "outbox".into(),
            error: e.to_string(),
        })?;
    if released > 0 {
        tracing::info!(
            jobs = released,
            "retrying jobs interrupted by the last stop"
        );
    }
    Ok(())
}
