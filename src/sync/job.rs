//! The handlers of `sync` jobs (a batch of captures → remote storage, then one PostgreSQL
//! upsert) and `remote_delete` jobs (a capture's remote copies).
//!
//! A sync batch goes: paused? → read the rows → [`plan_sync`] (what is done already, what
//! waits for an open circuit, what needs its file uploaded) → uploads, 4 at a time, sorted
//! by [`sort_uploads`] → one upsert of every row whose file is there → mark synced. Each
//! remote's answer goes to its circuit ([`super::Circuits`]); a connection-level failure
//! holds the jobs until the circuit's retry time instead of counting an attempt, and a
//! remote coming back makes everything waiting due at once.

use std::sync::Arc;

use futures_util::StreamExt;

use super::{Remote, RemoteFileError, RemoteFiles};
use crate::app::App;
use crate::catalog::{self, CaptureRow};
use crate::jobs::{Effect, Outcome, Report};
use crate::outbox::Job;
use crate::workers::Alive;

/// Uploads in flight at once.
const PARALLEL_UPLOADS: usize = 4;
/// Sync paused by the operator: look again this often (turning it back on through
/// `/admin/config` wakes the runner at once).
const PAUSED_RECHECK_MS: i64 = 60_000;

/// Remote storage as a batch's plan sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    NotConfigured,
    /// Its circuit is open until then.
    HeldUntil(i64),
    Available,
}

/// What to do with a claimed batch before any network call.
#[derive(Debug, Default)]
pub struct Plan {
    /// The capture is gone (deleted meanwhile) or already synced.
    pub done: Vec<Job>,
    /// Remote storage is held back: every job waits until then.
    pub held: Option<(i64, Vec<Job>)>,
    /// The file must be uploaded first.
    pub upload: Vec<(Job, CaptureRow)>,
    /// Ready for the metadata step (file already remote, or no remote storage).
    pub ready: Vec<(Job, CaptureRow)>,
}

/// Sorts a batch's jobs by what they need, from their catalog rows and remote storage.
pub fn plan_sync(jobs: Vec<Job>, rows: &[CaptureRow], storage: Storage) -> Plan {
    let mut plan = Plan::default();
    let mut work = Vec::new();
    for job in jobs {
        match rows.iter().find(|r| r.id == job.target) {
            Some(r) if r.synced_ms.is_none() => work.push((job, r.clone())),
            _ => plan.done.push(job),
        }
    }
    match storage {
        _ if work.is_empty() => {}
        Storage::HeldUntil(until) => {
            plan.held = Some((until, work.into_iter().map(|(j, _)| j).collect()));
        }
        Storage::NotConfigured => plan.ready = work,
        Storage::Available => {
            (plan.ready, plan.upload) = work
                .into_iter()
                .partition(|(_, row)| row.remote_file_ms.is_some());
        }
    }
    plan
}

/// A batch's uploads, sorted by their result.
#[derive(Debug, Default)]
pub struct Uploaded {
    pub uploaded: Vec<(Job, CaptureRow)>,
    /// The local file is gone: nothing to upload, ever.
    pub missing: Vec<(Job, CaptureRow, String)>,
    /// The remote failed them; `remote_error` says how (the first error seen).
    pub failed: Vec<Job>,
    pub remote_error: Option<String>,
}

type UploadResult = ((Job, CaptureRow), Result<(), RemoteFileError>);

pub fn sort_uploads(results: Vec<UploadResult>) -> Uploaded {
    let mut out = Uploaded::default();
    for ((job, row), r) in results {
        match r {
            Ok(()) => out.uploaded.push((job, row)),
            Err(RemoteFileError::Remote(msg)) => {
                out.remote_error.get_or_insert(msg);
                out.failed.push(job);
            }
            Err(RemoteFileError::LocalMissing(msg)) => out.missing.push((job, row, msg)),
        }
    }
    out
}

