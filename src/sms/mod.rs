//! SMS through the OVH API: requests, abuse limits, and the job that sends them.
//!
//! A request (`POST /api/send-sms`) records an SMS row in the catalog and pushes an `sms`
//! job. The job waits until the capture is in remote storage (a link that 404s is worse
//! than a late SMS; without remote storage it sends at once), then calls OVH.
//!
//! No duplicates: before each call the attempt is recorded (`status = sending`,
//! `attempt_started_ms`). If a previous attempt's outcome is unknown (timeout, dropped
//! connection, crash, power cut), the job first looks its unique `tag` up in OVH's pending
//! jobs and outgoing list, and only resends when OVH has no trace of it. OVH answers 200
//! for accepted jobs, so "accepted but the answer was lost" is found by that lookup.
//!
//! Phone numbers: the clear E.164 number is kept only until the SMS is final (sent,
//! failed, expired, cancelled); an HMAC keyed with `SECRET_KEY` stays for the limits,
//! statistics and erasure. Logs and answers only ever show the masked form.

pub mod ovh;
pub mod phone;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::api::error::{ApiError, ApiResult};
use crate::app::App;
use crate::catalog::{self, SmsRow};
use crate::outbox::{backoff, Job, JobKind};

/// Retries of transient OVH failures.
const SMS_BACKOFF_BASE: Duration = Duration::from_secs(2);
const SMS_BACKOFF_CAP: Duration = Duration::from_secs(300);
/// While the capture is not yet in remote storage, look again this often (the sync
/// worker also wakes SMS jobs each time captures get synced).
const WAIT_FOR_SYNC: Duration = Duration::from_secs(30);
/// A claimed SMS job whose worker vanished is retried after this.
pub const SMS_LEASE: Duration = Duration::from_secs(120);

/// HMAC-SHA256 of a phone number, hex.
pub fn phone_hmac(secret: &str, e164: &str) -> String {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length; this branch cannot be reached.
        Err(_) => return String::new(),
    };
    mac.update(e164.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Builds the OVH client when SMS is configured.
pub fn client_from_config(
    config: &crate::config::Config,
) -> Result<Option<ovh::OvhClient>, String> {
    let Some(o) = &config.ovh else {
        return Ok(None);
    };
    let creds = ovh::OvhCredentials {
        app_key: o.app_key.clone(),
        app_secret: o.app_secret.expose().to_string(),
        consumer_key: o.consumer_key.expose().to_string(),
    };
    let timeout = Duration::from_secs(config.ovh_timeout_secs);
    ovh::OvhClient::new(&o.endpoint, creds, timeout)
        .map(Some)
        .map_err(|e| format!("OVH client: {e}"))
}

/// What `POST /api/send-sms` and `GET /api/sms/{id}` answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SmsAnswer {
    pub sms_id: String,
    pub capture_id: String,
    #[schema(value_type = crate::api::openapi::SmsStatus)]
    pub status: &'static str,
    /// Masked.
    pub phone: String,
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    pub created_at: String,
}

/// The public status: `sending` shows as `queued`; expired and cancelled as `failed`
/// (with the reason in `last_error`).
pub fn public_status(s: &str) -> &'static str {
    match s {
        "waiting_for_sync" => "waiting_for_sync",
        "queued" | "sending" => "queued",
        "sent" => "sent",
        _ => "failed",
    }
}

impl From<&SmsRow> for SmsAnswer {
    fn from(r: &SmsRow) -> Self {
        SmsAnswer {
            sms_id: r.id.clone(),
            capture_id: r.capture_id.clone(),
            status: public_status(&r.status),
            phone: r.phone_masked.clone(),
            attempts: r.attempts,
            last_error: r.last_error.clone(),
            sent_at: r.sent_ms.map(catalog::format_ms),
            created_at: catalog::format_ms(r.created_ms),
        }
    }
}

