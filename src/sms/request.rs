//! SMS requests (`POST /api/send-sms`, `GET /api/sms/{id}`) as domain calls: validation,
//! the abuse limits, the row and its job. Answers are [`Requested`] / [`SmsAnswer`];
//! refusals are [`SmsError`]s, which `api::error` maps to HTTP.

use serde::Serialize;

use super::status::{PublicStatus, SmsStatus};
use super::{phone, phone_hmac, SmsError};
use crate::app::App;
use crate::catalog::{self, CaptureRow, SmsRow};
use crate::outbox::JobKind;
use crate::settings::RuntimeSettings;

/// What `POST /api/send-sms` and `GET /api/sms/{id}` answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SmsAnswer {
    pub sms_id: String,
    pub capture_id: String,
    pub status: PublicStatus,
    /// Masked.
    pub phone: String,
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    pub created_at: String,
}

impl From<&SmsRow> for SmsAnswer {
    fn from(r: &SmsRow) -> Self {
        SmsAnswer {
            sms_id: r.id.clone(),
            capture_id: r.capture_id.clone(),
            status: PublicStatus::of(&r.status),
            phone: r.phone_masked.clone(),
            attempts: r.attempts,
            last_error: r.last_error.clone(),
            sent_at: r.sent_ms.map(catalog::format_ms),
            created_at: catalog::format_ms(r.created_ms),
        }
    }
}

/// How a request was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// A new request, recorded with its job: it will be sent.
    Created(SmsAnswer),
    /// The same capture and number were already asked for: that request, not a second text.
    Existing(SmsAnswer),
}

/// Which abuse limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Texts to one number in the last hour.
    PerPhone,
    /// Texts for one photo, ever.
    PerCapture,
    /// The kiosk's texts in the last hour.
    Hourly,
    /// The kiosk's texts in the last day.
    Daily,
}

impl Limit {
    /// What the guest is told, for a limit of `limit`.
    pub fn describe(self, limit: u32) -> String {
        match self {
            Limit::PerPhone => format!("at most {limit} SMS per number per hour"),
            Limit::PerCapture => format!("at most {limit} SMS per photo"),
            Limit::Hourly => format!("the kiosk's hourly SMS budget ({limit}) is used up"),
            Limit::Daily => format!("the kiosk's daily SMS budget ({limit}) is used up"),
        }
    }
}

/// The counts the limits apply to, as `catalog::sms_counts` returns them: (this number in
/// the last hour, this capture ever, everyone in the last hour, everyone in the last day).
pub type Counts = (i64, i64, i64, i64);

/// The first limit `counts` reach, checked in the order the guest can act on.
pub fn check_limits(counts: Counts, settings: &RuntimeSettings) -> Result<(), SmsError> {
    let (per_phone, per_capture, hour, day) = counts;
    let checks = [
        (per_phone, Limit::PerPhone, settings.sms_per_phone_per_hour),
        (per_capture, Limit::PerCapture, settings.sms_per_capture),
        (hour, Limit::Hourly, settings.sms_per_hour),
        (day, Limit::Daily, settings.sms_per_day),
    ];
    match checks
        .into_iter()
        .find(|(n, _, limit)| *n >= i64::from(*limit))
    {
        Some((_, which, limit)) => Err(SmsError::RateLimited { which, limit }),
        None => Ok(()),
    }
}

/// A new request's status: it waits for its capture to be in remote storage, if any.
pub fn initial_status(remote_storage: bool, capture: &CaptureRow) -> SmsStatus {
    if remote_storage && capture.remote_file_ms.is_none() {
        SmsStatus::WaitingForSync
    } else {
        SmsStatus::Queued
    }
}

