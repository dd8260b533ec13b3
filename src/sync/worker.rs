//! The job runner: claims due outbox jobs and carries them out — "sleep until the next
//! deadline or until notified", the daemon's timer wheel for outbox work.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::webdav::RemoteFileError;
use super::Remote;
use crate::app::App;
use crate::catalog::{self, CaptureRow};
use crate::outbox::{backoff, Job, JobKind};

/// Jobs claimed per round.
const CLAIM_BATCH: usize = 32;
/// Uploads in flight at once.
const PARALLEL_UPLOADS: usize = 4;
/// A claimed job not finished within this is retried (the worker died).
const LEASE: Duration = Duration::from_secs(300);
/// Per-job backoff for errors that concern that job only.
const JOB_BACKOFF_BASE: Duration = Duration::from_secs(2);
const JOB_BACKOFF_CAP: Duration = Duration::from_secs(600);
/// Even with nothing due, look again this often (wall-clock jumps, missed wakes).
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Runs until `shutdown`. One instance per daemon.
pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    let notify = app.outbox.notifier();
    // Under a systemd watchdog, report in well within its interval even when idle.
    let max_sleep =
        crate::systemd::watchdog_interval().map_or(MAX_SLEEP, |w| (w / 4).min(MAX_SLEEP));
    loop {
        crate::systemd::alive();
        if shutdown.is_cancelled() {
            break;
        }
        let now = app.clock.now_ms();
        let jobs = match app.outbox.claim(now, CLAIM_BATCH, LEASE) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!("outbox claim failed: {e}");
                Vec::new()
            }
        };
        if jobs.is_empty() {
            let wait = match app.outbox.next_due_ms() {
                Ok(Some(t)) => {
                    Duration::from_millis((t - now).clamp(0, max_sleep.as_millis() as i64) as u64)
                }
                _ => max_sleep,
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        let (sync, rest): (Vec<Job>, Vec<Job>) =
            jobs.into_iter().partition(|j| j.kind == JobKind::Sync);
        if !sync.is_empty() {
            run_sync_batch(&app, sync).await;
        }
        for job in rest {
            match job.kind {
                JobKind::RemoteDelete => run_remote_delete(&app, job).await,
                JobKind::Sms => crate::sms::run_job(&app, job).await,
                JobKind::SmsLog => crate::sms::run_log_job(&app, job).await,
                JobKind::Sync => {}
            }
        }
        if let Err(e) = app.outbox.flush().await {
            tracing::error!("outbox flush failed: {e}");
        }
    }
}

fn retry_job(app: &App, job: &Job, error: &str) {
    let d = backoff(job.attempts, JOB_BACKOFF_BASE, JOB_BACKOFF_CAP);
    let at = app.clock.now_ms() + d.as_millis() as i64;
    if let Err(e) = app.outbox.reschedule(job, at, Some(error)) {
        tracing::error!(job_id = job.id, "outbox reschedule failed: {e}");
    }
}

fn hold_job(app: &App, job: &Job, until_ms: i64) {
    // Spread the held jobs a little so they do not all fire in the same millisecond.
    let jitter = (crate::ids::random_unit() * 200.0) as i64;
    if let Err(e) = app.outbox.reschedule(job, until_ms + jitter, None) {
        tracing::error!(job_id = job.id, "outbox reschedule failed: {e}");
    }
}

fn ack(app: &App, job: &Job) {
    if let Err(e) = app.outbox.ack(job) {
        tracing::error!(job_id = job.id, "outbox ack failed: {e}");
    }
}

/// A remote came back: everything waiting on it becomes due now.
fn remote_back(app: &App, which: &str) {
    let now = app.clock.now_ms();
    match app.outbox.expedite(None, now) {
        Ok(n) => tracing::info!(jobs = n, "{which} reachable again: draining the backlog"),
        Err(e) => tracing::error!("outbox expedite failed: {e}"),
    }
}

