//! The start-up recovery: make files and rows agree, and give the outbox back every job the
//! catalog says is still to do. It grows with the number of captures, so it runs after the
//! daemon is READY, as the one-round worker `recovery`, while captures are already taken:
//!
//! - A file without a row was never acknowledged (the crash came between the file and the
//!   row): it is removed.
//! - A row without a file is a real loss (disk trouble, someone deleted it): the row is
//!   marked missing and logged loudly; it is not synced, and its download answers 404.
//! - Unsynced rows get their sync job back and open SMS their SMS job (pushing is
//!   idempotent), so a lost or deleted outbox loses nothing.
//!
//! The lists it starts from are read before any verdict, and a capture may arrive or be
//! deleted meanwhile. So each disagreement is checked again under the capture id's lock,
//! which a capture holds from its file to its row and a deletion holds too: a file whose
//! row is being written, or a row whose file was just made, is left alone. The job runner
//! waits for the recovery's first attempt ([`Recovery::is_done`]) so that a job it settles
//! is not pushed again from a stale list.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;

use super::StartError;
use crate::app::App;
use crate::catalog::{self, Catalog};
use crate::outbox::{JobKind, Outbox};
use crate::storage::Uploads;
use crate::workers::{Next, Worker};

/// Whether the start-up recovery has finished (shared by the worker and the job runner).
#[derive(Debug, Default)]
pub struct Recovery {
    done: AtomicBool,
}

impl Recovery {
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    fn finish(&self) {
        self.done.store(true, Ordering::Release);
    }
}

/// What one recovery did (the worker's details in `/health` and `/admin/diag`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Recovered {
    pub files: usize,
    pub rows: usize,
    /// Files without a row, removed.
    pub orphan_files_removed: usize,
    /// Rows whose file is gone, now marked missing.
    pub rows_marked_missing: usize,
    /// Rows marked missing whose file is back.
    pub rows_unmarked: usize,
    pub sync_jobs_rebuilt: usize,
    pub sms_jobs_rebuilt: usize,
    pub took_ms: u64,
}

/// The worker `recovery`: one round, then done. A round that fails (an I/O error) is
/// retried by the supervisor with backoff; every step is safe to repeat.
pub struct RecoveryWorker {
    app: Arc<App>,
    report: Option<Recovered>,
}

impl RecoveryWorker {
    pub const NAME: &'static str = "recovery";

    pub fn new(app: Arc<App>) -> RecoveryWorker {
        RecoveryWorker { app, report: None }
    }
}

impl Worker for RecoveryWorker {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn work(&mut self) -> Result<Next, String> {
        let watch = crate::clock::Stopwatch::start();
        let result = recover(&self.app).await;
        // The job runner goes once the first attempt is over, even a failed one: the
        // supervisor retries the recovery, and a job it pushes again later is harmless
        // (handlers act on the catalog's state: a synced capture or a sent SMS is done).
        self.app.recovery.finish();
        let mut report = result.map_err(|e| e.to_string())?;
        report.took_ms = watch.elapsed().as_millis() as u64;
        tracing::info!(
            files = report.files,
            rows = report.rows,
            took_ms = report.took_ms,
            "start-up recovery finished"
        );
        self.report = Some(report);
        Ok(Next::Done)
    }

    fn details(&self) -> Option<serde_json::Value> {
        self.report
            .as_ref()
            .and_then(|r| serde_json::to_value(r).ok())
    }
}

fn task_error(e: tokio::task::JoinError) -> StartError {
    StartError::Recovery(e.to_string())
}

