//! The daemon's whole life on one architecture, black box: start on defaults, captures of
//! every kind, `kill -9` and restart, sync to PostgreSQL and WebDAV, one SMS after the
//! sync, a retention run, a `diag` bundle, SIGTERM.
//!
//! It runs whatever binary the harness is pointed at: Cargo's host build by default (in
//! `cargo test`), or a cross-built one under qemu-user when `tools/cross-test.sh` sets
//! `SELFIE_KIOSK_BIN`, `SELFIE_KIOSK_RUNNER` and `SELFIE_KIOSK_EXPECT_ARCH`. The binary's ELF
//! header and the architecture the running daemon reports must both be the expected one
//! (the host's when nothing is set), so a run on the wrong binary fails instead of passing.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests measure real time; the rule that time is read through `clock` (clippy.toml)
// is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::daemon::{bin, run_cli, runner, Daemon, ADMIN_KEY};
use support::images::{b64, jpeg, png, sha256_hex};
use support::nginx::Nginx;
use support::ovh::{OvhTestServer, APP_KEY, APP_SECRET, CONSUMER_KEY, SENDER, SERVICE};
use support::pg::PgCluster;

/// Emulation is slow: every wait is generous, none is a sleep that must be long enough.
const WAIT: Duration = Duration::from_secs(90);

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Rust's name of the architecture the binary must be (`std::env::consts::ARCH`).
fn expected_arch() -> String {
    std::env::var("SELFIE_KIOSK_EXPECT_ARCH")
        .ok()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The architecture an ELF file is built for, from its header's `e_machine`.
fn elf_arch(path: &Path) -> String {
    let head = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        head.len() > 20 && head.starts_with(b"\x7fELF"),
        "{} is no ELF file",
        path.display()
    );
    // e_ident[EI_DATA] = 1: little-endian, as every target here is.
    assert_eq!(head[5], 1, "big-endian ELF");
    match u16::from_le_bytes([head[18], head[19]]) {
        62 => "x86_64".into(),
        183 => "aarch64".into(),
        40 => "arm".into(),
        m => format!("e_machine {m}"),
    }
}

#[test]
fn the_binary_is_built_for_the_expected_architecture() {
    let bin = PathBuf::from(bin());
    assert_eq!(elf_arch(&bin), expected_arch(), "{}", bin.display());
    // A foreign binary needs a runner; the host's must not be emulated by accident.
    assert_eq!(
        runner().is_empty(),
        expected_arch() == std::env::consts::ARCH,
        "SELFIE_KIOSK_RUNNER {:?} for a {} binary on {}",
        runner(),
        expected_arch(),
        std::env::consts::ARCH
    );
}