/// Records an SMS request. Returns (201/200, answer): a repeated request for the same
/// capture and number gets the existing request back, not a second text.
pub async fn request(
    app: &App,
    capture_id: &str,
    raw_phone: &str,
) -> ApiResult<(StatusCode, SmsAnswer)> {
    let settings = app.settings.get();
    if app.sms_client.is_none() || app.config.public_base_url.is_none() || !settings.sms_enabled {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sms_not_configured",
            "SMS is not configured on this kiosk (OVH credentials and PUBLIC_BASE_URL) or is disabled",
        ));
    }
    if !crate::ids::is_valid_id(capture_id) {
        return Err(ApiError::bad_request(
            "invalid_id",
            "capture_id is not a valid id",
        ));
    }
    let e164 = phone::normalize(raw_phone, phone::Region::FR).map_err(|e| {
        let code = match e {
            phone::PhoneError::PremiumRate | phone::PhoneError::ShortNumber => "premium_number",
            _ => "invalid_phone",
        };
        ApiError::bad_request(code, format!("phone number refused: {e}"))
    })?;
    let hmac = phone_hmac(app.secret_key.expose(), &e164);
    let masked = phone::mask(&e164);
    let now = app.clock.now_ms();
    let sms_id = crate::ids::new_id();
    let row = SmsRow {
        id: sms_id.clone(),
        capture_id: capture_id.to_string(),
        phone: Some(e164),
        phone_hmac: hmac.clone(),
        phone_masked: masked,
        status: String::new(),
        attempts: 0,
        last_error: None,
        tag: format!("selfie-kiosk-{sms_id}"),
        ovh_ids: None,
        created_ms: now,
        expires_ms: now + settings.sms_expiry_minutes as i64 * 60_000,
        attempt_started_ms: None,
        sent_ms: None,
    };
    let storage = app.remote_files.is_some();
    let outcome = app
        .catalog
        .write(move |tx| {
            let Some(capture) = catalog::get_capture(tx, &row.capture_id)? else {
                return Ok(Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "capture_not_found",
                    "no capture with this id",
                )));
            };
            if let Some(existing) = catalog::find_sms_for(tx, &row.capture_id, &row.phone_hmac)? {
                return Ok(Ok((StatusCode::OK, existing)));
            }
            let (per_phone, per_capture, hour, day) =
                catalog::sms_counts(tx, &row.phone_hmac, &row.capture_id, now)?;
            let limited = |code: &'static str, what: String| {
                Ok(Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    code,
                    what,
                )))
            };
            if per_phone >= settings.sms_per_phone_per_hour as i64 {
                return limited(
                    "rate_limited_phone",
                    format!(
                        "at most {} SMS per number per hour",
                        settings.sms_per_phone_per_hour
                    ),
                );
            }
            if per_capture >= settings.sms_per_capture as i64 {
                return limited(
                    "rate_limited_capture",
                    format!("at most {} SMS per photo", settings.sms_per_capture),
                );
            }
            if hour >= settings.sms_per_hour as i64 {
                return limited(
                    "rate_limited_hourly",
                    format!(
                        "the kiosk's hourly SMS budget ({}) is used up",
                        settings.sms_per_hour
                    ),
                );
            }
            if day >= settings.sms_per_day as i64 {
                return limited(
                    "rate_limited_daily",
                    format!(
                        "the kiosk's daily SMS budget ({}) is used up",
                        settings.sms_per_day
                    ),
                );
            }
            let mut row = row;
            row.status = if storage && capture.remote_file_ms.is_none() {
                "waiting_for_sync".into()
            } else {
                "queued".into()
            };
            catalog::insert_sms(tx, &row)?;
            Ok(Ok((StatusCode::ACCEPTED, row)))
        })
        .await??;
    let (status, row) = outcome;
    if status == StatusCode::ACCEPTED {
        app.outbox
            .push_durable(JobKind::Sms, &row.id, now, now)
            .await?;
        tracing::info!(sms_id = %row.id, capture_id = %row.capture_id, phone = %row.phone_masked, "SMS requested");
    }
    Ok((status, SmsAnswer::from(&row)))
}

pub async fn get(app: &App, sms_id: &str) -> ApiResult<SmsAnswer> {
    if !crate::ids::is_valid_id(sms_id) {
        return Err(ApiError::bad_request("invalid_id", "not a valid SMS id"));
    }
    let id = sms_id.to_string();
    let row = app
        .catalog
        .read(move |c| catalog::get_sms(c, &id))
        .await?
        .ok_or_else(|| ApiError::not_found("no SMS request with this id"))?;
    Ok(SmsAnswer::from(&row))
}

fn reschedule(app: &App, job: &Job, after: Duration, error: Option<&str>) {
    let at = app.clock.now_ms() + after.as_millis() as i64;
    if let Err(e) = app.outbox.reschedule(job, at, error) {
        tracing::error!(job_id = job.id, "outbox reschedule failed: {e}");
    }
}

