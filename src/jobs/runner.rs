//! The job runner: claims due outbox jobs, hands each kind to its handler, and applies
//! what the handlers report. It is the only code that acknowledges, reschedules, buries or
//! expedites outbox jobs.
//!
//! It is the [`Worker`] `jobs`: a round claims up to [`CLAIM_BATCH`] due jobs and carries
//! them out; with nothing due it is idle until the next job is due (capped, and well
//! within a systemd watchdog interval) or until the outbox's notifier fires. A stop never
//! interrupts a round, so the acknowledgements of work done are recorded before the daemon
//! exits. Sync jobs are carried out together (one catalog read, parallel uploads, one
//! PostgreSQL upsert for the batch); the other kinds one at a time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::outcome::{backoff_policy, Effect, Outcome, Report, Wait};
use crate::app::App;
use crate::outbox::{backoff, Job, JobKind, Outbox};
use crate::workers::{Alive, Next, Worker};

/// Jobs claimed per round.
pub const CLAIM_BATCH: usize = 32;
/// A claimed job not finished within this is due again (a crash is caught sooner: start-up
/// releases every lease). One lease for every kind: a round ends before the next claim,
/// so the lease only matters if the process dies, and it covers the longest round.
pub const LEASE: Duration = Duration::from_secs(300);
/// Even with nothing due, look again this often (wall-clock jumps, missed wakes).
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// How often the runner looks whether the start-up recovery is done.
const RECOVERY_POLL: Duration = Duration::from_millis(50);
/// Held jobs are spread over this much so that they do not all fire in the same millisecond.
const HOLD_SPREAD_MS: f64 = 200.0;

/// The `jobs` worker.
pub struct JobRunner {
    app: Arc<App>,
    alive: Alive,
    max_sleep: Duration,
}

impl JobRunner {
    /// Its name in the workers registry (the watchdog watches it).
    pub const NAME: &'static str = "jobs";

    pub fn new(app: Arc<App>) -> JobRunner {
        // Under a systemd watchdog, report in well within its interval even when idle.
        let max_sleep =
            crate::systemd::watchdog_interval().map_or(MAX_SLEEP, |w| (w / 4).min(MAX_SLEEP));
        JobRunner {
            alive: app.workers.alive("jobs"),
            app,
            max_sleep,
        }
    }

    /// How long to sleep with nothing due at `now_ms`.
    fn idle_for(&self, now_ms: i64) -> Duration {
        match self.app.outbox.next_due_ms() {
            Ok(Some(t)) => Duration::from_millis(
                (t - now_ms).clamp(0, self.max_sleep.as_millis() as i64) as u64,
            ),
            _ => self.max_sleep,
        }
    }

    async fn handle(&self, job: Job) -> Report {
        let app = &self.app;
        match job.kind {
            JobKind::RemoteDelete => crate::sync::job::remote_delete(app, job).await,
            JobKind::Sms => crate::sms::job::send(app, job).await,
            JobKind::SmsLog => crate::sms::job::copy_to_log(app, job).await,
            JobKind::EventSync => crate::events::sync_job(app, job).await,
            // Carried out in batches, before the others (see `work`).
            JobKind::Sync => crate::sync::job::run_batch(app, &self.alive, vec![job]).await,
        }
    }
}

impl Worker for JobRunner {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn work(&mut self) -> Result<Next, String> {
        let app = &self.app;
        // Until the start-up recovery has rebuilt the outbox, a job settled here could be
        // pushed again from its stale list: wait, still reporting in for the watchdog.
        if !app.recovery.is_done() {
            self.alive.ping();
            return Ok(Next::Idle(RECOVERY_POLL));
        }
        let now = app.clock.now_ms();
        let jobs = app
            .outbox
            .claim(now, CLAIM_BATCH, LEASE)
            .map_err(|e| format!("outbox claim failed: {e}"))?;
        if jobs.is_empty() {
            return Ok(Next::Idle(self.idle_for(now)));
        }
        let (sync, rest): (Vec<Job>, Vec<Job>) =
            jobs.into_iter().partition(|j| j.kind == JobKind::Sync);
        if !sync.is_empty() {
            let report = crate::sync::job::run_batch(app, &self.alive, sync).await;
            apply(&app.outbox, app.clock.now_ms(), report);
        }
        for job in rest {
            let report = self.handle(job).await;
            apply(&app.outbox, app.clock.now_ms(), report);
            self.alive.ping();
        }
        if let Err(e) = app.outbox.flush().await {
            tracing::error!("outbox flush failed: {e}");
        }
        Ok(Next::Busy)
    }

