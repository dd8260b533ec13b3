//! `GET /health` driven into each state against the real binary: remotes down (real
//! PostgreSQL and nginx stopped), a black-holed network, the disk under and near the
//! reserve, an outbox backlog, an unreadable catalog, and the `HEALTH_LISTEN` listener.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::daemon::{free_port, Daemon, ADMIN_KEY};
use support::images::{b64, jpeg};
use support::nginx::Nginx;
use support::pg::PgCluster;
use support::proxy::{Mode, Proxy};

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn health_at(url: &str) -> (StatusCode, Value) {
    let r = client().get(url).send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap())
}

async fn health(d: &Daemon) -> (StatusCode, Value) {
    health_at(&d.url("/health")).await
}

/// Polls `/health` until `pred` holds; panics with the last report after `timeout`.
async fn wait_health(
    d: &Daemon,
    timeout: Duration,
    what: &str,
    pred: impl Fn(StatusCode, &Value) -> bool,
) -> (StatusCode, Value) {
    let t = Instant::now();
    loop {
        let (s, v) = health(d).await;
        if pred(s, &v) {
            return (s, v);
        }
        assert!(
            t.elapsed() < timeout,
            "{what}: not reached after {timeout:?}; last ({s}): {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn post_capture(d: &Daemon, seed: u32) -> String {
    let r = client()
        .post(d.url("/api/capture"))
        .json(&json!({"image": b64(&jpeg(32, 32, seed))}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

fn free_space(dir: &Path) -> u64 {
    let st = rustix::fs::statvfs(dir).unwrap();
    st.f_bavail * st.f_frsize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn remotes_down_degrade_with_backlog_then_recover() {
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    let (pg_url, dav_url) = (pg.url(), nginx.base_url());
    let d = Daemon::start(&[
        ("REMOTE_DATABASE_URL", &pg_url),
        ("REMOTE_STORAGE_URL", &dav_url),
    ]);

    // Both remotes answer: the start-up probe sees them.
    let (s, v) = wait_health(&d, Duration::from_secs(10), "remotes reachable", |_, v| {
        v["checks"]["remote_db"]["reachable"] == true
            && v["checks"]["remote_storage"]["reachable"] == true
    })
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ok", "{v:#}");
    assert_eq!(v["kiosk_id"], "test-kiosk");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["uptime_s"].is_u64());
    let c = &v["checks"];
    assert_eq!(c["local_db"]["status"], "ok");
    assert!(c["local_db"]["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(c["local_db"]["captures"], 0);
    assert_eq!(c["outbox"]["pending"], 0);
    assert_eq!(c["outbox"]["oldest_pending_age_s"], Value::Null);
    assert_eq!(c["scheduler"]["status"], "ok");
    assert_eq!(c["clock"]["status"], "ok");
    assert_eq!(c["clock"]["synchronized"], true);
    assert_eq!(c["sms"]["configured"], false);
    assert!(c["remote_db"]["last_probe_at"].is_string(), "{v:#}");
    assert!(c["remote_db"]["last_success"].is_string(), "{v:#}");
    let probe_ms = c["remote_db"]["probe_latency_ms"].as_f64().unwrap();
    assert!(probe_ms < 2000.0, "{probe_ms}");

    // Both remotes go away; captures keep coming.
    pg.stop();
    nginx.stop();
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(post_capture(&d, 100 + i).await);
    }
    let posted = Instant::now();
    let (s, v) = wait_health(
        &d,
        Duration::from_secs(30),
        "remotes unreachable",
        |_, v| {
            v["checks"]["remote_db"]["reachable"] == false
                && v["checks"]["remote_storage"]["reachable"] == false
        },
    )
    .await;
    assert_eq!(s, StatusCode::OK, "remote trouble is never 503: {v:#}");
    assert_eq!(v["status"], "degraded", "{v:#}");
    for r in ["remote_db", "remote_storage"] {
        let c = &v["checks"][r];
        assert_eq!(c["status"], "degraded", "{r}: {v:#}");
        assert_eq!(c["configured"], true);
        assert!(!c["last_error"].as_str().unwrap().is_empty(), "{r}");
        assert!(c["last_error_at"].is_string(), "{r}");
        assert!(c["last_success"].is_string(), "{r}: keeps the last success");
    }
    assert_eq!(v["checks"]["local_db"]["status"], "ok");
    assert_eq!(v["checks"]["disk"]["status"], "ok");
    assert_eq!(v["checks"]["local_db"]["captures"], 4);
    assert_eq!(v["checks"]["local_db"]["unsynced"], 4);

    // The backlog and its age.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, v) = health(&d).await;
    let ob = &v["checks"]["outbox"];
    assert!(ob["pending"].as_u64().unwrap() >= 4, "{v:#}");
    assert_eq!(ob["by_kind"]["sync"], 4, "{v:#}");
    let age = ob["oldest_pending_age_s"].as_u64().unwrap();
    let elapsed = posted.elapsed().as_secs();
    assert!(
        age >= 2 && age <= elapsed + 1,
        "age {age}, {elapsed} s since posted"
    );
    assert_eq!(ob["status"], "ok", "a backlog alone is not an outbox fault");

    // Back online: everything syncs, the report is ok again.
    pg.start();
    nginx.restart();
    let (s, v) = wait_health(&d, Duration::from_secs(60), "recovered", |s, v| {
        s == StatusCode::OK && v["status"] == "ok" && v["checks"]["outbox"]["pending"] == 0
    })
    .await;
    assert_eq!(v["checks"]["remote_db"]["reachable"], true, "{v:#}");
    assert_eq!(v["checks"]["local_db"]["unsynced"], 0, "{v:#}");
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_stays_fast_while_remotes_are_a_black_hole() {
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    let pg_proxy = Proxy::start(pg.addr());
    let dav_proxy = Proxy::start(nginx.addr());
    pg_proxy.set_mode(Mode::Stall);
    dav_proxy.set_mode(Mode::Stall);
    let pg_url = pg.url_with_port(pg_proxy.port());
    let dav_url = nginx.base_url_with_port(dav_proxy.port());
    let d = Daemon::start(&[
        ("REMOTE_DATABASE_URL", &pg_url),
        ("REMOTE_STORAGE_URL", &dav_url),
    ]);
    // Work for the sync worker, which now hangs on the remotes too.
    post_capture(&d, 1).await;

    // Probes run every few seconds and hang for their full timeout: sample across them.
    let c = client();
    let mut worst = Duration::ZERO;
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed() < Duration::from_secs(12) {
        let t = Instant::now();
        let r = c.get(d.url("/health")).send().await.unwrap();
        let status = r.status();
        let _: Value = r.json().await.unwrap();
        let took = t.elapsed();
        assert_eq!(status, StatusCode::OK);
        assert!(
            took < Duration::from_millis(100),
            "/health took {took:?} (call {n})"
        );
        worst = worst.max(took);
        n += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    eprintln!("{n} /health calls while black-holed, slowest {worst:?}");
    assert!(pg_proxy.accepted() > 0, "the probe did try the database");

    // The probe's timeout shows as an unreachable remote.
    let (_, v) = health(&d).await;
    for r in ["remote_db", "remote_storage"] {
        assert_eq!(v["checks"][r]["reachable"], false, "{r}: {v:#}");
        assert_eq!(v["checks"][r]["status"], "degraded", "{r}: {v:#}");
    }
    assert_eq!(v["status"], "degraded");

    // And the network comes back.
    pg_proxy.set_mode(Mode::Pass);
    dav_proxy.set_mode(Mode::Pass);
    wait_health(&d, Duration::from_secs(60), "recovered", |_, v| {
        v["status"] == "ok" && v["checks"]["outbox"]["pending"] == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_under_the_reserve_is_down_and_near_it_degraded() {
    // Under the reserve: down, 503.
    let d = Daemon::start(&[("KIOSK_DISK_RESERVE", "100000000GB")]);
    let (s, v) = health(&d).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["status"], "down");
    let disk = &v["checks"]["disk"];
    assert_eq!(disk["status"], "down");
    assert_eq!(disk["reserve_bytes"], 100_000_000u64 << 30);
    let free = disk["free_bytes"].as_u64().unwrap();
    let total = disk["total_bytes"].as_u64().unwrap();
    assert!(free > 0 && free <= total);
    let pct = disk["free_percent"].as_f64().unwrap();
    let want = free as f64 * 100.0 / total as f64;
    assert!((pct - want).abs() < 0.2, "{pct} vs {want}");
    assert_eq!(v["checks"]["local_db"]["status"], "ok");
    drop(d);

    // Between once and twice the reserve: degraded, still 200 (captures are accepted).
    let tmp = tempfile::tempdir().unwrap();
    let free = free_space(tmp.path());
    let reserve = free / 3 * 2; // free ≈ 1.5 × reserve
    let mut d = Daemon::new_in(tmp.path(), &[("KIOSK_DISK_RESERVE", &reserve.to_string())]);
    d.spawn();
    let (s, v) = health(&d).await;
    assert_eq!(s, StatusCode::OK, "{v:#}");
    assert_eq!(v["status"], "degraded", "{v:#}");
    let disk = &v["checks"]["disk"];
    assert_eq!(disk["status"], "degraded");
    assert_eq!(disk["reserve_bytes"], reserve);
    let seen = disk["free_bytes"].as_u64().unwrap();
    assert!(
        seen >= reserve && seen < reserve * 2,
        "{seen} vs reserve {reserve}"
    );
    post_capture(&d, 7).await;

    // Plenty of room: ok.
    let d = Daemon::start(&[("KIOSK_DISK_RESERVE", "1MB")]);
    let (s, v) = health(&d).await;
    assert_eq!(
        (s, v["checks"]["disk"]["status"].clone()),
        (StatusCode::OK, json!("ok"))
    );
}

/// Moves everything from the WAL into the main file (from this process: the daemon's
/// connections stay open), so what is on disk is what a restart would read.
fn checkpoint(d: &Daemon) {
    let c = d.catalog();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    let t = Instant::now();
    loop {
        let busy: i64 = c
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .unwrap();
        if busy == 0 {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "checkpoint stays busy"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Overwrites the first bytes of `path` in place (same inode, as a failing card would).
fn scribble_header(path: &Path) {
    use std::io::{Seek, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.write_all(&[0xA5; 100]).unwrap();
    f.sync_all().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_catalog_is_down() {
    // The file's header overwritten under the running daemon. Its open connections keep
    // answering from their page cache, so the check opens the file afresh. (While page 1
    // is still in the WAL, SQLite reads it from there and the damage only shows after the
    // next checkpoint; hence the checkpoint first, as after any quiet minute.)
    let d = Daemon::start(&[]);
    post_capture(&d, 1).await;
    let (s, v) = health(&d).await;
    assert_eq!(
        (s, v["checks"]["local_db"]["status"].clone()),
        (StatusCode::OK, json!("ok"))
    );
    let cat = d.data_dir().join("catalog.sqlite3");
    checkpoint(&d);
    scribble_header(&cat);
    let (s, v) = health(&d).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v:#}");
    assert_eq!(v["status"], "down");
    let db = &v["checks"]["local_db"];
    assert_eq!(db["status"], "down");
    assert!(
        db["error"].as_str().unwrap().contains("not a database"),
        "{v:#}"
    );
    // The other checks are unaffected.
    assert_eq!(v["checks"]["disk"]["status"], "ok");
    drop(d);

    // The file replaced by something else (new inode).
    let d = Daemon::start(&[]);
    let cat = d.data_dir().join("catalog.sqlite3");
    let junk = d.data_dir().join("junk");
    std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
    checkpoint(&d);
    std::fs::rename(&junk, &cat).unwrap();
    let (s, v) = health(&d).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v:#}");
    assert_eq!(v["checks"]["local_db"]["status"], "down");
    drop(d);

    // The file deleted.
    let d = Daemon::start(&[]);
    std::fs::remove_file(d.data_dir().join("catalog.sqlite3")).unwrap();
    let (s, v) = health(&d).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v:#}");
    assert_eq!(v["checks"]["local_db"]["status"], "down");
    assert!(v["checks"]["local_db"]["error"]
        .as_str()
        .unwrap()
        .contains("catalog.sqlite3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_listen_serves_health_and_nothing_else() {
    let hport = free_port();
    let haddr = format!("127.0.0.1:{hport}");
    let d = Daemon::start(&[("HEALTH_LISTEN", &haddr)]);
    let base = format!("http://{haddr}");
    let (s, v) = health_at(&format!("{base}/health")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["kiosk_id"], "test-kiosk");
    for c in [
        "local_db",
        "disk",
        "outbox",
        "scheduler",
        "remote_db",
        "remote_storage",
        "sms",
        "clock",
    ] {
        assert!(v["checks"][c]["status"].is_string(), "{c}: {v:#}");
    }
    let c = client();
    for path in [
        "/api/captures/status?ids=a",
        "/admin/diag",
        "/admin/config",
        "/uploads/x.jpg",
        "/",
    ] {
        let r = c
            .get(format!("{base}{path}"))
            .header("x-api-key", ADMIN_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let r = c
        .post(format!("{base}/api/capture"))
        .json(&json!({"image": b64(&jpeg(8, 8, 1))}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The main listener still has everything.
    let r = c
        .get(d.url("/api/captures/status?ids=a"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