fn finish(app: &App, job: &Job) {
    if let Err(e) = app.outbox.ack(job) {
        tracing::error!(job_id = job.id, "outbox ack failed: {e}");
    }
    let now = app.clock.now_ms();
    if app.remote_db.is_some() {
        if let Err(e) = app.outbox.push(JobKind::SmsLog, &job.target, now, now) {
            tracing::error!("could not queue the SMS log job: {e}");
        }
    }
}

async fn set_status(app: &App, id: &str, status: &'static str, error: Option<String>) {
    let id = id.to_string();
    if let Err(e) = app
        .catalog
        .write(move |c| catalog::set_sms_status(c, &id, status, error.as_deref()))
        .await
    {
        tracing::error!("catalog update failed: {e}");
    }
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

/// The SMS row a job is about. A row that no longer exists ends the job; a catalog error
/// retries it after `retry`.
async fn load_row(app: &App, job: &Job, retry: Duration) -> Option<SmsRow> {
    let lookup = job.target.clone();
    match app
        .catalog
        .read(move |c| catalog::get_sms(c, &lookup))
        .await
    {
        Ok(Some(r)) => Some(r),
        Ok(None) => {
            let _ = app.outbox.ack(job);
            None
        }
        Err(e) => {
            reschedule(app, job, retry, Some(&e.to_string()));
            None
        }
    }
}

/// Carries out one SMS job.
pub async fn run_job(app: &Arc<App>, job: Job) {
    let id = job.target.clone();
    let Some(row) = load_row(app, &job, SMS_BACKOFF_BASE).await else {
        return;
    };
    if catalog::SMS_FINAL.contains(&row.status.as_str()) {
        let _ = app.outbox.ack(&job);
        return;
    }
    let (Some(client), Some(ovh_cfg), Some(base)) = (
        app.sms_client.clone(),
        app.config.ovh.clone(),
        app.config.public_base_url.clone(),
    ) else {
        reschedule(
            app,
            &job,
            Duration::from_secs(3600),
            Some("SMS not configured"),
        );
        return;
    };
    let now = app.clock.now_ms();
    let attempt_pending = row.attempt_started_ms.is_some();
    if now > row.expires_ms && !attempt_pending {
        tracing::warn!(sms_id = %id, capture_id = %row.capture_id, "SMS expired before it could be sent");
        set_status(
            app,
            &id,
            "expired",
            Some("expired: not sent in time (the photo was not online soon enough)".into()),
        )
        .await;
        finish(app, &job);
        return;
    }
    let cap_id = row.capture_id.clone();
    let capture = match app
        .catalog
        .read(move |c| catalog::get_capture(c, &cap_id))
        .await
    {
        Ok(c) => c,
        Err(e) => {
            reschedule(app, &job, SMS_BACKOFF_BASE, Some(&e.to_string()));
            return;
        }
    };
    let Some(capture) = capture else {
        set_status(
            app,
            &id,
            "cancelled",
            Some("the capture was deleted".into()),
        )
        .await;
        finish(app, &job);
        return;
    };
    if app.remote_files.is_some() && capture.remote_file_ms.is_none() {
        if row.status != "waiting_for_sync" {
            set_status(app, &id, "waiting_for_sync", None).await;
        }
        reschedule(app, &job, WAIT_FOR_SYNC, None);
        return;
    }
    let service = ovh_cfg.service_name.clone();

    // Outcome of an earlier attempt unknown: ask OVH before anything else.
    if attempt_pending {
        match known_at_ovh(&client, &service, &row.tag).await {
            Ok(true) => {
                tracing::info!(sms_id = %id, "an earlier attempt had reached OVH: marked sent, not resent");
                let (i, t) = (id.clone(), app.clock.now_ms());
                let _ = app
                    .catalog
                    .write(move |c| catalog::mark_sms_sent(c, &i, t, "recovered"))
                    .await;
                finish(app, &job);
                return;
            }
            Ok(false) => {
                if now > row.expires_ms {
                    set_status(
                        app,
                        &id,
                        "expired",
                        Some("expired: not sent in time".into()),
                    )
                    .await;
                    finish(app, &job);
                    return;
                }
                let i = id.clone();
                let _ = app
                    .catalog
                    .write(move |c| {
                        catalog::clear_sms_attempt(
                            c,
                            &i,
                            "queued",
                            "previous attempt did not reach OVH",
                        )
                    })
                    .await;
            }
            Err(e) => {
                let msg = format!("cannot check an earlier attempt at OVH: {e}");
                tracing::warn!(sms_id = %id, "{msg}");
                reschedule(
                    app,
                    &job,
                    backoff(job.attempts, SMS_BACKOFF_BASE, SMS_BACKOFF_CAP),
                    Some(&msg),
                );
                return;
            }
        }
    }
    let Some(phone) = row.phone.clone() else {
        set_status(
            app,
            &id,
            "failed",
            Some("the phone number is no longer stored".into()),
        )
        .await;
        finish(app, &job);
        return;
    };
    let settings = app.settings.get();
    let link = format!("{base}{}.jpg", capture.id);
    let message = settings.sms_template.replace("{link}", &link);
    let minutes_left = ((row.expires_ms - now) / 60_000).clamp(1, 2880) as u32;
    let req = ovh::SmsJobRequest {
        message,
        receivers: vec![phone],
        sender: Some(ovh_cfg.sender.clone()),
        no_stop_clause: Some(true),
        priority: Some(ovh::SmsPriority::High),
        validity_period: Some(minutes_left),
        tag: Some(row.tag.clone()),
    };
    let (i, t) = (id.clone(), now);
    if let Err(e) = app
        .catalog
        .write(move |c| catalog::start_sms_attempt(c, &i, t))
        .await
    {
        reschedule(app, &job, SMS_BACKOFF_BASE, Some(&e.to_string()));
        return;
    }
    match client.send_sms(&service, &req).await {
        Ok(res) => {
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
                reschedule(app, &job, SMS_BACKOFF_BASE, Some(&e.to_string()));
                return;
            }
            tracing::info!(sms_id = %id, capture_id = %capture.id, phone = %row.phone_masked, "SMS sent");
            app.sms_health.sent(res.total_credits_removed);
            finish(app, &job);
        }
        Err(e) if e.is_transient() => {
            let msg = e.to_string();
            tracing::warn!(sms_id = %id, "SMS attempt failed, will retry: {msg}");
            app.sms_health.error(&msg);
            set_status(app, &id, "queued", Some(msg.clone())).await;
            reschedule(
                app,
                &job,
                backoff(job.attempts, SMS_BACKOFF_BASE, SMS_BACKOFF_CAP),
                Some(&msg),
            );
        }
        Err(e) => {
            // Rejected receiver, bad credentials, unknown sender: sending again cannot help.
            let msg = e.to_string();
            tracing::error!(sms_id = %id, "SMS failed permanently: {msg}");
            app.sms_health.error(&msg);
            let (i, m) = (id.clone(), msg.clone());
            let _ = app
                .catalog
                .write(move |c| {
                    catalog::clear_sms_attempt(c, &i, "failed", &m)
                        .and_then(|_| catalog::set_sms_status(c, &i, "failed", Some(&m)))
                })
                .await;
            finish(app, &job);
        }
    }
}