/// Carries out a batch of sync jobs.
pub async fn run_batch(app: &Arc<App>, alive: &Alive, jobs: Vec<Job>) -> Report {
    let mut report = Report::default();
    if !app.settings.get().sync_enabled {
        let until = app.clock.now_ms() + PAUSED_RECHECK_MS;
        report.set_all(jobs, &Outcome::HoldUntil(until));
        return report;
    }
    let ids: Vec<String> = jobs.iter().map(|j| j.target.clone()).collect();
    let rows = match app
        .catalog
        .read(move |c| catalog::get_captures(c, &ids))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            report.set_all(jobs, &Outcome::retry(e.to_string()));
            return report;
        }
    };
    let storage = match &app.remotes.files {
        None => Storage::NotConfigured,
        Some(_) => app
            .remotes
            .circuits
            .held_until(Remote::Storage, app.clock.now_ms())
            .map_or(Storage::Available, Storage::HeldUntil),
    };
    let plan = plan_sync(jobs, &rows, storage);
    report.set_all(plan.done, &Outcome::Done);
    if let Some((until, held)) = plan.held {
        report.set_all(held, &Outcome::HoldUntil(until));
        return report;
    }
    let mut ready = plan.ready;
    match &app.remotes.files {
        Some(files) if !plan.upload.is_empty() => {
            ready.extend(upload(app, alive, files, plan.upload, &mut report).await);
        }
        // Empty, or no remote storage (then the file step does not apply).
        _ => ready.extend(plan.upload),
    }
    if ready.is_empty() {
        return report;
    }
    if let Some(db) = &app.remotes.db {
        let now = app.clock.now_ms();
        if let Some(until) = app.remotes.circuits.held_until(Remote::Db, now) {
            report.set_all(
                ready.into_iter().map(|(j, _)| j),
                &Outcome::HoldUntil(until),
            );
            return report;
        }
        let rows: Vec<CaptureRow> = ready.iter().map(|(_, r)| r.clone()).collect();
        let result = db.upsert_captures(&rows).await.map_err(|e| {
            let msg = e.to_string();
            tracing::warn!(rows = rows.len(), "remote database upsert failed: {msg}");
            msg
        });
        app.metrics
            .upload_batch(crate::metrics::REMOTE_DB, result.is_ok(), rows.len());
        if let Err(until) = answer(app, Remote::Db, now, result, &mut report) {
            report.set_all(
                ready.into_iter().map(|(j, _)| j),
                &Outcome::HoldUntil(until),
            );
            return report;
        }
    }
    mark_synced(app, ready, &mut report).await;
    report
}

/// Uploads the files of `need`; returns the jobs whose file is now remote.
async fn upload(
    app: &App,
    alive: &Alive,
    files: &RemoteFiles,
    need: Vec<(Job, CaptureRow)>,
    report: &mut Report,
) -> Vec<(Job, CaptureRow)> {
    let settings = app.settings.get();
    let mut event_ids: Vec<String> = need
        .iter()
        .filter_map(|(_, r)| r.event_id.clone())
        .collect();
    event_ids.sort();
    event_ids.dedup();
    // A page without its event's name is still the guest's page: a failed read is not a
    // reason to hold the photo back.
    let events = if event_ids.is_empty() {
        Default::default()
    } else {
        app.catalog
            .read(move |c| catalog::event_names(c, &event_ids))
            .await
            .unwrap_or_default()
    };
    let results: Vec<UploadResult> = futures_util::stream::iter(need)
        .map(|(job, row)| {
            let event = row.event_id.as_ref().and_then(|e| events.get(e)).cloned();
            let path = app.uploads.path_for(&row.id);
            // Rendered now, from the settings in force (operator, retention, template).
            let page = crate::share::page_for(
                &row,
                &settings,
                app.config.public_base_url.as_deref(),
                &app.config.data_dir,
                &app.config.kiosk_tz,
                event,
            );
            async move {
                // The photo under its public token, then its page beside it: the page is
                // what the SMS links to, so it goes up last.
                let mut r = files.put(&row.public_token, &path).await;
                if r.is_ok() {
                    r = files
                        .put_page(&row.public_token, bytes::Bytes::from(page))
                        .await;
                }
                alive.ping();
                ((job, row), r)
            }
        })
        .buffer_unordered(PARALLEL_UPLOADS)
        .collect()
        .await;
    let sorted = sort_uploads(results);
    app.metrics.upload_results(
        crate::metrics::REMOTE_STORAGE,
        [
            sorted.uploaded.len(),
            sorted.failed.len(),
            sorted.missing.len(),
        ],
    );
    for (job, row, msg) in sorted.missing {
        // Mark it and stop trying; start-up reconciliation has already logged the missing
        // file loudly.
        tracing::error!(capture_id = %row.id, "cannot sync, local file missing: {msg}");
        let id = row.id.clone();
        let _ = app
            .catalog
            .write(move |c| catalog::set_file_missing(c, &id, true))
            .await;
        report.set(job, Outcome::retry(format!("local file missing: {msg}")));
    }
    let now = app.clock.now_ms();
    if !sorted.uploaded.is_empty() {
        let ids: Vec<String> = sorted.uploaded.iter().map(|(_, r)| r.id.clone()).collect();
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
        let _ = answer(app, Remote::Storage, now, Ok(()), report);
    }
    if let Some(msg) = sorted.remote_error {
        tracing::warn!(
            failed = sorted.failed.len(),
            "remote storage upload failed: {msg}"
        );
        if let Err(until) = answer(app, Remote::Storage, now, Err(msg), report) {
            report.set_all(sorted.failed, &Outcome::HoldUntil(until));
        }
    }
    sorted.uploaded
}

