//! The staff console's API over real HTTP against the real binary: capture detail,
//! thumbnails (made off the capture path, kept on disk, removed with the capture), the
//! SMS listing, the retry of a failed SMS with the guest's number typed again (against the
//! OVH-faithful server: one text, the number forgotten again), and their refusals.
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

/// A daemon texting through the OVH-faithful server (no remote storage: sent at once).
fn sms_daemon(ovh: &support::ovh::OvhTestServer) -> Daemon {
    let env = ovh.daemon_env("http://127.0.0.1:9/uploads/");
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Daemon::start(&pairs)
}

async fn send_sms(d: &Daemon, capture_id: &str, phone: &str) -> String {
    let (s, v) = answer(
        client()
            .post(d.url("/api/send-sms"))
            .json(&serde_json::json!({"capture_id": capture_id, "phone": phone})),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    v["sms_id"].as_str().unwrap().to_string()
}

async fn wait_sms(d: &Daemon, sms_id: &str, want: &str) -> Value {
    let t = Instant::now();
    loop {
        let (_, v) = answer(client().get(d.url(&format!("/api/sms/{sms_id}")))).await;
        if v["status"] == want {
            return v;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "never {want}: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (status, clear number) of an SMS row, read from the catalog file.
fn sms_row(d: &Daemon, sms_id: &str) -> (String, Option<String>) {
    d.catalog()
        .query_row(
            "SELECT status, phone FROM sms WHERE id = ?1",
            [sms_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

fn retry(d: &Daemon, sms_id: &str) -> reqwest::RequestBuilder {
    admin(d, Method::POST, &format!("/admin/sms/{sms_id}/retry"))
}

/// A failed SMS has forgotten its number; staff type it again (any accepted form of the
/// same number), the request goes back to the queue and OVH gets exactly one text. Every
/// refusal changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sms_is_retried_with_the_number_typed_again_and_sent_once() {
    const E164: &str = "+33612345678";
    let ovh = support::ovh::OvhTestServer::start_default();
    let d = sms_daemon(&ovh);
    ovh.set_unreachable(&[E164]);
    let cap = capture(&d, 64, 48, 3).await;
    let sms_id = send_sms(&d, &cap, "06 12 34 56 78").await;
    wait_sms(&d, &sms_id, "failed").await;
    assert_eq!(
        sms_row(&d, &sms_id),
        ("failed".into(), None),
        "the number outlived the failure"
    );
    assert!(ovh.sent_jobs().is_empty());

    // The listing: masked number, scrubbed error, retryable.
    let (s, v) = answer(admin(&d, Method::GET, "/admin/sms?status=failed")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let item = &v["items"][0];
    assert_eq!(item["id"], sms_id.as_str());
    assert_eq!(item["phone"], "+33*******78");
    assert_eq!(item["retryable"], true);
    assert!(!item["last_error"].as_str().unwrap().is_empty(), "{item}");
    assert!(!v.to_string().contains("612345678"), "{v}");

    // Without the number: told to send it. Another number, a bad one, a bad body: refused.
    for r in [
        retry(&d, &sms_id),
        retry(&d, &sms_id).json(&serde_json::json!(null)),
        retry(&d, &sms_id).json(&serde_json::json!({})),
        retry(&d, &sms_id).json(&serde_json::json!({"phone": "  "})),
    ] {
        let (s, v) = answer(r).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::CONFLICT, "number_forgotten"),
            "{v}"
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("\"phone\""),
            "{v}"
        );
    }
    let (s, v) =
        answer(retry(&d, &sms_id).json(&serde_json::json!({"phone": "06 12 34 56 79"}))).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "phone_mismatch"),
        "{v}"
    );
    assert!(
        !v.to_string().contains("12 34 56 79"),
        "the message echoes the number: {v}"
    );
    for (body, want) in [
        (r#"{"phone": "hello"}"#, "invalid_phone"),
        (r#"{"phone": "3617"}"#, "premium_number"),
        (r#"["06 12 34 56 78"]"#, "invalid_json"),
        (r#"{"phone": 612345678}"#, "invalid_json"),
    ] {
        let (s, v) = answer(
            retry(&d, &sms_id)
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, want),
            "{body}: {v}"
        );
    }
    assert_eq!(
        sms_row(&d, &sms_id),
        ("failed".into(), None),
        "a refusal changed the row"
    );

    // Two retries at once with the right number (another of its forms): one is taken.
    ovh.set_unreachable(&[]);
    let body = serde_json::json!({"phone": "+33 6 12 34 56 78"});
    let (a, b) = tokio::join!(
        answer(retry(&d, &sms_id).json(&body)),
        answer(retry(&d, &sms_id).json(&body))
    );
    let mut codes = [a.0, b.0];
    codes.sort();
    assert_eq!(
        codes,
        [StatusCode::ACCEPTED, StatusCode::CONFLICT],
        "{a:?} {b:?}"
    );
    let (won, lost) = if a.0 == StatusCode::ACCEPTED {
        (a.1, b.1)
    } else {
        (b.1, a.1)
    };
    assert_eq!(won["sms_id"], sms_id.as_str());
    assert_eq!(won["phone"], "+33*******78");
    assert!(
        ["not_failed", "already_sent"].contains(&code(&lost)),
        "{lost}"
    );
    wait_sms(&d, &sms_id, "sent").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let jobs = ovh.sent_jobs();
    assert_eq!(jobs.len(), 1, "exactly one text");
    assert_eq!(jobs[0].receivers, vec![E164.to_string()]);
    assert_eq!(
        sms_row(&d, &sms_id),
        ("sent".into(), None),
        "the number outlived the send"
    );

    // Sent: never again, whatever number is given.
    for r in [retry(&d, &sms_id), retry(&d, &sms_id).json(&body)] {
        let (s, v) = answer(r).await;
        assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "already_sent"), "{v}");
    }
    assert!(
        !d.log_text().contains("612345678"),
        "a clear number reached the log"
    );
}

/// A retry is held to the abuse limits, counted over the other requests, and refused
/// without a change; an open request is not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_is_held_to_the_limits() {
    const E164: &str = "+33698765432";
    let ovh = support::ovh::OvhTestServer::start_default();
    let d = sms_daemon(&ovh);
    ovh.set_unreachable(&[E164]);
    let first = send_sms(&d, &capture(&d, 64, 48, 4).await, E164).await;
    let second = send_sms(&d, &capture(&d, 64, 48, 5).await, E164).await;
    wait_sms(&d, &first, "failed").await;
    wait_sms(&d, &second, "failed").await;
    // Newest first, by pages of one with the cursor.
    let (s, p1) = answer(admin(&d, Method::GET, "/admin/sms?limit=1")).await;
    assert_eq!(s, StatusCode::OK, "{p1}");
    assert_eq!(p1["items"].as_array().unwrap().len(), 1);
    assert_eq!(p1["items"][0]["id"], second.as_str());
    let cursor = p1["next_cursor"].as_str().unwrap();
    let (_, p2) = answer(admin(
        &d,
        Method::GET,
        &format!("/admin/sms?limit=1&cursor={cursor}"),
    ))
    .await;
    assert_eq!(p2["items"][0]["id"], first.as_str());
    assert!(p2["next_cursor"].is_null(), "{p2}");
    let (s, v) = answer(
        admin(&d, Method::PUT, "/admin/config")
            .json(&serde_json::json!({"sms_per_phone_per_hour": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let body = serde_json::json!({"phone": E164});
    let (s, v) = answer(retry(&d, &first).json(&body)).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited_phone"),
        "{v}"
    );
    assert_eq!(sms_row(&d, &first), ("failed".into(), None));
    // Its own row does not count: with room for one, it is taken.
    let (s, v) = answer(
        admin(&d, Method::PUT, "/admin/config")
            .json(&serde_json::json!({"sms_per_phone_per_hour": 2})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = answer(retry(&d, &first).json(&body)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    // Still unreachable: it fails again, and forgets the number again.
    let t = Instant::now();
    loop {
        let (st, _) = sms_row(&d, &first);
        if st == "failed" {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sms_row(&d, &first), ("failed".into(), None));
    let (_, v) = answer(client().get(d.url(&format!("/api/sms/{first}")))).await;
    assert_eq!(v["attempts"], 2, "{v}");
    assert!(ovh.sent_jobs().is_empty());
}