async fn run_sync_batch(app: &Arc<App>, jobs: Vec<Job>) {
    if !app.settings.get().sync_enabled {
        // Paused by the operator: keep the jobs, look again in a minute (turning sync back
        // on through /admin/config wakes the worker at once).
        let at = app.clock.now_ms() + 60_000;
        for j in &jobs {
            hold_job(app, j, at);
        }
        return;
    }
    let ids: Vec<String> = jobs.iter().map(|j| j.target.clone()).collect();
    let rows = match app
        .catalog
        .read(move |c| catalog::get_captures(c, &ids))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            for j in &jobs {
                retry_job(app, j, &e.to_string());
            }
            return;
        }
    };
    // Jobs whose capture is gone (deleted meanwhile) or already synced are done.
    let mut work: Vec<(Job, CaptureRow)> = Vec::new();
    for job in jobs {
        match rows.iter().find(|r| r.id == job.target) {
            Some(r) if r.synced_ms.is_none() => work.push((job, r.clone())),
            _ => ack(app, &job),
        }
    }
    if work.is_empty() {
        return;
    }

    // 1. Files.
    let mut file_done: Vec<(Job, CaptureRow)> = Vec::new();
    if let Some(dav) = app.remote_files.clone() {
        let now = app.clock.now_ms();
        if let Some(until) = app.sync_state.held_until(Remote::Storage, now) {
            for (job, _) in &work {
                hold_job(app, job, until);
            }
            return;
        }
        let mut need: Vec<(Job, CaptureRow)> = Vec::new();
        for (job, row) in work {
            if row.remote_file_ms.is_some() {
                file_done.push((job, row));
            } else {
                need.push((job, row));
            }
        }
        let results: Vec<((Job, CaptureRow), Result<(), RemoteFileError>)> =
            futures_util::stream::iter(need)
                .map(|(job, row)| {
                    let dav = dav.clone();
                    let path = app.uploads.path_for(&row.id);
                    async move {
                        let r = dav.put(&row.id, &path).await;
                        crate::systemd::alive();
                        ((job, row), r)
                    }
                })
                .buffer_unordered(PARALLEL_UPLOADS)
                .collect()
                .await;
        let mut remote_failed: Option<String> = None;
        let mut uploaded: Vec<String> = Vec::new();
        let mut failed_jobs: Vec<Job> = Vec::new();
        for ((job, row), r) in results {
            match r {
                Ok(()) => {
                    uploaded.push(row.id.clone());
                    file_done.push((job, row));
                }
                Err(RemoteFileError::Remote(msg)) => {
                    remote_failed.get_or_insert(msg);
                    failed_jobs.push(job);
                }
                Err(RemoteFileError::LocalMissing(msg)) => {
                    // Nothing to upload, ever: mark it and stop trying; start-up
                    // reconciliation has already logged the missing file loudly.
                    tracing::error!(capture_id = %row.id, "cannot sync, local file missing: {msg}");
                    let id = row.id.clone();
                    let _ = app
                        .catalog
                        .write(move |c| catalog::set_file_missing(c, &id, true))
                        .await;
                    retry_job(app, &job, &format!("local file missing: {msg}"));
                }
            }
        }
        let now = app.clock.now_ms();
        if !uploaded.is_empty() {
            let ids = uploaded;
            if let Err(e) = app
                .catalog
                .write(move |c| {
                    for id in &ids {
                        catalog::mark_remote_file(c, id, now)?;
                    }
                    Ok(())
                })
                .await
            {
                tracing::error!("catalog update failed: {e}");
            }
            if app.sync_state.success(Remote::Storage, now) {
                remote_back(app, "remote storage");
            }
        }
        if let Some(msg) = remote_failed {
            let until = app.sync_state.failure(Remote::Storage, now, &msg);
            tracing::warn!(
                failed = failed_jobs.len(),
                "remote storage upload failed: {msg}"
            );
            for job in &failed_jobs {
                hold_job(app, job, until);
            }
        }
    } else {
        file_done = work;
    }
    if file_done.is_empty() {
        return;
    }

    // 2. Metadata rows, batched.
    if let Some(db) = app.remote_db.clone() {
        let now = app.clock.now_ms();
        if let Some(until) = app.sync_state.held_until(Remote::Db, now) {
            for (job, _) in &file_done {
                hold_job(app, job, until);
            }
            return;
        }
        let rows: Vec<CaptureRow> = file_done.iter().map(|(_, r)| r.clone()).collect();
        match db.upsert_captures(&rows).await {
            Ok(()) => {
                if app.sync_state.success(Remote::Db, now) {
                    remote_back(app, "remote database");
                }
            }
            Err(e) => {
                let msg = e.to_string();
                let until = app.sync_state.failure(Remote::Db, now, &msg);
                tracing::warn!(rows = rows.len(), "remote database upsert failed: {msg}");
                for (job, _) in &file_done {
                    hold_job(app, job, until);
                }
                return;
            }
        }
    }

    // 3. Synced.
    let now = app.clock.now_ms();
    let ids: Vec<String> = file_done.iter().map(|(_, r)| r.id.clone()).collect();
    let with_db = app.remote_db.is_some();
    let res = app
        .catalog
        .write(move |tx| {
            if with_db {
                catalog::mark_remote_db(tx, &ids, now)?;
            }
            for id in &ids {
                catalog::mark_synced(tx, id, now)?;
            }
            Ok(())
        })
        .await;
    match res {
        Ok(()) => {
            for (job, row) in &file_done {
                tracing::debug!(capture_id = %row.id, "capture synced");
                ack(app, job);
            }
            app.sync_events.notify_waiters();
            // SMS waiting for these captures can go now.
            if let Err(e) = app.outbox.expedite(Some(JobKind::Sms), app.clock.now_ms()) {
                tracing::error!("outbox expedite failed: {e}");
            }
        }
        Err(e) => {
            for (job, _) in &file_done {
                retry_job(app, job, &e.to_string());
            }
        }
    }
}

/// Deletes a capture's remote copies (the local part is already done).
async fn run_remote_delete(app: &Arc<App>, job: Job) {
    let now = app.clock.now_ms();
    if let Some(dav) = app.remote_files.clone() {
        if let Some(until) = app.sync_state.held_until(Remote::Storage, now) {
            hold_job(app, &job, until);
            return;
        }
        if let Err(e) = dav.delete(&job.target).await {
            let msg = e.to_string();
            let until = app.sync_state.failure(Remote::Storage, now, &msg);
            hold_job(app, &job, until);
            return;
        }
        if app.sync_state.success(Remote::Storage, now) {
            remote_back(app, "remote storage");
        }
    }
    if let Some(db) = app.remote_db.clone() {
        if let Some(until) = app.sync_state.held_until(Remote::Db, now) {
            hold_job(app, &job, until);
            return;
        }
        let ids = std::slice::from_ref(&job.target);
        let res = match db.delete_captures(ids).await {
            Ok(_) => db.delete_sms_log_for_captures(ids).await,
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            let msg = e.to_string();
            let until = app.sync_state.failure(Remote::Db, now, &msg);
            hold_job(app, &job, until);
            return;
        }
        if app.sync_state.success(Remote::Db, now) {
            remote_back(app, "remote database");
        }
    }
    tracing::info!(capture_id = %job.target, "remote copies deleted");
    ack(app, &job);
}
