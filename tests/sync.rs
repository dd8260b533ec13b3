//! Offline-first sync against real PostgreSQL and nginx (WebDAV): offline then online,
//! flapping network, crashes during the drain, a deleted outbox, bad remote configuration.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::daemon::{Daemon, ADMIN_KEY};
use support::images::{b64, jpeg, sha256_hex};
use support::nginx::{Nginx, NginxOptions};
use support::pg::PgCluster;
use support::proxy::{Mode, Proxy};

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Posts `n` distinct small captures; returns id → sha256.
async fn post_many(d: &Daemon, n: u32, seed: u32) -> HashMap<String, String> {
    let c = client();
    let mut out = HashMap::new();
    for i in 0..n {
        let img = jpeg(48, 32, seed * 100_000 + i);
        let r = c
            .post(d.url("/api/capture"))
            .json(&json!({"image": b64(&img)}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        out.insert(v["id"].as_str().unwrap().to_string(), sha256_hex(&img));
    }
    out
}

async fn unsynced(d: &Daemon, ids: &[String]) -> usize {
    let c = client();
    let mut n = 0;
    for chunk in ids.chunks(400) {
        let r = c
            .get(d.url(&format!("/api/captures/status?ids={}", chunk.join(","))))
            .send()
            .await;
        let Ok(r) = r else { return ids.len() };
        let v: Value = r.json().await.unwrap_or(Value::Null);
        n += chunk
            .iter()
            .filter(|id| v[id.as_str()]["is_synced"] != true)
            .count();
    }
    n
}

async fn wait_synced(d: &Daemon, ids: &[String], timeout: Duration) -> Duration {
    let t = Instant::now();
    loop {
        let left = unsynced(d, ids).await;
        if left == 0 {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < timeout,
            "{left} of {} still unsynced after {timeout:?}; log tail:\n{}",
            ids.len(),
            tail(&d.log_text())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Every capture is in PostgreSQL exactly once and on nginx with the same bytes, under
/// the public name its row gives (`{token}.jpg`, never `{id}.jpg`), with its share page.
fn assert_remote_exactly_once(pg: &PgCluster, nginx: &Nginx, want: &HashMap<String, String>) {
    let rows = pg.psql(
        "SELECT id || ' ' || sha256 || ' ' || file_name FROM kiosk_captures \
         WHERE kiosk_id = 'test-kiosk' ORDER BY id",
    );
    let mut seen: HashMap<String, (String, String)> = HashMap::new();
    for line in rows.lines().filter(|l| !l.is_empty()) {
        let mut parts = line.split(' ');
        let (id, sha, file) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        assert!(
            seen.insert(id.to_string(), (sha.to_string(), file.to_string()))
                .is_none(),
            "{id} twice in PostgreSQL"
        );
    }
    assert_eq!(seen.len(), want.len(), "rows in PostgreSQL");
    for (id, sha) in want {
        let (seen_sha, file) = seen
            .get(id)
            .unwrap_or_else(|| panic!("{id} not in PostgreSQL"));
        assert_eq!(seen_sha, sha, "{id} in PostgreSQL");
        assert_ne!(file, &format!("{id}.jpg"), "{id}: public name is the id");
        let bytes =
            std::fs::read(nginx.root().join(file)).unwrap_or_else(|_| panic!("{id} not on nginx"));
        assert_eq!(&sha256_hex(&bytes), sha, "{id} on nginx");
        let page = file.replace(".jpg", ".html");
        assert!(nginx.root().join(&page).exists(), "{id}: no page {page}");
    }
    let files = nginx.stored_files().len();
    assert_eq!(
        files,
        2 * want.len(),
        "files on nginx (a photo and a page each)"
    );
}

fn remote_env<'a>(pg_url: &'a str, dav_url: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("REMOTE_DATABASE_URL", pg_url),
        ("REMOTE_STORAGE_URL", dav_url),
    ]
}

async fn health(d: &Daemon) -> Value {
    client()
        .get(d.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offline_then_online_syncs_everything_once() {
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    pg.stop();
    nginx.stop();
    let (pg_url, dav_url) = (pg.url(), nginx.base_url());
    let d = Daemon::start(&remote_env(&pg_url, &dav_url));
    let want = post_many(&d, 200, 1).await;
    let ids: Vec<String> = want.keys().cloned().collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        unsynced(&d, &ids).await,
        200,
        "nothing can be synced offline"
    );
    let h = health(&d).await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["checks"]["remote_storage"]["status"], "degraded", "{h}");
    assert!(
        h["checks"]["remote_storage"]["last_error"]
            .as_str()
            .unwrap()
            .contains("connect"),
        "{h}"
    );
    assert!(
        h["checks"]["outbox"]["pending"].as_u64().unwrap() >= 200,
        "{h}"
    );

    pg.start();
    nginx.restart();
    let took = wait_synced(&d, &ids, Duration::from_secs(60)).await;
    eprintln!("offline→online: 200 captures synced {took:?} after the remotes came back");
    assert_remote_exactly_once(&pg, &nginx, &want);
    let h = health(&d).await;
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["checks"]["outbox"]["pending"], 0, "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flapping_network_loses_and_duplicates_nothing() {
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    let pg_proxy = Proxy::start(pg.addr());
    let dav_proxy = Proxy::start(nginx.addr());
    pg_proxy.set_mode(Mode::Refuse);
    dav_proxy.set_mode(Mode::Refuse);
    let (pg_url, dav_url) = (
        pg.url_with_port(pg_proxy.port()),
        nginx.base_url_with_port(dav_proxy.port()),
    );
    let d = Daemon::start(&remote_env(&pg_url, &dav_url));
    let want = post_many(&d, 120, 2).await;
    let ids: Vec<String> = want.keys().cloned().collect();

    // Flap: pass, cut everything, refuse, drop mid-stream… while the backlog drains.
    let t = Instant::now();
    let mut flips = 0;
    let modes = [
        Mode::Pass,
        Mode::Drop,
        Mode::Pass,
        Mode::Refuse,
        Mode::Pass,
        Mode::DropAfter(20_000),
    ];
    while unsynced(&d, &ids).await > 0 {
        let m = modes[flips % modes.len()];
        pg_proxy.set_mode(m);
        dav_proxy.set_mode(modes[(flips + 1) % modes.len()]);
        if flips % 3 == 0 {
            pg_proxy.cut_all();
            dav_proxy.cut_all();
        }
        flips += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if flips > 40 {
            pg_proxy.set_mode(Mode::Pass);
            dav_proxy.set_mode(Mode::Pass);
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "drain did not finish; log:\n{}",
            tail(&d.log_text())
        );
    }
    eprintln!(
        "flapping: drained after {flips} flips, {} cuts on the storage proxy, in {:?}",
        dav_proxy.cuts(),
        t.elapsed()
    );
    assert!(
        flips >= 3,
        "the network should have flapped during the drain"
    );
    assert_remote_exactly_once(&pg, &nginx, &want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_drain_still_syncs_exactly_once() {
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    pg.stop();
    nginx.stop();
    let (pg_url, dav_url) = (pg.url(), nginx.base_url());
    let mut d = Daemon::start(&remote_env(&pg_url, &dav_url));
    let want = post_many(&d, 150, 3).await;
    let ids: Vec<String> = want.keys().cloned().collect();
    pg.start();
    nginx.restart();
    // Let the drain begin, then pull the plug again and again.
    for i in 0..5 {
        d.kill9();
        d.spawn();
        let c = client();
        let _ = c
            .post(d.url("/admin/sync"))
            .header("x-api-key", ADMIN_KEY)
            .send()
            .await;
        tokio::time::sleep(Duration::from_millis(150 + 100 * i)).await;
    }
    d.kill9();
    d.spawn();
    wait_synced(&d, &ids, Duration::from_secs(60)).await;
    assert_remote_exactly_once(&pg, &nginx, &want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleted_outbox_is_rebuilt_from_the_catalog() {
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    pg.stop();
    nginx.stop();
    let (pg_url, dav_url) = (pg.url(), nginx.base_url());
    let mut d = Daemon::start(&remote_env(&pg_url, &dav_url));
    let want = post_many(&d, 40, 4).await;
    let ids: Vec<String> = want.keys().cloned().collect();
    let (code, _) = d.terminate(Duration::from_secs(15));
    assert_eq!(code, Some(0));
    std::fs::remove_dir_all(d.data_dir().join("outbox")).unwrap();
    pg.start();
    nginx.restart();
    d.spawn();
    assert!(d.log_text().contains("sync jobs rebuilt from the catalog"));
    wait_synced(&d, &ids, Duration::from_secs(60)).await;
    assert_remote_exactly_once(&pg, &nginx, &want);
}

async fn wait_error(d: &Daemon, check: &str, needle: &str) -> Value {
    let t = Instant::now();
    loop {
        let h = health(d).await;
        let err = h["checks"][check]["last_error"].as_str().unwrap_or("");
        if err.contains(needle) {
            assert_eq!(h["checks"][check]["status"], "degraded", "{h}");
            assert_eq!(h["status"], "degraded", "{h}");
            return h;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no '{needle}' error in {check}: {h}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_remote_configuration_is_reported_and_recovers() {
    let pg = PgCluster::new();
    let nginx = Nginx::start_with(NginxOptions {
        basic_auth: Some(("kiosk".into(), "davpw-correct".into())),
    });
    let wrong_pg = pg.url_wrong_password();
    let no_host = "http://no-such-host.invalid/uploads/".to_string();
    let dav_forbidden = nginx.forbidden_url();
    let dav_full = nginx.full_url();
    let port = nginx.port();
    let dav_wrong_pw = format!("http://kiosk:davpw-wrong@127.0.0.1:{port}/uploads/");
    let dav_ok = format!("http://kiosk:davpw-correct@127.0.0.1:{port}/uploads/");

    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::new_in(tmp.path(), &remote_env(&wrong_pg, &no_host));
    d.spawn();
    let mut want = post_many(&d, 5, 5).await;
    wait_error(&d, "remote_storage", "connect").await;
    let log = d.log_text();
    assert!(
        log.contains("remote storage upload failed"),
        "{}",
        tail(&log)
    );

    // Storage fixed, database password still wrong.
    d.set_env("REMOTE_STORAGE_URL", &dav_ok);
    d.restart();
    let h = wait_error(&d, "remote_db", "password").await;
    assert!(!h.to_string().contains("kiosk-test-pw"));
    want.extend(post_many(&d, 3, 6).await);

    for (url, needle) in [
        (&dav_forbidden, "403"),
        (&dav_full, "507"),
        (&dav_wrong_pw, "401"),
    ] {
        d.set_env("REMOTE_STORAGE_URL", url);
        d.set_env("REMOTE_DATABASE_URL", &pg.url());
        d.restart();
        // Captures keep being accepted.
        want.extend(post_many(&d, 2, 7 + want.len() as u32).await);
        let h = wait_error(&d, "remote_storage", needle).await;
        assert!(!h.to_string().contains("davpw"), "{h}");
    }
    assert!(!d.log_text().contains("davpw-wrong") && !d.log_text().contains("kiosk-test-pw"));

    d.set_env("REMOTE_STORAGE_URL", &dav_ok);
    d.set_env("REMOTE_DATABASE_URL", &pg.url());
    d.restart();
    let ids: Vec<String> = want.keys().cloned().collect();
    wait_synced(&d, &ids, Duration::from_secs(60)).await;
    assert_remote_exactly_once(&pg, &nginx, &want);
    let h = health(&d).await;
    assert_eq!(h["status"], "ok", "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_sync_needs_the_key_and_drains_now() {
    let d = Daemon::start(&[]);
    let c = client();
    let r = c.post(d.url("/admin/sync")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .post(d.url("/admin/sync"))
        .header("x-api-key", "wrong-key-wrong-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .post(d.url("/admin/sync"))
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v: Value = r.json().await.unwrap();
    assert!(v["pending"].is_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_can_be_paused_and_resumed_at_run_time() {
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    let (pg_url, dav_url) = (pg.url(), nginx.base_url());
    let d = Daemon::start(&remote_env(&pg_url, &dav_url));
    let c = client();
    let put = |v: bool| {
        c.put(d.url("/admin/config"))
            .header("x-api-key", ADMIN_KEY)
            .json(&json!({"sync_enabled": v}))
            .send()
    };
    assert_eq!(put(false).await.unwrap().status(), StatusCode::OK);
    let want = post_many(&d, 5, 9).await;
    let ids: Vec<String> = want.keys().cloned().collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(unsynced(&d, &ids).await, 5, "sync is paused");
    assert!(nginx.stored_files().is_empty());
    assert_eq!(put(true).await.unwrap().status(), StatusCode::OK);
    let took = wait_synced(&d, &ids, Duration::from_secs(10)).await;
    assert!(
        took < Duration::from_secs(5),
        "resuming should drain at once, took {took:?}"
    );
    assert_remote_exactly_once(&pg, &nginx, &want);
}

/// A WebDAV password holding `@` and `/` is written percent-encoded in
/// `REMOTE_STORAGE_URL` (as URL user-info must be) and reaches nginx decoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn percent_encoded_webdav_credentials_are_sent_decoded() {
    let pg = PgCluster::new();
    let nginx = Nginx::start_with(NginxOptions {
        basic_auth: Some(("kiosk".into(), "p@ss/w-9f3".into())),
    });
    let dav_url = format!(
        "http://kiosk:p%40ss%2Fw-9f3@127.0.0.1:{}/uploads/",
        nginx.port()
    );
    let pg_url = pg.url();
    let d = Daemon::start(&remote_env(&pg_url, &dav_url));
    let want = post_many(&d, 3, 11).await;
    let ids: Vec<String> = want.keys().cloned().collect();
    wait_synced(&d, &ids, Duration::from_secs(30)).await;
    assert_remote_exactly_once(&pg, &nginx, &want);
    assert!(!d.log_text().contains("p@ss/w-9f3"));
}
