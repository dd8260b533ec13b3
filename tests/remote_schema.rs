#![allow(clippy::disallowed_methods)]
//! The remote schema for dashboards against a real PostgreSQL: `taken_at_ts` and
//! `kiosk_daily` kept right by triggers whichever daemon version writes (an older daemon's
//! own statements included), comments on everything, the read-only role of
//! `assets/vps/readonly-role.sql`, and every query of the Grafana dashboard run with its
//! macros expanded the way Grafana expands them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use selfie_kiosk::catalog::{CaptureRow, SmsRow};
use selfie_kiosk::config::Secret;
use selfie_kiosk::sync::remote_db::{RemoteDb, REMOTE_MIGRATIONS};
use selfie_kiosk::sync::remote_schema;
use serde_json::Value;
use support::pg::{self, PgCluster};
use tokio_postgres::types::Type;

/// The capture upsert of the daemons released before `taken_at_ts` and `kiosk_daily`
/// (copied from that version): `taken_at` as text, no knowledge of the new objects.
const OLD_CAPTURE_UPSERT: &str = "INSERT INTO kiosk_captures
    (kiosk_id, id, created_at, taken_at, background_id, bytes, width, height, sha256, file_name)
 SELECT $1, u.id, to_timestamp(u.created), u.taken, u.bg, u.bytes, u.width, u.height, u.sha, u.file
 FROM UNNEST($2::text[], $3::float8[], $4::text[], $5::text[], $6::int8[], $7::int4[],
             $8::int4[], $9::text[], $10::text[])
      AS u(id, created, taken, bg, bytes, width, height, sha, file)
 ON CONFLICT (kiosk_id, id) DO UPDATE SET
    created_at = excluded.created_at, taken_at = excluded.taken_at,
    background_id = excluded.background_id, bytes = excluded.bytes,
    width = excluded.width, height = excluded.height, sha256 = excluded.sha256,
    file_name = excluded.file_name, synced_at = now()";

/// The SMS upsert of the same older daemons.
const OLD_SMS_UPSERT: &str = "INSERT INTO kiosk_sms_log (kiosk_id, sms_id, capture_id, phone_hmac,
    status, attempts, created_at, sent_at, last_error)
 VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7), to_timestamp($8), $9)
 ON CONFLICT (kiosk_id, sms_id) DO UPDATE SET status = excluded.status,
    attempts = excluded.attempts, sent_at = excluded.sent_at,
    last_error = excluded.last_error, updated_at = now()";

/// 2026-06-01T12:00:00Z, a fixed day for the daily counts.
const DAY_MS: i64 = 1_780_315_200_000;

async fn old_capture(
    c: &tokio_postgres::Client,
    kiosk: &str,
    id: &str,
    created_ms: i64,
    taken: Option<&str>,
) {
    c.execute(
        OLD_CAPTURE_UPSERT,
        &[
            &kiosk,
            &vec![id],
            &vec![created_ms as f64 / 1000.0],
            &vec![taken],
            &vec![None::<&str>],
            &vec![1234i64],
            &vec![64i32],
            &vec![48i32],
            &vec!["ab".repeat(32)],
            &vec![format!("{id}.jpg")],
        ],
    )
    .await
    .unwrap_or_else(|e| panic!("older daemon's insert of {id}: {e}"));
}

async fn old_sms(c: &tokio_postgres::Client, kiosk: &str, sms_id: &str, status: &str) {
    let created = DAY_MS as f64 / 1000.0;
    let sent = (status == "sent").then_some(created + 5.0);
    c.execute(
        OLD_SMS_UPSERT,
        &[
            &kiosk,
            &sms_id,
            &"cap-1",
            &"hmac-of-the-number",
            &status,
            &1i32,
            &created,
            &sent,
            &None::<String>,
        ],
    )
    .await
    .unwrap_or_else(|e| panic!("older daemon's SMS upsert: {e}"));
}

