//! The handlers of `sms` jobs (send one text through OVH, exactly once) and `sms_log` jobs
//! (copy a final SMS row, without its number, to the remote SMS log).
//!
//! An SMS job goes: [`decide_sms`] on its row (final already, not configured, expired, or
//! on to its capture) → [`decide_with_capture`] (cancelled, wait for sync, or send) → if an
//! earlier attempt's outcome is unknown, ask OVH ([`after_check`]) → record the attempt →
//! send → [`after_send`]. Each decision is a plain function; the catalog writes and OVH
//! calls around them are small. A job that ends with the row final queues its log copy.

use std::sync::Arc;
use std::time::Duration;

use super::ovh;
use super::status::SmsStatus;
use crate::app::App;
use crate::catalog::{self, CaptureRow, CatalogError, SmsRow};
use crate::jobs::{Effect, Outcome, Report, Wait};
use crate::outbox::{Job, JobKind};
use crate::settings::RuntimeSettings;

/// Retry of a local failure (the catalog was busy).
const LOCAL_RETRY: Duration = Duration::from_secs(2);
/// SMS no longer configured: look again this often.
const NOT_CONFIGURED_RETRY: Duration = Duration::from_secs(3600);
/// While the capture is not yet in remote storage, look again this often (the runner also
/// wakes SMS jobs each time captures get synced).
const WAIT_FOR_SYNC: Duration = Duration::from_secs(30);
/// Retry of an SMS log copy the catalog could not read.
const LOG_LOCAL_RETRY: Duration = Duration::from_secs(300);

/// What an SMS job does first, from its row alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsStep {
    /// Final already: nothing to do (its log copy was queued when it became final).
    AlreadyFinal,
    /// SMS is not configured (any more).
    NotConfigured,
    /// Not sent in time, and no attempt is pending (a pending one is checked first).
    Expire,
    /// On to its capture.
    LoadCapture,
}

pub fn decide_sms(row: &SmsRow, configured: bool, now_ms: i64) -> SmsStep {
    if SmsStatus::is_final_str(&row.status) {
        SmsStep::AlreadyFinal
    } else if !configured {
        SmsStep::NotConfigured
    } else if now_ms > row.expires_ms && row.attempt_started_ms.is_none() {
        SmsStep::Expire
    } else {
        SmsStep::LoadCapture
    }
}

/// What an SMS job does once its capture is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureStep<'a> {
    /// The capture was deleted.
    Cancel,
    /// Not in remote storage yet; `mark` when the row does not say so yet.
    WaitForSync { mark: bool },
    /// Send it; `check_first` when an earlier attempt's outcome is unknown.
    Send {
        capture: &'a CaptureRow,
        check_first: bool,
    },
}

pub fn decide_with_capture<'a>(
    row: &SmsRow,
    capture: Option<&'a CaptureRow>,
    remote_storage: bool,
) -> CaptureStep<'a> {
    match capture {
        None => CaptureStep::Cancel,
        Some(c) if remote_storage && c.remote_file_ms.is_none() => CaptureStep::WaitForSync {
            mark: row.status != SmsStatus::WaitingForSync.as_str(),
        },
        Some(capture) => CaptureStep::Send {
            capture,
            check_first: row.attempt_started_ms.is_some(),
        },
    }
}

/// What OVH's answer about an earlier attempt means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Earlier {
    /// It reached OVH: the text is sent, not to be sent again.
    Reached,
    /// It did not, and the request has expired meanwhile.
    Expire,
    /// It did not: send now.
    Resend,
    /// OVH could not tell: retry later.
    Unknown(String),
}

/// `found`: whether OVH has a job with the row's tag, or why it could not say.
pub fn after_check(found: Result<bool, String>, row: &SmsRow, now_ms: i64) -> Earlier {
    match found {
        Ok(true) => Earlier::Reached,
        Ok(false) if now_ms > row.expires_ms => Earlier::Expire,
        Ok(false) => Earlier::Resend,
        Err(e) => Earlier::Unknown(format!("cannot check an earlier attempt at OVH: {e}")),
    }
}

/// How a send ended.
#[derive(Debug)]
pub enum AfterSend {
    Sent(ovh::SmsJobResult),
    /// A transient failure: send again after a backoff.
    Retry(String),
    /// Rejected receiver, bad credentials, unknown sender: sending again cannot help.
    Fail(String),
}

pub fn after_send(result: Result<ovh::SmsJobResult, ovh::OvhError>) -> AfterSend {
    match result {
        Ok(res) => AfterSend::Sent(res),
        Err(e) if e.is_transient() => AfterSend::Retry(e.to_string()),
        Err(e) => AfterSend::Fail(e.to_string()),
    }
}

