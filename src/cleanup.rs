//! Retention and erasure: captures are removed locally now — file, catalog row, SMS rows,
//! pending jobs — and their remote copies (PostgreSQL rows, remote file, SMS log) through
//! outbox jobs that retry until done.
//!
//! Retention wins over sync: a capture never synced is still deleted on time, and that is
//! counted and logged. Work goes in batches of [`BATCH`] captures, each its own
//! transaction, so the API stays responsive during a large cleanup.
//!
//! Clocks: a capture taken while the wall clock was not sane is never aged from that
//! time. Once the clock is sane, [`fix_clocks`] recomputes its time from the monotonic
//! clock when it was taken during the current boot, or else sets it to the first sane time
//! seen (so it is neither deleted at once nor kept forever). No cleanup runs while the
//! clock itself is not sane.

use serde::Serialize;

use crate::app::App;
use crate::catalog::{self, CatalogError};
use crate::clock;
use crate::outbox::{JobKind, OutboxError};
use crate::sms::phone::PhoneError;
use crate::storage::StorageError;

/// Why a cleanup or an erasure stopped. The texts are those the scheduler keeps as the
/// last cleanup error.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("phone number not understood: {0}")]
    InvalidPhone(#[source] PhoneError),
    #[error("the local catalog failed: {0}")]
    Catalog(#[from] CatalogError),
    #[error("the local job queue failed: {0}")]
    Outbox(#[from] OutboxError),
    #[error("could not store the file: {0}")]
    Storage(#[from] StorageError),
    /// The file removal thread died.
    #[error("cleanup task failed: {0}")]
    Task(String),
}

type Result<T, E = CleanupError> = std::result::Result<T, E>;

/// Captures per transaction.
pub const BATCH: usize = 500;

/// What a cleanup run removed.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct CleanupReport {
    pub removed: usize,
    /// Of which never synced (retention wins over sync); 0 when no remote is configured
    /// (nothing to sync to).
    pub removed_unsynced: usize,
    pub sms_removed: usize,
    pub remote_deletions_pending: usize,
    pub clocks_fixed: usize,
    pub retention_days: u32,
    pub cutoff: Option<String>,
    /// Set when the run did nothing on purpose (e.g. the clock is not set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// What removing a set of captures did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Removal {
    pub removed: usize,
    pub sms_removed: usize,
    pub remote_deletions_pending: usize,
}

/// Removes captures: rows and SMS rows in one transaction, then files, then jobs.
pub async fn remove_captures(app: &App, ids: Vec<String>) -> Result<Removal> {
    if ids.is_empty() {
        return Ok(Removal::default());
    }
    let del = ids.clone();
    // The remote files' names are read in the deleting transaction: the remote
    // deletion needs them once the rows are gone.
    let (removed, sms_removed, names) = app
        .catalog
        .write(move |c| {
            let names = catalog::remote_names(c, &del)?;
            let (removed, sms) = catalog::delete_captures_and_sms(c, &del)?;
            Ok((removed, sms, names))
        })
        .await?;
    let uploads = app.uploads.clone();
    let thumbnails = app.thumbnails.clone();
    let files = ids.clone();
    tokio::task::spawn_blocking(move || -> Result<(), StorageError> {
        for id in &files {
            thumbnails.remove(id);
            let p = uploads.path_for(id);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::error!(capture_id = %id, "cannot remove the capture file: {e}"),
            }
        }
        crate::storage::sync_dir(uploads.dir()).map_err(|e| StorageError::Io {
            path: uploads.dir().to_path_buf(),
            source: e,
        })
    })
    .await
    .map_err(|e| CleanupError::Task(e.to_string()))??;
    let remote = app.has_remotes();
    let now = app.clock.now_ms();
    for id in &ids {
        app.outbox.cancel(JobKind::Sync, id)?;
        if remote {
            let target = match names.iter().find(|(n, _, _)| n == id) {
                Some((_, token, legacy)) => crate::sync::job::delete_target(id, token, *legacy),
                None => id.clone(),
            };
            app.outbox.push(JobKind::RemoteDelete, &target, now, now)?;
        }
    }
    app.outbox.flush().await?;
    Ok(Removal {
        removed,
        sms_removed,
        remote_deletions_pending: if remote { ids.len() } else { 0 },
    })
}

/// Recomputes the time of captures flagged while the clock was not sane. Returns how many
/// were fixed; nothing happens while the clock is still not sane.
pub async fn fix_clocks(app: &App) -> Result<usize> {
    let now = app.clock.now_ms();
    if !clock::is_sane(now) {
        return Ok(0);
    }
    let suspects = app.catalog.read(catalog::clock_suspects).await?;
    if suspects.is_empty() {
        return Ok(0);
    }
    let boot = app.clock.boot_id();
    let mono_now = app.clock.monotonic_ms();
    let fixes: Vec<(String, i64)> = suspects
        .into_iter()
        .map(|(id, b, mono)| match (b, mono) {
            // Same boot: the monotonic clock tells how long ago it was taken.
            (Some(b), Some(m)) if b == boot && m <= mono_now => (id, now - (mono_now - m)),
            // Boot gone: age it from now, the first sane time seen.
            _ => (id, now),
        })
        .collect();
    let n = fixes.len();
    app.catalog
        .write(move |tx| {
            for (id, t) in &fixes {
                catalog::fix_capture_time(tx, id, *t)?;
            }
            Ok(())
        })
        .await?;
    tracing::warn!(
        captures = n,
        "times of captures taken before the clock was set have been recomputed"
    );
    Ok(n)
}

/// Removes every capture older than the retention now.
pub async fn run(app: &App) -> Result<CleanupReport> {
    let settings = app.settings.get();
    let now = app.clock.now_ms();
    let mut report = CleanupReport {
        retention_days: settings.retention_days,
        ..Default::default()
    };
    if !clock::is_sane(now) {
        report.skipped =
            Some("the system clock is not set (before the build date): cleanup postponed".into());
        tracing::warn!("cleanup postponed: the system clock is not set");
        return Ok(report);
    }
    report.clocks_fixed = fix_clocks(app).await?;
    let cutoff = now - settings.retention_days as i64 * 86_400_000;
    let scope = app.sync_scope();
    report.cutoff = Some(catalog::format_ms(cutoff));
    loop {
        let batch = app
            .catalog
            .read(move |c| catalog::expired_captures(c, scope, cutoff, BATCH))
            .await?;
        if batch.is_empty() {
            break;
        }
        let unsynced = batch.iter().filter(|(_, synced)| !synced).count();
        let ids: Vec<String> = batch.into_iter().map(|(id, _)| id).collect();
        let r = remove_captures(app, ids).await?;
        report.removed += r.removed;
        report.removed_unsynced += unsynced;
        report.sms_removed += r.sms_removed;
        report.remote_deletions_pending += r.remote_deletions_pending;
        tokio::task::yield_now().await;
    }
    let summary = format!("removed {}", report.removed);
    let _ = app
        .catalog
        .write(move |c| catalog::set_schedule_last_run(c, "cleanup", now, &summary))
        .await;
    if report.removed_unsynced > 0 {
        tracing::warn!(
            removed = report.removed,
            never_synced = report.removed_unsynced,
            "retention cleanup removed captures that were never synced (retention wins over sync)"
        );
    }
    tracing::info!(
        removed = report.removed,
        sms = report.sms_removed,
        remote_pending = report.remote_deletions_pending,
        retention_days = report.retention_days,
        "retention cleanup done"
    );
    Ok(report)
}

/// The receipt of a GDPR erasure.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErasureReceipt {
    pub phone: String,
    pub captures_removed: Vec<String>,
    pub sms_removed: usize,
    pub remote_deletions_pending: usize,
    pub erased_at: String,
}

