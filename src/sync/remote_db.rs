//! The remote PostgreSQL: connection (through [`crate::net::pg`]), versioned
//! migrations shared by every kiosk, and the capture upserts and deletes.
//!
//! Many kiosks, possibly on different versions, share one database. Migrations are
//! therefore additive and idempotent (`IF NOT EXISTS`), recorded in
//! `selfie_kiosk_migrations`, and run under a transaction-scoped advisory lock so two
//! kiosks starting together do not race. A kiosk never drops or rewrites what a newer one
//! added; it writes only the columns it knows.
//!
//! Every statement works through PgBouncer in `pool_mode = transaction` (how managed
//! PostgreSQL is usually reached), where consecutive statements of one client may run on
//! different server connections: parameters go with explicit types in one unnamed
//! Parse/Bind/Execute (`execute_typed`, `query_typed_*`; tokio-postgres' `execute` would
//! prepare a named statement on one server connection and run it on another), text-only
//! batches use the simple protocol, the advisory lock is transaction-scoped, and no
//! session state (`SET`, session locks, temp tables) is relied on outside a transaction.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

use crate::catalog::CaptureRow;
use crate::config::Secret;
use crate::net;

/// Remote schema versions. Append only; each statement idempotent.
pub const REMOTE_MIGRATIONS: &[&str] = &[
    // 1: captures.
    "CREATE TABLE IF NOT EXISTS kiosk_captures (
        kiosk_id TEXT NOT NULL,
        id TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        taken_at TEXT,
        background_id TEXT,
        bytes BIGINT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        file_name TEXT NOT NULL,
        synced_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (kiosk_id, id)
    );
    CREATE INDEX IF NOT EXISTS kiosk_captures_created ON kiosk_captures (created_at);",
    // 2: SMS log, without clear phone numbers (an HMAC only, for erasure requests).
    "CREATE TABLE IF NOT EXISTS kiosk_sms_log (
        kiosk_id TEXT NOT NULL,
        sms_id TEXT NOT NULL,
        capture_id TEXT NOT NULL,
        phone_hmac TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        sent_at TIMESTAMPTZ,
        last_error TEXT,
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (kiosk_id, sms_id)
    );
    CREATE INDEX IF NOT EXISTS kiosk_sms_log_capture ON kiosk_sms_log (kiosk_id, capture_id);",
    // 3: heartbeats: the last report per kiosk, and a bounded history.
    "CREATE TABLE IF NOT EXISTS kiosk_heartbeats (
        kiosk_id TEXT PRIMARY KEY,
        seen_at TIMESTAMPTZ NOT NULL,
        status TEXT NOT NULL,
        version TEXT NOT NULL,
        report JSONB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS kiosk_heartbeat_history (
        kiosk_id TEXT NOT NULL,
        seen_at TIMESTAMPTZ NOT NULL,
        status TEXT NOT NULL,
        report JSONB NOT NULL,
        PRIMARY KEY (kiosk_id, seen_at)
    );",
    // Events (issue 20): one row per kiosk and event, and the event a capture belongs to.
    // Additive: older daemons neither read nor write these and keep working.
    "CREATE TABLE IF NOT EXISTS kiosk_events (
        kiosk_id TEXT NOT NULL,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        starts_at TIMESTAMPTZ NOT NULL,
        ends_at TIMESTAMPTZ,
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (kiosk_id, id)
    );
    ALTER TABLE kiosk_captures ADD COLUMN IF NOT EXISTS event_id TEXT;
    CREATE INDEX IF NOT EXISTS kiosk_captures_event ON kiosk_captures (kiosk_id, event_id);",
    // Consent (issue 20): the id of the text the guest agreed to (never the number).
    "ALTER TABLE kiosk_sms_log ADD COLUMN IF NOT EXISTS consent TEXT;",
    // Heartbeat figures for dashboards (issue 21): the history's figures as columns, and
    // `kiosk_status`, one row per kiosk. The columns are generated from `report` by the
    // server, so rows written by older daemons (which insert only kiosk_id, seen_at,
    // status and report) get them too; a figure absent or not a number is NULL. Stale:
    // not seen for three of the kiosk's own heartbeat intervals (from its report; 60 s
    // when the report does not say), on the server's clock.
    "CREATE OR REPLACE FUNCTION selfie_kiosk_jsonb_bigint(j jsonb) RETURNS bigint
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
        $$ SELECT CASE WHEN jsonb_typeof(j) = 'number' AND abs((j #>> '{}')::numeric) < 9e18
                       THEN floor((j #>> '{}')::numeric)::bigint END $$;
    ALTER TABLE kiosk_heartbeat_history
        ADD COLUMN IF NOT EXISTS version TEXT
            GENERATED ALWAYS AS (report ->> 'version') STORED,
        ADD COLUMN IF NOT EXISTS backlog BIGINT
            GENERATED ALWAYS AS (selfie_kiosk_jsonb_bigint(report #> '{checks,outbox,pending}')) STORED,
        ADD COLUMN IF NOT EXISTS oldest_pending_s BIGINT
            GENERATED ALWAYS AS (selfie_kiosk_jsonb_bigint(report #> '{checks,outbox,oldest_pending_age_s}')) STORED,
        ADD COLUMN IF NOT EXISTS disk_free_bytes BIGINT
            GENERATED ALWAYS AS (selfie_kiosk_jsonb_bigint(report #> '{checks,disk,free_bytes}')) STORED,
        ADD COLUMN IF NOT EXISTS sms_credits BIGINT
            GENERATED ALWAYS AS (selfie_kiosk_jsonb_bigint(report #> '{checks,sms,credits_left}')) STORED;
    CREATE OR REPLACE VIEW kiosk_status AS
    SELECT h.kiosk_id,
           h.seen_at AS last_seen,
           h.status,
           h.version,
           selfie_kiosk_jsonb_bigint(h.report #> '{checks,outbox,pending}') AS backlog,
           selfie_kiosk_jsonb_bigint(h.report #> '{checks,outbox,oldest_pending_age_s}')
               AS oldest_pending_s,
           selfie_kiosk_jsonb_bigint(h.report #> '{checks,disk,free_bytes}') AS disk_free_bytes,
           selfie_kiosk_jsonb_bigint(h.report #> '{checks,sms,credits_left}') AS sms_credits,
           h.seen_at < now() - make_interval(secs => 3 * greatest(1, coalesce(
               selfie_kiosk_jsonb_bigint(
                   h.report #> '{checks,workers,workers,heartbeat,details,interval_s}'),
               60))) AS stale
    FROM kiosk_heartbeats h;",
    // taken_at as a timestamp (taken_at_ts, from the text by a trigger; older daemons
    // keep inserting text), backfilled.
    super::remote_schema::TAKEN_AT_TS,
    // kiosk_daily: captures and SMS sent/failed per kiosk and day, kept by triggers,
    // outliving retention.
    super::remote_schema::KIOSK_DAILY,
    // COMMENT ON every table, column and function so far.
    super::remote_schema::COMMENTS,
    // kiosk_daily_events: the daily counts per event too (issue 21 with issue 20's events).
    super::remote_schema::DAILY_EVENTS,
    // COMMENT ON what events, consent and the heartbeat figures added.
    super::remote_schema::COMMENTS_EVENTS,
];

const MIGRATION_LOCK_KEY: i64 = 0x0005_e1f1_ec10_5c00;

#[derive(Debug, thiserror::Error)]
pub enum RemoteDbError {
    #[error("remote database: {0}")]
    Db(String),
}

fn db_err(e: tokio_postgres::Error) -> RemoteDbError {
    RemoteDbError::Db(net::pg::describe(&e))
}

#[derive(Clone)]
pub struct RemoteDb {
    config: tokio_postgres::Config,
    kiosk_id: String,
    client: Arc<Mutex<Option<Arc<Client>>>>,
}

impl std::fmt::Debug for RemoteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RemoteDb(<url redacted>)")
    }
}

impl RemoteDb {
    pub fn new(url: &Secret, kiosk_id: &str) -> Result<RemoteDb, String> {
        let config = net::pg::config(url.expose(), "selfie-kiosk", Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        Ok(RemoteDb {
            config,
            kiosk_id: kiosk_id.to_string(),
            client: Arc::new(Mutex::new(None)),
        })
    }

    /// A connected, migrated client (reconnecting when the last one broke).
    pub async fn client(&self) -> Result<Arc<Client>, RemoteDbError> {
        let mut guard = self.client.lock().await;
        if let Some(c) = guard.as_ref() {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let client = Arc::new(self.connect().await?);
        migrate(&client).await?;
        *guard = Some(client.clone());
        Ok(client)
    }

    /// Forgets the connection (after an error), so the next call reconnects.
    pub async fn reset(&self) {
        *self.client.lock().await = None;
    }

    async fn connect(&self) -> Result<Client, RemoteDbError> {
        net::pg::connect(&self.config, Duration::from_secs(10))
            .await
            .map_err(|e| RemoteDbError::Db(e.to_string()))
    }

    /// Upserts capture rows in one statement, keyed by (kiosk_id, id).
    pub async fn upsert_captures(&self, rows: &[CaptureRow]) -> Result<(), RemoteDbError> {
        if rows.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let created: Vec<f64> = rows.iter().map(|r| r.created_ms as f64 / 1000.0).collect();
        let taken: Vec<Option<&str>> = rows.iter().map(|r| r.taken_at.as_deref()).collect();
        let bg: Vec<Option<&str>> = rows.iter().map(|r| r.background_id.as_deref()).collect();
        let bytes: Vec<i64> = rows.iter().map(|r| r.bytes).collect();
        let width: Vec<i32> = rows.iter().map(|r| r.width as i32).collect();
        let height: Vec<i32> = rows.iter().map(|r| r.height as i32).collect();
        let sha: Vec<&str> = rows.iter().map(|r| r.sha256.as_str()).collect();
        // The public name, never the (possibly client-chosen) id.
        let files: Vec<String> = rows
            .iter()
            .map(|r| crate::share::image_name(&r.public_token))
            .collect();
        let events: Vec<Option<&str>> = rows.iter().map(|r| r.event_id.as_deref()).collect();
        self.execute(
            &client,
            "INSERT INTO kiosk_captures
                (kiosk_id, id, created_at, taken_at, background_id, bytes, width, height, sha256, file_name, event_id)
             SELECT $1, u.id, to_timestamp(u.created), u.taken, u.bg, u.bytes, u.width, u.height, u.sha, u.file, u.event
             FROM UNNEST($2::text[], $3::float8[], $4::text[], $5::text[], $6::int8[], $7::int4[],
                         $8::int4[], $9::text[], $10::text[], $11::text[])
                  AS u(id, created, taken, bg, bytes, width, height, sha, file, event)
             ON CONFLICT (kiosk_id, id) DO UPDATE SET
                created_at = excluded.created_at, taken_at = excluded.taken_at,
                background_id = excluded.background_id, bytes = excluded.bytes,
                width = excluded.width, height = excluded.height, sha256 = excluded.sha256,
                file_name = excluded.file_name, event_id = excluded.event_id, synced_at = now()",
            &[
                (&self.kiosk_id, Type::TEXT),
                (&ids, Type::TEXT_ARRAY),
                (&created, Type::FLOAT8_ARRAY),
                (&taken, Type::TEXT_ARRAY),
                (&bg, Type::TEXT_ARRAY),
                (&bytes, Type::INT8_ARRAY),
                (&width, Type::INT4_ARRAY),
                (&height, Type::INT4_ARRAY),
                (&sha, Type::TEXT_ARRAY),
                (&files, Type::TEXT_ARRAY),
                (&events, Type::TEXT_ARRAY),
            ],
        )
        .await.map(|_| ())
    }

    /// Deletes this kiosk's rows for `ids`.
    pub async fn delete_captures(&self, ids: &[String]) -> Result<u64, RemoteDbError> {
        let client = self.client().await?;
        self.execute(
            &client,
            "DELETE FROM kiosk_captures WHERE kiosk_id = $1 AND id = ANY($2)",
            &[(&self.kiosk_id, Type::TEXT), (&ids, Type::TEXT_ARRAY)],
        )
        .await
    }

    /// Runs one statement with a 30 s bound; a failure or timeout forgets the connection
    /// so the next call reconnects.
    async fn execute(
        &self,
        client: &Client,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<u64, RemoteDbError> {
        match tokio::time::timeout(Duration::from_secs(30), client.execute_typed(sql, params)).await
        {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => {
                self.reset().await;
                Err(db_err(e))
            }
            Err(_) => {
                self.reset().await;
                Err(RemoteDbError::Db("query timed out".into()))
            }
        }
    }

    pub fn kiosk_id(&self) -> &str {
        &self.kiosk_id
    }
}

async fn migrate(client: &Client) -> Result<(), RemoteDbError> {
    // One simple-protocol batch is one transaction (one server connection through
    // PgBouncer); under the lock, two kiosks creating the table at once do not collide.
    let created = client
        .batch_execute(&format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY});
             CREATE TABLE IF NOT EXISTS selfie_kiosk_migrations (
                version INTEGER PRIMARY KEY,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                applied_by TEXT
             );
             COMMIT;"
        ))
        .await;
    if created.is_err() {
        // A failed batch leaves its transaction open and aborted: end it.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    created
        .or_else(|e| {
            // An older kiosk creating the table without the lock at the same moment: the
            // loser sees a unique violation, and the table is there.
            if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(db_err)?;
    let applied = client
        .query_typed("SELECT version FROM selfie_kiosk_migrations", &[])
        .await
        .map_err(db_err)?;
    let applied: std::collections::HashSet<i32> = applied.iter().map(|r| r.get(0)).collect();
    for (i, sql) in REMOTE_MIGRATIONS.iter().enumerate() {
        let v = i as i32 + 1;
        if applied.contains(&v) {
            continue;
        }
        // BEGIN pins one server connection until COMMIT/ROLLBACK, also through PgBouncer.
        client.batch_execute("BEGIN").await.map_err(db_err)?;
        let step =
            async {
                client
                    .execute_typed(
                        "SELECT pg_advisory_xact_lock($1)",
                        &[(&MIGRATION_LOCK_KEY, Type::INT8)],
                    )
                    .await?;
                let again = client
                    .query_typed_opt(
                        "SELECT 1 FROM selfie_kiosk_migrations WHERE version = $1",
                        &[(&v, Type::INT4)],
                    )
                    .await?;
                if again.is_none() {
                    client.batch_execute(sql).await?;
                    client
                    .execute_typed(
                        "INSERT INTO selfie_kiosk_migrations (version, applied_by) VALUES ($1, $2)",
                        &[
                            (&v, Type::INT4),
                            (&concat!("selfie-kiosk ", env!("CARGO_PKG_VERSION")), Type::TEXT),
                        ],
                    )
                    .await?;
                }
                client.batch_execute("COMMIT").await
            }
            .await;
        if let Err(e) = step {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(db_err(e));
        }
    }
    Ok(())
}

impl RemoteDb {
    /// Upserts one SMS row into the remote log (HMAC of the number only).
    pub async fn upsert_sms_log(&self, s: &crate::catalog::SmsRow) -> Result<(), RemoteDbError> {
        let client = self.client().await?;
        let created = s.created_ms as f64 / 1000.0;
        let sent = s.sent_ms.map(|m| m as f64 / 1000.0);
        self.execute(
            &client,
            "INSERT INTO kiosk_sms_log (kiosk_id, sms_id, capture_id, phone_hmac, status, attempts,
                created_at, sent_at, last_error)
             VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7), to_timestamp($8), $9)
             ON CONFLICT (kiosk_id, sms_id) DO UPDATE SET status = excluded.status,
                attempts = excluded.attempts, sent_at = excluded.sent_at,
                last_error = excluded.last_error, updated_at = now()",
            &[
                (&self.kiosk_id, Type::TEXT),
                (&s.id, Type::TEXT),
                (&s.capture_id, Type::TEXT),
                (&s.phone_hmac, Type::TEXT),
                (&s.status, Type::TEXT),
                (&(s.attempts as i32), Type::INT4),
                (&created, Type::FLOAT8),
                (&sent, Type::FLOAT8),
                (&s.last_error, Type::TEXT),
            ],
        )
        .await
        .map(|_| ())
    }

    /// Deletes this kiosk's SMS log rows for the given captures (erasure, retention).
    pub async fn delete_sms_log_for_captures(&self, ids: &[String]) -> Result<u64, RemoteDbError> {
        let client = self.client().await?;
        self.execute(
            &client,
            "DELETE FROM kiosk_sms_log WHERE kiosk_id = $1 AND capture_id = ANY($2)",
            &[(&self.kiosk_id, Type::TEXT), (&ids, Type::TEXT_ARRAY)],
        )
        .await
    }
}

/// Events and consent (issue 20).
impl RemoteDb {
    /// Upserts an event's row, keyed by (kiosk_id, id).
    pub async fn upsert_event(&self, e: &crate::catalog::EventRow) -> Result<(), RemoteDbError> {
        let client = self.client().await?;
        let starts = e.starts_ms as f64 / 1000.0;
        let ends = e.ends_ms.map(|m| m as f64 / 1000.0);
        self.execute(
            &client,
            "INSERT INTO kiosk_events (kiosk_id, id, name, starts_at, ends_at)
             VALUES ($1, $2, $3, to_timestamp($4), to_timestamp($5))
             ON CONFLICT (kiosk_id, id) DO UPDATE SET name = excluded.name,
                starts_at = excluded.starts_at, ends_at = excluded.ends_at, updated_at = now()",
            &[
                (&self.kiosk_id, Type::TEXT),
                (&e.id, Type::TEXT),
                (&e.name, Type::TEXT),
                (&starts, Type::FLOAT8),
                (&ends, Type::FLOAT8),
            ],
        )
        .await
        .map(|_| ())
    }

    /// Records the consent text id of a row already in the remote SMS log.
    pub async fn set_sms_log_consent(
        &self,
        sms_id: &str,
        consent: &str,
    ) -> Result<(), RemoteDbError> {
        let client = self.client().await?;
        self.execute(
            &client,
            "UPDATE kiosk_sms_log SET consent = $3 WHERE kiosk_id = $1 AND sms_id = $2",
            &[
                (&self.kiosk_id, Type::TEXT),
                (&sms_id, Type::TEXT),
                (&consent, Type::TEXT),
            ],
        )
        .await
        .map(|_| ())
    }
}