fn capture_row(id: &str, created_ms: i64, taken: Option<&str>) -> CaptureRow {
    CaptureRow {
        seq: 0,
        id: id.into(),
        created_ms,
        taken_at: taken.map(String::from),
        background_id: None,
        bytes: 1000,
        width: 64,
        height: 48,
        sha256: "cd".repeat(32),
        source_sha256: "cd".repeat(32),
        source_format: "jpeg".into(),
        file_missing: false,
        remote_file_ms: None,
        remote_db_ms: None,
        synced_ms: None,
        event_id: None,
        public_token: format!("tok-{id}"),
        legacy_remote: false,
    }
}

fn sms_row(id: &str, status: &str) -> SmsRow {
    SmsRow {
        id: id.into(),
        capture_id: "new-1".into(),
        phone: None,
        phone_hmac: "hmac".into(),
        phone_masked: "+33 6 •• •• •• 78".into(),
        status: status.into(),
        attempts: 1,
        last_error: None,
        tag: format!("tag-{id}"),
        ovh_ids: None,
        created_ms: DAY_MS,
        expires_ms: DAY_MS + 86_400_000,
        attempt_started_ms: None,
        sent_ms: (status == "sent").then_some(DAY_MS + 1000),
    }
}

fn remote(pg: &PgCluster, kiosk: &str) -> RemoteDb {
    RemoteDb::new(&Secret::new(pg.url()), kiosk).unwrap()
}

/// A database as an older fleet left it: the migrations up to (not including) `before`,
/// applied and recorded as an older daemon did.
async fn older_fleet_database(c: &tokio_postgres::Client, before: &str) {
    let upto = REMOTE_MIGRATIONS
        .iter()
        .position(|m| *m == before)
        .expect("a remote migration");
    c.batch_execute(
        "CREATE TABLE selfie_kiosk_migrations (version INTEGER PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_by TEXT)",
    )
    .await
    .unwrap();
    for (i, sql) in REMOTE_MIGRATIONS[..upto].iter().enumerate() {
        c.batch_execute(sql).await.unwrap();
        c.execute(
            "INSERT INTO selfie_kiosk_migrations (version, applied_by) VALUES ($1, 'older')",
            &[&(i as i32 + 1)],
        )
        .await
        .unwrap();
    }
}

async fn daily(c: &tokio_postgres::Client, kiosk: &str) -> (i64, i64, i64) {
    let r = c
        .query_opt(
            "SELECT captures, sms_sent, sms_failed FROM kiosk_daily
             WHERE kiosk_id = $1 AND day = DATE '2026-06-01'",
            &[&kiosk],
        )
        .await
        .unwrap();
    r.map(|r| (r.get(0), r.get(1), r.get(2)))
        .unwrap_or((0, 0, 0))
}

