//! Sync to S3-compatible object storage against a real S3 server (moto) and a real
//! PostgreSQL: offline then online, objects byte-identical, deletes, and wrong credentials
//! or bucket reported in `/health` with the S3 error code.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use selfie_kiosk::config::RemoteStorage;
use selfie_kiosk::sync::s3::{S3Config, S3};
use selfie_kiosk::sync::{RemoteFileError, RemoteFiles};
use serde_json::{json, Value};
use support::daemon::{Daemon, ADMIN_KEY};
use support::images::{b64, jpeg, sha256_hex};
use support::pg::{free_port, PgCluster};
use support::s3::{endpoint_for, Moto};

const BUCKET: &str = "test-bucket";
const REGION: &str = "eu-west-3";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn storage_url(bucket: &str, endpoint: &str) -> String {
    format!("s3://{bucket}/captures?endpoint={endpoint}&region={REGION}")
}

/// The daemon's own client, pointed where the daemon uploads.
fn s3_client(endpoint: &str, access_key: &str, secret_key: &str) -> S3 {
    let vars: HashMap<&str, String> = [
        ("AWS_ACCESS_KEY_ID", access_key.to_string()),
        ("AWS_SECRET_ACCESS_KEY", secret_key.to_string()),
    ]
    .into_iter()
    .collect();
    let cfg =
        S3Config::from_url(&storage_url(BUCKET, endpoint), &|k| vars.get(k).cloned()).unwrap();
    S3::new(&cfg).unwrap()
}