/// Whether `consent` is a consent text id: `[A-Za-z0-9._-]{1,64}`.
pub fn is_valid_consent(consent: &str) -> bool {
    (1..=64).contains(&consent.len())
        && consent
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The consent a request carries, checked: refused before anything is written or counted.
pub fn check_consent(consent: Option<&str>, required: bool) -> Result<Option<String>, SmsError> {
    match consent {
        Some(c) if is_valid_consent(c) => Ok(Some(c.to_string())),
        Some(_) => Err(SmsError::InvalidConsent),
        None if required => Err(SmsError::ConsentRequired),
        None => Ok(None),
    }
}

/// Records an SMS request: a repeated request for the same capture and number gets the
/// existing request back, not a second text. `consent`: the consent text's id (issue 20).
pub async fn request(
    app: &App,
    capture_id: &str,
    raw_phone: &str,
    consent: Option<&str>,
) -> Result<Requested, SmsError> {
    let settings = app.settings.get();
    if app.sms.client.is_none() || app.config.public_base_url.is_none() || !settings.sms_enabled {
        return Err(SmsError::NotConfigured);
    }
    if !crate::ids::is_valid_id(capture_id) {
        return Err(SmsError::InvalidCaptureId);
    }
    let consent = check_consent(consent, settings.sms_require_consent)?;
    let e164 = phone::normalize(raw_phone, phone::Region::FR).map_err(|e| match e {
        phone::PhoneError::PremiumRate | phone::PhoneError::ShortNumber => {
            SmsError::PremiumNumber(e)
        }
        _ => SmsError::InvalidPhone(e),
    })?;
    let hmac = phone_hmac(app.keys.secret_key.expose(), &e164);
    let masked = phone::mask(&e164);
    let now = app.clock.now_ms();
    let sms_id = crate::ids::new_id();
    let row = SmsRow {
        id: sms_id.clone(),
        capture_id: capture_id.to_string(),
        phone: Some(e164),
        phone_hmac: hmac,
        phone_masked: masked,
        status: String::new(),
        attempts: 0,
        last_error: None,
        tag: format!("selfie-kiosk-{sms_id}"),
        ovh_ids: None,
        created_ms: now,
        expires_ms: now + i64::from(settings.sms_expiry_minutes) * 60_000,
        attempt_started_ms: None,
        sent_ms: None,
    };
    let storage = app.remotes.files.is_some();
    // Refusals are answered from inside the transaction (nothing was written, so it
    // commits nothing); only catalog failures are its errors.
    let outcome = app
        .catalog
        .write(move |tx| {
            let Some(capture) = catalog::get_capture(tx, &row.capture_id)? else {
                return Ok(Err(SmsError::CaptureNotFound));
            };
            if let Some(existing) = catalog::find_sms_for(tx, &row.capture_id, &row.phone_hmac)? {
                return Ok(Ok(Requested::Existing(SmsAnswer::from(&existing))));
            }
            let counts = catalog::sms_counts(tx, &row.phone_hmac, &row.capture_id, now)?;
            if let Err(refused) = check_limits(counts, &settings) {
                return Ok(Err(refused));
            }
            let mut row = row;
            row.status = initial_status(storage, &capture).as_str().into();
            catalog::insert_sms(tx, &row)?;
            if let Some(consent) = &consent {
                catalog::set_sms_consent(tx, &row.id, consent)?;
            }
            Ok(Ok(Requested::Created(SmsAnswer::from(&row))))
        })
        .await??;
    if let Requested::Created(answer) = &outcome {
        app.outbox
            .push_durable(JobKind::Sms, &answer.sms_id, now, now)
            .await?;
        tracing::info!(sms_id = %answer.sms_id, capture_id = %answer.capture_id, phone = %answer.phone, "SMS requested");
    }
    Ok(outcome)
}

/// Where an SMS request stands.
pub async fn get(app: &App, sms_id: &str) -> Result<SmsAnswer, SmsError> {
    if !crate::ids::is_valid_id(sms_id) {
        return Err(SmsError::InvalidSmsId);
    }
    let id = sms_id.to_string();
    let row = app
        .catalog
        .read(move |c| catalog::get_sms(c, &id))
        .await?
        .ok_or(SmsError::NotFound)?;
    Ok(SmsAnswer::from(&row))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn settings() -> RuntimeSettings {
        let mut s = RuntimeSettings::from_config(&crate::config::Config::with_data_dir(
            std::path::Path::new("/tmp"),
        ));
        s.sms_per_phone_per_hour = 3;
        s.sms_per_capture = 5;
        s.sms_per_hour = 100;
        s.sms_per_day = 500;
        s
    }

    fn limited(counts: Counts) -> Option<(Limit, u32)> {
        match check_limits(counts, &settings()) {
            Ok(()) => None,
            Err(SmsError::RateLimited { which, limit }) => Some((which, limit)),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn limits_apply_in_order_at_their_threshold() {
        assert_eq!(limited((2, 4, 99, 499)), None);
        assert_eq!(limited((3, 0, 0, 0)), Some((Limit::PerPhone, 3)));
        assert_eq!(limited((0, 5, 0, 0)), Some((Limit::PerCapture, 5)));
        assert_eq!(limited((0, 0, 100, 0)), Some((Limit::Hourly, 100)));
        assert_eq!(limited((0, 0, 0, 500)), Some((Limit::Daily, 500)));
        // Several reached: the number's own limit is the one told.
        assert_eq!(limited((9, 9, 999, 999)), Some((Limit::PerPhone, 3)));
    }

    #[test]
    fn consent_ids_are_checked_and_may_be_required() {
        assert_eq!(
            check_consent(Some("cgu-2026.06_v2"), true).unwrap(),
            Some("cgu-2026.06_v2".to_string())
        );
        assert_eq!(check_consent(None, false).unwrap(), None);
        assert!(matches!(
            check_consent(None, true),
            Err(SmsError::ConsentRequired)
        ));
        for bad in ["", "a b", "é", "x/y", &"a".repeat(65)] {
            assert!(
                matches!(
                    check_consent(Some(bad), false),
                    Err(SmsError::InvalidConsent)
                ),
                "{bad}"
            );
        }
        assert!(is_valid_consent(&"a".repeat(64)));
    }

    #[test]
    fn limit_messages() {
        assert_eq!(
            Limit::PerPhone.describe(3),
            "at most 3 SMS per number per hour"
        );
        assert_eq!(Limit::PerCapture.describe(2), "at most 2 SMS per photo");
        assert_eq!(
            Limit::Hourly.describe(30),
            "the kiosk's hourly SMS budget (30) is used up"
        );
        assert_eq!(
            Limit::Daily.describe(200),
            "the kiosk's daily SMS budget (200) is used up"
        );
    }
}
