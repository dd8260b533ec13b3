//! The catalog: SQLite, the source of truth for captures, SMS and run-time settings.
//!
//! Opened in WAL mode with `synchronous=FULL`, so a transaction that returned from
//! `COMMIT` has its WAL frames fsynced and survives a power cut. One writer connection
//! (SQLite allows one writer at a time anyway) and one reader connection, each behind a
//! mutex; every call runs on tokio's blocking pool so the async workers never wait on disk.
//! Migrations are versioned through `PRAGMA user_version`; a shipped migration is never
//! edited, only followed by a new one.

mod backgrounds;
mod captures;
mod listing;
mod settings;
mod sms;
mod stats;

pub use backgrounds::*;
pub use captures::*;
pub use listing::*;
pub use settings::*;
pub use sms::*;
pub use stats::*;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("catalog task failed: {0}")]
    Join(String),
    #[error("catalog lock poisoned")]
    Poisoned,
}

/// Versioned schema. Append only.
const MIGRATIONS: &[&str] = &[
    // 1: captures and settings.
    "CREATE TABLE captures (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL,
        taken_at TEXT,
        background_id TEXT,
        bytes INTEGER NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        source_sha256 TEXT NOT NULL,
        source_format TEXT NOT NULL,
        file_missing INTEGER NOT NULL DEFAULT 0,
        remote_file_ms INTEGER,
        remote_db_ms INTEGER,
        synced_ms INTEGER
    );
    CREATE INDEX captures_created ON captures(created_ms);
    CREATE INDEX captures_unsynced ON captures(synced_ms) WHERE synced_ms IS NULL;
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 2: SMS requests. `phone` holds the clear number only until the SMS is sent, failed
    // or expired; `phone_hmac` (keyed with SECRET_KEY) stays for limits, stats, erasure.
    "CREATE TABLE sms (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        capture_id TEXT NOT NULL,
        phone TEXT,
        phone_hmac TEXT NOT NULL,
        phone_masked TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        tag TEXT NOT NULL UNIQUE,
        ovh_ids TEXT,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        attempt_started_ms INTEGER,
        sent_ms INTEGER
    );
    CREATE INDEX sms_capture ON sms(capture_id);
    CREATE INDEX sms_phone ON sms(phone_hmac, created_ms);
    CREATE INDEX sms_created ON sms(created_ms);
    CREATE INDEX sms_open ON sms(status) WHERE status NOT IN ('sent', 'failed', 'expired');",
    // 3: backgrounds offered by the touchscreen app.
    "CREATE TABLE backgrounds (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        position INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE INDEX captures_background ON captures(background_id);",
    // 4: honest clocks (captures taken while the wall clock was not set) and the
    // persisted state of recurring tasks.
    "ALTER TABLE captures ADD COLUMN clock_suspect INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE captures ADD COLUMN boot_id TEXT;
    ALTER TABLE captures ADD COLUMN mono_ms INTEGER;
    CREATE INDEX captures_clock_suspect ON captures(clock_suspect) WHERE clock_suspect = 1;
    CREATE TABLE schedule (task TEXT PRIMARY KEY, last_run_ms INTEGER NOT NULL, last_result TEXT);",
];

#[derive(Clone)]
pub struct Catalog {
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Catalog")
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL in WAL mode: the WAL is fsynced at every commit, so a commit is durable.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Erased data (phone numbers once sent, deleted captures' rows) is overwritten with
    // zeros instead of lingering in free pages.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

impl Catalog {
    /// Opens (creating if needed) the catalog at `path` and runs pending migrations.
    pub fn open(path: &Path) -> Result<Catalog, CatalogError> {
        let writer = Connection::open(path)?;
        configure(&writer)?;
        migrate(&writer)?;
        let reader = Connection::open(path)?;
        configure(&reader)?;
        Ok(Catalog {
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// Runs `f` with the writer connection on the blocking pool.
    pub async fn write<F, R>(&self, f: F) -> Result<R, CatalogError>
    where
        F: FnOnce(&mut Connection) -> Result<R, CatalogError> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| CatalogError::Poisoned)?;
            f(&mut guard)
        })
        .await
        .map_err(|e| CatalogError::Join(e.to_string()))?
    }

    /// Runs `f` with the reader connection on the blocking pool.
    pub async fn read<F, R>(&self, f: F) -> Result<R, CatalogError>
    where
        F: FnOnce(&Connection) -> Result<R, CatalogError> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let guard = conn.lock().map_err(|_| CatalogError::Poisoned)?;
            f(&guard)
        })
        .await
        .map_err(|e| CatalogError::Join(e.to_string()))?
    }

    /// Synchronous access for start-up work and tools that are not on the runtime.
    pub fn write_blocking<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, CatalogError>,
    ) -> Result<R, CatalogError> {
        let mut guard = self.writer.lock().map_err(|_| CatalogError::Poisoned)?;
        f(&mut guard)
    }

    /// Checkpoints the WAL into the main file (clean shutdown).
    pub async fn checkpoint(&self) -> Result<(), CatalogError> {
        self.write(|c| {
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
            Ok(())
        })
        .await
    }
}

fn migrate(conn: &Connection) -> Result<(), CatalogError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let v = i as i64 + 1;
        if v <= version {
            continue;
        }
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {v}; COMMIT;"
        ))?;
        tracing::info!(version = v, "catalog migrated");
    }
    Ok(())
}

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 (UTC, milliseconds) for a Unix-milliseconds time.
pub fn format_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).unwrap_or_default()
}
