//! A staff retry of a failed SMS request (`POST /admin/sms/{id}/retry`).
//!
//! Only a `failed` request goes back in the queue: a sent one is never sent again, and an
//! open one is already on its way. A failed request keeps its clear number until its
//! validity ends (then the `sms_numbers` worker forgets it), so a retry is possible for
//! that long; later the guest has to ask again.
//!
//! Limits: a retry is held to the same abuse limits as a new request (per number per
//! hour, per photo, the kiosk's hourly and daily budgets), counted over the *other*
//! requests: it is the same text again, not a second one, so its own row does not count
//! against it, and however often staff retry, one row sends at most one text. It gets a
//! fresh validity (`sms_expiry_minutes` from now) so that it is not expired again before
//! its capture is online.

use super::request::{check_limits, initial_status, SmsAnswer};
use super::status::SmsStatus;
use super::SmsError;
use crate::app::App;
use crate::catalog::{self, SmsRow};
use crate::outbox::JobKind;

/// Whether `row` may be retried at `now_ms`, from the row alone.
pub fn decide_retry(row: &SmsRow, now_ms: i64) -> Result<(), SmsError> {
    match SmsStatus::parse(&row.status) {
        Some(SmsStatus::Sent) => Err(SmsError::AlreadySent),
        Some(SmsStatus::Failed) if row.phone.is_none() || row.expires_ms < now_ms => {
            Err(SmsError::NumberForgotten)
        }
        Some(SmsStatus::Failed) => Ok(()),
        _ => Err(SmsError::NotFailed(row.status.clone())),
    }
}

/// Puts a failed request back in the queue; answers it as `GET /api/sms/{id}` would.
pub async fn retry(app: &App, sms_id: &str) -> Result<SmsAnswer, SmsError> {
    if !crate::ids::is_valid_id(sms_id) {
        return Err(SmsError::InvalidSmsId);
    }
    let settings = app.settings.get();
    let configured =
        app.sms.client.is_some() && app.config.public_base_url.is_some() && settings.sms_enabled;
    let now = app.clock.now_ms();
    let expires_ms = now + i64::from(settings.sms_expiry_minutes) * 60_000;
    let storage = app.remotes.files.is_some();
    let id = sms_id.to_string();
    // Refusals are answered from inside the transaction (nothing written, nothing
    // committed); only catalog failures are its errors.
    let answer = app
        .catalog
        .write(move |tx| {
            let Some(mut row) = catalog::get_sms(tx, &id)? else {
                return Ok(Err(SmsError::NotFound));
            };
            // An unknown id is 404 even where SMS is off; a known one cannot be sent then.
            if !configured {
                return Ok(Err(SmsError::NotConfigured));
            }
            if let Err(refused) = decide_retry(&row, now) {
                return Ok(Err(refused));
            }
            let Some(capture) = catalog::get_capture(tx, &row.capture_id)? else {
                return Ok(Err(SmsError::CaptureNotFound));
            };
            let counts =
                catalog::sms_counts_except(tx, &row.phone_hmac, &row.capture_id, now, &row.id)?;
            if let Err(refused) = check_limits(counts, &settings) {
                return Ok(Err(refused));
            }
            let status = initial_status(storage, &capture).as_str();
            if !catalog::requeue_failed_sms(tx, &row.id, status, expires_ms)? {
                return Ok(Err(SmsError::NotFailed(row.status)));
            }
            row.status = status.to_string();
            row.expires_ms = expires_ms;
            Ok(Ok(SmsAnswer::from(&row)))
        })
        .await??;
    app.outbox
        .push_durable(JobKind::Sms, &answer.sms_id, now, now)
        .await?;
    tracing::info!(sms_id = %answer.sms_id, capture_id = %answer.capture_id, phone = %answer.phone, "SMS retry queued by staff");
    Ok(answer)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn row(status: &str, phone: Option<&str>, expires_ms: i64) -> SmsRow {
        SmsRow {
            id: "s1".into(),
            capture_id: "c1".into(),
            phone: phone.map(str::to_string),
            phone_hmac: "h".into(),
            phone_masked: "+33*******78".into(),
            status: status.into(),
            attempts: 1,
            last_error: Some("rejected".into()),
            tag: "t".into(),
            ovh_ids: None,
            created_ms: 0,
            expires_ms,
            attempt_started_ms: None,
            sent_ms: None,
        }
    }

    #[test]
    fn only_a_failed_request_with_its_number_is_retried() {
        let n = Some("+33612345678");
        assert!(decide_retry(&row("failed", n, 1_000), 999).is_ok());
        assert!(matches!(
            decide_retry(&row("sent", None, 1_000), 0),
            Err(SmsError::AlreadySent)
        ));
        for open in [
            "queued",
            "waiting_for_sync",
            "sending",
            "expired",
            "cancelled",
        ] {
            assert!(
                matches!(decide_retry(&row(open, n, 1_000), 0), Err(SmsError::NotFailed(ref s)) if s == open),
                "{open}"
            );
        }
        // Number gone, or the validity (the retry window) over.
        assert!(matches!(
            decide_retry(&row("failed", None, 1_000), 0),
            Err(SmsError::NumberForgotten)
        ));
        assert!(matches!(
            decide_retry(&row("failed", n, 1_000), 1_001),
            Err(SmsError::NumberForgotten)
        ));
    }
}