/// Removes every capture sent to this number, locally now and remotely through the outbox.
pub async fn erase_phone(app: &App, raw_phone: &str) -> Result<ErasureReceipt> {
    erase_phone_in(app, raw_phone, None).await
}

/// [`erase_phone`], only the captures of `event_id` (issue 20) when given.
pub async fn erase_phone_in(
    app: &App,
    raw_phone: &str,
    event_id: Option<String>,
) -> Result<ErasureReceipt> {
    let e164 = crate::sms::phone::normalize(raw_phone, crate::sms::phone::Region::FR)
        .map_err(CleanupError::InvalidPhone)?;
    let hmac = crate::sms::phone_hmac(app.keys.secret_key.expose(), &e164);
    let ids = app
        .catalog
        .read(move |c| match &event_id {
            Some(e) => catalog::captures_for_phone_in_event(c, &hmac, e),
            None => catalog::captures_for_phone(c, &hmac),
        })
        .await?;
    let mut removal = Removal::default();
    for chunk in ids.chunks(BATCH) {
        let r = remove_captures(app, chunk.to_vec()).await?;
        removal.removed += r.removed;
        removal.sms_removed += r.sms_removed;
        removal.remote_deletions_pending += r.remote_deletions_pending;
    }
    let masked = crate::sms::phone::mask(&e164);
    tracing::info!(phone = %masked, captures = ids.len(), "GDPR erasure done");
    Ok(ErasureReceipt {
        phone: masked,
        captures_removed: ids,
        sms_removed: removal.sms_removed,
        remote_deletions_pending: removal.remote_deletions_pending,
        erased_at: catalog::format_ms(app.clock.now_ms()),
    })
}
