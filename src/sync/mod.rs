//! Sync: outbox jobs → remote storage (image files) and PostgreSQL (metadata rows).
//!
//! The handlers of `sync` and `remote_delete` jobs are in [`job`]. Each remote has a small
//! circuit, kept in [`Circuits`] (the one handle the sync and SMS-log handlers and
//! `/health` share): when a connection-level failure happens, the remote is
//! marked down until `retry_at`; jobs claimed meanwhile are put back to that time without
//! touching the network (a backlog of thousands does not mean thousands of failed
//! connects). The next attempt after `retry_at` is the probe; when it succeeds every
//! waiting job is made due at once, so the backlog drains without waiting out backoffs.
//! Errors that concern one job only (a file refused) back off that job alone.

pub mod job;
pub mod remote_db;
pub mod remote_schema;
pub mod s3;
pub mod webdav;

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

pub use webdav::RemoteFileError;

/// Where image files are copied: one of the supported remote stores.
#[derive(Debug, Clone)]
pub enum RemoteFiles {
    WebDav(webdav::WebDav),
    S3(s3::S3),
}

impl RemoteFiles {
    pub fn new(storage: &crate::config::RemoteStorage) -> Result<RemoteFiles, String> {
        match storage {
            crate::config::RemoteStorage::WebDav { .. } => {
                Ok(RemoteFiles::WebDav(webdav::WebDav::new(storage)?))
            }
            crate::config::RemoteStorage::S3(c) => Ok(RemoteFiles::S3(s3::S3::new(c)?)),
        }
    }

    /// Uploads the local file `path` as `{name}.jpg` (idempotent; `name` is a capture's
    /// public token).
    pub async fn put(&self, name: &str, path: &std::path::Path) -> Result<(), RemoteFileError> {
        match self {
            RemoteFiles::WebDav(w) => w.put(name, path).await,
            RemoteFiles::S3(s) => s.put(name, path).await,
        }
    }

    /// Uploads a share page as `{name}.html` (idempotent).
    pub async fn put_page(&self, name: &str, html: bytes::Bytes) -> Result<(), RemoteFileError> {
        match self {
            RemoteFiles::WebDav(w) => w.put_page(name, html).await,
            RemoteFiles::S3(s) => s.put_page(name, html).await,
        }
    }

    /// Deletes the remote file `file` (a name with its extension, e.g. `{token}.html`);
    /// a missing file is success.
    pub async fn delete(&self, file: &str) -> Result<(), RemoteFileError> {
        match self {
            RemoteFiles::WebDav(w) => w.delete(file).await,
            RemoteFiles::S3(s) => s.delete(file).await,
        }
    }

    /// A cheap reachability check.
    pub async fn probe(&self) -> Result<(), RemoteFileError> {
        match self {
            RemoteFiles::WebDav(w) => w.probe().await,
            RemoteFiles::S3(s) => s.probe().await,
        }
    }
}

/// What `/health` shows of one remote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RemoteSnapshot {
    pub configured: bool,
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    pub consecutive_failures: u32,
    /// Until when attempts are held back (circuit open).
    pub retry_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncSnapshot {
    pub remote_db: RemoteSnapshot,
    pub remote_storage: RemoteSnapshot,
}

/// First and longest wait between attempts at a remote that is down.
pub const REMOTE_BACKOFF_BASE: Duration = Duration::from_secs(1);
pub const REMOTE_BACKOFF_CAP: Duration = Duration::from_secs(10);

/// The circuit of each remote: last success, failures in a row, and until when attempts
/// are held back. One per daemon, owned by the `App`.
#[derive(Debug, Default)]
pub struct Circuits {
    inner: Mutex<SyncSnapshot>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remote {
    Db,
    Storage,
}

impl Remote {
    /// For logs ("remote storage reachable again").
    pub fn label(self) -> &'static str {
        match self {
            Remote::Db => "remote database",
            Remote::Storage => "remote storage",
        }
    }
}

impl Circuits {
    pub fn new(db_configured: bool, storage_configured: bool) -> Circuits {
        let s = Circuits::default();
        {
            let mut g = s.lock();
            g.remote_db.configured = db_configured;
            g.remote_storage.configured = storage_configured;
        }
        s
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SyncSnapshot> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshot(&self) -> SyncSnapshot {
        self.lock().clone()
    }

    fn with<R>(&self, r: Remote, f: impl FnOnce(&mut RemoteSnapshot) -> R) -> R {
        let mut g = self.lock();
        match r {
            Remote::Db => f(&mut g.remote_db),
            Remote::Storage => f(&mut g.remote_storage),
        }
    }

    /// Records a success; returns true when the remote was down before (it came back).
    pub fn success(&self, r: Remote, now_ms: i64) -> bool {
        self.with(r, |s| {
            let was_down = s.consecutive_failures > 0;
            s.last_success_ms = Some(now_ms);
            s.consecutive_failures = 0;
            s.retry_at_ms = None;
            was_down
        })
    }

    /// Records a connection-level failure and opens the circuit; returns the retry time.
    pub fn failure(&self, r: Remote, now_ms: i64, error: &str) -> i64 {
        self.with(r, |s| {
            let d = crate::outbox::backoff(
                s.consecutive_failures,
                REMOTE_BACKOFF_BASE,
                REMOTE_BACKOFF_CAP,
            );
            s.consecutive_failures = s.consecutive_failures.saturating_add(1);
            s.last_error = Some(error.chars().take(300).collect());
            s.last_error_ms = Some(now_ms);
            let at = now_ms + d.as_millis() as i64;
            s.retry_at_ms = Some(at);
            at
        })
    }

    /// When the remote is held back, until when.
    pub fn held_until(&self, r: Remote, now_ms: i64) -> Option<i64> {
        self.with(r, |s| s.retry_at_ms.filter(|&t| t > now_ms))
    }

    /// Closes every circuit (an operator asked for a sync now).
    pub fn reset(&self) {
        let mut g = self.lock();
        g.remote_db.retry_at_ms = None;
        g.remote_storage.retry_at_ms = None;
    }
}