/// The OVH request for `row`, or `None` when its number is no longer stored.
pub fn ovh_request(
    row: &SmsRow,
    capture: &CaptureRow,
    settings: &RuntimeSettings,
    sender: &str,
    base_url: &str,
    now_ms: i64,
) -> Option<ovh::SmsJobRequest> {
    let phone = row.phone.clone()?;
    let links = crate::share::links(Some(base_url), &capture.public_token)?;
    let link = links.sms_link(settings.sms_link);
    let minutes_left = ((row.expires_ms - now_ms) / 60_000).clamp(1, 2880) as u32;
    Some(ovh::SmsJobRequest {
        message: settings.sms_template.replace("{link}", link),
        receivers: vec![phone],
        sender: Some(sender.to_string()),
        no_stop_clause: Some(true),
        priority: Some(ovh::SmsPriority::High),
        validity_period: Some(minutes_left),
        tag: Some(row.tag.clone()),
    })
}

async fn load_row(app: &App, id: &str) -> Result<Option<SmsRow>, CatalogError> {
    let id = id.to_string();
    app.catalog.read(move |c| catalog::get_sms(c, &id)).await
}

/// A catalog write whose failure is only logged (the row is rewritten on the next run).
async fn write_logged(
    app: &App,
    f: impl FnOnce(&catalog::Tx<'_>) -> Result<(), CatalogError> + Send + 'static,
) {
    if let Err(e) = app.catalog.write(f).await {
        tracing::error!("catalog update failed: {e}");
    }
}

async fn set_status(app: &App, id: &str, status: SmsStatus, error: Option<&str>) {
    let (id, error) = (id.to_string(), error.map(str::to_string));
    write_logged(app, move |c| {
        catalog::set_sms_status(c, &id, status.as_str(), error.as_deref())
    })
    .await;
}

/// The row is final: the job is done, and its copy goes to the remote SMS log.
fn finish(app: &App, job: Job) -> Report {
    let target = job.target.clone();
    let mut report = Report::one(job, Outcome::Done);
    if app.remotes.db.is_some() {
        report.effect(Effect::Push(JobKind::SmsLog, target));
    }
    report
}

fn not_configured() -> Outcome {
    Outcome::retry_in("SMS not configured", NOT_CONFIGURED_RETRY)
}

/// Whether OVH already has a job with this tag (pending or sent).
async fn known_at_ovh(
    client: &ovh::OvhClient,
    service: &str,
    tag: &str,
) -> Result<bool, ovh::OvhError> {
    if !client.outgoing_ids_by_tag(service, tag).await?.is_empty() {
        return Ok(true);
    }
    for id in client.pending_job_ids(service).await? {
        if client.job_tag(service, id).await?.as_deref() == Some(tag) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Carries out one SMS job.
pub async fn send(app: &Arc<App>, job: Job) -> Report {
    let row = match load_row(app, &job.target).await {
        Ok(Some(r)) => r,
        Ok(None) => return Report::one(job, Outcome::Done),
        Err(e) => return Report::one(job, Outcome::retry_in(e.to_string(), LOCAL_RETRY)),
    };
    let id = row.id.clone();
    let (client, ovh_cfg, base) = (
        app.sms.client.as_ref(),
        app.config.ovh.as_ref(),
        app.config.public_base_url.as_deref(),
    );
    let now = app.clock.now_ms();
    let sms = match (client, ovh_cfg, base) {
        (Some(client), Some(ovh_cfg), Some(base)) => Some((client, ovh_cfg, base)),
        _ => None,
    };
    match decide_sms(&row, sms.is_some(), now) {
        SmsStep::AlreadyFinal => return Report::one(job, Outcome::Done),
        SmsStep::NotConfigured => return Report::one(job, not_configured()),
        SmsStep::Expire => {
            tracing::warn!(sms_id = %id, capture_id = %row.capture_id, "SMS expired before it could be sent");
            let why = "expired: not sent in time (the photo was not online soon enough)";
            set_status(app, &id, SmsStatus::Expired, Some(why)).await;
            return finish(app, job);
        }
        SmsStep::LoadCapture => {}
    }
    let Some((client, ovh_cfg, base)) = sms else {
        return Report::one(job, not_configured());
    };
    let cap_id = row.capture_id.clone();
    let capture = match app
        .catalog
        .read(move |c| catalog::get_capture(c, &cap_id))
        .await
    {
        Ok(c) => c,
        Err(e) => return Report::one(job, Outcome::retry_in(e.to_string(), LOCAL_RETRY)),
    };
    let (capture, check_first) =
        match decide_with_capture(&row, capture.as_ref(), app.remotes.files.is_some()) {
            CaptureStep::Cancel => {
                set_status(
                    app,
                    &id,
                    SmsStatus::Cancelled,
                    Some("the capture was deleted"),
                )
                .await;
                return finish(app, job);
            }
            CaptureStep::WaitForSync { mark } => {
                if mark {
                    set_status(app, &id, SmsStatus::WaitingForSync, None).await;
                }
                let until = app.clock.now_ms() + WAIT_FOR_SYNC.as_millis() as i64;
                return Report::one(job, Outcome::HoldUntil(until));
            }
            CaptureStep::Send {
                capture,
                check_first,
            } => (capture, check_first),
        };
    let service = ovh_cfg.service_name.as_str();

    // Outcome of an earlier attempt unknown: ask OVH before anything else.
    if check_first {
        let found = known_at_ovh(client, service, &row.tag)
            .await
            .map_err(|e| e.to_string());
        match after_check(found, &row, now) {
            Earlier::Reached => {
                tracing::info!(sms_id = %id, "an earlier attempt had reached OVH: marked sent, not resent");
                let (i, t) = (id.clone(), app.clock.now_ms());
                write_logged(app, move |c| catalog::mark_sms_sent(c, &i, t, "recovered")).await;
                return finish(app, job);
            }
            Earlier::Expire => {
                let why = "expired: not sent in time";
                set_status(app, &id, SmsStatus::Expired, Some(why)).await;
                return finish(app, job);
            }
            Earlier::Resend => {
                let i = id.clone();
                write_logged(app, move |c| {
                    catalog::clear_sms_attempt(
                        c,
                        &i,
                        SmsStatus::Queued.as_str(),
                        "previous attempt did not reach OVH",
                    )
                })
                .await;
            }
            Earlier::Unknown(msg) => {
                tracing::warn!(sms_id = %id, "{msg}");
                return Report::one(job, Outcome::retry(msg));
            }
        }
    }
    let settings = app.settings.get();
    let Some(req) = ovh_request(&row, capture, &settings, &ovh_cfg.sender, base, now) else {
        let why = "the phone number is no longer stored";
        set_status(app, &id, SmsStatus::Failed, Some(why)).await;
        return finish(app, job);
    };
    let (i, t) = (id.clone(), now);
    if let Err(e) = app
        .catalog
        .write(move |c| catalog::start_sms_attempt(c, &i, t))
        .await
    {
        return Report::one(job, Outcome::retry_in(e.to_string(), LOCAL_RETRY));
    }
    match after_send(client.send_sms(service, &req).await) {
        AfterSend::Sent(res) => {
            let ids = res
                .ids
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let (i, t) = (id.clone(), app.clock.now_ms());
            if let Err(e) = app
                .catalog
                .write(move |c| catalog::mark_sms_sent(c, &i, t, &ids))
                .await
            {
                // The attempt stays recorded: the next run finds the tag at OVH.
                return Report::one(job, Outcome::retry_in(e.to_string(), LOCAL_RETRY));
            }
            tracing::info!(sms_id = %id, capture_id = %capture.id, phone = %row.phone_masked, "SMS sent");
            app.metrics.sms_attempt("sent");
            app.sms.health.sent(res.total_credits_removed);
            finish(app, job)
        }
        AfterSend::Retry(msg) => {
            tracing::warn!(sms_id = %id, "SMS attempt failed, will retry: {msg}");
            app.metrics.sms_attempt("retry");
            app.sms.health.error(&msg);
            set_status(app, &id, SmsStatus::Queued, Some(&msg)).await;
            Report::one(job, Outcome::retry(msg))
        }
        AfterSend::Fail(msg) => {
            tracing::error!(sms_id = %id, "SMS failed permanently: {msg}");
            app.metrics.sms_attempt("failed");
            app.sms.health.error(&msg);
            let failed = SmsStatus::Failed.as_str();
            write_logged(app, move |c| {
                catalog::clear_sms_attempt(c, &id, failed, &msg)?;
                catalog::set_sms_status(c, &id, failed, Some(&msg))
            })
            .await;
            finish(app, job)
        }
    }
}

/// Copies an SMS row (no phone number, only its HMAC) to the remote SMS log.
pub async fn copy_to_log(app: &Arc<App>, job: Job) -> Report {
    let Some(db) = &app.remotes.db else {
        return Report::one(job, Outcome::Done);
    };
    let row = match load_row(app, &job.target).await {
        Ok(Some(r)) => r,
        Ok(None) => return Report::one(job, Outcome::Done),
        Err(e) => return Report::one(job, Outcome::retry_in(e.to_string(), LOG_LOCAL_RETRY)),
    };
    // The consent text's id (issue 20) goes with the row.
    let sms_id = row.id.clone();
    let consent = match app
        .catalog
        .read(move |c| catalog::sms_consent(c, &sms_id))
        .await
    {
        Ok(c) => c,
        Err(e) => return Report::one(job, Outcome::retry_in(e.to_string(), LOG_LOCAL_RETRY)),
    };
    let copied = match db.upsert_sms_log(&row).await {
        Ok(()) => match &consent {
            Some(c) => db.set_sms_log_consent(&row.id, c).await,
            None => Ok(()),
        },
        Err(e) => Err(e),
    };
    match copied {
        Ok(()) => Report::one(job, Outcome::Done),
        Err(e) => {
            let error = e.to_string();
            let until =
                app.remotes
                    .circuits
                    .failure(crate::sync::Remote::Db, app.clock.now_ms(), &error);
            let after = Wait::Until(until);
            Report::one(job, Outcome::RetryAfter { error, after })
        }
    }
}
