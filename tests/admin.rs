//! The admin API over real HTTP against the real binary: authentication and its slow-down,
//! run-time configuration, capture listing and deletion, statistics, backgrounds, and the
//! Excel export read back with calamine and converted by LibreOffice.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::daemon::{Daemon, ADMIN_KEY};
use support::images::{jpeg, png, sha256_hex};

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A request with the admin key in `X-API-Key`.
fn admin(d: &Daemon, method: Method, path: &str) -> reqwest::RequestBuilder {
    client()
        .request(method, d.url(path))
        .header("x-api-key", ADMIN_KEY)
}

async fn answer(r: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = r.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn admin_get(d: &Daemon, path: &str) -> Value {
    let (s, v) = answer(admin(d, Method::GET, path)).await;
    assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
    v
}

async fn put_config(d: &Daemon, body: Value) -> (StatusCode, Value) {
    answer(admin(d, Method::PUT, "/admin/config").json(&body)).await
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// Posts a raw JPEG capture; returns its answer.
async fn capture(d: &Daemon, query: &str, seed: u32) -> Value {
    let r = client()
        .post(d.url(&format!("/api/capture{query}")))
        .header("content-type", "image/jpeg")
        .body(jpeg(24, 16, seed))
        .send()
        .await
        .unwrap();
    let s = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

/// Marks every capture synced, as the sync worker does once the remotes have them (no
/// remote is configured in these tests, so rows stay unsynced otherwise).
async fn wait_all_synced(d: &Daemon) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    d.catalog()
        .execute(
            "UPDATE captures SET synced_ms = ?1 WHERE synced_ms IS NULL",
            [now],
        )
        .unwrap();
}

/// Inserts an SMS request row as the SMS path would (no OVH in these tests).
fn insert_sms(d: &Daemon, n: u32, capture_id: &str, status: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    d.catalog()
        .execute(
            "INSERT INTO sms (id, capture_id, phone, phone_hmac, phone_masked, status, attempts,
                tag, created_ms, expires_ms, sent_ms)
             VALUES (?1, ?2, NULL, 'hmac', '+33 6 •• •• •• 78', ?3, 1, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                format!("sms-{n}"),
                capture_id,
                status,
                format!("tag-{n}"),
                now,
                now + 3_600_000,
                (status == "sent").then_some(now),
            ],
        )
        .unwrap();
}

fn backgrounds_dir(d: &Daemon) -> PathBuf {
    d.data_dir().join("backgrounds")
}

/// Files under the backgrounds directory, `.incoming/` included (as `.incoming/name`).
fn background_files(d: &Daemon) -> Vec<String> {
    let dir = backgrounds_dir(d);
    let mut out = Vec::new();
    for sub in [dir.clone(), dir.join(".incoming")] {
        if let Ok(rd) = std::fs::read_dir(&sub) {
            for e in rd.flatten() {
                if e.file_type().unwrap().is_dir() {
                    continue;
                }
                let name = e.file_name().to_string_lossy().into_owned();
                if sub == dir {
                    out.push(name);
                } else {
                    out.push(format!(".incoming/{name}"));
                }
            }
        }
    }
    out.sort();
    out
}

/// A multipart/form-data body (reqwest is built without its multipart feature).
fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----selfie-kiosk-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, filename, data) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A JPEG over 200 KB (noise compresses badly).
fn big_jpeg() -> Vec<u8> {
    let im = image::RgbImage::from_fn(800, 600, |x, y| {
        let v = (x * 7919 + y * 104729) ^ (x * y);
        image::Rgb([v as u8, (v >> 3) as u8, (v >> 7) as u8])
    });
    let mut out = Vec::new();
    im.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
        &mut out, 100,
    ))
    .unwrap();
    assert!(out.len() > 200 * 1024);
    out
}

