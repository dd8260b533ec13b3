//! Outbox jobs: one runner, handlers that say how each attempt ended.
//!
//! Whoever creates work pushes its job (capture, cleanup, an SMS request). From then on
//! the [`runner::JobRunner`] owns it: it claims due jobs, hands each kind to its handler
//! (`sync::job` for `sync` and `remote_delete`, `sms::job` for `sms` and `sms_log`), and
//! applies the [`Report`] the handler returns — an [`Outcome`] per job (done, retry after,
//! hold until, give up) and the [`Effect`]s on other jobs (a remote came back, captures got
//! synced, a follow-up job). Handlers decide; the runner alone acknowledges, reschedules,
//! buries and expedites. That keeps the queue's rules (what counts as an attempt, the
//! backoff of each kind, which kinds may dead-letter) in one place, and each handler's
//! decisions in plain functions tested without I/O.

pub mod outcome;
pub mod runner;

pub use outcome::{Effect, Outcome, Report, Wait};
pub use runner::JobRunner;

use crate::app::App;
use crate::outbox::{JobKind, OutboxError};

/// An operator asked for a sync now: every circuit is closed and every waiting job is due
/// at once. Returns how many jobs were made due.
pub fn sync_now(app: &App) -> Result<usize, OutboxError> {
    app.remotes.circuits.reset();
    app.outbox.expedite(None, app.clock.now_ms())
}

/// Sync was turned back on: the jobs held while it was off are due now.
pub fn resume_sync(app: &App) {
    if let Err(e) = app.outbox.expedite(Some(JobKind::Sync), app.clock.now_ms()) {
        tracing::error!("outbox expedite failed: {e}");
    }
}
