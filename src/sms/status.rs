//! Where an SMS stands: the catalog's status ([`SmsStatus`]), what the API shows of it
//! ([`PublicStatus`]), and the SMS figures `/health` shows ([`SmsHealth`], fed by the
//! sending job and the [`CreditsWorker`]).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;

use crate::clock::Clock;
use crate::workers::{Next, Worker};

/// An SMS row's status, as the catalog stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsStatus {
    /// Recorded; its capture is not in remote storage yet.
    WaitingForSync,
    /// Ready to send (or to send again after a transient failure).
    Queued,
    /// An attempt started and its outcome is not known yet.
    Sending,
    Sent,
    /// Refused for good (by OVH, or the number is no longer stored).
    Failed,
    /// Not sent in time.
    Expired,
    /// Its capture was deleted.
    Cancelled,
}

impl SmsStatus {
    pub const ALL: [SmsStatus; 7] = [
        SmsStatus::WaitingForSync,
        SmsStatus::Queued,
        SmsStatus::Sending,
        SmsStatus::Sent,
        SmsStatus::Failed,
        SmsStatus::Expired,
        SmsStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SmsStatus::WaitingForSync => "waiting_for_sync",
            SmsStatus::Queued => "queued",
            SmsStatus::Sending => "sending",
            SmsStatus::Sent => "sent",
            SmsStatus::Failed => "failed",
            SmsStatus::Expired => "expired",
            SmsStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<SmsStatus> {
        SmsStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Nothing more happens after it (and the clear number is forgotten).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            SmsStatus::Sent | SmsStatus::Failed | SmsStatus::Expired | SmsStatus::Cancelled
        )
    }

    /// Whether the catalog string `s` is a final status.
    pub fn is_final_str(s: &str) -> bool {
        SmsStatus::parse(s).is_some_and(SmsStatus::is_final)
    }

    pub fn public(self) -> PublicStatus {
        match self {
            SmsStatus::WaitingForSync => PublicStatus::WaitingForSync,
            SmsStatus::Queued | SmsStatus::Sending => PublicStatus::Queued,
            SmsStatus::Sent => PublicStatus::Sent,
            SmsStatus::Failed | SmsStatus::Expired | SmsStatus::Cancelled => PublicStatus::Failed,
        }
    }
}

/// The status the API shows: `sending` shows as `queued`; expired and cancelled as
/// `failed` (with the reason in `last_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = SmsStatus)]
pub enum PublicStatus {
    WaitingForSync,
    Queued,
    Sent,
    Failed,
}

impl PublicStatus {
    /// The public status of a catalog status string (an unknown one shows as `failed`).
    pub fn of(catalog_status: &str) -> PublicStatus {
        SmsStatus::parse(catalog_status).map_or(PublicStatus::Failed, SmsStatus::public)
    }
}

/// What `/health` shows of SMS.
#[derive(Debug)]
pub struct SmsHealth {
    state: Mutex<SmsHealthState>,
    clock: Arc<dyn Clock>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct SmsHealthState {
    pub credits_left: Option<f64>,
    pub credits_checked_ms: Option<i64>,
    pub last_sent_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
}

impl SmsHealth {
    pub fn new(clock: Arc<dyn Clock>) -> SmsHealth {
        SmsHealth {
            state: Mutex::default(),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, SmsHealthState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshot(&self) -> SmsHealthState {
        self.lock().clone()
    }

    pub fn sent(&self, credits_used: f64) {
        let now = self.clock.now_ms();
        let mut s = self.lock();
        s.last_sent_ms = Some(now);
        if let Some(c) = s.credits_left.as_mut() {
            *c -= credits_used;
        }
    }

    pub fn error(&self, msg: &str) {
        let now = self.clock.now_ms();
        let mut s = self.lock();
        s.last_error = Some(msg.chars().take(300).collect());
        s.last_error_ms = Some(now);
    }

    pub fn credits(&self, credits: f64) {
        let now = self.clock.now_ms();
        let mut s = self.lock();
        s.credits_left = Some(credits);
        s.credits_checked_ms = Some(now);
    }
}

/// How often the SMS credits are read from OVH for `/health`.
pub const CREDITS_REFRESH: Duration = Duration::from_secs(900);

/// The `sms_credits` worker: reads the account's credits at start and every
/// [`CREDITS_REFRESH`]; done at once when SMS is not configured.
pub struct CreditsWorker {
    app: Arc<crate::app::App>,
}

impl CreditsWorker {
    pub fn new(app: Arc<crate::app::App>) -> CreditsWorker {
        CreditsWorker { app }
    }
}

impl Worker for CreditsWorker {
    fn name(&self) -> &'static str {
        "sms_credits"
    }

    async fn work(&mut self) -> Result<Next, String> {
        let app = &self.app;
        let (Some(client), Some(o)) = (&app.sms.client, &app.config.ovh) else {
            return Ok(Next::Done);
        };
        match client.sms_account(&o.service_name).await {
            Ok(acc) => app.sms.health.credits(acc.credits_left),
            Err(e) => {
                tracing::warn!("cannot read the SMS credits: {e}");
                app.sms.health.error(&e.to_string());
            }
        }
        Ok(Next::Idle(CREDITS_REFRESH))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn statuses_round_trip_and_match_the_catalog() {
        for s in SmsStatus::ALL {
            assert_eq!(SmsStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                s.is_final(),
                crate::catalog::SMS_FINAL.contains(&s.as_str()),
                "{s:?}"
            );
        }
        assert_eq!(SmsStatus::parse("bogus"), None);
        assert!(!SmsStatus::is_final_str("bogus"));
    }

    #[test]
    fn public_status() {
        let p = |s| serde_json::to_value(PublicStatus::of(s)).unwrap();
        assert_eq!(p("waiting_for_sync"), "waiting_for_sync");
        assert_eq!(p("queued"), "queued");
        assert_eq!(p("sending"), "queued");
        assert_eq!(p("sent"), "sent");
        for s in ["failed", "expired", "cancelled", "bogus"] {
            assert_eq!(p(s), "failed", "{s}");
        }
    }

    #[test]
    fn the_public_status_keeps_its_schema_name() {
        assert_eq!(<PublicStatus as utoipa::ToSchema>::name(), "SmsStatus");
    }

    #[test]
    fn health_reads_the_clock_it_is_given() {
        let clock = ManualClock::new(5_000);
        let h = SmsHealth::new(clock.clone());
        h.credits(10.0);
        clock.advance(1_000);
        h.sent(1.5);
        clock.advance(1_000);
        h.error("refused");
        let s = h.snapshot();
        assert_eq!(s.credits_left, Some(8.5));
        assert_eq!(s.credits_checked_ms, Some(5_000));
        assert_eq!(s.last_sent_ms, Some(6_000));
        assert_eq!(
            (s.last_error.as_deref(), s.last_error_ms),
            (Some("refused"), Some(7_000))
        );
    }
}