/// Copies an SMS row (no phone number, only its HMAC) to the remote SMS log.
pub async fn run_log_job(app: &Arc<App>, job: Job) {
    let Some(db) = app.remote_db.clone() else {
        let _ = app.outbox.ack(&job);
        return;
    };
    let Some(row) = load_row(app, &job, SMS_BACKOFF_CAP).await else {
        return;
    };
    match db.upsert_sms_log(&row).await {
        Ok(()) => {
            let _ = app.outbox.ack(&job);
        }
        Err(e) => {
            let now = app.clock.now_ms();
            let until = app
                .sync_state
                .failure(crate::sync::Remote::Db, now, &e.to_string());
            let _ = app.outbox.reschedule(&job, until, Some(&e.to_string()));
        }
    }
}

/// What `/health` shows of SMS.
#[derive(Debug, Default)]
pub struct SmsHealth(std::sync::Mutex<SmsHealthState>);

#[derive(Debug, Default, Clone, Serialize)]
pub struct SmsHealthState {
    pub credits_left: Option<f64>,
    pub credits_checked_ms: Option<i64>,
    pub last_sent_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
}

impl SmsHealth {
    fn lock(&self) -> std::sync::MutexGuard<'_, SmsHealthState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn snapshot(&self) -> SmsHealthState {
        self.lock().clone()
    }
    pub fn sent(&self, credits_used: f64) {
        let mut s = self.lock();
        s.last_sent_ms = Some(catalog::now_ms());
        if let Some(c) = s.credits_left.as_mut() {
            *c -= credits_used;
        }
    }
    pub fn error(&self, msg: &str) {
        let mut s = self.lock();
        s.last_error = Some(msg.chars().take(300).collect());
        s.last_error_ms = Some(catalog::now_ms());
    }
    pub fn credits(&self, credits: f64) {
        let mut s = self.lock();
        s.credits_left = Some(credits);
        s.credits_checked_ms = Some(catalog::now_ms());
    }
}

