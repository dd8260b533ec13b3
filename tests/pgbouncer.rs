#![allow(clippy::disallowed_methods)]
//! The daemon's remote path through a real PgBouncer in `pool_mode = transaction`
//! (Debian's 1.18: no named prepared statements across transactions): migrations, capture
//! and SMS upserts, deletes, heartbeats and `fleet`, while other clients keep the pool's
//! server connections changing hands; and two kiosks migrating an empty database at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::daemon::{Daemon, ADMIN_KEY};
use support::images::{b64, jpeg, sha256_hex};
use support::nginx::Nginx;
use support::ovh::{OvhTestServer, APP_KEY, APP_SECRET, CONSUMER_KEY, SENDER, SERVICE};
use support::pg::PgCluster;
use support::pgbouncer::{PgBouncer, PgBouncerOptions};

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect through PgBouncer: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    c
}

/// Short transactions from other clients through the same PgBouncer, so that the server
/// connection a kiosk gets changes from one transaction to the next (as on a busy VPS).
fn churn(url: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let c = connect(&url).await;
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            if c.batch_execute("BEGIN; SELECT pg_sleep(0.02); COMMIT")
                .await
                .is_ok()
            {
                n += 1;
            }
        }
        n
    })
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let t = Instant::now();
    while !check().await {
        assert!(t.elapsed() < timeout, "{what} not done after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The fixture really pools by transaction: a statement prepared by name in one
/// transaction is gone in the next one when the pool hands over another server
/// connection, while the unnamed typed statements the daemon uses work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_pools_by_transaction_and_named_statements_break() {
    let pg = PgCluster::new();
    let bouncer = PgBouncer::start(&pg);
    let a = connect(&bouncer.url()).await;
    let mut b = connect(&bouncer.url()).await;
    let named = a.prepare("SELECT 1::int4").await.unwrap();
    // b holds the server connection that has the statement, in an open transaction.
    let tx = b.transaction().await.unwrap();
    tx.batch_execute("SELECT 1").await.unwrap();
    let err = a
        .query(&named, &[])
        .await
        .expect_err("a named statement survived a change of server connection");
    assert!(
        err.to_string().contains("does not exist")
            || support_describe(&err).contains("does not exist"),
        "{}",
        support_describe(&err)
    );
    let rows = a
        .query_typed(
            "SELECT $1::int4 + 1",
            &[(&41i32, tokio_postgres::types::Type::INT4)],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 42);
    tx.rollback().await.unwrap();
}

fn support_describe(e: &tokio_postgres::Error) -> String {
    selfie_kiosk::net::pg::describe(e)
}

async fn post_capture(d: &Daemon, seed: u32) -> (String, String) {
    let img = jpeg(48, 32, seed);
    let r = client()
        .post(d.url("/api/capture"))
        .json(&json!({"image": b64(&img), "taken_at": "2026-06-01T14:03:00+02:00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    (v["id"].as_str().unwrap().to_string(), sha256_hex(&img))
}

async fn all_synced(d: &Daemon, ids: &[String]) -> bool {
    let Ok(r) = client()
        .get(d.url(&format!("/api/captures/status?ids={}", ids.join(","))))
        .send()
        .await
    else {
        return false;
    };
    let v: Value = r.json().await.unwrap_or(Value::Null);
    ids.iter().all(|id| v[id.as_str()]["is_synced"] == true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kiosk_syncs_captures_sms_heartbeats_and_deletes_through_pgbouncer() {
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    let ovh = OvhTestServer::start_default();
    let bouncer = PgBouncer::start_with(
        &pg,
        PgBouncerOptions {
            pool_size: 3,
            ..Default::default()
        },
    );
    let stop = Arc::new(AtomicBool::new(false));
    let churners: Vec<_> = (0..2).map(|_| churn(bouncer.url(), stop.clone())).collect();
    let (db_url, dav, ovh_url) = (bouncer.url(), nginx.base_url(), ovh.base_url());
    let d = Daemon::start(&[
        ("REMOTE_DATABASE_URL", db_url.as_str()),
        ("REMOTE_STORAGE_URL", dav.as_str()),
        ("PUBLIC_BASE_URL", dav.as_str()),
        ("OVH_ENDPOINT", ovh_url.as_str()),
        ("OVH_APP_KEY", APP_KEY),
        ("OVH_APP_SECRET", APP_SECRET),
        ("OVH_CONSUMER_KEY", CONSUMER_KEY),
        ("SMS_SERVICE_NAME", SERVICE),
        ("SMS_SENDER", SENDER),
        ("KIOSK_HEARTBEAT_SECS", "1"),
    ]);
    let mut want: HashMap<String, String> = HashMap::new();
    for i in 0..25 {
        let (id, sha) = post_capture(&d, 7000 + i).await;
        want.insert(id, sha);
    }
    let ids: Vec<String> = want.keys().cloned().collect();
    wait_for("sync of 25 captures", Duration::from_secs(90), async || {
        all_synced(&d, &ids).await
    })
    .await;

    // Metadata in PostgreSQL exactly once, with the parsed taken_at.
    let rows = pg.psql(
        "SELECT id || ' ' || sha256 || ' ' || to_char(taken_at_ts AT TIME ZONE 'UTC', 'HH24:MI')
         FROM kiosk_captures WHERE kiosk_id = 'test-kiosk'",
    );
    let got: Vec<&str> = rows.lines().collect();
    assert_eq!(got.len(), want.len(), "{rows}");
    for line in got {
        let mut p = line.split(' ');
        let (id, sha, taken) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
        assert_eq!(want.get(id).map(String::as_str), Some(sha), "{line}");
        assert_eq!(taken, "12:03");
    }

    // An SMS through the pool: sent once, logged remotely, counted once.
    let first = ids[0].clone();
    let r = client()
        .post(d.url("/api/send-sms"))
        .json(&json!({"capture_id": first, "phone": "06 12 34 56 78"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    wait_for(
        "the remote SMS log row",
        Duration::from_secs(60),
        async || {
            pg.psql("SELECT status FROM kiosk_sms_log WHERE kiosk_id = 'test-kiosk'") == "sent"
        },
    )
    .await;
    assert_eq!(ovh.sent_jobs().len(), 1);
    assert_eq!(
        pg.psql("SELECT sum(captures) || ' ' || sum(sms_sent) FROM kiosk_daily WHERE kiosk_id = 'test-kiosk'"),
        "25 1"
    );

    // Heartbeats: the last one and a history.
    wait_for("three heartbeats", Duration::from_secs(30), async || {
        pg.psql("SELECT count(*) FROM kiosk_heartbeat_history WHERE kiosk_id = 'test-kiosk'")
            .parse::<i64>()
            .unwrap()
            >= 3
    })
    .await;
    assert_eq!(
        pg.psql("SELECT count(*) FROM kiosk_heartbeats WHERE kiosk_id = 'test-kiosk' AND seen_at > now() - interval '30 seconds'"),
        "1"
    );

    // A delete from the console: the row, the SMS log and the file go, through the pool.
    let r = client()
        .delete(d.url(&format!("/admin/captures/{first}")))
        .header("X-API-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    wait_for("the remote delete", Duration::from_secs(60), async || {
        pg.psql(&format!(
            "SELECT count(*) FROM kiosk_captures WHERE id = '{first}'"
        )) == "0"
            && !nginx.root().join(format!("{first}.jpg")).exists()
    })
    .await;
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(*) FROM kiosk_sms_log WHERE capture_id = '{first}'"
        )),
        "0"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM kiosk_captures WHERE kiosk_id = 'test-kiosk'"),
        "24"
    );

    // `fleet` reads through the pool as well.
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = support::daemon::run_cli(
        &["fleet", "--json"],
        &[("REMOTE_DATABASE_URL", db_url.as_str())],
        dir.path(),
    );
    assert_eq!(code, 0, "fleet: {err}");
    let fleet: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(fleet[0]["kiosk_id"], "test-kiosk", "{out}");

    stop.store(true, Ordering::Relaxed);
    let mut turns = 0;
    for c in churners {
        turns += c.await.unwrap();
    }
    assert!(
        turns > 20,
        "the other clients ran only {turns} transactions"
    );
    let log = d.log_text();
    assert!(
        !log.contains("prepared statement"),
        "the daemon met prepared-statement errors:\n{log}"
    );
    assert!(
        !bouncer.log().contains("prepared statement"),
        "{}",
        bouncer.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_kiosks_migrate_an_empty_database_at_once_through_pgbouncer() {
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    let bouncer = PgBouncer::start_with(
        &pg,
        PgBouncerOptions {
            pool_size: 2,
            ..Default::default()
        },
    );
    let (db_url, dav) = (bouncer.url(), nginx.base_url());
    let offline = pg.url_with_port(support::pg::free_port());
    // Both offline first (the database on a port nobody listens on), with captures waiting;
    // then both pointed at the pool and started together.
    let mut kiosks: Vec<Daemon> = ["kiosk-one", "kiosk-two"]
        .iter()
        .map(|k| {
            let tmp = tempfile::tempdir().unwrap().keep();
            let mut d = Daemon::new_in(
                &tmp,
                &[
                    ("KIOSK_ID", k),
                    ("REMOTE_DATABASE_URL", offline.as_str()),
                    ("REMOTE_STORAGE_URL", dav.as_str()),
                    ("KIOSK_HEARTBEAT_SECS", "1"),
                ],
            );
            d.spawn();
            d
        })
        .collect();
    let mut ids: Vec<Vec<String>> = Vec::new();
    for (n, d) in kiosks.iter().enumerate() {
        let mut mine = Vec::new();
        for i in 0..10 {
            mine.push(post_capture(d, 9000 + n as u32 * 100 + i).await.0);
        }
        ids.push(mine);
    }
    for d in &mut kiosks {
        d.terminate(Duration::from_secs(20));
        d.set_env("REMOTE_DATABASE_URL", &db_url);
    }
    std::thread::scope(|s| {
        for d in kiosks.iter_mut() {
            s.spawn(move || d.spawn());
        }
    });
    for (d, mine) in kiosks.iter().zip(&ids) {
        wait_for("sync of both kiosks", Duration::from_secs(90), async || {
            all_synced(d, mine).await
        })
        .await;
    }
    let want = selfie_kiosk::sync::remote_db::REMOTE_MIGRATIONS.len();
    assert_eq!(
        pg.psql("SELECT count(*) || ' ' || count(DISTINCT version) || ' ' || max(version) FROM selfie_kiosk_migrations"),
        format!("{want} {want} {want}")
    );
    assert_eq!(
        pg.psql("SELECT kiosk_id || ' ' || count(*) FROM kiosk_captures GROUP BY kiosk_id ORDER BY kiosk_id"),
        "kiosk-one 10\nkiosk-two 10"
    );
    assert_eq!(
        pg.psql("SELECT kiosk_id || ' ' || sum(captures) FROM kiosk_daily GROUP BY kiosk_id ORDER BY kiosk_id"),
        "kiosk-one 10\nkiosk-two 10"
    );
    wait_for("both heartbeats", Duration::from_secs(30), async || {
        pg.psql("SELECT count(*) FROM kiosk_heartbeats") == "2"
    })
    .await;
    for d in &kiosks {
        let log = d.log_text();
        assert!(
            !log.contains("prepared statement") && !log.contains("duplicate key"),
            "{log}"
        );
    }
    for d in &kiosks {
        let _ = std::fs::remove_dir_all(&d.dir);
    }
}
