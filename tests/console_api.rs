//! The staff console's API over real HTTP against the real binary: capture detail,
//! thumbnails (made off the capture path, kept on disk, removed with the capture), the
//! SMS listing, and their refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::daemon::{Daemon, ADMIN_KEY};
use support::images::jpeg;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

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

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

async fn capture(d: &Daemon, w: u32, h: u32, seed: u32) -> String {
    let r = client()
        .post(d.url("/api/capture"))
        .header("content-type", "image/jpeg")
        .body(jpeg(w, h, seed))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(20), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detail_and_thumbnail_follow_the_capture() {
    let d = Daemon::start(&[]);
    let id = capture(&d, 1024, 768, 1).await;
    let thumb_file = d.data_dir().join("thumbnails").join(format!("{id}.jpg"));
    // Made by the worker after the 201, without anyone asking.
    wait_for("the thumbnail was never made", || thumb_file.exists());

    let (s, v) = answer(admin(&d, Method::GET, &format!("/admin/captures/{id}"))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["width"], 1024);
    assert_eq!(
        v["thumbnail_url"],
        format!("/admin/captures/{id}/thumbnail")
    );
    assert_eq!(v["sms"], serde_json::json!([]));
    assert!(v["sync"]["remote_file_at"].is_null(), "{v}");

    let (s, list) = answer(admin(&d, Method::GET, "/admin/captures")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        list["items"][0]["thumbnail_url"],
        format!("/admin/captures/{id}/thumbnail")
    );

    let path = format!("/admin/captures/{id}/thumbnail");
    let r = admin(&d, Method::GET, &path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let body = r.bytes().await.unwrap();
    let img = image::load_from_memory(&body).unwrap();
    assert_eq!((img.width(), img.height()), (320, 240));
    assert_eq!(std::fs::read(&thumb_file).unwrap(), body.to_vec());
    let r = admin(&d, Method::GET, &path)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    // Missing on disk: made again when asked for, and kept.
    std::fs::remove_file(&thumb_file).unwrap();
    let r = admin(&d, Method::GET, &path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(thumb_file.exists());

    // Without the key: refused like every admin route.
    let r = client().get(d.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Deleted with the capture; then both answer 404 JSON.
    let (s, _) = answer(admin(&d, Method::DELETE, &format!("/admin/captures/{id}"))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!thumb_file.exists(), "the thumbnail outlived its capture");
    for p in [format!("/admin/captures/{id}"), path.clone()] {
        let (s, v) = answer(admin(&d, Method::GET, &p)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}: {v}");
        assert_eq!(code(&v), "not_found");
    }
    let (s, v) = answer(admin(&d, Method::GET, "/admin/captures/bad%20id")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(code(&v), "invalid_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_listing_and_retry_refusals() {
    let d = Daemon::start(&[]);
    let (s, v) = answer(admin(&d, Method::GET, "/admin/sms")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["items"], serde_json::json!([]));
    assert!(v["next_cursor"].is_null());
    for (q, want) in [
        ("status=nope", "invalid_status"),
        ("limit=0", "invalid_limit"),
        ("cursor=x", "invalid_cursor"),
        ("capture_id=a%20b", "invalid_capture_id"),
        ("from=yesterday", "invalid_from"),
    ] {
        let (s, v) = answer(admin(&d, Method::GET, &format!("/admin/sms?{q}"))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert_eq!(code(&v), want, "{q}");
    }
    // A bad id, then an unknown one (404 even with SMS not configured here).
    let (s, v) = answer(admin(&d, Method::POST, "/admin/sms/a%20b/retry")).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_id"));
    let (s, v) = answer(admin(&d, Method::POST, "/admin/sms/abc/retry")).await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
}
