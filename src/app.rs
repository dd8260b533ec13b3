//! The shared state every route and worker sees.

use std::sync::Arc;

use crate::catalog::{Catalog, SyncScope};
use crate::clock::Clock;
use crate::config::{Config, Secret};
use crate::outbox::Outbox;
use crate::storage::Uploads;

#[derive(Debug)]
pub struct App {
    pub config: Arc<Config>,
    pub catalog: Catalog,
    pub outbox: Outbox,
    pub uploads: Uploads,
    pub backgrounds: crate::storage::Backgrounds,
    pub exports: crate::export::Exports,
    pub clock: Arc<dyn Clock>,
    /// Every background worker's status (`/health` `workers`, `/admin/diag`).
    pub workers: crate::workers::Workers,
    /// What the remote probes last saw (`/health`).
    pub probes: crate::health::probe::Probes,
    pub started: crate::clock::Stopwatch,
    pub admin_api_key: Secret,
    pub secret_key: Secret,
    pub remote_files: Option<crate::sync::RemoteFiles>,
    pub remote_db: Option<crate::sync::remote_db::RemoteDb>,
    /// Each remote's circuit (the sync and SMS-log jobs, `/health`).
    pub circuits: crate::sync::Circuits,
    pub settings: crate::settings::Settings,
    pub sms_client: Option<crate::sms::ovh::OvhClient>,
    pub sms_health: crate::sms::SmsHealth,
}

impl App {
    /// What "synced" means on this kiosk: every answer that says whether captures are
    /// synced, or how many wait, reads it.
    pub fn sync_scope(&self) -> SyncScope {
        self.config.sync_scope()
    }

    /// Whether any remote (database or files) is configured, i.e. whether syncing means
    /// anything.
    pub fn has_remotes(&self) -> bool {
        self.sync_scope().has_remotes()
    }

    /// The sync state the API reports for a row.
    pub fn is_synced(&self, row: &crate::catalog::CaptureRow) -> bool {
        self.sync_scope().is_synced(row.synced_ms)
    }

    pub fn disk_reserve_bytes(&self) -> u64 {
        self.settings.get().kiosk_disk_reserve
    }
}

pub type SharedApp = Arc<App>;
