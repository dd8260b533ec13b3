//! The shared state every route and worker sees.

use std::sync::Arc;

use crate::catalog::{Catalog, SyncScope};
use crate::clock::Clock;
use crate::config::{Config, Secret};
use crate::outbox::Outbox;
use crate::storage::Uploads;

/// Every handle is owned by the `App` and depends only on modules below the domain code
/// (none of them knows the `App` or HTTP): routes and workers reach everything through it.
#[derive(Debug)]
pub struct App {
    pub config: Arc<Config>,
    pub keys: Keys,
    pub clock: Arc<dyn Clock>,
    pub started: crate::clock::Stopwatch,
    // Stores.
    pub catalog: Catalog,
    pub outbox: Outbox,
    pub uploads: Uploads,
    pub backgrounds: crate::storage::Backgrounds,
    /// Capture thumbnails for the staff console.
    pub thumbnails: crate::storage::Thumbnails,
    pub exports: crate::export::Exports,
    pub settings: crate::settings::Settings,
    // The outside world.
    pub remotes: Remotes,
    pub sms: Sms,
    // Status.
    /// Every background worker's status (`/health` `workers`, `/admin/diag`).
    pub workers: crate::workers::Workers,
    /// What the remote probes last saw (`/health`).
    pub probes: crate::health::probe::Probes,
    /// Whether the start-up recovery (files against rows, outbox rebuild) has finished.
    pub recovery: crate::startup::recovery::Recovery,
    /// Counters and histograms of `/metrics` (its gauges are read from the handles above).
    pub metrics: crate::metrics::Metrics,
}

/// The two keys the daemon holds (given, or generated at first start).
#[derive(Debug)]
pub struct Keys {
    /// Admin routes (`X-API-Key`).
    pub admin_api_key: Secret,
    /// Keys the phone-number HMACs.
    pub secret_key: Secret,
}

/// The remotes captures are copied to, and what the jobs last saw of each.
#[derive(Debug)]
pub struct Remotes {
    pub files: Option<crate::sync::RemoteFiles>,
    pub db: Option<crate::sync::remote_db::RemoteDb>,
    /// Each remote's circuit (the sync and SMS-log jobs, `/health`).
    pub circuits: crate::sync::Circuits,
}

/// SMS: the OVH client when configured, and what `/health` shows of sending.
#[derive(Debug)]
pub struct Sms {
    pub client: Option<crate::sms::ovh::OvhClient>,
    pub health: crate::sms::SmsHealth,
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