    fn waker(&self) -> Option<Arc<Notify>> {
        Some(self.app.outbox.notifier())
    }

    fn interruptible(&self) -> bool {
        false
    }
}

/// Applies a handler's report at `now_ms`: the effects first (they only move jobs that are
/// not claimed, so the reported jobs keep their own outcome), then each job's outcome.
pub fn apply(outbox: &Outbox, now_ms: i64, report: Report) {
    for effect in report.effects {
        apply_effect(outbox, now_ms, effect);
    }
    for (job, outcome) in report.outcomes {
        settle(outbox, now_ms, &job, outcome);
    }
}

fn apply_effect(outbox: &Outbox, now_ms: i64, effect: Effect) {
    match effect {
        Effect::RemoteBack(which) => match outbox.expedite(None, now_ms) {
            Ok(n) => tracing::info!(jobs = n, "{which} reachable again: draining the backlog"),
            Err(e) => tracing::error!("outbox expedite failed: {e}"),
        },
        Effect::CapturesSynced => {
            if let Err(e) = outbox.expedite(Some(JobKind::Sms), now_ms) {
                tracing::error!("outbox expedite failed: {e}");
            }
        }
        Effect::Push(kind, target) => {
            if let Err(e) = outbox.push(kind, &target, now_ms, now_ms) {
                tracing::error!(kind = kind.as_str(), "could not queue a job: {e}");
            }
        }
    }
}

/// Records one job's outcome in the outbox.
fn settle(outbox: &Outbox, now_ms: i64, job: &Job, outcome: Outcome) {
    let res = match outcome {
        Outcome::Done => outbox.ack(job),
        Outcome::RetryAfter { error, after } => outbox
            .reschedule(job, retry_at(job, after, now_ms), Some(&error))
            .map(drop),
        Outcome::HoldUntil(at) => {
            let spread = (crate::ids::random_unit() * HOLD_SPREAD_MS) as i64;
            outbox.reschedule(job, at + spread, None).map(drop)
        }
        Outcome::GiveUp(error) if job.kind.may_dead_letter() => {
            tracing::warn!(job_id = job.id, kind = job.kind.as_str(), job_target = %job.target, "giving up on a job: {error}");
            outbox.bury(job, &error)
        }
        Outcome::GiveUp(error) => {
            // This kind must get through however long it takes: keep trying.
            tracing::error!(
                job_id = job.id,
                kind = job.kind.as_str(),
                "a job that may not give up failed: {error}"
            );
            outbox
                .reschedule(job, retry_at(job, Wait::Backoff, now_ms), Some(&error))
                .map(drop)
        }
    };
    if let Err(e) = res {
        tracing::error!(job_id = job.id, "outbox update failed: {e}");
    }
}

