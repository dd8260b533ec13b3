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
mod events;
mod listing;
mod settings;
mod sms;
mod snapshot;
mod stats;

pub use backgrounds::*;
pub use captures::*;
pub use events::*;
pub use listing::*;
pub use settings::*;
pub use sms::*;
pub use snapshot::*;
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
    /// The shared transaction of a group of inserts failed (each member gets this).
    #[error("catalog commit failed: {0}")]
    Commit(String),
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
    // or expired (failed: until its validity ends, for a staff retry); `phone_hmac` (keyed
    // with SECRET_KEY) stays for limits, stats, erasure.
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
    // Events (issue 20): named spans captures belong to, decided at capture time and kept.
    // `synced_ms` tells which change reached the remote database (see `catalog::events`).
    "CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        starts_ms INTEGER NOT NULL,
        ends_ms INTEGER,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        synced_ms INTEGER
    );
    CREATE INDEX events_starts ON events(starts_ms);
    ALTER TABLE captures ADD COLUMN event_id TEXT;
    CREATE INDEX captures_event ON captures(event_id) WHERE event_id IS NOT NULL;",
    // Consent (issue 20): the id of the text the guest agreed to when asking for the SMS.
    "ALTER TABLE sms ADD COLUMN consent TEXT;",
    // Public tokens (issue 20): the random 128-bit name of a capture's public files
    // (`{token}.jpg`, `{token}.html`), so no public URL holds a client-chosen id. Rows
    // from before get a fresh token (SQLite's randomblob is its CSPRNG). Rows already
    // uploaded as `{id}.jpg` keep that name in `legacy_remote` (so deletes remove it and
    // the links already texted keep working until retention) and are synced again: their
    // token copy, their page and their remote row with the token's file name.
    "ALTER TABLE captures ADD COLUMN public_token TEXT;
    ALTER TABLE captures ADD COLUMN legacy_remote INTEGER NOT NULL DEFAULT 0;
    UPDATE captures SET public_token = lower(hex(randomblob(16))) WHERE public_token IS NULL;
    UPDATE captures SET legacy_remote = 1, remote_file_ms = NULL, remote_db_ms = NULL,
        synced_ms = NULL WHERE remote_file_ms IS NOT NULL;
    CREATE UNIQUE INDEX captures_public_token ON captures(public_token);",
];

#[derive(Clone)]
pub struct Catalog {
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
    /// Capture inserts waiting for the writer (see [`Catalog::insert_capture_grouped`]).
    inserts: Arc<Mutex<Vec<PendingInsert>>>,
}

/// A capture row waiting to be committed, and where its outcome goes.
struct PendingInsert {
    new: NewCapture,
    /// Wall clock not set yet: (boot id, monotonic ms) to re-time it later.
    suspect: Option<(String, i64)>,
    /// The event the app named (issue 20); `None`: the one open at capture time.
    event_id: Option<String>,
    outcome: Arc<Mutex<Option<Result<CaptureRow, CatalogError>>>>,
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
            inserts: Arc::default(),
        })
    }

    /// Runs `f` in one write transaction on the blocking pool: committed when `f` returns
    /// `Ok`, rolled back when it returns `Err` (or panics). Every write goes through here,
    /// so a multi-statement write is all or nothing. A single statement costs the same as
    /// outside a transaction (SQLite wraps it in one anyway).
    pub async fn write<F, R>(&self, f: F) -> Result<R, CatalogError>
    where
        F: FnOnce(&Tx<'_>) -> Result<R, CatalogError> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| CatalogError::Poisoned)?;
            in_transaction(&mut guard, f)
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

    /// [`Catalog::write`] for start-up work and tools that are not on the runtime.
    pub fn write_blocking<R>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> Result<R, CatalogError>,
    ) -> Result<R, CatalogError> {
        let mut guard = self.writer.lock().map_err(|_| CatalogError::Poisoned)?;
        in_transaction(&mut guard, f)
    }

    /// Synchronous reads for work already on the blocking pool.
    pub fn read_blocking<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, CatalogError>,
    ) -> Result<R, CatalogError> {
        let guard = self.reader.lock().map_err(|_| CatalogError::Poisoned)?;
        f(&guard)
    }

    /// Inserts a capture row and returns once it is committed (durable). Blocking.
    ///
    /// Group commit: the row joins a queue, and whoever holds the writer next commits the
    /// whole queue in one transaction, so concurrent captures share one WAL fsync instead
    /// of waiting for one each. Each row has its own savepoint: one failing insert does
    /// not take the others down.
    pub fn insert_capture_grouped(
        &self,
        new: NewCapture,
        suspect: Option<(String, i64)>,
    ) -> Result<CaptureRow, CatalogError> {
        self.insert_capture_grouped_in(new, suspect, None)
    }

    /// [`Catalog::insert_capture_grouped`], the capture tied to `event_id` (or, `None`,
    /// to the event open at its creation time) in the same transaction.
    pub fn insert_capture_grouped_in(
        &self,
        new: NewCapture,
        suspect: Option<(String, i64)>,
        event_id: Option<String>,
    ) -> Result<CaptureRow, CatalogError> {
        let outcome = Arc::new(Mutex::new(None));
        self.inserts
            .lock()
            .map_err(|_| CatalogError::Poisoned)?
            .push(PendingInsert {
                new,
                suspect,
                event_id,
                outcome: outcome.clone(),
            });
        {
            let mut conn = self.writer.lock().map_err(|_| CatalogError::Poisoned)?;
            // Ours may already be done by the previous holder; then this batch is empty
            // or holds rows queued since, which we commit for their owners.
            let batch =
                std::mem::take(&mut *self.inserts.lock().map_err(|_| CatalogError::Poisoned)?);
            if !batch.is_empty() {
                commit_inserts(&mut conn, batch);
            }
        }
        let done = outcome.lock().map_err(|_| CatalogError::Poisoned)?.take();
        // Every queued row is taken by a writer holder before it lets go of the writer, and
        // ours was queued before we took the writer: it has an outcome by now.
        done.unwrap_or_else(|| Err(CatalogError::Commit("insert was not processed".into())))
    }

    /// Checkpoints the WAL into the main file (clean shutdown).
    pub async fn checkpoint(&self) -> Result<(), CatalogError> {
        // Outside any transaction: a checkpoint inside one cannot finish.
        let conn = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let guard = conn.lock().map_err(|_| CatalogError::Poisoned)?;
            guard.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
            Ok(())
        })
        .await
        .map_err(|e| CatalogError::Join(e.to_string()))?
    }
}

