//! The capture routes over real HTTP against the real binary: happy paths, idempotency,
//! and every bad input, each leaving no file or row behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::daemon::{run_cli, Daemon};
use support::images::{b64, jpeg, png, sha256_hex};

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn post_json(d: &Daemon, path: &str, body: &Value) -> (StatusCode, Value) {
    let r = client().post(d.url(path)).json(body).send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn post_raw(d: &Daemon, path: &str, ct: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let r = client()
        .post(d.url(path))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// POSTs a JSON body as written (key order kept).
async fn post_text(d: &Daemon, body: String) -> (StatusCode, Value) {
    post_raw(d, "/api/capture", "application/json", body.into_bytes()).await
}

/// `v` serialized with its "image" field first, as most clients write it (the daemon
/// decodes such a body as it arrives); other bodies unchanged.
fn image_first(v: &Value) -> String {
    let Some((image, obj)) = v.get("image").zip(v.as_object()) else {
        return v.to_string();
    };
    let rest: String = obj
        .iter()
        .filter(|(k, _)| k.as_str() != "image")
        .map(|(k, v)| format!(",{}:{v}", Value::from(k.as_str())))
        .collect();
    format!("{{\"image\":{image}{rest}}}")
}

/// Uploads a background (admin route) named `name`; its id.
async fn upload_background(d: &Daemon, name: &str) -> String {
    let r = client()
        .post(d.url(&format!("/admin/backgrounds?name={name}")))
        .header("x-api-key", support::daemon::ADMIN_KEY)
        .header("content-type", "image/jpeg")
        .body(jpeg(64, 48, 21))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".incoming")
        .collect();
    v.sort();
    v
}

fn incoming_empty(d: &Daemon) -> bool {
    d.capture_temp_files() == 0
}

fn row_count(d: &Daemon) -> i64 {
    d.catalog()
        .query_row("SELECT COUNT(*) FROM captures", [], |r| r.get(0))
        .unwrap()
}

fn assert_nothing_stored(d: &Daemon) {
    assert_eq!(files_in(&d.uploads_dir()), Vec::<String>::new());
    assert!(incoming_empty(d));
    assert_eq!(row_count(d), 0);
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_capture_round_trip_with_etag() {
    let d = Daemon::start(&[]);
    let img = jpeg(320, 240, 1);
    let (s, v) = post_json(&d, "/api/capture", &json!({"image": b64(&img)})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(v["url"], format!("/uploads/{id}.jpg"));
    assert_eq!(v["download_url"], format!("/api/download/{id}"));
    assert_eq!(v["sha256"], sha256_hex(&img));
    assert_eq!(v["bytes"], img.len());
    assert_eq!(
        (v["width"].as_i64(), v["height"].as_i64()),
        (Some(320), Some(240))
    );
    assert!(v["created_at"].as_str().unwrap().ends_with('Z'));

    // On disk, byte for byte.
    let on_disk = std::fs::read(d.uploads_dir().join(format!("{id}.jpg"))).unwrap();
    assert_eq!(on_disk, img);

    for path in [format!("/uploads/{id}.jpg"), format!("/api/download/{id}")] {
        let r = client().get(d.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "image/jpeg");
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        assert_eq!(etag, format!("\"{}\"", sha256_hex(&img)));
        if path.starts_with("/api/download") {
            assert!(r.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .contains(&format!("{id}.jpg")));
        }
        assert_eq!(r.bytes().await.unwrap().to_vec(), img);
        let r = client()
            .get(d.url(&path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        let r = client()
            .get(d.url(&path))
            .header("if-none-match", "\"other\"")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    // data: URL form too.
    let img2 = jpeg(64, 64, 2);
    let (s, v) = post_json(
        &d,
        "/api/capture",
        &json!({"image": format!("data:image/jpeg;base64,{}", b64(&img2)), "taken_at": "2026-06-01T14:03:00Z"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["sha256"], sha256_hex(&img2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_bodies_client_ids_idempotent_and_conflicting() {
    let d = Daemon::start(&[]);
    let img = jpeg(200, 100, 3);
    let (s, first) = post_raw(&d, "/api/capture?id=guest-42", "image/jpeg", img.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(first["id"], "guest-42");
    // A retried request is not a duplicate: 200 with the same answer.
    let (s, again) = post_raw(&d, "/api/capture?id=guest-42", "image/jpeg", img.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again, first);
    let (s, again) = post_json(
        &d,
        "/api/capture",
        &json!({"image": b64(&img), "id": "guest-42"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again, first);
    // Same id, other bytes: 409, and the stored file is untouched.
    let (s, v) = post_raw(
        &d,
        "/api/capture?id=guest-42",
        "image/jpeg",
        jpeg(200, 100, 4),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(code(&v), "id_conflict");
    // The same as JSON (its bytes are written to a temp file before the id is checked).
    let (s, v) = post_json(
        &d,
        "/api/capture",
        &json!({"image": b64(&jpeg(200, 100, 5)), "id": "guest-42"}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(code(&v), "id_conflict");
    // Image first, id after it (decoded and written before the id is even read): the
    // same answers.
    let (s, again) = post_text(
        &d,
        format!("{{\"image\":\"{}\",\"id\":\"guest-42\"}}", b64(&img)),
    )
    .await;
    assert_eq!((s, &again), (StatusCode::OK, &first));
    let (s, v) = post_text(
        &d,
        format!(
            "{{\"image\": \"data:image/jpeg;base64,{}\", \"id\": \"guest-42\"}}",
            b64(&jpeg(200, 100, 6))
        ),
    )
    .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "id_conflict"));
    assert_eq!(
        std::fs::read(d.uploads_dir().join("guest-42.jpg")).unwrap(),
        img
    );
    assert_eq!(row_count(&d), 1);
    assert!(
        incoming_empty(&d),
        "retries and conflicts leave no temp file"
    );

    // PNG is converted to JPEG.
    let p = png(120, 80, 5);
    let (s, v) = post_raw(&d, "/api/capture?id=from-png", "image/png", p.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["width"].as_i64(), v["height"].as_i64()),
        (Some(120), Some(80))
    );
    let stored = std::fs::read(d.uploads_dir().join("from-png.jpg")).unwrap();
    assert_eq!(&stored[..3], &[0xFF, 0xD8, 0xFF]);
    assert_eq!(v["sha256"], sha256_hex(&stored));
    let (s, again) = post_json(
        &d,
        "/api/capture",
        &json!({"image": b64(&p), "id": "from-png"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again, v);
    let (s, again) = post_text(
        &d,
        format!("{{\"image\":\"{}\",\"id\":\"from-png\"}}", b64(&p)),
    )
    .await;
    assert_eq!((s, &again), (StatusCode::OK, &v));

    // Image first, then every other field: stored under the body's id, with its fields
    // (the background must exist: an unknown one is 400 unknown_background).
    let beach = upload_background(&d, "beach").await;
    let img3 = jpeg(300, 200, 7);
    let (s, v) = post_text(
        &d,
        format!(
            "{{\"image\":\"{}\",\"id\":\"guest-43\",\"background_id\":\"{beach}\",\"taken_at\":\"2026-06-01T14:03:00Z\"}}",
            b64(&img3)
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["id"].as_str(), v["sha256"].as_str()),
        (Some("guest-43"), Some(sha256_hex(&img3).as_str()))
    );
    assert_eq!(
        std::fs::read(d.uploads_dir().join("guest-43.jpg")).unwrap(),
        img3
    );
    let (background, taken): (String, String) = d
        .catalog()
        .query_row(
            "SELECT background_id, taken_at FROM captures WHERE id = 'guest-43'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (background.as_str(), taken.as_str()),
        (beach.as_str(), "2026-06-01T14:03:00Z")
    );
    // A PNG image first, converted like any other.
    let (s, v) = post_text(
        &d,
        format!(
            "{{\"image\":\"{}\",\"id\":\"png-first\"}}",
            b64(&png(40, 30, 8))
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let stored = std::fs::read(d.uploads_dir().join("png-first.jpg")).unwrap();
    assert_eq!(&stored[..3], &[0xFF, 0xD8, 0xFF]);
    assert_eq!(v["sha256"], sha256_hex(&stored));
    assert_eq!(row_count(&d), 4);
    assert!(incoming_empty(&d));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_their_code_and_leave_nothing() {
    let d = Daemon::start(&[("MAX_CAPTURE_BYTES", "200KB")]);
    let img = jpeg(100, 100, 6);
    let mut truncated = img.clone();
    truncated.truncate(img.len() * 2 / 3);
    let big = {
        // Noise compresses badly: a JPEG over 200 KB.
        let im = image::RgbImage::from_fn(800, 600, |x, y| {
            let v = (x * 7919 + y * 104729) ^ (x * y);
            image::Rgb([v as u8, (v >> 3) as u8, (v >> 7) as u8])
        });
        let mut out = Vec::new();
        im.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut out, 100,
        ))
        .unwrap();
        assert!(
            out.len() > 200 * 1024,
            "test image too small: {}",
            out.len()
        );
        out
    };
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "bad base64",
            json!({"image": "%%%not base64%%%"}),
            StatusCode::BAD_REQUEST,
            "invalid_base64",
        ),
        (
            "bad data url",
            json!({"image": "data:image/jpeg,abc"}),
            StatusCode::BAD_REQUEST,
            "invalid_base64",
        ),
        (
            "array body",
            json!([b64(&img)]),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "no image",
            json!({"id": "x"}),
            StatusCode::BAD_REQUEST,
            "missing_image",
        ),
        (
            "not an image",
            json!({"image": b64(b"hello, this is plain text, not a photo")}),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_image",
        ),
        (
            "truncated jpeg",
            json!({"image": b64(&truncated)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_image",
        ),
        (
            "oversize",
            json!({"image": b64(&big)}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "slash id",
            json!({"image": b64(&img), "id": "a/b"}),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            "dotdot id",
            json!({"image": b64(&img), "id": ".."}),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            "traversal id",
            json!({"image": b64(&img), "id": "../../etc/passwd"}),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            "nul id",
            json!({"image": b64(&img), "id": "a\u{0}b"}),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            "long id",
            json!({"image": b64(&img), "id": "x".repeat(65)}),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            "bad taken_at",
            json!({"image": b64(&img), "taken_at": "yesterday"}),
            StatusCode::BAD_REQUEST,
            "invalid_taken_at",
        ),
        (
            "bad background",
            json!({"image": b64(&img), "background_id": "../x"}),
            StatusCode::BAD_REQUEST,
            "invalid_background_id",
        ),
    ];
    for (name, body, status, want) in cases {
        let (s, v) = post_json(&d, "/api/capture", &body).await;
        assert_eq!(s, status, "{name}: {v}");
        assert_eq!(code(&v), want, "{name}: {v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
        assert_nothing_stored(&d);
        // The same body with "image" first: decoded as it arrives, the same answer.
        let (s, v2) = post_text(&d, image_first(&body)).await;
        assert_eq!((s, &v2), (status, &v), "{name}, image first");
        assert_nothing_stored(&d);
    }
    // Bodies only the image-first path could get wrong: each refused, nothing left.
    let good = b64(&img);
    let mut too_big = vec![0xFF, 0xD8, 0xFF, 0xE0];
    too_big.resize(210 * 1024, 0); // over MAX_CAPTURE_BYTES, its JSON under the body limit
    for (name, body, status, want) in [
        (
            "garbage after the object",
            format!("{{\"image\":\"{good}\"}} trailing"),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "image twice",
            format!("{{\"image\":\"{good}\",\"image\":\"{good}\"}}"),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "unterminated image",
            format!("{{\"image\":\"{good}"),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "image not a string after all",
            format!("{{\"image\":\"{good}\"1}}"),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "image over the limit",
            format!("{{\"image\":\"{}\",\"id\":\"big\"}}", b64(&too_big)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "nul in the id after the image",
            format!("{{\"image\":\"{good}\",\"id\":\"a\\u0000b\"}}"),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
    ] {
        let (s, v) = post_text(&d, body).await;
        assert_eq!((s, code(&v)), (status, want), "{name}: {v}");
        assert_nothing_stored(&d);
    }
    // Raw bodies.
    let (s, v) = post_raw(&d, "/api/capture", "image/jpeg", big.clone()).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let (s, v) = post_raw(&d, "/api/capture", "image/jpeg", truncated.clone()).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_image")
    );
    let (s, v) = post_raw(&d, "/api/capture", "image/jpeg", b"GIF89a....".to_vec()).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_image")
    );
    let (s, v) = post_raw(&d, "/api/capture?id=..%2Fx", "image/jpeg", img.clone()).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_id"));
    let (s, v) = post_raw(&d, "/api/capture", "text/plain", img.clone()).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let (s, v) = post_raw(
        &d,
        "/api/capture",
        "application/json",
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_json"));
    // A huge declared body is refused before it is read: only the headers are sent, and
    // the 413 comes back anyway.
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        s.write_all(
            b"POST /api/capture HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 4194304\r\n\r\n",
        )
        .unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    }
    assert_nothing_stored(&d);

    // Reads of bad or unknown ids.
    for (path, status) in [
        (
            "/api/download/0123456789abcdef0123456789abcdef",
            StatusCode::NOT_FOUND,
        ),
        (
            "/uploads/0123456789abcdef0123456789abcdef.jpg",
            StatusCode::NOT_FOUND,
        ),
        ("/uploads/notajpg.png", StatusCode::NOT_FOUND),
        (
            "/api/download/a%2F..%2F..%2Fcatalog.sqlite3",
            StatusCode::BAD_REQUEST,
        ),
        ("/uploads/..%2Fcatalog.sqlite3.jpg", StatusCode::BAD_REQUEST),
        ("/api/download/a%00b", StatusCode::BAD_REQUEST),
        ("/nope", StatusCode::NOT_FOUND),
    ] {
        let r = client().get(d.url(path)).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        let v: Value = r.json().await.unwrap();
        assert!(v["error"]["code"].is_string(), "{path}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_mixed_items_and_status() {
    let d = Daemon::start(&[]);
    let good1 = jpeg(50, 40, 7);
    let good2 = png(30, 30, 8);
    let body = json!({"captures": [
        {"image": b64(&good1), "id": "b-one"},
        {"image": "!!!"},
        {"image": b64(b"not an image at all")},
        {"image": b64(&good2), "id": "b-two"},
        {"image": b64(&good1), "id": "bad/id"},
        "not an object",
        {"image": b64(&jpeg(50, 40, 9)), "id": "b-one"},
    ]});
    let (s, v) = post_json(&d, "/api/capture-batch", &body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r = v["results"].as_array().unwrap();
    let statuses: Vec<i64> = r.iter().map(|x| x["status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, vec![201, 400, 415, 201, 400, 400, 409]);
    for (i, x) in r.iter().enumerate() {
        assert_eq!(x["index"], i);
    }
    assert_eq!(r[0]["id"], "b-one");
    assert_eq!(r[1]["error"]["code"], "invalid_base64");
    assert_eq!(r[2]["error"]["code"], "unsupported_image");
    assert_eq!(r[4]["error"]["code"], "invalid_id");
    assert_eq!(r[6]["error"]["code"], "id_conflict");
    assert_eq!(files_in(&d.uploads_dir()), vec!["b-one.jpg", "b-two.jpg"]);
    assert_eq!(row_count(&d), 2);

    let r = client()
        .get(d.url("/api/captures/status?ids=b-one,b-two,unknown-id"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["b-one"]["exists"], true);
    assert_eq!(v["b-two"]["exists"], true);
    assert_eq!(
        v["unknown-id"],
        json!({"exists": false, "is_synced": false})
    );
    // No remote configured: every configured remote (none) has it, so it is synced.
    let mut synced = false;
    for _ in 0..100 {
        let v: Value = client()
            .get(d.url("/api/captures/status?ids=b-one"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["b-one"]["is_synced"] == true {
            synced = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(synced);
    for (q, want) in [
        ("", "missing_ids"),
        ("?ids=a/b", "invalid_id"),
        ("?ids=..", "invalid_id"),
    ] {
        let r = client()
            .get(d.url(&format!("/api/captures/status{q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let v: Value = r.json().await.unwrap();
        assert_eq!(code(&v), want);
    }
    let (s, v) = post_json(&d, "/api/capture-batch", &json!({"nope": []})).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_below_reserve_is_507_and_health_down() {
    let d = Daemon::start(&[("KIOSK_DISK_RESERVE", "100000000GB")]);
    let (s, v) = post_json(&d, "/api/capture", &json!({"image": b64(&jpeg(40, 40, 1))})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
    );
    let (s, v) = post_raw(&d, "/api/capture?id=r1", "image/jpeg", jpeg(40, 40, 2)).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
    );
    assert_nothing_stored(&d);
    let r = client().get(d.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "down");
    assert_eq!(v["checks"]["disk"]["status"], "down");
    assert_eq!(v["checks"]["local_db"]["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_defaults_cors_and_generated_keys() {
    let d = Daemon::start(&[
        ("KIOSK_CORS_ORIGINS", "http://localhost:3000"),
        ("REDIS_URL", "redis://localhost:6379/0"),
    ]);
    let r = client().get(d.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
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
    ] {
        assert!(v["checks"][c]["status"].is_string(), "{c}: {v}");
    }
    assert_eq!(v["checks"]["sms"]["configured"], false);
    assert_eq!(v["checks"]["remote_db"]["configured"], false);
    assert!(v["checks"]["disk"]["free_bytes"].as_u64().unwrap() > 0);

    let pre = |origin: &str| {
        client()
            .request(reqwest::Method::OPTIONS, d.url("/api/capture"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let r = pre("http://localhost:3000").await.unwrap();
    assert_eq!(
        r.headers().get("access-control-allow-origin").unwrap(),
        "http://localhost:3000"
    );
    let r = pre("http://evil.example").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert!(d.log_text().contains("REDIS_URL is set but ignored"));

    // No ADMIN_API_KEY given in this env? The harness gives one; SECRET_KEY is generated.
    let key = d.data_dir().join("secret_key");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(std::fs::read_to_string(&key).unwrap().trim().len(), 64);
    assert!(!d
        .log_text()
        .contains(std::fs::read_to_string(&key).unwrap().trim()));
}

#[test]
fn bad_configuration_exits_64_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    for (k, v) in [
        ("KIOSK_LISTEN", "not-an-address"),
        ("RETENTION_DAYS", "-3"),
        ("MAX_CAPTURE_BYTES", "lots"),
        ("REMOTE_DATABASE_URL", "mysql://root:topsecretpw@db/x"),
        ("KIOSK_CORS_ORIGINS", "*"),
    ] {
        for cmd in ["check-config", "serve"] {
            let (code, out, err) = run_cli(
                &[cmd],
                &[(k, v), ("KIOSK_DATA_DIR", dir.path().to_str().unwrap())],
                dir.path(),
            );
            assert_eq!(code, 64, "{k}={v} {cmd}: {out}{err}");
            let lines: Vec<&str> = err.lines().collect();
            assert_eq!(lines.len(), 1, "{err}");
            assert!(lines[0].contains(k), "{err}");
            assert!(!err.contains("topsecretpw"));
        }
    }
    // A .env file is read; the environment wins over it.
    std::fs::write(
        dir.path().join(".env"),
        "RETENTION_DAYS=12\nKIOSK_ID=from-dotenv\n",
    )
    .unwrap();
    let (code, out, _) = run_cli(&["check-config"], &[("KIOSK_ID", "from-env")], dir.path());
    assert_eq!(code, 0);
    assert!(out.contains("from-env") && out.contains("12"), "{out}");
    let (code, _, err) = run_cli(
        &["check-config", "--env-file", "/nonexistent/x.env"],
        &[],
        dir.path(),
    );
    assert_eq!(code, 64, "{err}");
}

/// A raw request written by hand: `head` then `body`, then the connection is shut for
/// writing (or dropped when `finish` is false). Returns whatever the daemon answered.
async fn raw_http(d: &Daemon, head: &str, body: &[u8], finish: bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", d.port))
        .await
        .unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    if !finish {
        return String::new();
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..250 {
        if f() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_bodies_streamed_to_disk_leave_nothing_when_cut() {
    let d = Daemon::start(&[]);
    let img = jpeg(640, 480, 9);

    // The body stops half-way and the client goes: no file (not even a temp one), no row.
    let head = format!(
        "POST /api/capture?id=cut-short HTTP/1.1\r\nHost: k\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        img.len()
    );
    raw_http(&d, &head, &img[..img.len() / 2], false).await;
    wait_until("the cut upload's temp file is gone", || incoming_empty(&d)).await;
    assert_nothing_stored(&d);
    // The same with JSON, image first (decoded to a temp file as it arrives).
    let body = format!("{{\"image\":\"{}\",\"id\":\"cut-json\"}}", b64(&img));
    let head = format!(
        "POST /api/capture HTTP/1.1\r\nHost: k\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    raw_http(&d, &head, &body.as_bytes()[..body.len() / 2], false).await;
    wait_until("the cut JSON upload's temp file is gone", || {
        incoming_empty(&d)
    })
    .await;
    assert_nothing_stored(&d);

    // Chunked (no declared length): not streamed to disk, stored all the same.
    let mut chunked = Vec::new();
    for part in img.chunks(50_000) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = "POST /api/capture?id=chunked HTTP/1.1\r\nHost: k\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let answer = raw_http(&d, head, &chunked, true).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains(&sha256_hex(&img)), "{answer}");
    assert_eq!(
        std::fs::read(d.uploads_dir().join("chunked.jpg")).unwrap(),
        img
    );

    // The same id streamed by two clients at once: one stores it, the other gets the
    // same answer; one file, one row, no temp file left.
    let (a, b) = tokio::join!(
        post_raw(&d, "/api/capture?id=twice", "image/jpeg", img.clone()),
        post_raw(&d, "/api/capture?id=twice", "image/jpeg", img.clone()),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CREATED],
        "{a:?} {b:?}"
    );
    assert_eq!(a.1, b.1);
    assert_eq!(
        std::fs::read(d.uploads_dir().join("twice.jpg")).unwrap(),
        img
    );
    assert!(incoming_empty(&d));
    assert_eq!(row_count(&d), 2);
}

/// JSON escapes in the image string (some encoders write `\/` for `/`) are decoded like
/// any other JSON string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escaped_json_strings_are_decoded() {
    let d = Daemon::start(&[]);
    let img = jpeg(64, 48, 11);
    let escaped = format!("data:image\\/jpeg;base64,{}", b64(&img).replace('/', "\\/"));
    let body = format!("{{\"id\": \"esc\\u0061ped\", \"image\": \"{escaped}\"}}");
    let r = client()
        .post(d.url("/api/capture"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], "escaped");
    assert_eq!(v["sha256"], sha256_hex(&img));
}

/// The SHA-256 in the answer is the photo's, whichever way the body was read: raw, JSON
/// decoded as it arrives (hashed alongside), JSON read whole, and JSON whose decoding as
/// it arrives stopped half-way (an escaped `\/` deep in the image, valid JSON). A retry
/// by another way is recognised as the same photo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_is_the_photos_however_the_body_is_read() {
    let d = Daemon::start(&[]);
    let img = jpeg(1600, 1200, 31);
    let plain = b64(&img);
    let deep = 256 * 1024 + plain[256 * 1024..].find('/').unwrap();
    let first = |id: &str| image_first(&json!({"image": plain, "id": id}));
    let ways = ["raw", "image first", "id first", "escape deep in the image"];
    for (n, what) in ways.into_iter().enumerate() {
        let id = format!("digest-{n}");
        let (s, v) = match what {
            "raw" => {
                let path = format!("/api/capture?id={id}");
                post_raw(&d, &path, "image/jpeg", img.clone()).await
            }
            "image first" => post_text(&d, first(&id)).await,
            "id first" => post_text(&d, format!(r#"{{"id":"{id}","image":"{plain}"}}"#)).await,
            _ => {
                // `\/` is JSON for `/`: the whole-body reader takes it, the decoder
                // reading as the body arrives stops there.
                let mut body = first(&id);
                body.insert(r#"{"image":""#.len() + deep, '\\');
                post_text(&d, body).await
            }
        };
        assert_eq!(s, StatusCode::CREATED, "{what}: {v}");
        assert_eq!(v["sha256"], sha256_hex(&img), "{what}");
        let on_disk = std::fs::read(d.uploads_dir().join(format!("{id}.jpg"))).unwrap();
        assert_eq!(sha256_hex(&on_disk), sha256_hex(&img), "{what}");
        // The same photo again under that id, sent image first: the same capture.
        let (s, again) = post_text(&d, first(&id)).await;
        assert_eq!((s, &again), (StatusCode::OK, &v), "{what} retried");
    }
    assert_eq!(row_count(&d), 4);
}