fn retry_at(job: &Job, after: Wait, now_ms: i64) -> i64 {
    let delay = match after {
        Wait::Until(at) => return at,
        Wait::Fixed(d) => d,
        Wait::Backoff => {
            let (base, cap) = backoff_policy(job.kind);
            backoff(job.attempts, base, cap)
        }
    };
    now_ms + delay.as_millis() as i64
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const NOW: i64 = 1_000_000;

    fn claimed(kind: JobKind) -> (tempfile::TempDir, Outbox, Job) {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        ob.push(kind, "t", NOW, NOW).unwrap();
        let job = ob.claim(NOW, 1, LEASE).unwrap().remove(0);
        (dir, ob, job)
    }

    fn stored(ob: &Outbox, kind: JobKind) -> Option<Job> {
        ob.get(kind, "t").unwrap()
    }

    #[test]
    fn done_acks() {
        let (_d, ob, job) = claimed(JobKind::Sync);
        apply(&ob, NOW, Report::one(job, Outcome::Done));
        assert!(stored(&ob, JobKind::Sync).is_none());
        assert_eq!(ob.stats().unwrap().dead, 0);
    }

    #[test]
    fn retry_counts_an_attempt_and_backs_off() {
        let (_d, ob, job) = claimed(JobKind::Sync);
        apply(&ob, NOW, Report::one(job, Outcome::retry("refused")));
        let j = stored(&ob, JobKind::Sync).unwrap();
        assert_eq!(j.attempts, 1);
        assert_eq!(j.last_error.as_deref(), Some("refused"));
        assert!(!j.leased);
        // 2 s ± 25 % for a first failure.
        assert!((NOW + 1_500..=NOW + 2_500).contains(&j.next_at_ms), "{j:?}");
        // The second failure waits about twice as long.
        let j = ob.claim(j.next_at_ms, 1, LEASE).unwrap().remove(0);
        apply(&ob, NOW, Report::one(j, Outcome::retry("refused")));
        let j = stored(&ob, JobKind::Sync).unwrap();
        assert_eq!(j.attempts, 2);
        assert!((NOW + 3_000..=NOW + 5_000).contains(&j.next_at_ms), "{j:?}");
    }

    #[test]
    fn retry_waits_fixed_or_until() {
        let (_d, ob, job) = claimed(JobKind::Sms);
        let fixed = Outcome::retry_in("busy", Duration::from_secs(3600));
        apply(&ob, NOW, Report::one(job, fixed));
        let j = stored(&ob, JobKind::Sms).unwrap();
        assert_eq!((j.attempts, j.next_at_ms), (1, NOW + 3_600_000));
        let j = ob.claim(j.next_at_ms, 1, LEASE).unwrap().remove(0);
        let until = Outcome::RetryAfter {
            error: "down".into(),
            after: Wait::Until(NOW + 7),
        };
        apply(&ob, NOW, Report::one(j, until));
        let j = stored(&ob, JobKind::Sms).unwrap();
        assert_eq!((j.attempts, j.next_at_ms), (2, NOW + 7));
    }

    #[test]
    fn hold_does_not_count_an_attempt() {
        let (_d, ob, job) = claimed(JobKind::Sync);
        apply(&ob, NOW, Report::one(job, Outcome::HoldUntil(NOW + 10_000)));
        let j = stored(&ob, JobKind::Sync).unwrap();
        assert_eq!(
            (j.attempts, j.last_error.as_deref(), j.leased),
            (0, None, false)
        );
        assert!(
            (NOW + 10_000..=NOW + 10_200).contains(&j.next_at_ms),
            "{j:?}"
        );
    }

    #[test]
    fn give_up_buries_kinds_that_may() {
        let (_d, ob, job) = claimed(JobKind::Sms);
        apply(
            &ob,
            NOW,
            Report::one(job, Outcome::GiveUp("hopeless".into())),
        );
        assert!(stored(&ob, JobKind::Sms).is_none());
        assert_eq!(ob.stats().unwrap().dead, 1);
    }

    #[test]
    fn give_up_retries_kinds_that_may_not() {
        let (_d, ob, job) = claimed(JobKind::Sync);
        apply(
            &ob,
            NOW,
            Report::one(job, Outcome::GiveUp("hopeless".into())),
        );
        let j = stored(&ob, JobKind::Sync).unwrap();
        assert_eq!(j.attempts, 1);
        assert_eq!(ob.stats().unwrap().dead, 0);
    }

    #[test]
    fn effects_move_waiting_jobs_and_push_follow_ups() {
        let (_d, ob, job) = claimed(JobKind::Sync);
        ob.push(JobKind::Sms, "waiting", NOW, NOW + 30_000).unwrap();
        ob.push(JobKind::RemoteDelete, "old", NOW, NOW + 60_000)
            .unwrap();
        let mut report = Report::one(job, Outcome::HoldUntil(NOW + 5_000));
        report.effect(Effect::CapturesSynced);
        report.effect(Effect::Push(JobKind::SmsLog, "s1".into()));
        apply(&ob, NOW, report);
        let due = |k, t| ob.get(k, t).unwrap().unwrap().next_at_ms;
        assert_eq!(due(JobKind::Sms, "waiting"), NOW, "SMS jobs expedited");
        assert_eq!(due(JobKind::RemoteDelete, "old"), NOW + 60_000);
        assert_eq!(due(JobKind::SmsLog, "s1"), NOW);
        // The reported job keeps its own outcome (applied after the effects).
        assert!(due(JobKind::Sync, "t") >= NOW + 5_000);

        let mut report = Report::default();
        report.effect(Effect::RemoteBack("remote storage"));
        apply(&ob, NOW, report);
        assert_eq!(due(JobKind::RemoteDelete, "old"), NOW);
        assert_eq!(
            due(JobKind::Sync, "t"),
            NOW,
            "a remote back expedites everything"
        );
    }
}
