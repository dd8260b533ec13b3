//! A staff retry of a failed SMS request (`POST /admin/sms/{id}/retry`).
//!
//! Only a `failed` request goes back in the queue: a sent one is never sent again, and an
//! open one is already on its way. A final request has forgotten the guest's clear number
//! (no number outlives its last attempt), so staff type it again, usually with the guest
//! still at the kiosk: it must normalise to the number of the original request (its HMAC
//! is compared with the stored `phone_hmac`), else nothing changes (`phone_mismatch`). The
//! number is then stored again until the request is final again.
//!
//! Limits: a retry is held to the same abuse limits as a new request (per number per
//! hour, per photo, the kiosk's hourly and daily budgets), counted over the *other*
//! requests: it is the same text again, not a second one, so its own row does not count
//! against it, and however often staff retry, one row sends at most one text. It gets a
//! fresh validity (`sms_expiry_minutes` from now) so that it is not expired again before
//! its capture is online.
//!
//! Races: the state change is one conditional update (`failed` and the same HMAC) in the
//! catalog transaction that checked it, so two retries, or a retry and the runner, never
//! both act on one failed row. The job is pushed after the commit; when the runner still
//! holds the previous job of the row (it has just recorded the failure and not yet
//! acknowledged the job), a push would merge into that job and its acknowledgement would
//! drop it, so [`queue_after_settled`] waits for that job to be settled before pushing.

use std::time::Duration;

use subtle::ConstantTimeEq;

use super::request::{check_limits, initial_status, SmsAnswer};
use super::status::SmsStatus;
use super::{phone, phone_hmac, SmsError};
use crate::app::App;
use crate::catalog::{self, SmsRow};
use crate::outbox::{Job, JobKind, Outbox, OutboxError};

/// How long a retry waits for the runner to settle the row's previous job.
const SETTLE_WAIT: Duration = Duration::from_secs(5);
/// How often it looks meanwhile.
const SETTLE_POLL: Duration = Duration::from_millis(20);

/// Whether a row's status lets staff retry it (given the guest's number).
pub fn is_retryable(row: &SmsRow) -> bool {
    row.status == SmsStatus::Failed.as_str()
}

/// Whether `row` may be retried, from the row alone and the HMAC of the number staff typed
/// again (`None`: no number given). The state is checked before the number: a sent SMS is
/// `already_sent` whoever asks.
pub fn decide_retry(row: &SmsRow, given_hmac: Option<&str>) -> Result<(), SmsError> {
    match SmsStatus::parse(&row.status) {
        Some(SmsStatus::Sent) => Err(SmsError::AlreadySent),
        Some(SmsStatus::Failed) => match given_hmac {
            Some(h) if bool::from(h.as_bytes().ct_eq(row.phone_hmac.as_bytes())) => Ok(()),
            Some(_) => Err(SmsError::PhoneMismatch),
            None if row.phone.is_some() => Ok(()),
            None => Err(SmsError::NumberForgotten),
        },
        _ => Err(SmsError::NotFailed(row.status.clone())),
    }
}

/// The guest's number as `POST /api/send-sms` takes it (E.164, or French national).
fn normalize(raw: &str) -> Result<String, SmsError> {
    phone::normalize(raw, phone::Region::FR).map_err(|e| match e {
        phone::PhoneError::PremiumRate | phone::PhoneError::ShortNumber => {
            SmsError::PremiumNumber(e)
        }
        _ => SmsError::InvalidPhone(e),
    })
}

/// Puts a failed request back in the queue, with the guest's number typed again (`phone`;
/// without it only a request that still holds its number can be retried). Answers it as
/// `GET /api/sms/{id}` would.
pub async fn retry(app: &App, sms_id: &str, phone: Option<&str>) -> Result<SmsAnswer, SmsError> {
    if !crate::ids::is_valid_id(sms_id) {
        return Err(SmsError::InvalidSmsId);
    }
    let given = match phone {
        Some(raw) => {
            let e164 = normalize(raw)?;
            let hmac = phone_hmac(app.keys.secret_key.expose(), &e164);
            Some((e164, hmac))
        }
        None => None,
    };
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
            let given_hmac = given.as_ref().map(|(_, h)| h.as_str());
            if let Err(refused) = decide_retry(&row, given_hmac) {
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
            let number = given.as_ref().map(|(e164, _)| e164.as_str());
            if !catalog::requeue_failed_sms(
                tx,
                &row.id,
                status,
                expires_ms,
                number,
                &row.phone_hmac,
            )? {
                return Ok(Err(SmsError::NotFailed(row.status)));
            }
            row.status = status.to_string();
            row.expires_ms = expires_ms;
            Ok(Ok(SmsAnswer::from(&row)))
        })
        .await??;
    queue_after_settled(&app.outbox, &answer.sms_id, now, SETTLE_WAIT).await?;
    tracing::info!(sms_id = %answer.sms_id, capture_id = %answer.capture_id, phone = %answer.phone, "SMS retry queued by staff");
    Ok(answer)
}