/// Posts `n` distinct captures (one of them large enough to span many upload chunks);
/// returns id → sha256.
async fn post_many(d: &Daemon, n: u32, seed: u32) -> HashMap<String, String> {
    let c = client();
    let mut out = HashMap::new();
    for i in 0..n {
        let img = if i == 0 {
            jpeg(1600, 1200, seed * 1000 + i)
        } else {
            jpeg(48, 32, seed * 1000 + i)
        };
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
    let r = client()
        .get(d.url(&format!("/api/captures/status?ids={}", ids.join(","))))
        .send()
        .await;
    let Ok(r) = r else { return ids.len() };
    let v: Value = r.json().await.unwrap_or(Value::Null);
    ids.iter()
        .filter(|id| v[id.as_str()]["is_synced"] != true)
        .count()
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

async fn wait_synced(d: &Daemon, ids: &[String], timeout: Duration) {
    let t = Instant::now();
    loop {
        let left = unsynced(d, ids).await;
        if left == 0 {
            return;
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

async fn wait_storage_error(d: &Daemon, needle: &str) -> Value {
    let t = Instant::now();
    loop {
        let h = health(d).await;
        let err = h["checks"]["remote_storage"]["last_error"]
            .as_str()
            .unwrap_or("");
        if err.contains(needle) {
            assert_eq!(h["checks"]["remote_storage"]["status"], "degraded", "{h}");
            return h;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no '{needle}' error in remote_storage: {h}\nlog tail:\n{}",
            tail(&d.log_text())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every capture is in PostgreSQL exactly once, and in the bucket with the same bytes
/// under its public name (`{token}.jpg`, never `{id}.jpg`), with its share page beside it.
/// Returns each capture's public token.
async fn assert_remote(
    pg: &PgCluster,
    s3: &S3,
    want: &HashMap<String, String>,
) -> HashMap<String, String> {
    let rows = pg.psql(
        "SELECT id || ' ' || sha256 || ' ' || file_name FROM kiosk_captures \
         WHERE kiosk_id = 'test-kiosk' ORDER BY id",
    );
    let seen: HashMap<String, (String, String)> = rows
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut p = l.split(' ');
            let (id, sha, file) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
            (id.to_string(), (sha.to_string(), file.to_string()))
        })
        .collect();
    assert_eq!(seen.len(), want.len(), "rows in PostgreSQL: {rows}");
    let mut tokens = HashMap::new();
    for (id, sha) in want {
        let (seen_sha, file) = seen
            .get(id)
            .unwrap_or_else(|| panic!("{id} not in PostgreSQL"));
        assert_eq!(seen_sha, sha, "{id} in PostgreSQL");
        let token = file.strip_suffix(".jpg").unwrap();
        assert_ne!(token, id, "{id}: the public name is the id");
        let bytes = s3
            .get_object(file)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id} not in the bucket"));
        assert_eq!(&sha256_hex(&bytes), sha, "{id} in the bucket");
        assert_eq!(s3.get(id).await.unwrap(), None, "{id}.jpg in the bucket");
        let page = s3
            .get_object(&format!("{token}.html"))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id}: no page in the bucket"));
        assert!(
            String::from_utf8_lossy(&page).contains(file.as_str()),
            "{id}: the page does not show its photo"
        );
        tokens.insert(id.clone(), token.to_string());
    }
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offline_then_online_syncs_to_s3_and_deletes() {
    let pg = PgCluster::new();
    // The daemon starts while the store is down: moto is not running yet on its port.
    let port = free_port();
    let endpoint = endpoint_for(port);
    let (key, secret) = (
        "AKIAKIOSKTEST0000001",
        "kiosk/test+secret0000000000000000000000",
    );
    let pg_url = pg.url();
    let url = storage_url(BUCKET, &endpoint);
    let d = Daemon::start(&[
        ("REMOTE_DATABASE_URL", pg_url.as_str()),
        ("REMOTE_STORAGE_URL", url.as_str()),
        ("AWS_ACCESS_KEY_ID", key),
        ("AWS_SECRET_ACCESS_KEY", secret),
    ]);
    let want = post_many(&d, 25, 1).await;
    let ids: Vec<String> = want.keys().cloned().collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        unsynced(&d, &ids).await,
        25,
        "nothing can be synced offline"
    );
    let h = wait_storage_error(&d, "connect").await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert!(!h.to_string().contains(secret), "{h}");

    let moto = Moto::start_on(port);
    moto.create_bucket(BUCKET, REGION);
    wait_synced(&d, &ids, Duration::from_secs(60)).await;
    let s3 = s3_client(&endpoint, key, secret);
    let tokens = assert_remote(&pg, &s3, &want).await;
    // The page is served as HTML (the store keeps the Content-Type it was given).
    let page = format!("{}.html", tokens[&ids[0]]);
    assert_eq!(
        s3.content_type(&page).await.unwrap().as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        s3.content_type(&format!("{}.jpg", tokens[&ids[0]]))
            .await
            .unwrap()
            .as_deref(),
        Some("image/jpeg")
    );
    let h = health(&d).await;
    assert_eq!(h["checks"]["remote_storage"]["status"], "ok", "{h}");
    assert_eq!(h["checks"]["outbox"]["pending"], 0, "{h}");
    let log = d.log_text();
    assert!(!log.contains(secret), "secret in the log");

    // Deletes, through the same dispatch the daemon's outbox uses (there is no admin
    // delete endpoint to drive it from outside yet).
    let cfg = s3.config().clone();
    let files = RemoteFiles::new(&RemoteStorage::S3(cfg)).unwrap();
    files.probe().await.unwrap();
    let gone = format!("{}.jpg", tokens[&ids[0]]);
    files.delete(&gone).await.unwrap();
    assert_eq!(
        s3.get_object(&gone).await.unwrap(),
        None,
        "{gone} still in the bucket"
    );
    files.delete(&gone).await.unwrap(); // idempotent
    files.delete("never-uploaded.jpg").await.unwrap();
    for id in &ids[1..] {
        let file = format!("{}.jpg", tokens[id]);
        assert!(
            s3.get_object(&file).await.unwrap().is_some(),
            "{id} deleted too"
        );
    }
    // A missing bucket is a configuration error, not a successful delete.
    let mut other = s3.config().clone();
    other.bucket = "no-such-bucket".into();
    match S3::new(&other).unwrap().delete(&gone).await {
        Err(RemoteFileError::Remote(m)) => assert!(m.contains("NoSuchBucket"), "{m}"),
        r => panic!("delete in a missing bucket: {r:?}"),
    }

    // Store down again: the probe says so, with a connection error.
    moto.stop();
    match files.probe().await {
        Err(RemoteFileError::Remote(m)) => assert!(m.contains("connect"), "{m}"),
        r => panic!("probe of a stopped store: {r:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signatures_are_verified_and_s3_errors_reach_health() {
    let pg = PgCluster::new();
    let moto = Moto::start();
    moto.create_bucket(BUCKET, REGION);
    // From here on moto recomputes every request's Signature V4 and checks the key.
    let (key, secret) = moto.enforce_auth();
    let endpoint = moto.endpoint();
    let pg_url = pg.url();
    let good_url = storage_url(BUCKET, &endpoint);
    let wrong_secret = "wrong-secret-0000000000000000000000000000";

    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::new_in(
        tmp.path(),
        &[
            ("REMOTE_DATABASE_URL", pg_url.as_str()),
            ("REMOTE_STORAGE_URL", good_url.as_str()),
            ("AWS_ACCESS_KEY_ID", key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", wrong_secret),
        ],
    );
    d.spawn();
    let mut want = post_many(&d, 3, 2).await;
    let h = wait_storage_error(&d, "SignatureDoesNotMatch").await;
    let err = h["checks"]["remote_storage"]["last_error"]
        .as_str()
        .unwrap();
    assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "hint missing: {err}");
    assert!(!h.to_string().contains(wrong_secret), "{h}");

    // An access key the store does not know.
    d.set_env("AWS_ACCESS_KEY_ID", "AKIANOSUCHKEY0000000");
    d.restart();
    want.extend(post_many(&d, 2, 3).await);
    wait_storage_error(&d, "InvalidAccessKeyId").await;

    // Right credentials, a bucket that does not exist.
    d.set_env("AWS_ACCESS_KEY_ID", &key);
    d.set_env("AWS_SECRET_ACCESS_KEY", &secret);
    d.set_env(
        "REMOTE_STORAGE_URL",
        &storage_url("no-such-bucket", &endpoint),
    );
    d.restart();
    want.extend(post_many(&d, 2, 4).await);
    let h = wait_storage_error(&d, "NoSuchBucket").await;
    assert!(!h.to_string().contains(&secret), "{h}");

    // Fixed: everything goes, signed uploads accepted by the verifying store.
    d.set_env("REMOTE_STORAGE_URL", &good_url);
    d.restart();
    let ids: Vec<String> = want.keys().cloned().collect();
    wait_synced(&d, &ids, Duration::from_secs(60)).await;
    assert_remote(&pg, &s3_client(&endpoint, &key, &secret), &want).await;
    let h = health(&d).await;
    assert_eq!(h["checks"]["remote_storage"]["status"], "ok", "{h}");
    let log = d.log_text();
    assert!(
        !log.contains(&secret) && !log.contains(wrong_secret),
        "secret in the log"
    );
    // The store saw authenticated requests only (moto rejects the rest).
    let r = client()
        .post(d.url("/admin/sync"))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    // Sanity: the verifying store does refuse a wrong secret from our client too.
    match s3_client(&endpoint, &key, wrong_secret).get(&ids[0]).await {
        Err(RemoteFileError::Remote(m)) => assert!(m.contains("SignatureDoesNotMatch"), "{m}"),
        r => panic!("GET with a wrong secret: {r:?}"),
    }
}
