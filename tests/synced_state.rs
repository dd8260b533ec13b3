//! One meaning of "synced" everywhere: the status route, `/admin/captures` (and its
//! `synced` filter), `/admin/stats`, `/health`, `/admin/diag` and the `diag` summary agree,
//! on a kiosk with no remote (everything synced, "no remote configured", no backlog) and on
//! one with remotes (real PostgreSQL and nginx) before and after the sync.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests measure real time; the rule that time is read through `clock` (clippy.toml)
// is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::daemon::{run_cli, Daemon, ADMIN_KEY};
use support::images::{b64, jpeg};
use support::nginx::Nginx;
use support::pg::PgCluster;

const STANDALONE: &str = "no remote configured";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn post_captures(d: &Daemon, n: u32) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let r = client()
            .post(d.url("/api/capture"))
            .json(&json!({"image": b64(&jpeg(32, 24, 7000 + i))}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    ids
}

async fn get(d: &Daemon, path: &str) -> Value {
    let r = client()
        .get(d.url(path))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert!(
        r.status() == StatusCode::OK || path == "/health",
        "{path}: {}",
        r.status()
    );
    r.json().await.unwrap()
}

/// How many of `ids` the status route calls synced.
async fn status_synced(d: &Daemon, ids: &[String]) -> usize {
    let v = get(d, &format!("/api/captures/status?ids={}", ids.join(","))).await;
    ids.iter()
        .filter(|id| v[id.as_str()]["is_synced"] == true)
        .count()
}

/// Checks that every view of the kiosk says `synced` of the `ids` are synced and the rest
/// wait, with `label` (`Some(STANDALONE)` on a kiosk without remotes) shown beside.
async fn assert_all_agree(d: &Daemon, ids: &[String], synced: usize, label: Option<&str>) {
    let total = ids.len();
    let backlog = total - synced;
    let label = label.map_or(Value::Null, |l| json!(l));

    assert_eq!(status_synced(d, ids).await, synced, "status route");

    let list = get(d, "/admin/captures?limit=500").await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), total, "{list:#}");
    let listed_synced = items.iter().filter(|i| i["is_synced"] == true).count();
    assert_eq!(listed_synced, synced, "/admin/captures: {list:#}");
    let count = |v: &Value| v["items"].as_array().unwrap().len();
    assert_eq!(
        count(&get(d, "/admin/captures?synced=true").await),
        synced,
        "synced=true"
    );
    let unsynced = get(d, "/admin/captures?synced=false").await;
    assert_eq!(count(&unsynced), backlog, "synced=false: {unsynced:#}");
    assert!(unsynced["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["is_synced"] == false));

    let stats = get(d, "/admin/stats").await;
    let c = &stats["captures"];
    assert_eq!(c["total"], total, "{stats:#}");
    assert_eq!(c["synced"], synced, "{stats:#}");
    assert_eq!(c["pending_sync"], backlog, "{stats:#}");
    assert_eq!(c["sync"], label, "{stats:#}");
    assert_eq!(stats["today"]["synced"], synced, "{stats:#}");
    assert_eq!(stats["per_day"][29]["synced"], synced, "{stats:#}");

    let health = get(d, "/health").await;
    let db = &health["checks"]["local_db"];
    assert_eq!(db["captures"], total, "{health:#}");
    assert_eq!(db["unsynced"], backlog, "{health:#}");
    assert_eq!(db["sync"], label, "{health:#}");

    let diag = get(d, "/admin/diag").await;
    assert_eq!(diag["catalog"]["captures"], total, "{:#}", diag["catalog"]);
    assert_eq!(
        diag["catalog"]["unsynced"], backlog,
        "{:#}",
        diag["catalog"]
    );
    assert_eq!(diag["catalog"]["sync"], label, "{:#}", diag["catalog"]);
    let db = &diag["health"]["checks"]["local_db"];
    assert_eq!(db["unsynced"], backlog, "{db:#}");
    assert_eq!(db["sync"], label, "{db:#}");
}

/// `selfie-kiosk diag` against the running daemon: its summary.txt.
fn diag_summary(d: &Daemon, out: &std::path::Path) -> String {
    let env: Vec<(&str, &str)> = d
        .env
        .iter()
        .filter(|(k, _)| *k != "KIOSK_LOG")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (code, stdout, stderr) = run_cli(&["diag", "--out", out.to_str().unwrap()], &env, &d.dir);
    assert_eq!(code, 0, "{stdout}{stderr}");
    std::fs::read_to_string(out.join("summary.txt")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_remotes_every_view_says_synced_and_no_remote_configured() {
    let d = Daemon::start(&[]);
    let ids = post_captures(&d, 3).await;
    assert_all_agree(&d, &ids, 3, Some(STANDALONE)).await;

    let out = tempfile::tempdir().unwrap();
    let summary = diag_summary(&d, out.path());
    assert!(
        summary.contains("3 captures, no remote configured"),
        "{summary}"
    );
    assert!(!summary.contains("not yet synced"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_remotes_every_view_agrees_before_and_after_the_sync() {
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    pg.stop();
    nginx.stop();
    let (pg_url, dav_url) = (pg.url(), nginx.base_url());
    let d = Daemon::start(&[
        ("REMOTE_DATABASE_URL", pg_url.as_str()),
        ("REMOTE_STORAGE_URL", dav_url.as_str()),
    ]);
    let ids = post_captures(&d, 3).await;
    // Remotes down: nothing can sync, every view shows the same backlog.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_all_agree(&d, &ids, 0, None).await;
    let out = tempfile::tempdir().unwrap();
    let summary = diag_summary(&d, out.path());
    assert!(
        summary.contains("3 captures, 3 not yet synced"),
        "{summary}"
    );
    assert!(!summary.contains(STANDALONE), "{summary}");

    pg.start();
    nginx.restart();
    let t = Instant::now();
    while status_synced(&d, &ids).await < ids.len() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "not synced after 60 s:\n{}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_all_agree(&d, &ids, 3, None).await;
    let out = tempfile::tempdir().unwrap();
    let summary = diag_summary(&d, out.path());
    assert!(
        summary.contains("3 captures, 0 not yet synced"),
        "{summary}"
    );
}
