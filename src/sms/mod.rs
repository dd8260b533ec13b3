//! SMS through the OVH API.
pub mod ovh;
pub mod phone;

use std::sync::Arc;

use crate::app::App;
use crate::outbox::Job;

/// Carries out one SMS job.
pub async fn run_job(app: &Arc<App>, job: Job) {
    // SMS sending lands with its own issue; until then no SMS job is ever created. Keep
    // any that appear (from a newer version's outbox) for later rather than drop them.
    let at = app.clock.now_ms() + 3_600_000;
    let _ = app.outbox.reschedule(&job, at, None);
}