/// Reconciles files with rows, then rebuilds the outbox (see the module doc).
pub async fn recover(app: &App) -> Result<Recovered, StartError> {
    let (uploads, cat) = (app.uploads.clone(), app.catalog.clone());
    let (files, rows) = tokio::task::spawn_blocking(move || -> Result<_, StartError> {
        let files: HashSet<String> = uploads.list_ids()?.into_iter().collect();
        let rows = cat.read_blocking(catalog::all_capture_ids)?;
        Ok((files, rows))
    })
    .await
    .map_err(task_error)??;
    let mut report = Recovered {
        files: files.len(),
        rows: rows.len(),
        ..Recovered::default()
    };

    let known: HashSet<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    for id in files.iter().filter(|id| !known.contains(id.as_str())) {
        if settle(app, id, Verdict::Orphan).await? {
            report.orphan_files_removed += 1;
        }
    }
    for (id, missing) in &rows {
        let verdict = match (files.contains(id), *missing) {
            (false, false) => Verdict::Lost,
            (true, true) => Verdict::Back,
            _ => continue,
        };
        if settle(app, id, verdict).await? {
            match verdict {
                Verdict::Lost => report.rows_marked_missing += 1,
                _ => report.rows_unmarked += 1,
            }
        }
    }

    let (cat, outbox) = (app.catalog.clone(), app.outbox.clone());
    let (now, remotes) = (app.clock.now_ms(), app.has_remotes());
    let (sync, sms) =
        tokio::task::spawn_blocking(move || rebuild_outbox(&cat, &outbox, now, remotes))
            .await
            .map_err(task_error)??;
    report.sync_jobs_rebuilt = sync;
    report.sms_jobs_rebuilt = sms;
    // Events whose latest change is not remote yet (issue 20).
    let (cat, outbox, db) = (
        app.catalog.clone(),
        app.outbox.clone(),
        app.remotes.db.is_some(),
    );
    tokio::task::spawn_blocking(move || crate::events::rebuild_jobs(&cat, &outbox, now, db))
        .await
        .map_err(task_error)?
        .map_err(|e| StartError::Recovery(e.to_string()))?;
    app.outbox.notifier().notify_one();
    Ok(report)
}

/// A disagreement seen in the lists.
#[derive(Debug, Clone, Copy)]
enum Verdict {
    /// A file without a row.
    Orphan,
    /// A row, not marked missing, without a file.
    Lost,
    /// A row marked missing whose file is there.
    Back,
}

/// Checks `verdict` again under `id`'s lock and acts on it if it still holds; returns
/// whether it did.
async fn settle(app: &App, id: &str, verdict: Verdict) -> Result<bool, StartError> {
    let _guard = app.uploads.lock_id(id).await;
    let (uploads, cat, id) = (app.uploads.clone(), app.catalog.clone(), id.to_string());
    tokio::task::spawn_blocking(move || settle_locked(&uploads, &cat, &id, verdict))
        .await
        .map_err(task_error)?
}

fn settle_locked(
    uploads: &Uploads,
    cat: &Catalog,
    id: &str,
    verdict: Verdict,
) -> Result<bool, StartError> {
    let file = uploads.path_for(id).exists();
    // `None`: no row; `Some(m)`: a row, marked missing or not.
    let row = cat
        .read_blocking(|c| catalog::get_capture(c, id))?
        .map(|r| r.file_missing);
    match verdict {
        Verdict::Orphan if file && row.is_none() => {
            tracing::warn!(capture_id = %id, "file without catalog row (never acknowledged): removing it");
            uploads.remove(id)?;
            Ok(true)
        }
        Verdict::Lost if !file && row == Some(false) => {
            tracing::error!(capture_id = %id, "CAPTURE FILE MISSING: the catalog has this capture but its file is gone; marked missing");
            cat.write_blocking(|c| catalog::set_file_missing(c, id, true))?;
            Ok(true)
        }
        Verdict::Back if file && row == Some(true) => {
            tracing::info!(capture_id = %id, "capture file is back: unmarked missing");
            cat.write_blocking(|c| catalog::set_file_missing(c, id, false))?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Pushes a sync job for every unsynced row (when there is a remote) and an SMS job for
/// every open SMS that has none; returns how many of each.
pub fn rebuild_outbox(
    catalog: &Catalog,
    outbox: &Outbox,
    now_ms: i64,
    remotes: bool,
) -> Result<(usize, usize), StartError> {
    let map = |e: crate::outbox::OutboxError| StartError::Outbox {
        path: "outbox".into(),
        error: e.to_string(),
    };
    // Without any remote there is nothing to sync (rows stay unsynced until one is
    // configured, then this same rebuild queues them).
    let unsynced = if remotes {
        catalog.read_blocking(catalog::unsynced_captures)?
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
    let open_sms = catalog.read_blocking(catalog::open_sms)?;
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
    Ok((added, sms_added))
}