/// The write transaction [`Catalog::write`] hands out. It derefs to the connection, so the
/// typed queries take it as `&Connection`; dropping it without a commit rolls it back.
pub type Tx<'c> = rusqlite::Transaction<'c>;

/// Runs `f` in a transaction that commits only if `f` succeeds (the guard rolls back on drop).
fn in_transaction<R>(
    conn: &mut Connection,
    f: impl FnOnce(&Tx<'_>) -> Result<R, CatalogError>,
) -> Result<R, CatalogError> {
    // IMMEDIATE takes the write lock at once: a transaction that reads then writes never
    // fails half-way on a lock another connection took meanwhile.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// Commits queued capture inserts in one transaction and hands each its outcome.
fn commit_inserts(conn: &mut Connection, batch: Vec<PendingInsert>) {
    let run =
        |conn: &mut Connection| -> Result<Vec<Result<CaptureRow, CatalogError>>, CatalogError> {
            let mut tx = conn.transaction()?;
            let mut results = Vec::with_capacity(batch.len());
            for p in &batch {
                let sp = tx.savepoint()?;
                let one = insert_capture(&sp, &p.new).and_then(|mut row| {
                    if let Some((boot, mono)) = &p.suspect {
                        mark_clock_suspect(&sp, &row.id, boot, *mono)?;
                    }
                    row.event_id = assign_capture_event(
                        &sp,
                        &row.id,
                        p.event_id.clone(),
                        row.created_ms,
                        p.suspect.is_some(),
                    )?;
                    Ok(row)
                });
                match one {
                    Ok(row) => {
                        sp.commit()?;
                        results.push(Ok(row));
                    }
                    Err(e) => {
                        drop(sp); // rolls the savepoint back
                        results.push(Err(e));
                    }
                }
            }
            tx.commit()?;
            Ok(results)
        };
    match run(conn) {
        Ok(results) => {
            for (p, r) in batch.iter().zip(results) {
                set_outcome(p, r);
            }
        }
        Err(e) => {
            let msg = e.to_string();
            for p in &batch {
                set_outcome(p, Err(CatalogError::Commit(msg.clone())));
            }
        }
    }
}

fn set_outcome(p: &PendingInsert, r: Result<CaptureRow, CatalogError>) {
    let mut slot = p.outcome.lock().unwrap_or_else(|e| e.into_inner());
    *slot = Some(r);
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

/// RFC 3339 (UTC, milliseconds) for a Unix-milliseconds time.
pub fn format_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn new_capture(id: &str) -> NewCapture {
        NewCapture {
            id: id.to_string(),
            created_ms: 1_800_000_000_000,
            taken_at: None,
            background_id: None,
            bytes: 10,
            width: 2,
            height: 2,
            sha256: "ab".repeat(32),
            source_sha256: "ab".repeat(32),
            source_format: "jpeg".to_string(),
        }
    }

    /// A write whose closure fails leaves nothing behind, even the statements that had
    /// already run; one that succeeds is committed.
    #[tokio::test]
    async fn a_failed_write_is_rolled_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(&dir.path().join("catalog.sqlite3")).unwrap();
        let failed = cat
            .write(|tx| {
                insert_capture(tx, &new_capture("first"))?;
                insert_capture(tx, &new_capture("first"))?; // duplicate: fails
                Ok(())
            })
            .await;
        assert!(failed.is_err());
        let count = |c: &Connection| -> Result<i64, CatalogError> {
            Ok(c.query_row("SELECT COUNT(*) FROM captures", [], |r| r.get(0))?)
        };
        assert_eq!(
            cat.read(count).await.unwrap(),
            0,
            "the first insert was rolled back"
        );
        cat.write(|tx| insert_capture(tx, &new_capture("first")).map(drop))
            .await
            .unwrap();
        assert_eq!(cat.read(count).await.unwrap(), 1);
    }

    /// The public-token migration gives rows from before a fresh, distinct token each, and
    /// sends the already uploaded ones back to sync (their token copy and page) while
    /// remembering their old `{id}.jpg`; new rows get a token at insert.
    #[test]
    fn rows_from_before_tokens_get_one_and_uploaded_ones_sync_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite3");
        let mine = MIGRATIONS
            .iter()
            .position(|m| m.contains("ADD COLUMN public_token"))
            .unwrap();
        {
            let conn = Connection::open(&path).unwrap();
            for (i, sql) in MIGRATIONS[..mine].iter().enumerate() {
                conn.execute_batch(&format!("{sql}; PRAGMA user_version = {};", i + 1))
                    .unwrap();
            }
            for (id, synced) in [("old-synced", true), ("old-local", false)] {
                conn.execute(
                    "INSERT INTO captures (id, created_ms, bytes, width, height, sha256,
                        source_sha256, source_format, remote_file_ms, remote_db_ms, synced_ms)
                     VALUES (?1, 1, 1, 1, 1, 'x', 'x', 'jpeg', ?2, ?2, ?2)",
                    rusqlite::params![id, synced.then_some(5i64)],
                )
                .unwrap();
            }
        }
        let cat = Catalog::open(&path).unwrap();
        let new = cat
            .insert_capture_grouped(new_capture("new"), None)
            .unwrap();
        let ids = ["old-synced", "old-local", "new"].map(String::from);
        let rows = cat.read_blocking(|c| get_captures(c, &ids)).unwrap();
        let tokens: std::collections::HashSet<&str> =
            rows.iter().map(|r| r.public_token.as_str()).collect();
        assert_eq!(tokens.len(), 3, "distinct tokens: {rows:?}");
        for r in &rows {
            assert_eq!(r.public_token.len(), 32, "{r:?}");
            assert!(r
                .public_token
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert_ne!(r.public_token, r.id);
            assert!(r.synced_ms.is_none() && r.remote_file_ms.is_none(), "{r:?}");
            assert_eq!(r.legacy_remote, r.id == "old-synced", "{r:?}");
        }
        assert_eq!(rows[2].public_token, new.public_token);
        let names = cat.read_blocking(|c| remote_names(c, &ids)).unwrap();
        assert_eq!(names.len(), 3);
    }

    /// Inserts queued while the writer is busy are committed together, each with its own
    /// outcome: a duplicate id fails alone and the others are stored.
    #[test]
    fn grouped_inserts_commit_together_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(&dir.path().join("catalog.sqlite3")).unwrap();
        cat.insert_capture_grouped(new_capture("taken"), None)
            .unwrap();

        let busy = cat.writer.lock().unwrap();
        let ids = ["a", "taken", "b", "c"];
        let threads: Vec<_> = ids
            .iter()
            .map(|id| {
                let (cat, id) = (cat.clone(), id.to_string());
                let suspect = (id == "c").then(|| ("boot-1".to_string(), 1234));
                std::thread::spawn(move || cat.insert_capture_grouped(new_capture(&id), suspect))
            })
            .collect();
        // All four wait in the queue while the writer is held.
        while cat.inserts.lock().unwrap().len() < ids.len() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(busy);
        let outcomes: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        for (id, r) in ids.iter().zip(&outcomes) {
            match *id {
                "taken" => assert!(r.is_err(), "a duplicate id must fail"),
                _ => assert_eq!(r.as_ref().unwrap().id, *id),
            }
        }
        assert!(cat.inserts.lock().unwrap().is_empty());
        let (n, suspect): (i64, i64) = cat
            .read_blocking(|c| {
                Ok(c.query_row(
                    "SELECT COUNT(*), SUM(clock_suspect) FROM captures",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .unwrap();
        assert_eq!((n, suspect), (4, 1));
    }
}