/// Every admin route, with a request that is harmless when authorized.
fn admin_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/admin/config", None),
        (Method::PUT, "/admin/config", Some(json!({}))),
        (Method::GET, "/admin/captures", None),
        (
            Method::DELETE,
            "/admin/captures/0123456789abcdef0123456789abcdef",
            None,
        ),
        (Method::POST, "/admin/sync", None),
        (Method::POST, "/admin/cleanup", None),
        (Method::GET, "/admin/stats", None),
        (Method::GET, "/admin/export/excel", None),
        (Method::GET, "/admin/backgrounds", None),
        (Method::POST, "/admin/backgrounds?name=x", None),
        (Method::PATCH, "/admin/backgrounds/nope", Some(json!({}))),
        (Method::DELETE, "/admin/backgrounds/nope", None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_route_needs_the_key() {
    let d = Daemon::start(&[]);
    for (method, path, body) in admin_routes() {
        let req = |auth: Option<(&str, String)>| {
            let mut r = client().request(method.clone(), d.url(path));
            if let Some((h, v)) = auth {
                r = r.header(h, v);
            }
            if let Some(b) = &body {
                r = r.json(b);
            }
            r
        };
        // Two failures then a success: the per-address slow-down (from the third
        // failure on) never kicks in here; it has its own test.
        let (s, v) = answer(req(None)).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{method} {path} without key"
        );
        let (s, v) = answer(req(Some(("x-api-key", "wrong-key-0123456789".into())))).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{method} {path} wrong key"
        );
        let (s, v) = answer(req(Some(("x-api-key", ADMIN_KEY.into())))).await;
        assert_ne!(
            s,
            StatusCode::UNAUTHORIZED,
            "{method} {path} X-API-Key: {v}"
        );
        assert!(!s.is_server_error(), "{method} {path}: {s} {v}");
        let (s, v) = answer(req(Some(("authorization", format!("Bearer {ADMIN_KEY}"))))).await;
        assert_ne!(s, StatusCode::UNAUTHORIZED, "{method} {path} Bearer: {v}");
        let (s, v) = answer(req(Some((
            "authorization",
            "Bearer wrong-key-0123456789".into(),
        ))))
        .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{method} {path} wrong Bearer"
        );
        let (s, _) = answer(req(Some(("authorization", format!("bearer {ADMIN_KEY}"))))).await;
        assert_ne!(
            s,
            StatusCode::UNAUTHORIZED,
            "{method} {path} lower-case bearer"
        );
    }
    // A key that is a prefix of the real one, or the real one with Basic, is no key.
    for (h, v) in [
        ("x-api-key", ADMIN_KEY[..ADMIN_KEY.len() - 1].to_string()),
        ("authorization", format!("Basic {ADMIN_KEY}")),
    ] {
        let (s, v) = answer(client().get(d.url("/admin/config")).header(h, v)).await;
        assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    }
    // The public background routes need no key.
    let r = client()
        .get(d.url("/api/backgrounds"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_from_one_address_slow_down() {
    let d = Daemon::start(&[]);
    let wrong = || async {
        let t = Instant::now();
        let (s, v) = answer(
            client()
                .get(d.url("/admin/config"))
                .header("x-api-key", "wrong-key-0123456789"),
        )
        .await;
        assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "unauthorized"));
        t.elapsed()
    };
    let mut times = Vec::new();
    for _ in 0..6 {
        times.push(wrong().await);
    }
    assert!(
        times[5] >= Duration::from_millis(200),
        "6th failure answered in {:?} (1st: {:?})",
        times[5],
        times[0]
    );
    assert!(times[5] > times[0] * 2, "{times:?}");

    // Another address is not slowed down by this one's failures.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let t = Instant::now();
    let r = other
        .get(d.url("/admin/config"))
        .header("x-api-key", "wrong-key-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );

    // The right key still works (after the delay), and clears the count.
    let (s, _) = answer(admin(&d, Method::GET, "/admin/config")).await;
    assert_eq!(s, StatusCode::OK);
    let first_again = wrong().await;
    assert!(first_again < Duration::from_millis(200), "{first_again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_have_their_codes() {
    let d = Daemon::start(&[]);
    let cases: Vec<(Method, &str, Option<Value>, StatusCode, &str)> = vec![
        (
            Method::GET,
            "/admin/captures?limit=0",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_limit",
        ),
        (
            Method::GET,
            "/admin/captures?limit=501",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_limit",
        ),
        (
            Method::GET,
            "/admin/captures?limit=ten",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_limit",
        ),
        (
            Method::GET,
            "/admin/captures?cursor=abc",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
        (
            Method::GET,
            "/admin/captures?cursor=-4",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
        (
            Method::GET,
            "/admin/captures?from=yesterday",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_from",
        ),
        (
            Method::GET,
            "/admin/captures?to=2026-13-01",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_to",
        ),
        (
            Method::GET,
            "/admin/captures?from=2026-06-02&to=2026-06-01",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_range",
        ),
        (
            Method::GET,
            "/admin/captures?synced=maybe",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_synced",
        ),
        (
            Method::GET,
            "/admin/captures?has_sms=2",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_has_sms",
        ),
        (
            Method::GET,
            "/admin/export/excel?from=soon",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_from",
        ),
        (
            Method::DELETE,
            "/admin/captures/a.b",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            Method::DELETE,
            "/admin/captures/..%2Fcatalog.sqlite3",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            Method::DELETE,
            "/admin/captures/0123456789abcdef0123456789abcdef",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::PUT,
            "/admin/config",
            Some(json!([1, 2])),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::PATCH,
            "/admin/backgrounds/nope",
            Some(json!({"name": "x"})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::PATCH,
            "/admin/backgrounds/nope",
            Some(json!({"name": "  "})),
            StatusCode::BAD_REQUEST,
            "missing_name",
        ),
        (
            Method::PATCH,
            "/admin/backgrounds/nope",
            Some(json!({"position": "first"})),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::PATCH,
            "/admin/backgrounds/nope",
            Some(json!({"colour": "red"})),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::PATCH,
            "/admin/backgrounds/nope",
            Some(json!({"position": 99_999_999})),
            StatusCode::BAD_REQUEST,
            "invalid_position",
        ),
        (
            Method::PATCH,
            "/admin/backgrounds/a.b",
            Some(json!({})),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            Method::DELETE,
            "/admin/backgrounds/nope",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/api/backgrounds/a.b",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            Method::GET,
            "/api/backgrounds/nope",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/api/backgrounds/nope/thumbnail",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (method, path, body, status, want) in cases {
        let mut r = admin(&d, method.clone(), path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let (s, v) = answer(r).await;
        assert_eq!((s, code(&v)), (status, want), "{method} {path}: {v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    let (s, v) = answer(
        admin(&d, Method::PUT, "/admin/config")
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_json"));

    // Settings: 422 naming the key; nothing is applied when any key is bad.
    for (body, key) in [
        (json!({"no_such_setting": 1}), "no_such_setting"),
        (json!({"retention_days": 0}), "retention_days"),
        (json!({"retention_days": "many"}), "retention_days"),
        (json!({"cleanup_hour": 24}), "cleanup_hour"),
        (json!({"sync_enabled": "maybe"}), "sync_enabled"),
        (
            json!({"retention_days": 7, "sms_template": "no link here"}),
            "sms_template",
        ),
        (json!({"kiosk_disk_reserve": "lots"}), "kiosk_disk_reserve"),
        (
            json!({"kiosk_disk_reserve": "2048GB"}),
            "kiosk_disk_reserve",
        ),
        (json!({"kiosk_log": "info,[broken"}), "kiosk_log"),
    ] {
        let (s, v) = put_config(&d, body.clone()).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_setting"),
            "{body}: {v}"
        );
        assert_eq!(v["error"]["key"], key, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(key));
    }
    let v = admin_get(&d, "/admin/config").await;
    assert_eq!(v["settings"]["retention_days"], 30);
    let stored: i64 = d
        .catalog()
        .query_row("SELECT COUNT(*) FROM settings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 0, "a rejected change stored something");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_changes_take_effect_at_once_and_survive_a_restart() {
    let mut d = Daemon::start(&[]);
    let v = admin_get(&d, "/admin/config").await;
    assert_eq!(v["settings"]["retention_days"], 30, "{v}");
    assert_eq!(v["read_only"]["kiosk_id"], "test-kiosk");
    assert_eq!(v["read_only"]["listen"], format!("127.0.0.1:{}", d.port));
    assert_eq!(v["read_only"]["remote_database"]["configured"], false);
    assert_eq!(v["read_only"]["remote_storage"]["configured"], false);
    assert_eq!(v["read_only"]["sms"]["configured"], false);
    assert_eq!(v["read_only"]["secrets"]["admin_api_key"], "set");
    assert_eq!(v["read_only"]["secrets"]["ovh_app_secret"], "unset");
    assert!(!v.to_string().contains(ADMIN_KEY));

    capture(&d, "", 1).await;
    // A reserve larger than any disk: the next capture is refused, without a restart.
    let (s, v) = put_config(&d, json!({"kiosk_disk_reserve": "1024GB"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r = client()
        .post(d.url("/api/capture"))
        .header("content-type", "image/jpeg")
        .body(jpeg(24, 16, 2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
    let (s, v) = put_config(&d, json!({"kiosk_disk_reserve": "64MB"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["settings"]["kiosk_disk_reserve"], 64 * 1024 * 1024);
    capture(&d, "", 3).await;

    let (s, v) = put_config(
        &d,
        json!({"retention_days": 12, "sms_template": "Ta photo : {link}", "kiosk_log": "debug"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let v = admin_get(&d, "/admin/config").await;
    assert_eq!(v["settings"]["retention_days"], 12);
    assert_eq!(v["settings"]["sms_template"], "Ta photo : {link}");
    assert_eq!(v["settings"]["kiosk_log"], "debug");
    // Stored as JSON text, normalized.
    let stored: String = d
        .catalog()
        .query_row(
            "SELECT value FROM settings WHERE key = 'kiosk_disk_reserve'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, (64 * 1024 * 1024).to_string());

    d.restart();
    let v = admin_get(&d, "/admin/config").await;
    assert_eq!(v["settings"]["retention_days"], 12);
    assert_eq!(v["settings"]["sms_template"], "Ta photo : {link}");
    assert_eq!(v["settings"]["kiosk_disk_reserve"], 64 * 1024 * 1024);
    assert_eq!(v["settings"]["kiosk_log"], "debug");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_never_shows_secrets() {
    let d = Daemon::start(&[
        (
            "REMOTE_DATABASE_URL",
            "postgresql://kiosk:db-pass-Secret1@127.0.0.1:9/kiosks",
        ),
        (
            "REMOTE_STORAGE_URL",
            "http://uploader:dav-pass-Secret2@127.0.0.1:9/uploads/",
        ),
        ("PUBLIC_BASE_URL", "https://vps.example.com/uploads/"),
        ("OVH_APP_KEY", "app-key-Secret3"),
        ("OVH_APP_SECRET", "app-secret-Secret4"),
        ("OVH_CONSUMER_KEY", "consumer-Secret5"),
        ("SMS_SERVICE_NAME", "sms-ab12345-1"),
        ("SMS_SENDER", "SELFIE"),
        ("SECRET_KEY", "hmac-key-Secret6-0123456789"),
    ]);
    let r = admin(&d, Method::GET, "/admin/config")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    for secret in [
        "Secret1", "Secret2", "Secret3", "Secret4", "Secret5", "Secret6", ADMIN_KEY,
    ] {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }
    let v: Value = serde_json::from_str(&text).unwrap();
    let ro = &v["read_only"];
    assert_eq!(ro["remote_database"]["configured"], true);
    assert_eq!(ro["remote_storage"]["configured"], true);
    assert_eq!(ro["remote_storage"]["url"], "http://127.0.0.1:9/uploads/");
    assert_eq!(ro["sms"]["configured"], true);
    assert_eq!(ro["sms"]["service_name"], "sms-ab12345-1");
    for k in [
        "admin_api_key",
        "secret_key",
        "remote_database_url",
        "remote_storage_password",
        "ovh_app_secret",
        "ovh_consumer_key",
    ] {
        assert_eq!(ro["secrets"][k], "set", "{k}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_see_every_capture_once_while_captures_arrive() {
    let d = Daemon::start(&[]);
    let mut before = HashSet::new();
    for i in 0..90 {
        before.insert(capture(&d, "", i).await["id"].as_str().unwrap().to_string());
    }
    let url = d.url("/api/capture");
    let inserted = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let progress = inserted.clone();
    let inserter = tokio::spawn(async move {
        let mut n = 0u32;
        for i in 0..60 {
            let r = client()
                .post(&url)
                .header("content-type", "image/jpeg")
                .body(jpeg(24, 16, 1000 + i))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            n += 1;
            progress.store(n, std::sync::atomic::Ordering::SeqCst);
        }
        n
    });
    // Start paging once captures are arriving.
    while inserted.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let at_first_page = inserted.load(std::sync::atomic::Ordering::SeqCst);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let mut last_created = String::from("~");
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/captures?limit=7&cursor={c}"),
            None => "/admin/captures?limit=7".to_string(),
        };
        let v = admin_get(&d, &path).await;
        pages += 1;
        for item in v["items"].as_array().unwrap() {
            *seen
                .entry(item["id"].as_str().unwrap().to_string())
                .or_default() += 1;
            let created = item["created_at"].as_str().unwrap().to_string();
            assert!(created <= last_created, "not newest first");
            last_created = created;
            for k in ["bytes", "width", "height", "sms_count"] {
                assert!(item[k].is_i64(), "{k}: {item}");
            }
            for k in ["is_synced", "file_missing"] {
                assert!(item[k].is_boolean(), "{k}: {item}");
            }
            assert_eq!(item["sha256"].as_str().unwrap().len(), 64);
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        // Give the inserter room to interleave.
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let at_last_page = inserted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        at_last_page > at_first_page,
        "no capture arrived while paging ({at_first_page} → {at_last_page})"
    );
    assert_eq!(inserter.await.unwrap(), 60);
    assert!(pages >= 13, "{pages} pages");
    for id in &before {
        assert_eq!(seen.get(id), Some(&1), "{id} seen {:?} times", seen.get(id));
    }
    assert!(seen.values().all(|n| *n == 1), "a capture was seen twice");
    // The limit default and bounds.
    let v = admin_get(&d, "/admin/captures").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 50);
    let v = admin_get(&d, "/admin/captures?limit=500").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 150);
    assert!(v["next_cursor"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_filters() {
    // A remote that never answers: the rows stay as this test marks them, and "synced"
    // means something (with no remote configured every capture is synced).
    let d = Daemon::start(&[(
        "REMOTE_DATABASE_URL",
        "postgresql://kiosk:unused@127.0.0.1:9/kiosks",
    )]);
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(capture(&d, "", i).await["id"].as_str().unwrap().to_string());
    }
    wait_all_synced(&d).await;
    insert_sms(&d, 1, &ids[1], "sent");
    insert_sms(&d, 2, &ids[1], "failed");
    insert_sms(&d, 3, &ids[4], "queued");
    let count = |v: &Value| v["items"].as_array().unwrap().len();
    let ids_of = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    let v = admin_get(&d, "/admin/captures?has_sms=true").await;
    assert_eq!(ids_of(&v), vec![ids[4].clone(), ids[1].clone()]);
    assert_eq!(v["items"][1]["sms_count"], 2);
    assert_eq!(
        count(&admin_get(&d, "/admin/captures?has_sms=false").await),
        4
    );
    assert_eq!(
        count(&admin_get(&d, "/admin/captures?synced=true").await),
        6
    );
    assert_eq!(
        count(&admin_get(&d, "/admin/captures?synced=false").await),
        0
    );
    d.catalog()
        .execute(
            "UPDATE captures SET synced_ms = NULL WHERE id = ?1",
            [&ids[2]],
        )
        .unwrap();
    let v = admin_get(&d, "/admin/captures?synced=false").await;
    assert_eq!(ids_of(&v), vec![ids[2].clone()]);
    assert_eq!(v["items"][0]["is_synced"], false);

    // Dates: a whole UTC day, or an instant (both ends inclusive).
    let all = admin_get(&d, "/admin/captures").await;
    let today = &all["items"][0]["created_at"].as_str().unwrap()[..10];
    let v = admin_get(&d, &format!("/admin/captures?from={today}&to={today}")).await;
    assert_eq!(count(&v), 6);
    let v = admin_get(&d, "/admin/captures?to=2000-01-01").await;
    assert_eq!(count(&v), 0);
    let third = all["items"][3]["created_at"].as_str().unwrap();
    let v = admin_get(&d, &format!("/admin/captures?from={third}")).await;
    let n_from = count(&v);
    let v = admin_get(&d, &format!("/admin/captures?to={third}")).await;
    let n_to = count(&v);
    assert!(n_from >= 4 && n_to >= 3, "{n_from} {n_to}");
    // Only captures created in the same millisecond are in both.
    assert!(n_from + n_to >= 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_capture_removes_file_and_row() {
    let d = Daemon::start(&[]);
    let v = capture(&d, "?id=to-delete", 1).await;
    let keep = capture(&d, "?id=to-keep", 2).await;
    let file = d.uploads_dir().join("to-delete.jpg");
    assert!(file.exists());
    let (s, r) = answer(admin(&d, Method::DELETE, "/admin/captures/to-delete")).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["id"], v["id"]);
    assert_eq!(r["local_removed"], true);
    assert_eq!(r["remote_pending"], false);
    assert!(!file.exists());
    let rows: i64 = d
        .catalog()
        .query_row(
            "SELECT COUNT(*) FROM captures WHERE id = 'to-delete'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 0);
    let r = client()
        .get(d.url("/api/download/to-delete"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (s, r) = answer(admin(&d, Method::DELETE, "/admin/captures/to-delete")).await;
    assert_eq!((s, code(&r)), (StatusCode::NOT_FOUND, "not_found"));
    // The other one is untouched.
    assert!(d.uploads_dir().join("to-keep.jpg").exists());
    let list = admin_get(&d, "/admin/captures").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], keep["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backgrounds_upload_list_serve_patch_delete() {
    let d = Daemon::start(&[]);
    // Raw JPEG with a name and a position.
    let sea = jpeg(800, 600, 11);
    let (s, a) = answer(
        admin(&d, Method::POST, "/admin/backgrounds?name=Plage&position=5")
            .header("content-type", "image/jpeg")
            .body(sea.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let a_id = a["id"].as_str().unwrap().to_string();
    assert_eq!(a["name"], "Plage");
    assert_eq!(a["position"], 5);
    assert_eq!(
        (a["width"].as_i64(), a["height"].as_i64()),
        (Some(800), Some(600))
    );
    assert_eq!(a["sha256"], sha256_hex(&sea));
    assert_eq!(a["url"], format!("/api/backgrounds/{a_id}"));
    // Multipart PNG (converted to JPEG), position after the last.
    let p = png(200, 100, 3);
    let (ct, body) = multipart(&[
        ("name", None, "Montagne".as_bytes()),
        ("file", Some("mountain.png"), &p),
    ]);
    let (s, b) = answer(
        admin(&d, Method::POST, "/admin/backgrounds")
            .header("content-type", ct)
            .body(body),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let b_id = b["id"].as_str().unwrap().to_string();
    assert_eq!(b["position"], 6);
    // Multipart with an explicit position comes first.
    let (ct, body) = multipart(&[
        ("file", Some("city.jpg"), &jpeg(100, 300, 4)),
        ("name", None, "Ville".as_bytes()),
        ("position", None, "1".as_bytes()),
    ]);
    let (s, c) = answer(
        admin(&d, Method::POST, "/admin/backgrounds")
            .header("content-type", ct)
            .body(body),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let c_id = c["id"].as_str().unwrap().to_string();

    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_string())
            .collect()
    };
    let r = client()
        .get(d.url("/api/backgrounds"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let public: Value = r.json().await.unwrap();
    assert_eq!(names(&public), vec!["Ville", "Plage", "Montagne"]);
    let first = public[0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "height",
            "id",
            "name",
            "position",
            "thumbnail_url",
            "url",
            "width"
        ]
    );
    assert_eq!(
        names(&admin_get(&d, "/admin/backgrounds").await),
        names(&public)
    );

    // The JPEG as uploaded, with an ETag; the PNG as a JPEG.
    let r = client()
        .get(d.url(&format!("/api/backgrounds/{a_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(r.bytes().await.unwrap().to_vec(), sea);
    let r = client()
        .get(d.url(&format!("/api/backgrounds/{a_id}")))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = client()
        .get(d.url(&format!("/api/backgrounds/{b_id}")))
        .send()
        .await
        .unwrap();
    let b_bytes = r.bytes().await.unwrap();
    assert_eq!(&b_bytes[..3], &[0xFF, 0xD8, 0xFF]);
    // Thumbnails: JPEG, at most 320 px wide, aspect kept; small ones not enlarged.
    for (id, want) in [
        (&a_id, (320, 240)),
        (&b_id, (200, 100)),
        (&c_id, (100, 300)),
    ] {
        let r = client()
            .get(d.url(&format!("/api/backgrounds/{id}/thumbnail")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["etag"].to_str().unwrap().contains("thumb"));
        let t = image::load_from_memory_with_format(
            &r.bytes().await.unwrap(),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
        assert_eq!((t.width(), t.height()), want, "{id}");
    }
    for id in [&a_id, &b_id, &c_id] {
        assert!(backgrounds_dir(&d).join(format!("{id}.jpg")).exists());
        assert!(backgrounds_dir(&d).join(format!("{id}.thumb.jpg")).exists());
    }

    // Rename and reorder.
    let (s, v) = answer(
        admin(&d, Method::PATCH, &format!("/admin/backgrounds/{b_id}"))
            .json(&json!({"name": "Alpes", "position": 0})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["name"].as_str(), v["position"].as_i64()),
        (Some("Alpes"), Some(0))
    );
    let v = admin_get(&d, "/admin/backgrounds").await;
    assert_eq!(names(&v), vec!["Alpes", "Ville", "Plage"]);

    // Delete: row and both files gone, 404 after.
    let (s, v) = answer(admin(
        &d,
        Method::DELETE,
        &format!("/admin/backgrounds/{a_id}"),
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!backgrounds_dir(&d).join(format!("{a_id}.jpg")).exists());
    assert!(!backgrounds_dir(&d)
        .join(format!("{a_id}.thumb.jpg"))
        .exists());
    for path in [
        format!("/api/backgrounds/{a_id}"),
        format!("/api/backgrounds/{a_id}/thumbnail"),
    ] {
        let r = client().get(d.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let (s, _) = answer(admin(
        &d,
        Method::DELETE,
        &format!("/admin/backgrounds/{a_id}"),
    ))
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let r = client()
        .get(d.url("/api/backgrounds"))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(names(&v), vec!["Alpes", "Ville"]);
    assert_eq!(background_files(&d).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_background_uploads_are_refused_and_leave_nothing() {
    let d = Daemon::start(&[("MAX_CAPTURE_BYTES", "200KB")]);
    let good = jpeg(120, 80, 1);
    let mut truncated = jpeg(400, 300, 2);
    truncated.truncate(truncated.len() * 2 / 3);
    let big = big_jpeg();
    let raw = |query: &str, ct: &str, body: Vec<u8>| {
        admin(&d, Method::POST, &format!("/admin/backgrounds{query}"))
            .header("content-type", ct)
            .body(body)
    };
    let form = |fields: &[(&str, Option<&str>, &[u8])]| {
        let (ct, body) = multipart(fields);
        admin(&d, Method::POST, "/admin/backgrounds")
            .header("content-type", ct)
            .body(body)
    };
    let text = b"just some text, not a picture at all".to_vec();
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            "text",
            raw("?name=t", "image/jpeg", text.clone()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_image",
        ),
        (
            "truncated jpeg",
            raw("?name=t", "image/jpeg", truncated.clone()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_image",
        ),
        (
            "too large",
            raw("?name=t", "image/jpeg", big.clone()),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "missing name",
            raw("", "image/jpeg", good.clone()),
            StatusCode::BAD_REQUEST,
            "missing_name",
        ),
        (
            "blank name",
            raw("?name=%20%20", "image/png", good.clone()),
            StatusCode::BAD_REQUEST,
            "missing_name",
        ),
        (
            "bad position",
            raw("?name=t&position=first", "image/jpeg", good.clone()),
            StatusCode::BAD_REQUEST,
            "invalid_position",
        ),
        (
            "text content type",
            raw("?name=t", "text/plain", good.clone()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "empty body",
            raw("?name=t", "image/jpeg", Vec::new()),
            StatusCode::BAD_REQUEST,
            "missing_file",
        ),
        (
            "multipart text",
            form(&[("name", None, b"t"), ("file", Some("a.jpg"), &text)]),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_image",
        ),
        (
            "multipart truncated",
            form(&[("name", None, b"t"), ("file", Some("a.jpg"), &truncated)]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_image",
        ),
        (
            "multipart too large",
            form(&[("name", None, b"t"), ("file", Some("a.jpg"), &big)]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "multipart missing name",
            form(&[("file", Some("a.jpg"), &good)]),
            StatusCode::BAD_REQUEST,
            "missing_name",
        ),
        (
            "multipart missing file",
            form(&[("name", None, b"t")]),
            StatusCode::BAD_REQUEST,
            "missing_file",
        ),
        (
            "multipart broken",
            admin(&d, Method::POST, "/admin/backgrounds?name=t")
                .header("content-type", "multipart/form-data; boundary=xyz")
                .body("--xyz\r\nno headers end here"),
            StatusCode::BAD_REQUEST,
            "invalid_multipart",
        ),
    ];
    for (name, req, status, want) in cases {
        let (s, v) = answer(req).await;
        assert_eq!((s, code(&v)), (status, want), "{name}: {v}");
        assert_eq!(background_files(&d), Vec::<String>::new(), "{name}");
        let rows: i64 = d
            .catalog()
            .query_row("SELECT COUNT(*) FROM backgrounds", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0, "{name}");
    }
    // A huge declared body is refused before it is read.
    let (s, v) = answer(raw("?name=t", "image/jpeg", vec![0xFF; 3 * 1024 * 1024])).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    assert_eq!(background_files(&d), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_match_what_was_posted() {
    let d = Daemon::start(&[]);
    let (s, bg) = answer(
        admin(&d, Method::POST, "/admin/backgrounds?name=Plage")
            .header("content-type", "image/jpeg")
            .body(jpeg(64, 48, 9)),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let bg_id = bg["id"].as_str().unwrap().to_string();
    // A background deleted after its captures were taken: they keep its id, with no name
    // (an unknown id is refused at capture time, 400 unknown_background).
    let gone_bg = background(&d, "Ancien").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(capture(&d, &format!("?background_id={bg_id}"), i).await);
    }
    for i in 5..8 {
        ids.push(capture(&d, &format!("?background_id={gone_bg}"), i).await);
    }
    delete_background(&d, &gone_bg).await;
    for i in 8..12 {
        ids.push(capture(&d, "", i).await);
    }
    let total_bytes: i64 = ids.iter().map(|v| v["bytes"].as_i64().unwrap()).sum();
    wait_all_synced(&d).await;
    let id = |i: usize| ids[i]["id"].as_str().unwrap().to_string();
    let statuses = [
        "sent",
        "sent",
        "sent",
        "failed",
        "queued",
        "waiting_for_sync",
        "sending",
        "expired",
    ];
    for (n, st) in statuses.iter().enumerate() {
        insert_sms(&d, n as u32, &id(n), st);
    }

    let v = admin_get(&d, "/admin/stats").await;
    assert_eq!(v["captures"]["total"], 12, "{v}");
    assert_eq!(v["captures"]["synced"], 12);
    assert_eq!(v["captures"]["pending_sync"], 0);
    assert_eq!(v["captures"]["bytes"], total_bytes);
    assert_eq!(v["today"]["captures"], 12);
    assert_eq!(v["today"]["sms_sent"], 3);
    assert_eq!(v["sms"]["total"], 8);
    assert_eq!(v["sms"]["sent"], 3);
    assert_eq!(v["sms"]["failed"], 1);
    assert_eq!(v["sms"]["pending"], 3);
    assert_eq!(v["sms"]["expired"], 1);
    let per_day = v["per_day"].as_array().unwrap();
    assert_eq!(per_day.len(), 30);
    assert_eq!(per_day[29]["date"], v["today"]["date"]);
    assert_eq!(per_day[29]["captures"], 12);
    assert_eq!(per_day[29]["synced"], 12);
    assert_eq!(per_day[29]["sms_sent"], 3);
    assert_eq!(
        per_day
            .iter()
            .map(|d| d["captures"].as_i64().unwrap())
            .sum::<i64>(),
        12
    );
    let per_hour = v["per_hour"].as_array().unwrap();
    assert_eq!(per_hour.len(), 48);
    let hour_total: i64 = per_hour
        .iter()
        .map(|h| h["captures"].as_i64().unwrap())
        .sum();
    assert_eq!(hour_total, 12);
    assert!(per_hour[47]["hour"].as_str().unwrap().ends_with(":00:00Z"));
    let per_bg: Vec<(Value, Value, i64)> = v["per_background"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["background_id"].clone(),
                b["name"].clone(),
                b["captures"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        per_bg,
        vec![
            (json!(bg_id), json!("Plage"), 5),
            (Value::Null, Value::Null, 4),
            (json!(gone_bg), Value::Null, 3),
        ]
    );
    assert!(v["outbox"]["pending"].is_u64(), "{v}");
    assert!(v["outbox"]["dead"].is_u64(), "{v}");
}

/// id, created_ms, bytes, width, height, synced_ms, SMS count.
type CatalogRow = (String, i64, i64, i64, i64, Option<i64>, i64);

fn soffice() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("soffice");
        if p.exists() {
            return p;
        }
    }
    panic!(
        "soffice (LibreOffice) is needed to check the Excel export: install it with \
         `apt-get install -y --no-install-recommends libreoffice-calc-nogui` \
         (or run tools/install-test-deps.sh as root)"
    );
}

fn excel_serial(rfc3339: &str) -> f64 {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap();
    (t.unix_timestamp_nanos() / 1_000_000) as f64 / 86_400_000.0 + 25_569.0
}

fn cell_f64(c: &calamine::Data) -> f64 {
    match c {
        calamine::Data::DateTime(d) => d.as_f64(),
        calamine::Data::Float(f) => *f,
        calamine::Data::Int(i) => *i as f64,
        other => panic!("not a number or date: {other:?}"),
    }
}

fn cell_str(c: &calamine::Data) -> String {
    match c {
        calamine::Data::String(s) => s.clone(),
        calamine::Data::Empty => String::new(),
        other => panic!("not a string: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excel_export_matches_the_catalog_and_opens_in_libreoffice() {
    let soffice = soffice();
    let d = Daemon::start(&[]);
    let (_, bg) = answer(
        admin(&d, Method::POST, "/admin/backgrounds?name=Plage")
            .header("content-type", "image/jpeg")
            .body(jpeg(64, 48, 9)),
    )
    .await;
    let bg_id = bg["id"].as_str().unwrap().to_string();
    let gone_bg = background(&d, "Ancien").await;
    let mut posted = Vec::new();
    for i in 0..25u32 {
        let q = match i % 3 {
            0 => format!("?background_id={bg_id}&taken_at=2026-06-01T14:03:00%2B02:00"),
            1 => String::new(),
            _ => format!("?background_id={gone_bg}"),
        };
        posted.push(capture(&d, &q, i).await);
    }
    delete_background(&d, &gone_bg).await;
    wait_all_synced(&d).await;
    let first_id = posted[0]["id"].as_str().unwrap().to_string();
    insert_sms(&d, 1, &first_id, "sent");
    insert_sms(&d, 2, &first_id, "failed");

    let r = admin(&d, Method::GET, "/admin/export/excel")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let today: String = posted[0]["created_at"].as_str().unwrap()[..10].replace('-', "");
    assert_eq!(
        r.headers()["content-disposition"].to_str().unwrap(),
        format!("attachment; filename=\"selfie-kiosk-test-kiosk-{today}.xlsx\"")
    );
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[..2], b"PK");
    let tmp = tempfile::tempdir().unwrap();
    let xlsx = tmp.path().join("export.xlsx");
    std::fs::write(&xlsx, &bytes).unwrap();
    // Nothing is left behind in the data directory.
    let leftovers: Vec<_> = walk(&d.data_dir().join("exports"));
    assert!(leftovers.is_empty(), "{leftovers:?}");

    use calamine::Reader;
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook(&xlsx).unwrap();
    assert_eq!(wb.sheet_names(), vec!["Captures", "Stats"]);
    let sheet = wb.worksheet_range("Captures").unwrap();
    let rows: Vec<_> = sheet.rows().collect();
    assert_eq!(rows.len(), 26);
    let header: Vec<String> = rows[0].iter().map(cell_str).collect();
    assert_eq!(header[0], "id");
    assert!(header[1].starts_with("created_at"));
    assert_eq!(header.len(), 10);
    // The catalog, as the truth to compare with.
    let cat = d.catalog();
    let mut st = cat
        .prepare(
            "SELECT c.id, c.created_ms, c.bytes, c.width, c.height, c.synced_ms,
                    (SELECT COUNT(*) FROM sms s WHERE s.capture_id = c.id)
             FROM captures c ORDER BY c.seq",
        )
        .unwrap();
    let truth: Vec<CatalogRow> = st
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(truth.len(), 25);
    for (i, (row, t)) in rows[1..].iter().zip(&truth).enumerate() {
        assert_eq!(cell_str(&row[0]), t.0, "row {i}");
        assert!(
            matches!(row[1], calamine::Data::DateTime(_)),
            "{:?}",
            row[1]
        );
        let created = cell_f64(&row[1]);
        let want = t.1 as f64 / 86_400_000.0 + 25_569.0;
        assert!(
            (created - want).abs() < 1e-7,
            "row {i}: {created} vs {want}"
        );
        // And the same instant as the API said.
        let api = excel_serial(posted[i]["created_at"].as_str().unwrap());
        assert!((created - api).abs() < 1e-7);
        if i % 3 == 0 {
            let taken = cell_f64(&row[2]);
            assert!((taken - excel_serial("2026-06-01T12:03:00Z")).abs() < 1e-7);
            assert_eq!(cell_str(&row[3]), "Plage");
        } else {
            assert_eq!(row[2], calamine::Data::Empty);
        }
        if i % 3 == 1 {
            assert_eq!(row[3], calamine::Data::Empty);
        }
        if i % 3 == 2 {
            assert!(cell_str(&row[3]).contains(&gone_bg));
        }
        assert_eq!(cell_f64(&row[4]) as i64, t.2);
        assert_eq!(cell_f64(&row[5]) as i64, t.3);
        assert_eq!(cell_f64(&row[6]) as i64, t.4);
        assert_eq!(cell_str(&row[7]), "yes");
        let synced = cell_f64(&row[8]);
        assert!((synced - (t.5.unwrap() as f64 / 86_400_000.0 + 25_569.0)).abs() < 1e-7);
        assert_eq!(cell_f64(&row[9]) as i64, t.6);
    }
    assert_eq!(cell_f64(&rows[1][9]), 2.0);
    // No phone number, masked or not, anywhere.
    let all_text = format!("{:?}", sheet);
    assert!(!all_text.contains("+33") && !all_text.contains("••"));

    let stats = wb.worksheet_range("Stats").unwrap();
    let srows: Vec<_> = stats.rows().collect();
    assert_eq!(srows.len(), 2, "{srows:?}");
    assert!(matches!(srows[1][0], calamine::Data::DateTime(_)));
    let day = cell_f64(&srows[1][0]);
    let midnight = excel_serial(&format!(
        "{}T00:00:00Z",
        &posted[0]["created_at"].as_str().unwrap()[..10]
    ));
    assert!((day - midnight).abs() < 1e-9);
    assert_eq!(cell_f64(&srows[1][1]), 25.0);
    assert_eq!(cell_f64(&srows[1][2]), 25.0);
    assert_eq!(cell_f64(&srows[1][3]), 1.0);

    // A range with nothing in it: headers only.
    let r = admin(&d, Method::GET, "/admin/export/excel?to=2000-01-01")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-export-rows"], "0");

    // LibreOffice opens it: converting the first sheet to CSV gives one line per capture
    // plus the header.
    let out = tmp.path().join("csv");
    let profile = tmp.path().join("lo-profile");
    let mut cmd = std::process::Command::new(&soffice);
    cmd.arg(format!(
        "-env:UserInstallation=file://{}",
        profile.display()
    ))
    .args(["--headless", "--convert-to", "csv", "--outdir"])
    .arg(&out)
    .arg(&xlsx)
    .env("HOME", tmp.path());
    let output =
        tokio::task::spawn_blocking(move || run_with_deadline(cmd, Duration::from_secs(180)))
            .await
            .unwrap();
    assert!(
        output.status.success(),
        "soffice failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let csv = std::fs::read_to_string(out.join("export.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 26, "{csv}");
    assert!(lines[1].starts_with(&first_id), "{}", lines[1]);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Runs `cmd`, killing it if it is still running after `deadline`.
fn run_with_deadline(mut cmd: std::process::Command, deadline: Duration) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} still running after {deadline:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Uploads a background named `name`; its id.
async fn background(d: &Daemon, name: &str) -> String {
    let (s, v) = answer(
        admin(d, Method::POST, &format!("/admin/backgrounds?name={name}"))
            .header("content-type", "image/jpeg")
            .body(jpeg(64, 48, 11)),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn delete_background(d: &Daemon, id: &str) {
    let (s, v) = answer(admin(
        d,
        Method::DELETE,
        &format!("/admin/backgrounds/{id}"),
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
