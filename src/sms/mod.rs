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
//! statistics, erasure and a staff [`retry`] (`POST /admin/sms/{id}/retry`), for which
//! staff type the guest's number again. Logs and answers only ever show the masked form.
//!
//! Layout: [`request`](mod@request) (the request, its limits, the answer), [`job`] (the sending job and
//! the SMS-log copy), [`status`] (the status enums, the `/health` figures and the credits
//! worker), [`retry`] (a staff retry of a failed request), [`cli`] (`sms-test`), [`ovh`]
//! (the API client), [`phone`] (numbers). Errors
//! are [`SmsError`]; `api::error` maps them to HTTP.

pub mod cli;
pub mod job;
pub mod ovh;
pub mod phone;
pub mod request;
pub mod retry;
pub mod status;

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub use cli::sms_test;
pub use request::{get, request, Limit, Requested, SmsAnswer};
pub use status::{CreditsWorker, PublicStatus, SmsHealth, SmsHealthState, SmsStatus};

/// Why an SMS request was refused or could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error(
        "SMS is not configured on this kiosk (OVH credentials and PUBLIC_BASE_URL) or is disabled"
    )]
    NotConfigured,
    #[error("capture_id is not a valid id")]
    InvalidCaptureId,
    #[error("not a valid SMS id")]
    InvalidSmsId,
    #[error("phone number refused: {0}")]
    InvalidPhone(phone::PhoneError),
    /// Premium-rate and short numbers.
    #[error("phone number refused: {0}")]
    PremiumNumber(phone::PhoneError),
    #[error("no capture with this id")]
    CaptureNotFound,
    /// Consent (issue 20): not a consent text id.
    #[error("consent must be the id of the consent text: 1-64 characters among A-Z a-z 0-9 . _ -")]
    InvalidConsent,
    /// Consent (issue 20): `sms_require_consent` is on and the request has none.
    #[error("this kiosk sends an SMS only with the guest's consent: give the consent text's id as \"consent\"")]
    ConsentRequired,
    #[error("no SMS request with this id")]
    NotFound,
    #[error("{}", which.describe(*limit))]
    RateLimited { which: Limit, limit: u32 },
    /// Retry: the text was sent; it is never sent twice.
    #[error("this SMS was sent already; it is never sent twice")]
    AlreadySent,
    /// Retry: only a failed request can be retried (the status it has).
    #[error("only a failed SMS can be retried; this one is {0}")]
    NotFailed(String),
    /// Retry: the number is forgotten once the request is final; staff type it again.
    #[error("this request's phone number is no longer stored (it is forgotten once an SMS fails): send the guest's number again as {{\"phone\": \"…\"}}")]
    NumberForgotten,
    /// Retry: the number typed again is not the one the guest gave.
    #[error("this is not the phone number of this request: nothing was changed")]
    PhoneMismatch,
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Outbox(#[from] crate::outbox::OutboxError),
}

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

#[cfg(test)]
mod job_tests;