/// Pushes the SMS job of `sms_id` and flushes it. While the runner holds an earlier job of
/// the same row under its lease, the push merges into that job, which the runner is about
/// to acknowledge (it settled the row as failed) or is carrying out on the requeued row:
/// push again once it is gone, for up to `wait`. Past that the lease, or the start-up
/// rebuild of the outbox, brings the row's job back. Pushing again is always safe: a job
/// acts on its row's status, so a row already settled is not sent twice.
pub async fn queue_after_settled(
    outbox: &Outbox,
    sms_id: &str,
    now_ms: i64,
    wait: Duration,
) -> Result<Job, OutboxError> {
    let watch = crate::clock::Stopwatch::start();
    loop {
        let job = outbox.push(JobKind::Sms, sms_id, now_ms, now_ms)?;
        if !job.leased || watch.elapsed() >= wait {
            if job.leased {
                tracing::warn!(
                    sms_id,
                    "the runner still holds this SMS's previous job; its lease brings it back"
                );
            }
            outbox.flush().await?;
            return Ok(job);
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn row(status: &str, phone: Option<&str>) -> SmsRow {
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
            expires_ms: 1_000,
            attempt_started_ms: None,
            sent_ms: None,
        }
    }

    #[test]
    fn only_a_failed_request_with_its_number_is_retried() {
        let n = Some("+33612345678");
        // The number typed again matches the HMAC, or is still stored.
        assert!(decide_retry(&row("failed", None), Some("h")).is_ok());
        assert!(decide_retry(&row("failed", n), None).is_ok());
        assert!(is_retryable(&row("failed", None)));
        for given in [None, Some("h"), Some("other")] {
            assert!(
                matches!(
                    decide_retry(&row("sent", None), given),
                    Err(SmsError::AlreadySent)
                ),
                "{given:?}"
            );
        }
        for open in [
            "queued",
            "waiting_for_sync",
            "sending",
            "expired",
            "cancelled",
        ] {
            assert!(
                matches!(decide_retry(&row(open, n), Some("h")), Err(SmsError::NotFailed(ref s)) if s == open),
                "{open}"
            );
            assert!(!is_retryable(&row(open, n)), "{open}");
        }
        // No number given, none stored; or another number.
        assert!(matches!(
            decide_retry(&row("failed", None), None),
            Err(SmsError::NumberForgotten)
        ));
        assert!(matches!(
            decide_retry(&row("failed", None), Some("hh")),
            Err(SmsError::PhoneMismatch)
        ));
        assert!(matches!(
            decide_retry(&row("failed", n), Some("x")),
            Err(SmsError::PhoneMismatch)
        ));
    }

    #[test]
    fn the_number_is_normalised_like_a_guest_request() {
        assert_eq!(normalize("06 12 34 56 78").unwrap(), "+33612345678");
        assert_eq!(normalize("+33 6 12 34 56 78").unwrap(), "+33612345678");
        assert!(matches!(
            normalize("12"),
            Err(SmsError::InvalidPhone(_) | SmsError::PremiumNumber(_))
        ));
        assert!(matches!(normalize("hello"), Err(SmsError::InvalidPhone(_))));
    }

    /// The race: the runner has recorded the failure and still holds the job (leased) when
    /// the retry pushes; a plain push merges into that job and the runner's acknowledgement
    /// drops it. [`queue_after_settled`] leaves a job queued.
    #[tokio::test]
    async fn a_retry_racing_the_runners_acknowledgement_keeps_its_job() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        let lease = Duration::from_secs(300);

        // Without the wait: the job is lost.
        outbox.push(JobKind::Sms, "s0", 0, 0).unwrap();
        let held = outbox.claim(0, 10, lease).unwrap().remove(0);
        let merged = outbox.push(JobKind::Sms, "s0", 1, 1).unwrap();
        assert_eq!(merged.id, held.id, "the push merged into the held job");
        outbox.ack(&held).unwrap();
        assert!(outbox.get(JobKind::Sms, "s0").unwrap().is_none());

        // With it: the retry's job survives the acknowledgement.
        outbox.push(JobKind::Sms, "s1", 0, 0).unwrap();
        let held = outbox.claim(0, 10, lease).unwrap().remove(0);
        assert!(held.leased);
        let runner = {
            let (outbox, held) = (outbox.clone(), held.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(150)).await;
                outbox.ack(&held).unwrap();
            })
        };
        let job = queue_after_settled(&outbox, "s1", 2, Duration::from_secs(5))
            .await
            .unwrap();
        runner.await.unwrap();
        let now = outbox
            .get(JobKind::Sms, "s1")
            .unwrap()
            .expect("a job is queued");
        assert_eq!(now.id, job.id);
        assert_ne!(now.id, held.id);
        assert!(!now.leased);
        assert_eq!(
            outbox.claim(2, 10, lease).unwrap().len(),
            1,
            "and it is due"
        );

        // Nothing held: one push, at once.
        let job = queue_after_settled(&outbox, "s2", 3, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(!job.leased);
        // Held past the wait: it gives up waiting (the lease brings the job back).
        let held = outbox.claim(3, 10, lease).unwrap().remove(0);
        let job = queue_after_settled(&outbox, "s2", 4, Duration::from_millis(60))
            .await
            .unwrap();
        assert_eq!(job.id, held.id);
    }
}