async fn taken_ts(c: &tokio_postgres::Client, kiosk: &str, id: &str) -> Option<String> {
    c.query_one(
        "SELECT to_char(taken_at_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
         FROM kiosk_captures WHERE kiosk_id = $1 AND id = $2",
        &[&kiosk, &id],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_daemons_keep_writing_and_the_new_columns_and_counts_stay_right() {
    let pg = PgCluster::new();
    let c = pg.client().await;
    older_fleet_database(&c, remote_schema::TAKEN_AT_TS).await;
    // Rows written by the older fleet before the upgrade.
    old_capture(
        &c,
        "old-k",
        "before-1",
        DAY_MS,
        Some("2026-06-01T13:59:30+02:00"),
    )
    .await;
    old_capture(&c, "old-k", "before-2", DAY_MS + 60_000, None).await;
    old_sms(&c, "old-k", "sms-before", "sent").await;

    // A new daemon migrates: backfill of taken_at_ts and of the daily counts.
    let new = remote(&pg, "new-k");
    new.client().await.expect("migrations through a new daemon");
    assert_eq!(
        taken_ts(&c, "old-k", "before-1").await.as_deref(),
        Some("2026-06-01T11:59:30Z")
    );
    assert_eq!(taken_ts(&c, "old-k", "before-2").await, None);
    assert_eq!(daily(&c, "old-k").await, (2, 1, 0), "backfilled counts");

    // The older daemon goes on with its own statements after the upgrade.
    old_capture(
        &c,
        "old-k",
        "after-1",
        DAY_MS + 120_000,
        Some("2026-06-01T12:00:00Z"),
    )
    .await;
    assert_eq!(
        taken_ts(&c, "old-k", "after-1").await.as_deref(),
        Some("2026-06-01T12:00:00Z")
    );
    // Not a date-time: the row is stored all the same, taken_at_ts is NULL.
    old_capture(
        &c,
        "old-k",
        "after-2",
        DAY_MS + 180_000,
        Some("yesterday-ish"),
    )
    .await;
    assert_eq!(taken_ts(&c, "old-k", "after-2").await, None);
    old_capture(&c, "old-k", "after-3", DAY_MS, Some("2026-02-30T10:00:00Z")).await;
    assert_eq!(taken_ts(&c, "old-k", "after-3").await, None);
    assert_eq!(daily(&c, "old-k").await, (5, 1, 0));
    // A re-sync (the same upsert again, with a corrected taken_at) counts nothing new and
    // follows the text.
    old_capture(
        &c,
        "old-k",
        "after-1",
        DAY_MS + 120_000,
        Some("2026-06-01T12:30:00Z"),
    )
    .await;
    assert_eq!(
        daily(&c, "old-k").await,
        (5, 1, 0),
        "a re-sync is not a capture"
    );
    assert_eq!(
        taken_ts(&c, "old-k", "after-1").await.as_deref(),
        Some("2026-06-01T12:30:00Z")
    );

    // The new daemon's own path: counted once, re-synced, counted still once.
    let rows = [
        capture_row("new-1", DAY_MS, Some("2026-06-01T10:00:00.250Z")),
        capture_row("new-2", DAY_MS + 1, None),
    ];
    new.upsert_captures(&rows).await.unwrap();
    new.upsert_captures(&rows).await.unwrap();
    assert_eq!(daily(&c, "new-k").await, (2, 0, 0));
    assert_eq!(
        taken_ts(&c, "new-k", "new-1").await.as_deref(),
        Some("2026-06-01T10:00:00Z")
    );

    // SMS: each in the bucket of its current status, whichever version writes.
    new.upsert_sms_log(&sms_row("s1", "queued")).await.unwrap();
    assert_eq!(daily(&c, "new-k").await, (2, 0, 0));
    new.upsert_sms_log(&sms_row("s1", "sent")).await.unwrap();
    new.upsert_sms_log(&sms_row("s1", "sent")).await.unwrap();
    assert_eq!(daily(&c, "new-k").await, (2, 1, 0), "sent twice is one SMS");
    new.upsert_sms_log(&sms_row("s2", "failed")).await.unwrap();
    assert_eq!(daily(&c, "new-k").await, (2, 1, 1));
    // Retried from the console and sent: one sent more, one failed less.
    new.upsert_sms_log(&sms_row("s2", "sent")).await.unwrap();
    assert_eq!(daily(&c, "new-k").await, (2, 2, 0));
    old_sms(&c, "old-k", "sms-old-2", "queued").await;
    old_sms(&c, "old-k", "sms-old-2", "failed").await;
    old_sms(&c, "old-k", "sms-old-2", "failed").await;
    assert_eq!(daily(&c, "old-k").await, (5, 1, 1));

    // Retention and erasure delete rows, never the counts.
    new.delete_captures(&["new-1".into(), "new-2".into()])
        .await
        .unwrap();
    new.delete_sms_log_for_captures(&["new-1".into()])
        .await
        .unwrap();
    c.batch_execute("DELETE FROM kiosk_captures WHERE kiosk_id = 'old-k'")
        .await
        .unwrap();
    assert_eq!(daily(&c, "new-k").await, (2, 2, 0));
    assert_eq!(daily(&c, "old-k").await, (5, 1, 1));
    let left: i64 = c
        .query_one("SELECT count(*) FROM kiosk_captures", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);

    // A second new daemon (another kiosk) finds everything migrated and changes nothing.
    remote(&pg, "new-k2").client().await.unwrap();
    let versions: Vec<i32> = c
        .query(
            "SELECT version FROM selfie_kiosk_migrations ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let want: Vec<i32> = (1..=REMOTE_MIGRATIONS.len() as i32).collect();
    assert_eq!(versions, want);
    assert_eq!(daily(&c, "old-k").await, (5, 1, 1));
}

async fn daily_event(c: &tokio_postgres::Client, kiosk: &str, event: &str) -> (i64, i64, i64) {
    let r = c
        .query_opt(
            "SELECT captures, sms_sent, sms_failed FROM kiosk_daily_events
             WHERE kiosk_id = $1 AND event_id = $2 AND day = DATE '2026-06-01'",
            &[&kiosk, &event],
        )
        .await
        .unwrap();
    r.map(|r| (r.get(0), r.get(1), r.get(2)))
        .unwrap_or((0, 0, 0))
}

/// Per event: captures of an event and their SMS are counted under it (backfilled from the
/// rows there before the migration, then by the triggers), others only in kiosk_daily;
/// retention leaves the counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_counts_per_event_outlive_the_rows() {
    let pg = PgCluster::new();
    let c = pg.client().await;
    // The database as it was before kiosk_daily_events: one event capture already there.
    older_fleet_database(&c, remote_schema::DAILY_EVENTS).await;
    c.batch_execute(
        "INSERT INTO kiosk_captures (kiosk_id, id, created_at, bytes, width, height, sha256,
             file_name, event_id)
         VALUES ('ev-k', 'early', '2026-06-01T08:00:00Z', 1, 1, 1, 'x', 'early.jpg', 'wedding')",
    )
    .await
    .unwrap();
    let new = remote(&pg, "ev-k");
    new.client().await.expect("migrations");
    assert_eq!(
        daily_event(&c, "ev-k", "wedding").await,
        (1, 0, 0),
        "backfilled"
    );

    let mut at_event = capture_row("new-1", DAY_MS, None);
    at_event.event_id = Some("wedding".into());
    let outside = capture_row("new-2", DAY_MS + 1, None);
    new.upsert_captures(&[at_event.clone(), outside])
        .await
        .unwrap();
    new.upsert_captures(&[at_event]).await.unwrap();
    assert_eq!(daily_event(&c, "ev-k", "wedding").await, (2, 0, 0));
    assert_eq!(daily(&c, "ev-k").await, (3, 0, 0));
    // sms_row's capture is new-1, the event's.
    new.upsert_sms_log(&sms_row("s1", "failed")).await.unwrap();
    assert_eq!(daily_event(&c, "ev-k", "wedding").await, (2, 0, 1));
    new.upsert_sms_log(&sms_row("s1", "sent")).await.unwrap();
    new.upsert_sms_log(&sms_row("s1", "sent")).await.unwrap();
    assert_eq!(daily_event(&c, "ev-k", "wedding").await, (2, 1, 0));
    assert_eq!(daily(&c, "ev-k").await, (3, 1, 0));
    let events: i64 = c
        .query_one(
            "SELECT count(DISTINCT event_id) FROM kiosk_daily_events",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        events, 1,
        "a capture without an event is in no event's count"
    );

    new.delete_sms_log_for_captures(&["new-1".into()])
        .await
        .unwrap();
    new.delete_captures(&["new-1".into(), "new-2".into(), "early".into()])
        .await
        .unwrap();
    assert_eq!(daily_event(&c, "ev-k", "wedding").await, (2, 1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_column_and_function_has_a_comment() {
    let pg = PgCluster::new();
    remote(&pg, "k").client().await.unwrap();
    let c = pg.client().await;
    let missing: Vec<String> = c
        .query(
            "SELECT c.relname || coalesce('.' || a.attname, '')
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
             LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE c.relkind IN ('r', 'v', 'm', 'p')
               AND (a.attname IS NULL AND obj_description(c.oid, 'pg_class') IS NULL
                    OR a.attname IS NOT NULL AND col_description(c.oid, a.attnum) IS NULL)
             UNION ALL
             SELECT c.relname FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
             WHERE c.relkind IN ('r', 'v', 'm', 'p') AND obj_description(c.oid, 'pg_class') IS NULL
             UNION ALL
             SELECT p.proname || '()' FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace AND n.nspname = 'public'
             WHERE obj_description(p.oid, 'pg_proc') IS NULL
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        missing.is_empty(),
        "objects without COMMENT ON: {missing:?}"
    );
    // The check looks at real objects: the tables are there.
    let tables: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
             AND tablename IN ('kiosk_captures', 'kiosk_sms_log', 'kiosk_daily',
                               'kiosk_heartbeats', 'kiosk_heartbeat_history')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 5);
}

/// `psql -f file` as the superuser over the cluster's socket, with `-v` variables.
fn psql_file_as_admin(pg: &PgCluster, file: &str, vars: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(pg::bindir().join("psql"));
    cmd.args(["-X", "-q", "-U", "postgres", "-h"])
        .arg(pg.socket_dir())
        .args(["-p", &pg.port().to_string(), "-d", pg::DATABASE, "-f", file]);
    for (k, v) in vars {
        cmd.args(["-v", &format!("{k}={v}")]);
    }
    let out = cmd
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null())
        .output()
        .expect("spawn psql");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn connect_as(pg: &PgCluster, user: &str, password: &str) -> tokio_postgres::Client {
    let url = format!(
        "postgresql://{user}:{password}@127.0.0.1:{}/{}",
        pg.port(),
        pg::DATABASE
    );
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

fn denied(r: Result<impl std::fmt::Debug, tokio_postgres::Error>, what: &str) {
    match r {
        Ok(v) => panic!("{what}: allowed to the read-only role ({v:?})"),
        Err(e) => assert_eq!(
            e.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{what}: {e}"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readonly_role_reads_everything_but_phone_hmacs_and_writes_nothing() {
    let pg = PgCluster::new();
    let kiosk = remote(&pg, "k1");
    kiosk.client().await.unwrap();
    kiosk
        .upsert_captures(&[capture_row("c1", DAY_MS, None)])
        .await
        .unwrap();
    kiosk.upsert_sms_log(&sms_row("s1", "sent")).await.unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/vps/readonly-role.sql");
    for run in 1..=2 {
        let (ok, out) = psql_file_as_admin(&pg, script, &[("owner", pg::USER)]);
        assert!(ok, "readonly-role.sql (run {run}) failed:\n{out}");
    }
    pg.psql_admin(
        "CREATE ROLE grafana_test LOGIN PASSWORD 'ro-test-pw' IN ROLE selfie_kiosk_readonly",
    );
    // A table the kiosks' migrations add later: covered by the default privileges.
    pg.psql("CREATE TABLE kiosk_later (x INT); INSERT INTO kiosk_later VALUES (7)");

    let ro = connect_as(&pg, "grafana_test", "ro-test-pw").await;
    for sql in [
        "SELECT count(*) FROM kiosk_captures",
        "SELECT count(*) FROM kiosk_daily",
        "SELECT count(*) FROM kiosk_heartbeats",
        "SELECT count(*) FROM kiosk_heartbeat_history",
        "SELECT count(*) FROM selfie_kiosk_migrations",
        "SELECT count(*) FROM kiosk_later",
    ] {
        ro.query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql} as the read-only role: {e}"));
    }
    let sms = ro
        .query_one(
            "SELECT status, sms_id, capture_id, attempts FROM kiosk_sms_log",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(sms.get::<_, String>(0), "sent");
    let daily = ro
        .query_one(
            "SELECT captures, sms_sent FROM kiosk_daily WHERE kiosk_id = 'k1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((daily.get::<_, i64>(0), daily.get::<_, i64>(1)), (1, 1));

    denied(
        ro.query("SELECT phone_hmac FROM kiosk_sms_log", &[]).await,
        "reading phone_hmac",
    );
    denied(
        ro.query("SELECT * FROM kiosk_sms_log", &[]).await,
        "SELECT * on the SMS log",
    );
    denied(
        ro.execute(
            "INSERT INTO kiosk_daily (kiosk_id, day) VALUES ('x', DATE '2026-01-01')",
            &[],
        )
        .await,
        "INSERT",
    );
    denied(
        ro.execute("UPDATE kiosk_daily SET captures = 0", &[]).await,
        "UPDATE",
    );
    denied(
        ro.execute("DELETE FROM kiosk_captures", &[]).await,
        "DELETE",
    );
    denied(
        ro.execute("TRUNCATE kiosk_heartbeats", &[]).await,
        "TRUNCATE",
    );
    denied(
        ro.execute("INSERT INTO kiosk_later VALUES (1)", &[]).await,
        "INSERT into a later table",
    );
    denied(
        ro.batch_execute("CREATE TABLE ro_made (x INT)").await,
        "CREATE TABLE",
    );
    denied(
        ro.batch_execute("DROP TABLE kiosk_daily").await,
        "DROP TABLE",
    );
    // Nothing changed behind the refusals.
    assert_eq!(
        pg.psql("SELECT captures FROM kiosk_daily WHERE kiosk_id = 'k1'"),
        "1"
    );
}

/// Heartbeats for three kiosks over the last two days (one stale), daily counts.
async fn dashboard_fixture(c: &tokio_postgres::Client) {
    for (k, status, age_s, backlog) in [
        ("kiosk-a", "ok", 5, 0i64),
        ("kiosk-b", "degraded", 20, 37),
        ("kiosk-c'quote", "ok", 3600, 4),
    ] {
        let report = format!(
            r#"{{"status":"{status}","checks":{{"outbox":{{"pending":{backlog},"oldest_pending_age_s":{age}}},
                "disk":{{"free_bytes":{disk}}},"sms":{{"configured":true,"credits_left":{credits}}}}}}}"#,
            age = backlog * 10,
            disk = 5u64 << 30,
            credits = 120
        );
        c.execute_typed(
            "INSERT INTO kiosk_heartbeats (kiosk_id, seen_at, status, version, report)
             VALUES ($1, now() - make_interval(secs => $2), $3, '0.1.0', $4::text::jsonb)",
            &[
                (&k, Type::TEXT),
                (&(age_s as f64), Type::FLOAT8),
                (&status, Type::TEXT),
                (&report, Type::TEXT),
            ],
        )
        .await
        .unwrap();
        c.execute_typed(
            // The figure columns are generated from the report, as for a real kiosk's rows.
            "INSERT INTO kiosk_heartbeat_history (kiosk_id, seen_at, status, report)
             SELECT $1, now() - make_interval(secs => $2 + g * 600), $3,
                    $4::text::jsonb || jsonb_build_object('version', '0.1.0', 'checks',
                        jsonb_build_object(
                            'outbox', jsonb_build_object('pending', $5 + g % 7,
                                'oldest_pending_age_s', ($5 + g % 7) * 10),
                            'disk', jsonb_build_object('free_bytes', $6 - g * 1000),
                            'sms', jsonb_build_object('credits_left', 120 - g % 3)))
             FROM generate_series(0, 288) AS g",
            &[
                (&k, Type::TEXT),
                (&(age_s as f64), Type::FLOAT8),
                (&status, Type::TEXT),
                (&report, Type::TEXT),
                (&backlog, Type::INT8),
                (&(5i64 << 30), Type::INT8),
            ],
        )
        .await
        .unwrap();
        c.execute_typed(
            "INSERT INTO kiosk_daily (kiosk_id, day, captures, sms_sent, sms_failed)
             SELECT $1, (now() AT TIME ZONE 'UTC')::date - d, 40 + d, 10 + d, d % 2
             FROM generate_series(0, 6) AS d
             ON CONFLICT (kiosk_id, day) DO NOTHING",
            &[(&k, Type::TEXT)],
        )
        .await
        .unwrap();
    }
}

/// Every `rawSql` anywhere in the dashboard, with where it is.
fn raw_sqls(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "rawSql" {
                    out.push((path.to_string(), x.as_str().unwrap().to_string()));
                } else {
                    raw_sqls(x, &format!("{path}.{k}"), out);
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                raw_sqls(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// A Grafana interval (`5m`, `1h`, `'1d'`) in seconds.
fn interval_secs(s: &str) -> u64 {
    let s = s.trim().trim_matches('\'');
    let (n, unit) = s.split_at(s.len() - 1);
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("interval {s:?}"));
    n * match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => panic!("interval unit in {s:?}"),
    }
}

/// The argument list of the macro call starting at `at` (just after its name), split at
/// top-level commas, and the index just after the closing parenthesis.
fn macro_args(sql: &str, at: usize) -> (Vec<String>, usize) {
    let bytes = sql.as_bytes();
    assert_eq!(bytes[at], b'(', "macro without arguments in {sql}");
    let (mut depth, mut args, mut cur) = (0, Vec::new(), String::new());
    for (i, ch) in sql[at..].char_indices() {
        match ch {
            '(' => {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            }
            ')' => {
                depth -= 1;
                if depth == 0 {
                    if !cur.trim().is_empty() {
                        args.push(cur.trim().to_string());
                    }
                    return (args, at + i + 1);
                }
            }
            ',' if depth == 1 => {
                args.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    panic!("unclosed macro in {sql}");
}

/// Grafana's PostgreSQL macros and template variables, expanded as Grafana does:
/// `$__timeFilter(x)` → `x BETWEEN 'from' AND 'to'`, `$__timeFrom()`/`$__timeTo()` → the
/// quoted RFC 3339 instants, `$__timeGroup(x, i)` → `floor(extract(epoch from x)/s)*s`
/// (`…Alias` adds `AS "time"`), `$__time(x)` → `x AS "time"`, `$__interval` → the
/// panel's interval, and a multi-value variable → its values quoted and comma-joined.
fn expand(sql: &str, from: &str, to: &str, interval: &str, vars: &[(&str, &[String])]) -> String {
    let mut s = sql.replace(
        "$__interval_ms",
        &(interval_secs(interval) * 1000).to_string(),
    );
    s = s.replace("$__interval", interval);
    while let Some(start) = s.find("$__") {
        let name_end = start
            + 3
            + s[start + 3..]
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(s.len() - start - 3);
        let name = &s[start + 3..name_end];
        let (args, end) = macro_args(&s, name_end);
        let with = match name {
            "timeFilter" => format!("{} BETWEEN '{from}' AND '{to}'", args[0]),
            "timeFrom" => format!("'{from}'"),
            "timeTo" => format!("'{to}'"),
            "time" => format!("{} AS \"time\"", args[0]),
            "timeEpoch" => format!("extract(epoch from {}) AS \"time\"", args[0]),
            "timeGroup" | "timeGroupAlias" => {
                let secs = interval_secs(&args[1]);
                let g = format!("floor(extract(epoch from {})/{secs})*{secs}", args[0]);
                if name == "timeGroupAlias" {
                    format!("{g} AS \"time\"")
                } else {
                    g
                }
            }
            other => panic!("macro $__{other} not handled by the test: add it"),
        };
        s.replace_range(start..end, &with);
    }
    for (name, values) in vars {
        let quoted: Vec<String> = values
            .iter()
            .map(|v| format!("'{}'", v.replace('\'', "''")))
            .collect();
        s = s.replace(&format!("${{{name}}}"), &quoted.join(","));
        s = s.replace(&format!("${name}"), &quoted.join(","));
    }
    assert!(!s.contains('$'), "unexpanded variable left in {s}");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_of_the_grafana_dashboard_runs_on_the_migrated_schema() {
    let pg = PgCluster::new();
    remote(&pg, "kiosk-a").client().await.unwrap();
    let c = pg.client().await;
    dashboard_fixture(&c).await;

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/grafana/selfie-kiosk.json"
    );
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(dash["uid"], "selfie-kiosk-fleet");
    let mut sqls = Vec::new();
    raw_sqls(&dash, "$", &mut sqls);
    assert!(sqls.len() >= 8, "{} queries in the dashboard", sqls.len());
    let panel_ids: BTreeSet<i64> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(panel_ids.len(), dash["panels"].as_array().unwrap().len());

    // The template variable, as Grafana runs it; "All" is every value it returns.
    let variables = dash["templating"]["list"].as_array().unwrap();
    let mut vars: Vec<(String, Vec<String>)> = Vec::new();
    for v in variables {
        let q = v["query"].as_str().unwrap();
        let values: Vec<String> = c
            .query(q, &[])
            .await
            .unwrap_or_else(|e| panic!("variable {}: {q}: {e}", v["name"]))
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            values,
            ["kiosk-a", "kiosk-b", "kiosk-c'quote"],
            "variable {}",
            v["name"]
        );
        vars.push((v["name"].as_str().unwrap().to_string(), values));
    }
    let range = c
        .query_one(
            "SELECT to_char((now() - interval '7 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
            &[],
        )
        .await
        .unwrap();
    let (from, to): (String, String) = (range.get(0), range.get(1));

    for (only_one, interval) in [(false, "10m"), (true, "1h")] {
        let selected: Vec<(&str, &[String])> = vars
            .iter()
            .map(|(n, v)| (n.as_str(), if only_one { &v[1..2] } else { &v[..] }))
            .collect();
        for (at, raw) in &sqls {
            let sql = expand(raw, &from, &to, interval, &selected);
            let rows = c
                .query(sql.as_str(), &[])
                .await
                .unwrap_or_else(|e| panic!("{at}: {}\n{sql}", support_describe(&e)));
            assert!(!rows.is_empty(), "{at}: no row from the fixture\n{sql}");
            if raw.contains("$__timeGroup") || raw.contains("AS \"time\"") {
                let names: Vec<&str> = rows[0].columns().iter().map(|c| c.name()).collect();
                assert!(names.contains(&"time"), "{at}: no time column: {names:?}");
            }
            if only_one && raw.contains("AS metric") {
                let metrics: BTreeSet<String> = rows.iter().map(|r| r.get("metric")).collect();
                assert_eq!(metrics, BTreeSet::from(["kiosk-b".to_string()]), "{at}");
            }
        }
    }
    // The fleet table: the stale kiosk first, all three there.
    let fleet = sqls
        .iter()
        .find(|(_, s)| s.contains("FROM kiosk_status") && s.contains("ORDER BY"))
        .expect("a fleet table on kiosk_status");
    let all: Vec<(&str, &[String])> = vars.iter().map(|(n, v)| (n.as_str(), &v[..])).collect();
    let rows = c
        .query(expand(&fleet.1, &from, &to, "10m", &all).as_str(), &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].get::<_, String>("kiosk"), "kiosk-c'quote");
    assert!(rows[0].get::<_, String>("status").starts_with("stale"));
}

fn support_describe(e: &tokio_postgres::Error) -> String {
    selfie_kiosk::net::pg::describe(e)
}
