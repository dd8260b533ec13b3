//! Start-up: open the stores, make files and rows agree, rebuild the outbox from the
//! catalog.
//!
//! - A file without a row was never acknowledged (the crash came between the file and the
//!   row): it is removed.
//! - A row without a file is a real loss (disk trouble, someone deleted it): the row is
//!   marked missing and logged loudly; it is not synced, and its download answers 404.
//! - Unsynced rows get their sync job back (pushing is idempotent), so a lost or deleted
//!   outbox loses nothing.

use std::path::Path;
use std::sync::Arc;

use crate::app::App;
use crate::catalog::{self, Catalog};
use crate::clock::Clock;
use crate::config::{Config, Secret};
use crate::outbox::{JobKind, Outbox};
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

    reconcile(&catalog, &uploads)?;
    uploads.prepare_spare();
    let remotes = remote_files.is_some() || remote_db.is_some();
    rebuild_outbox(&catalog, &outbox, clock.now_ms(), remotes)?;

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
        probes: Default::default(),
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

/// Makes files and rows agree (see the module doc).
pub fn reconcile(catalog: &Catalog, uploads: &Uploads) -> Result<(), StartError> {
    let cleared = uploads.clear_incoming()?;
    if cleared > 0 {
        tracing::info!(
            files = cleared,
            "removed unfinished uploads left by a crash"
        );
    }
    let files: std::collections::HashSet<String> = uploads.list_ids()?.into_iter().collect();
    let rows = catalog.write_blocking(|c| catalog::all_capture_ids(c))?;
    let known: std::collections::HashSet<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    for id in files.iter().filter(|id| !known.contains(id.as_str())) {
        tracing::warn!(capture_id = %id, "file without catalog row (never acknowledged): removing it");
        uploads.remove(id)?;
    }
    for (id, missing) in &rows {
        let present = files.contains(id);
        if !present && !missing {
            tracing::error!(capture_id = %id, "CAPTURE FILE MISSING: the catalog has this capture but its file is gone; marked missing");
            catalog.write_blocking(|c| catalog::set_file_missing(c, id, true))?;
        } else if present && *missing {
            tracing::info!(capture_id = %id, "capture file is back: unmarked missing");
            catalog.write_blocking(|c| catalog::set_file_missing(c, id, false))?;
        }
    }
    Ok(())
}

/// Releases stale leases and pushes a sync job for every unsynced row.
pub fn rebuild_outbox(
    catalog: &Catalog,
    outbox: &Outbox,
    now_ms: i64,
    remotes: bool,
) -> Result<(), StartError> {
    let map = |e: crate::outbox::OutboxError| StartError::Outbox {
        path: "outbox".into(),
        error: e.to_string(),
    };
    let released = outbox.release_leases(now_ms).map_err(map)?;
    if released > 0 {
        tracing::info!(
            jobs = released,
            "retrying jobs interrupted by the last stop"
        );
    }
    // Without any remote there is nothing to sync (rows stay unsynced until one is
    // configured, then this same rebuild queues them).
    let unsynced = if remotes {
        catalog.write_blocking(|c| catalog::unsynced_captures(c))?
    } else {
        Vec::new()
    };
    let mut added = 0;
    for row in unsynced.iter().filter(|r| !r.file_missing) {
        if outbox.get(JobKind::Sync, &row.id).map_err(map)?.is_none() {
            outbox
                .push(JobKind::Sync, &row.id, row.created_ms, now_ms)
                .map_err(map)?;
            added += 1;
        }
    }
    if added > 0 {
        tracing::warn!(jobs = added, "sync jobs rebuilt from the catalog");
    }
    let open_sms = catalog.write_blocking(|c| catalog::open_sms(c))?;
    let mut sms_added = 0;
    for row in &open_sms {
        if outbox.get(JobKind::Sms, &row.id).map_err(map)?.is_none() {
            outbox
                .push(JobKind::Sms, &row.id, row.created_ms, now_ms)
                .map_err(map)?;
            sms_added += 1;
        }
    }
    if sms_added > 0 {
        tracing::warn!(jobs = sms_added, "SMS jobs rebuilt from the catalog");
    }
    Ok(())
}