/// `selfie-kiosk sms-test PHONE`: checks credentials, credits and sender end to end, then
/// sends one text (unless `dry_run`). Returns the report lines; errors say what to fix.
pub async fn sms_test(
    config: &crate::config::Config,
    raw_phone: &str,
    dry_run: bool,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let Some(o) = &config.ovh else {
        return Err("SMS is not configured: set OVH_APP_KEY, OVH_APP_SECRET, OVH_CONSUMER_KEY, SMS_SERVICE_NAME and SMS_SENDER".into());
    };
    let e164 = phone::normalize(raw_phone, phone::Region::FR)
        .map_err(|e| format!("phone number refused: {e}"))?;
    let client = client_from_config(config)?.ok_or("SMS is not configured")?;
    let delta = client
        .refresh_time_delta()
        .await
        .map_err(|e| format!("cannot reach the OVH API at {}: {e}", client.base_url()))?;
    out.push(format!(
        "OVH API reachable at {} (clock difference {delta:+} s)",
        client.base_url()
    ));
    let account = client
        .sms_account(&o.service_name)
        .await
        .map_err(|e| format!("credentials or service name rejected: {e}"))?;
    out.push(format!(
        "service {}: {} credits left{}",
        o.service_name,
        account.credits_left,
        account
            .status
            .map(|s| format!(", status {s}"))
            .unwrap_or_default()
    ));
    let senders = client
        .senders(&o.service_name)
        .await
        .map_err(|e| format!("cannot list senders: {e}"))?;
    if !senders.iter().any(|s| s == &o.sender) {
        return Err(format!(
            "sender '{}' is not registered on {} (registered: {}); create it in the OVH manager or fix SMS_SENDER",
            o.sender,
            o.service_name,
            senders.join(", ")
        ));
    }
    out.push(format!("sender '{}' is registered", o.sender));
    if dry_run {
        out.push("dry run: no text sent".into());
        return Ok(out);
    }
    let tag = format!("selfie-kiosk-test-{}", crate::ids::random_hex(6));
    let req = ovh::SmsJobRequest {
        message: format!(
            "selfie-kiosk {}: test SMS from kiosk {}",
            env!("CARGO_PKG_VERSION"),
            config.kiosk_id
        ),
        receivers: vec![e164.clone()],
        sender: Some(o.sender.clone()),
        no_stop_clause: Some(true),
        priority: Some(ovh::SmsPriority::High),
        validity_period: Some(60),
        tag: Some(tag),
    };
    let res = client
        .send_sms(&o.service_name, &req)
        .await
        .map_err(|e| format!("sending failed: {e}"))?;
    out.push(format!(
        "test SMS accepted by OVH for {} (job ids {:?}, {} credit(s))",
        phone::mask(&e164),
        res.ids,
        res.total_credits_removed
    ));
    Ok(out)
}

/// How often the SMS credits are read from OVH for `/health`.
pub const CREDITS_REFRESH: Duration = Duration::from_secs(900);

/// Reads the account's credits at start and every [`CREDITS_REFRESH`] (for `/health`).
pub async fn credits_loop(app: Arc<App>, shutdown: tokio_util::sync::CancellationToken) {
    let (Some(client), Some(o)) = (app.sms_client.clone(), app.config.ovh.clone()) else {
        return;
    };
    loop {
        match client.sms_account(&o.service_name).await {
            Ok(acc) => app.sms_health.credits(acc.credits_left),
            Err(e) => {
                tracing::warn!("cannot read the SMS credits: {e}");
                app.sms_health.error(&e.to_string());
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(CREDITS_REFRESH) => {}
        }
    }
}