/// Marks the batch synced in the catalog: the jobs are done, and SMS jobs waiting for
/// these captures can go.
async fn mark_synced(app: &App, ready: Vec<(Job, CaptureRow)>, report: &mut Report) {
    let now = app.clock.now_ms();
    let ids: Vec<String> = ready.iter().map(|(_, r)| r.id.clone()).collect();
    let with_db = app.remotes.db.is_some();
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
            for (job, row) in ready {
                tracing::debug!(capture_id = %row.id, "capture synced");
                report.set(job, Outcome::Done);
            }
            report.effect(Effect::CapturesSynced);
        }
        Err(e) => {
            report.set_all(
                ready.into_iter().map(|(j, _)| j),
                &Outcome::retry(e.to_string()),
            );
        }
    }
}

/// Records a remote's answer in its circuit: `Ok` goes on (noting when the remote came
/// back), `Err` is the time to hold the jobs until.
fn answer(
    app: &App,
    remote: Remote,
    now_ms: i64,
    result: Result<(), String>,
    report: &mut Report,
) -> Result<(), i64> {
    match result {
        Ok(()) => {
            if app.remotes.circuits.success(remote, now_ms) {
                report.effect(Effect::RemoteBack(remote.label()));
            }
            Ok(())
        }
        Err(msg) => Err(app.remotes.circuits.failure(remote, now_ms, &msg)),
    }
}

/// The target of a `remote_delete` job: the capture id and the names of its remote files,
/// which the job needs after the row is gone. `{id}/{token}` (then `/legacy` when the
/// capture was also uploaded as `{id}.jpg`, before public tokens); a bare `{id}` is a job
/// queued before public tokens existed, whose one remote file is `{id}.jpg`.
pub fn delete_target(id: &str, token: &str, legacy: bool) -> String {
    if legacy {
        format!("{id}/{token}/legacy")
    } else {
        format!("{id}/{token}")
    }
}

/// A `remote_delete` target read back: the capture id and the remote files to delete.
pub fn parse_delete_target(target: &str) -> (&str, Vec<String>) {
    let mut parts = target.split('/');
    let id = parts.next().unwrap_or_default();
    match (parts.next(), parts.next()) {
        (Some(token), legacy) => {
            let mut files = vec![
                crate::share::page_name(token),
                crate::share::image_name(token),
            ];
            if legacy == Some("legacy") {
                files.push(format!("{id}.jpg"));
            }
            (id, files)
        }
        (None, _) => (id, vec![format!("{id}.jpg")]),
    }
}

/// Deletes a capture's remote copies (the local part is already done): the page first
/// (it links to the photo), then the photo, then the remote rows.
pub async fn remote_delete(app: &Arc<App>, job: Job) -> Report {
    let mut report = Report::default();
    let now = app.clock.now_ms();
    let (id, names) = parse_delete_target(&job.target);
    let id = id.to_string();
    if let Some(files) = &app.remotes.files {
        let result = match app.remotes.circuits.held_until(Remote::Storage, now) {
            Some(until) => Err(until),
            None => {
                let mut r = Ok(());
                for name in &names {
                    r = files.delete(name).await.map_err(|e| e.to_string());
                    if r.is_err() {
                        break;
                    }
                }
                answer(app, Remote::Storage, now, r, &mut report)
            }
        };
        if let Err(until) = result {
            report.set(job, Outcome::HoldUntil(until));
            return report;
        }
    }
    if let Some(db) = &app.remotes.db {
        let result = match app.remotes.circuits.held_until(Remote::Db, now) {
            Some(until) => Err(until),
            None => {
                let ids = std::slice::from_ref(&id);
                let r = match db.delete_captures(ids).await {
                    Ok(_) => db.delete_sms_log_for_captures(ids).await.map(drop),
                    Err(e) => Err(e),
                };
                answer(
                    app,
                    Remote::Db,
                    now,
                    r.map_err(|e| e.to_string()),
                    &mut report,
                )
            }
        };
        if let Err(until) = result {
            report.set(job, Outcome::HoldUntil(until));
            return report;
        }
    }
    tracing::info!(capture_id = %id, "remote copies deleted");
    report.set(job, Outcome::Done);
    report
}

