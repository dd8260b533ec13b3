//! The fleet's remote schema (`kiosk_heartbeat_history` figures, `kiosk_status`) and the
//! fleet page (`selfie-kiosk fleet serve`), against a real PostgreSQL written by real
//! kiosk daemons, and in Debian's Chromium (`tests/browser/fleet.mjs`).
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::daemon::{Daemon, ADMIN_KEY};
use support::pg::PgCluster;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

/// Polls `sql` (one value) until `ok` holds for it, for up to 20 s.
async fn wait_for(pg: &PgCluster, sql: &str, ok: impl Fn(&str) -> bool) -> String {
    let t = Instant::now();
    loop {
        // The tables appear with the kiosk's first connection.
        let v = pg.try_psql(sql).unwrap_or_default();
        if ok(&v) {
            return v;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{sql}: still {v:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn count(pg: &PgCluster, sql: &str) -> i64 {
    pg.psql(sql).parse().unwrap()
}

#[tokio::test]
async fn heartbeats_fill_the_history_and_kiosk_status_and_prune_by_age() {
    let pg = PgCluster::new();
    let url = pg.url();
    let kiosk = Daemon::start(&[
        ("KIOSK_ID", "kiosk-h"),
        ("REMOTE_DATABASE_URL", url.as_str()),
        ("KIOSK_HEARTBEAT_SECS", "1"),
    ]);

    // Two beats, two history rows, each with its figures taken out of the report.
    wait_for(
        &pg,
        "SELECT count(*) FROM kiosk_heartbeat_history WHERE kiosk_id = 'kiosk-h'",
        |v| v.parse::<i64>().unwrap_or(0) >= 2,
    )
    .await;
    let rows = pg.psql(
        "SELECT status, version, backlog, oldest_pending_s, disk_free_bytes > 0,
                sms_credits IS NULL, report->'checks'->'disk'->>'free_bytes' = disk_free_bytes::text
         FROM kiosk_heartbeat_history WHERE kiosk_id = 'kiosk-h' ORDER BY seen_at",
    );
    let version = env!("CARGO_PKG_VERSION");
    for line in rows.lines() {
        // No job waiting: no oldest age in the report, so NULL.
        assert_eq!(line, format!("ok|{version}|0||t|t|t"), "{rows}");
    }

    // The view: one row for the kiosk, its newest beat, not stale.
    let latest = pg.psql(
        "SELECT s.last_seen = (SELECT max(seen_at) FROM kiosk_heartbeat_history
                                WHERE kiosk_id = 'kiosk-h'),
                s.status, s.version, s.backlog, s.disk_free_bytes > 0, s.stale
         FROM kiosk_status s WHERE s.kiosk_id = 'kiosk-h'",
    );
    assert_eq!(latest, format!("t|ok|{version}|0|t|f"));

    // A row written the way older daemons write it (no figure columns) gets its figures
    // too; a report without them gives NULLs, a non-number too.
    pg.psql(
        "INSERT INTO kiosk_heartbeat_history (kiosk_id, seen_at, status, report) VALUES
         ('old-daemon', now() - interval '1 minute', 'degraded',
          '{\"version\": \"0.0.9\", \"checks\": {\"outbox\": {\"pending\": 12,
            \"oldest_pending_age_s\": 340}, \"disk\": {\"free_bytes\": 1073741824},
            \"sms\": {\"credits_left\": 41.5}}}'),
         ('old-daemon', now() - interval '2 minutes', 'ok', '{}'),
         ('old-daemon', now() - interval '3 minutes', 'ok',
          '{\"checks\": {\"outbox\": {\"pending\": \"many\"}}}')",
    );
    assert_eq!(
        pg.psql(
            "SELECT coalesce(version, '-'), coalesce(backlog::text, '-'),
                    coalesce(oldest_pending_s::text, '-'), coalesce(disk_free_bytes::text, '-'),
                    coalesce(sms_credits::text, '-')
             FROM kiosk_heartbeat_history WHERE kiosk_id = 'old-daemon' ORDER BY seen_at DESC"
        ),
        "0.0.9|12|340|1073741824|41\n-|-|-|-|-\n-|-|-|-|-"
    );

    // A kiosk last seen 10 minutes ago is stale (3 × its 60 s interval); a live one is not.
    pg.psql(
        "INSERT INTO kiosk_heartbeats (kiosk_id, seen_at, status, version, report) VALUES
         ('gone', now() - interval '10 minutes', 'ok', '0.0.9',
          '{\"checks\": {\"workers\": {\"workers\": {\"heartbeat\":
             {\"details\": {\"interval_s\": 60}}}}}}'),
         ('slow-beats', now() - interval '10 minutes', 'ok', '0.0.9',
          '{\"checks\": {\"workers\": {\"workers\": {\"heartbeat\":
             {\"details\": {\"interval_s\": 600}}}}}}')",
    );
    assert_eq!(
        pg.psql("SELECT kiosk_id, stale FROM kiosk_status ORDER BY kiosk_id"),
        "gone|t\nkiosk-h|f\nslow-beats|f"
    );

    // Prune by age: with `heartbeat_history_days` = 2, this kiosk's rows older than 2 days
    // go at its next beat; its younger rows and other kiosks' rows stay.
    pg.psql(
        "INSERT INTO kiosk_heartbeat_history (kiosk_id, seen_at, status, report) VALUES
         ('kiosk-h', now() - interval '1 day', 'ok', '{}'),
         ('kiosk-h', now() - interval '3 days', 'ok', '{}'),
         ('kiosk-h', now() - interval '40 days', 'ok', '{}'),
         ('old-daemon', now() - interval '3 days', 'ok', '{}')",
    );
    let r = client()
        .put(kiosk.url("/admin/config"))
        .header("x-api-key", ADMIN_KEY)
        .json(&json!({"heartbeat_history_days": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["settings"]["heartbeat_history_days"],
        2
    );
    wait_for(
        &pg,
        "SELECT count(*) FROM kiosk_heartbeat_history
         WHERE kiosk_id = 'kiosk-h' AND seen_at < now() - interval '2 days'",
        |v| v == "0",
    )
    .await;
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM kiosk_heartbeat_history
             WHERE kiosk_id = 'kiosk-h' AND seen_at BETWEEN now() - interval '25 hours'
                                                     AND now() - interval '23 hours'"
        ),
        1,
        "the day-old row stays"
    );
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM kiosk_heartbeat_history WHERE kiosk_id = 'old-daemon'"
        ),
        4,
        "another kiosk's rows are its own to prune"
    );

    // The setting is checked like every other.
    for bad in [json!(0), json!(3651), json!("x")] {
        let r = client()
            .put(kiosk.url("/admin/config"))
            .header("x-api-key", ADMIN_KEY)
            .json(&json!({ "heartbeat_history_days": bad }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["key"], "heartbeat_history_days", "{body}");
    }
}