async fn capture_json(d: &Daemon, body: &Value) -> Value {
    let r = client()
        .post(d.url("/api/capture"))
        .json(body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

async fn capture_raw(d: &Daemon, mime: &str, body: Vec<u8>) -> Value {
    let r = client()
        .post(d.url("/api/capture"))
        .header("content-type", mime)
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn download(d: &Daemon, id: &str) -> Vec<u8> {
    let r = client()
        .get(d.url(&format!("/api/download/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{id}");
    r.bytes().await.unwrap().to_vec()
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

async fn wait_until(what: &str, d: &Daemon, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < WAIT,
            "timed out waiting for: {what}\n{}",
            tail(&d.log_text())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Every acknowledged capture answers its exact bytes, from the API and on disk; the
/// uploads directory holds those files and nothing else.
async fn assert_intact(d: &Daemon, uploads: &Path, acked: &BTreeMap<String, Vec<u8>>) {
    for (id, bytes) in acked {
        assert!(
            download(d, id).await == *bytes,
            "{id} differs after kill -9"
        );
        let on_disk = std::fs::read(uploads.join(format!("{id}.jpg"))).unwrap();
        assert!(on_disk == *bytes, "{id} differs on disk");
    }
    let mut files: Vec<String> = std::fs::read_dir(uploads)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".incoming")
        .collect();
    files.sort();
    let want: Vec<String> = acked.keys().map(|id| format!("{id}.jpg")).collect();
    assert_eq!(files, want, "files in uploads/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn defaults_captures_kill9_restart_and_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::new_in(tmp.path(), &[]);
    // Defaults: data in ./data, a generated admin key, the host name as kiosk id. Only the
    // listening port is chosen, so that tests can run side by side.
    for k in ["KIOSK_DATA_DIR", "ADMIN_API_KEY", "KIOSK_ID"] {
        d.env.remove(k);
    }
    d.spawn();
    let data = tmp.path().join("data");
    let uploads = data.join("uploads");
    let key_file = data.join("admin_api_key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "admin_api_key mode {mode:o}");
    let key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_string();

    let h = health(&d).await;
    assert_eq!(h["status"], "ok", "{h:#}");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(h["kiosk_id"], host.trim(), "{h:#}");
    for c in ["remote_db", "remote_storage", "sms"] {
        assert_eq!(h["checks"][c]["configured"], false, "{c}: {h:#}");
    }
    let r = client()
        .get(d.url("/admin/stats"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the generated key works");

    let mut acked: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    // A raw JPEG body with a client id, stored byte for byte.
    let raw = jpeg(640, 480, 1);
    let v = capture_raw(&d, "image/jpeg", raw.clone()).await;
    assert_eq!(v["sha256"], sha256_hex(&raw));
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(640), Some(480))
    );
    acked.insert(id_of(&v), raw);
    // Base64 JSON, plain and as a data: URL.
    let img = jpeg(320, 240, 2);
    let v = capture_json(&d, &json!({"image": b64(&img), "id": "guest-b64"})).await;
    assert_eq!(v["id"], "guest-b64");
    assert_eq!(v["sha256"], sha256_hex(&img));
    acked.insert(id_of(&v), img);
    let img = jpeg(200, 150, 3);
    let url = format!("data:image/jpeg;base64,{}", b64(&img));
    let v = capture_json(&d, &json!({"image": url})).await;
    acked.insert(id_of(&v), img);
    // PNG, raw and in JSON: converted to JPEG.
    for (n, p) in [png(120, 80, 4), png(90, 60, 5)].into_iter().enumerate() {
        let v = if n == 0 {
            capture_raw(&d, "image/png", p).await
        } else {
            capture_json(&d, &json!({"image": b64(&p)})).await
        };
        let id = id_of(&v);
        let stored = download(&d, &id).await;
        assert_eq!(&stored[..3], &[0xFF, 0xD8, 0xFF], "{id} is a JPEG");
        assert_eq!(v["sha256"], sha256_hex(&stored));
        acked.insert(id, stored);
    }
    // The same id and bytes again is the same capture; other bytes are a conflict.
    let img = acked["guest-b64"].clone();
    let r = client()
        .post(d.url("/api/capture"))
        .json(&json!({"image": b64(&img), "id": "guest-b64"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = client()
        .post(d.url("/api/capture"))
        .json(&json!({"image": b64(&jpeg(32, 32, 9)), "id": "guest-b64"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // kill -9 right after the last 201 of concurrent captures, twice.
    for round in 0..2u32 {
        let mut tasks = Vec::new();
        for i in 0..6u32 {
            let url = d.url("/api/capture");
            let img = jpeg(480, 360, 100 + round * 10 + i);
            tasks.push(tokio::spawn(async move {
                let r = client()
                    .post(url)
                    .header("content-type", "image/jpeg")
                    .body(img.clone());
                let r = r.send().await.unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                let v: Value = r.json().await.unwrap();
                (id_of(&v), img)
            }));
        }
        for t in tasks {
            let (id, img) = t.await.unwrap();
            acked.insert(id, img);
        }
        d.kill9();
        d.spawn();
        assert_intact(&d, &uploads, &acked).await;
    }
    assert_eq!(acked.len(), 17);
    let st = health(&d).await;
    assert_eq!(st["checks"]["local_db"]["captures"], 17, "{st:#}");

    let (code, took) = d.terminate(WAIT);
    assert_eq!(
        code,
        Some(0),
        "SIGTERM after {took:?}:\n{}",
        tail(&d.log_text())
    );
}

/// The remote side and the SMS settings for a daemon.
fn remote_env(pg: &PgCluster, nginx: &Nginx, ovh: &OvhTestServer) -> Vec<(String, String)> {
    [
        ("REMOTE_DATABASE_URL", pg.url()),
        ("REMOTE_STORAGE_URL", nginx.base_url()),
        ("PUBLIC_BASE_URL", nginx.base_url()),
        ("OVH_ENDPOINT", ovh.base_url()),
        ("OVH_APP_KEY", APP_KEY.into()),
        ("OVH_APP_SECRET", APP_SECRET.into()),
        ("OVH_CONSUMER_KEY", CONSUMER_KEY.into()),
        ("SMS_SERVICE_NAME", SERVICE.into()),
        ("SMS_SENDER", SENDER.into()),
        ("OVH_TIMEOUT_SECS", "5".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn remote_rows(pg: &PgCluster) -> BTreeMap<String, String> {
    pg.psql("SELECT id || ' ' || sha256 FROM kiosk_captures WHERE kiosk_id = 'test-kiosk'")
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, sha)| (id.to_string(), sha.to_string()))
        .collect()
}

async fn sms_status(d: &Daemon, sms_id: &str) -> Value {
    let r = client()
        .get(d.url(&format!("/api/sms/{sms_id}")))
        .send()
        .await
        .unwrap();
    r.json().await.unwrap_or(Value::Null)
}

/// Unpacks the one `.tar.gz` bundle in `out`: file name → text.
fn unpack_bundle(out: &Path) -> BTreeMap<String, String> {
    let bundles: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    assert_eq!(bundles.len(), 1, "{bundles:?}");
    let f = std::fs::File::open(&bundles[0]).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut files = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if !e.header().entry_type().is_file() {
            continue;
        }
        let name = e
            .path()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut e, &mut text).unwrap();
        files.insert(name, text);
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_one_sms_after_it_retention_and_diag() {
    let ovh = OvhTestServer::start_default();
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    // Offline first: the SMS must wait for the photo to be online.
    nginx.stop();
    let env = remote_env(&pg, &nginx, &ovh);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::new_in(tmp.path(), &pairs);
    d.spawn();

    let mut want: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for seed in 0..3u32 {
        let img = jpeg(160, 120, 200 + seed);
        let v = capture_json(&d, &json!({"image": b64(&img)})).await;
        want.insert(id_of(&v), img);
    }
    let first = want.keys().next().unwrap().clone();
    let r = client()
        .post(d.url("/api/send-sms"))
        .json(&json!({"capture_id": first, "phone": "06 12 34 56 78"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "waiting_for_sync", "{v}");
    let sms_id = v["sms_id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        ovh.sent_jobs().len(),
        0,
        "no text while the photo is not online"
    );
    assert_eq!(sms_status(&d, &sms_id).await["status"], "waiting_for_sync");

    // Online: every capture reaches PostgreSQL and WebDAV once, then the one text goes.
    nginx.restart();
    wait_until("everything synced", &d, || {
        // A photo and its share page each.
        remote_rows(&pg).len() == want.len() && nginx.stored_files().len() == 2 * want.len()
    })
    .await;
    let rows = remote_rows(&pg);
    for (id, bytes) in &want {
        assert_eq!(rows.get(id), Some(&sha256_hex(bytes)), "{id} in PostgreSQL");
        let token = support::share::public_token(&d, id);
        let remote = std::fs::read(nginx.root().join(format!("{token}.jpg"))).unwrap();
        assert!(remote == *bytes, "{id} differs on WebDAV");
        assert!(
            nginx.root().join(format!("{token}.html")).exists(),
            "{id}: no page"
        );
    }
    let t = Instant::now();
    while sms_status(&d, &sms_id).await["status"] != "sent" {
        assert!(t.elapsed() < WAIT, "SMS not sent:\n{}", tail(&d.log_text()));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let jobs = ovh.sent_jobs();
    assert_eq!(jobs.len(), 1, "exactly one text");
    assert_eq!(jobs[0].receivers, vec!["+33612345678".to_string()]);
    // The text links the share page; the page's photo is the capture's.
    let first_token = support::share::public_token(&d, &first);
    let link = format!("{}{first_token}.html", nginx.base_url());
    assert!(jobs[0].message.contains(&link), "{}", jobs[0].message);
    let page = client().get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let photo = format!("{}{first_token}.jpg", nginx.base_url());
    assert!(page.text().await.unwrap().contains(&photo));
    let got = client().get(&photo).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert!(
        got.bytes().await.unwrap() == want[&first],
        "the link serves the photo"
    );

    // Retention: one capture made 40 days old while stopped goes at the next start, here
    // and remotely; the admin route runs it again on demand.
    let (code, took) = d.terminate(WAIT);
    assert_eq!(
        code,
        Some(0),
        "SIGTERM after {took:?}:\n{}",
        tail(&d.log_text())
    );
    let old = want.keys().nth(1).unwrap().clone();
    let old_token = support::share::public_token(&d, &old);
    d.catalog()
        .execute(
            "UPDATE captures SET created_ms = created_ms - 40 * 86400000 WHERE id = ?1",
            [&old],
        )
        .unwrap();
    d.spawn();
    let old_file = d.uploads_dir().join(format!("{old}.jpg"));
    wait_until("expired capture removed everywhere", &d, || {
        !old_file.exists()
            && !remote_rows(&pg).contains_key(&old)
            && !nginx.root().join(format!("{old_token}.jpg")).exists()
            && !nginx.root().join(format!("{old_token}.html")).exists()
    })
    .await;
    want.remove(&old);
    let r = client()
        .post(d.url("/admin/cleanup"))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["removed"], 0, "{v}");
    for (id, bytes) in &want {
        assert!(download(&d, id).await == *bytes, "{id} kept");
    }

    // diag, with the daemon running: the bundle comes from the same architecture.
    let cli_env: Vec<(&str, &str)> = d
        .env
        .iter()
        .filter(|(k, _)| *k != "KIOSK_LOG")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let out = tmp.path().join("usb");
    let (code, stdout, stderr) = run_cli(
        &["diag", "--out", &out.display().to_string()],
        &cli_env,
        tmp.path(),
    );
    assert_eq!(code, 0, "diag failed:\n{stdout}\n{stderr}");
    let files = unpack_bundle(&out);
    let versions = &files["versions.txt"];
    let arch_line = format!("architecture: {} (linux)", expected_arch());
    assert!(versions.contains(&arch_line), "{versions}");
    assert!(versions.contains(env!("CARGO_PKG_VERSION")), "{versions}");
    let h: Value = serde_json::from_str(&files["health.json"]).unwrap();
    assert_eq!(h["kiosk_id"], "test-kiosk");
    assert_eq!(h["checks"]["sms"]["configured"], true);
    let catalog: Value = serde_json::from_str(&files["catalog.json"]).unwrap();
    assert_eq!(catalog["captures"], want.len(), "{catalog:#}");
    let mut texts: Vec<(String, String)> = files.into_iter().collect();
    let summary = std::fs::read_to_string(out.join("summary.txt")).unwrap();
    texts.push(("summary.txt".into(), summary));
    for secret in [
        APP_SECRET,
        CONSUMER_KEY,
        ADMIN_KEY,
        support::pg::PASSWORD,
        "612345678",
    ] {
        for (name, text) in &texts {
            assert!(!text.contains(secret), "a secret in {name}");
        }
    }

    let (code, took) = d.terminate(WAIT);
    assert_eq!(
        code,
        Some(0),
        "SIGTERM after {took:?}:\n{}",
        tail(&d.log_text())
    );
    assert_eq!(ovh.sent_jobs().len(), 1, "still one text");
}