/// A capture row for tests, with its remote file and synced times.
#[cfg(test)]
pub(crate) fn test_capture(
    id: &str,
    remote_file_ms: Option<i64>,
    synced_ms: Option<i64>,
) -> CaptureRow {
    CaptureRow {
        seq: 1,
        id: id.into(),
        created_ms: 0,
        taken_at: None,
        background_id: None,
        bytes: 1,
        width: 1,
        height: 1,
        sha256: String::new(),
        source_sha256: String::new(),
        source_format: "jpeg".into(),
        file_missing: false,
        remote_file_ms,
        remote_db_ms: None,
        synced_ms,
        event_id: None,
        public_token: format!("tok{id}"),
        legacy_remote: false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::outbox::JobKind;

    fn job(id: u64, target: &str) -> Job {
        Job {
            id,
            kind: JobKind::Sync,
            target: target.into(),
            attempts: 0,
            created_ms: 0,
            next_at_ms: 0,
            leased: true,
            last_error: None,
        }
    }

    fn row(id: &str, remote_file: bool, synced: bool) -> CaptureRow {
        test_capture(id, remote_file.then_some(5), synced.then_some(6))
    }

    fn targets(jobs: &[Job]) -> Vec<&str> {
        jobs.iter().map(|j| j.target.as_str()).collect()
    }

    fn targets_of(work: &[(Job, CaptureRow)]) -> Vec<&str> {
        work.iter().map(|(j, _)| j.target.as_str()).collect()
    }

    fn batch() -> (Vec<Job>, Vec<CaptureRow>) {
        let jobs = vec![
            job(1, "gone"),
            job(2, "synced"),
            job(3, "new"),
            job(4, "filed"),
        ];
        let rows = vec![
            row("synced", true, true),
            row("new", false, false),
            row("filed", true, false),
        ];
        (jobs, rows)
    }

    #[test]
    fn gone_and_synced_captures_are_done_the_rest_split_by_file() {
        let (jobs, rows) = batch();
        let plan = plan_sync(jobs, &rows, Storage::Available);
        assert_eq!(targets(&plan.done), ["gone", "synced"]);
        assert_eq!(targets_of(&plan.upload), ["new"]);
        assert_eq!(targets_of(&plan.ready), ["filed"]);
        assert!(plan.held.is_none());
    }

    #[test]
    fn without_remote_storage_everything_goes_to_the_metadata_step() {
        let (jobs, rows) = batch();
        let plan = plan_sync(jobs, &rows, Storage::NotConfigured);
        assert!(plan.upload.is_empty());
        assert_eq!(targets_of(&plan.ready), ["new", "filed"]);
    }

    #[test]
    fn an_open_storage_circuit_holds_every_job_that_has_work() {
        let (jobs, rows) = batch();
        let plan = plan_sync(jobs, &rows, Storage::HeldUntil(9_000));
        assert_eq!(targets(&plan.done), ["gone", "synced"]);
        let (until, held) = plan.held.unwrap();
        assert_eq!((until, targets(&held)), (9_000, vec!["new", "filed"]));
        assert!(plan.upload.is_empty() && plan.ready.is_empty());
    }

    #[test]
    fn a_batch_with_nothing_to_do_is_not_held() {
        let plan = plan_sync(vec![job(1, "gone")], &[], Storage::HeldUntil(9_000));
        assert_eq!(targets(&plan.done), ["gone"]);
        assert!(plan.held.is_none());
    }

    #[test]
    fn delete_targets_name_every_remote_file() {
        let t = delete_target("guest-1", "ab12", false);
        assert_eq!(
            parse_delete_target(&t),
            (
                "guest-1",
                vec!["ab12.html".to_string(), "ab12.jpg".to_string()]
            )
        );
        let t = delete_target("guest-1", "ab12", true);
        assert_eq!(parse_delete_target(&t).1[2], "guest-1.jpg");
        // Queued by a version before public tokens.
        assert_eq!(
            parse_delete_target("guest-1"),
            ("guest-1", vec!["guest-1.jpg".to_string()])
        );
    }

    #[test]
    fn uploads_are_sorted_by_result() {
        let results = vec![
            ((job(1, "a"), row("a", false, false)), Ok(())),
            (
                (job(2, "b"), row("b", false, false)),
                Err(RemoteFileError::Remote("503".into())),
            ),
            (
                (job(3, "c"), row("c", false, false)),
                Err(RemoteFileError::LocalMissing("gone".into())),
            ),
            (
                (job(4, "d"), row("d", false, false)),
                Err(RemoteFileError::Remote("timeout".into())),
            ),
        ];
        let s = sort_uploads(results);
        assert_eq!(targets_of(&s.uploaded), ["a"]);
        assert_eq!(targets(&s.failed), ["b", "d"]);
        assert_eq!(s.remote_error.as_deref(), Some("503"), "the first error");
        assert_eq!(s.missing.len(), 1);
        assert_eq!(
            (s.missing[0].0.target.as_str(), s.missing[0].2.as_str()),
            ("c", "gone")
        );
    }
}
