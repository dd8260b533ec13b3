//! What a job handler hands back to the runner: one [`Outcome`] per claimed job, and the
//! [`Effect`]s its work has on other jobs. A handler touches the outbox through nothing
//! else, so every ack, reschedule and dead letter is applied in one place
//! ([`super::runner`]).

use std::time::Duration;

use crate::outbox::{Job, JobKind};

/// How one attempt at a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing more to do: the job is removed.
    Done,
    /// The attempt failed: it counts, its error is recorded, and the job is due again
    /// after `after`.
    RetryAfter { error: String, after: Wait },
    /// Not ready yet, through no fault of the job (a remote's circuit is open, the capture
    /// is not online yet, sync is paused): due again then, no attempt counted.
    HoldUntil(i64),
    /// Trying again cannot help: the job moves to the dead letters (kinds that may, see
    /// [`JobKind::may_dead_letter`]; the others are retried instead).
    GiveUp(String),
}

/// When a failed job is due again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The kind's exponential backoff on the job's attempt count ([`backoff_policy`]).
    Backoff,
    /// A fixed delay (a local hiccup: the catalog was busy).
    Fixed(Duration),
    /// A given time (the remote's circuit says when to try again).
    Until(i64),
}

impl Outcome {
    /// A failed attempt, retried after the kind's backoff.
    pub fn retry(error: impl Into<String>) -> Outcome {
        Outcome::RetryAfter {
            error: error.into(),
            after: Wait::Backoff,
        }
    }

    /// A failed attempt, retried after `delay`.
    pub fn retry_in(error: impl Into<String>, delay: Duration) -> Outcome {
        Outcome::RetryAfter {
            error: error.into(),
            after: Wait::Fixed(delay),
        }
    }
}

/// What a job's work changes for the other jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A remote came back: everything waiting (on it or on its backoff) is due now.
    RemoteBack(&'static str),
    /// Captures got synced: SMS jobs waiting for them can go now.
    CapturesSynced,
    /// A follow-up job (e.g. copying a final SMS row to the remote SMS log).
    Push(JobKind, String),
}

/// A handler's answer for the jobs it was given.
#[derive(Debug, Default)]
pub struct Report {
    pub outcomes: Vec<(Job, Outcome)>,
    pub effects: Vec<Effect>,
}

impl Report {
    /// One job, one outcome, no effect.
    pub fn one(job: Job, outcome: Outcome) -> Report {
        Report {
            outcomes: vec![(job, outcome)],
            effects: Vec::new(),
        }
    }

    pub fn set(&mut self, job: Job, outcome: Outcome) {
        self.outcomes.push((job, outcome));
    }

    /// The same outcome for every job in `jobs`.
    pub fn set_all(&mut self, jobs: impl IntoIterator<Item = Job>, outcome: &Outcome) {
        self.outcomes
            .extend(jobs.into_iter().map(|j| (j, outcome.clone())));
    }

    pub fn effect(&mut self, effect: Effect) {
        self.effects.push(effect);
    }
}

/// Backoff (first, longest) for errors that concern one job of `kind` only.
pub fn backoff_policy(kind: JobKind) -> (Duration, Duration) {
    match kind {
        JobKind::Sync | JobKind::RemoteDelete => (Duration::from_secs(2), Duration::from_secs(600)),
        JobKind::Sms | JobKind::SmsLog => (Duration::from_secs(2), Duration::from_secs(300)),
        JobKind::EventSync => (Duration::from_secs(2), Duration::from_secs(600)),
    }
}
