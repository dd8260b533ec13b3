#![allow(clippy::disallowed_methods)]
//! Error answers a client can act on (issue 18, item 5), checked against the real binary
//! as a newcomer would meet them: a photo posted without `Content-Type`, an empty body, a
//! body over the limit, a half-typed phone number, a read-only setting, wrong routes and
//! methods on every listener, weak ETags, an unknown background.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::daemon::{free_port, Daemon, ADMIN_KEY};
use support::images::{b64, jpeg, png, sha256_hex};

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Status, headers and JSON body (`Null` when the body is not JSON).
async fn send(r: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let r = r.send().await.unwrap();
    let (s, h) = (r.status(), r.headers().clone());
    let text = r.text().await.unwrap();
    (s, h, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn admin(d: &Daemon, method: Method, path: &str) -> reqwest::RequestBuilder {
    client()
        .request(method, d.url(path))
        .header("x-api-key", ADMIN_KEY)
}

/// The JSON error shape, its code and message.
fn error_of(v: &Value) -> (&str, &str) {
    let e = &v["error"];
    assert!(e.is_object(), "not the error shape: {v}");
    (
        e["code"].as_str().expect("error.code"),
        e["message"].as_str().expect("error.message"),
    )
}

fn rows(d: &Daemon) -> i64 {
    d.catalog()
        .query_row("SELECT count(*) FROM captures", [], |r| r.get(0))
        .unwrap()
}

fn photo_files(d: &Daemon) -> usize {
    std::fs::read_dir(d.uploads_dir()).map_or(0, |rd| {
        rd.flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".jpg"))
            .count()
    })
}

// ---------------------------------------------------------------------------------------
// Capture bodies

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_without_content_type_is_stored_as_a_raw_image() {
    let d = Daemon::start(&[]);
    for (name, img) in [("jpeg", jpeg(120, 80, 1)), ("png", png(40, 30, 2))] {
        // No Content-Type header at all (curl --data-binary sends one; many libraries don't).
        let req = client()
            .post(d.url(&format!("/api/capture?id=untyped-{name}")))
            .body(img.clone());
        let (s, _, v) = send(req).await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        assert_eq!(v["id"], format!("untyped-{name}"));
        let stored = std::fs::read(d.uploads_dir().join(format!("untyped-{name}.jpg"))).unwrap();
        if name == "jpeg" {
            assert_eq!(stored, img, "the very bytes");
            assert_eq!(v["sha256"], sha256_hex(&img));
        } else {
            assert_eq!(&stored[..3], &[0xFF, 0xD8, 0xFF], "PNG converted to JPEG");
        }
    }
    // Streamed without a declared length (chunked) too.
    let img = jpeg(64, 64, 3);
    let stream = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(img[..5].to_vec()),
        Ok(img[5..].to_vec()),
    ]);
    let req = client()
        .post(d.url("/api/capture?id=untyped-chunked"))
        .body(reqwest::Body::wrap_stream(stream));
    let (s, _, v) = send(req).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        std::fs::read(d.uploads_dir().join("untyped-chunked.jpg")).unwrap(),
        img
    );
    // A JSON body without Content-Type is still read as JSON.
    let body = json!({"image": b64(&jpeg(50, 40, 4)), "id": "untyped-json"}).to_string();
    let (s, _, v) = send(client().post(d.url("/api/capture")).body(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Anything else says what to send, not "invalid JSON".
    let before = rows(&d);
    let (s, _, v) = send(
        client()
            .post(d.url("/api/capture"))
            .body(b"GIF89a, not a photo we take".to_vec()),
    )
    .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{v}");
    let (code, message) = error_of(&v);
    assert_eq!(code, "unsupported_media_type");
    assert!(message.contains("Content-Type: image/jpeg"), "{message}");
    assert_eq!(rows(&d), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_raw_body_is_missing_image() {
    let d = Daemon::start(&[]);
    for ct in [Some("image/jpeg"), Some("image/png"), None] {
        let mut req = client().post(d.url("/api/capture")).body(Vec::<u8>::new());
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let (s, _, v) = send(req).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{ct:?}: {v}");
        let (code, message) = error_of(&v);
        assert_eq!(code, "missing_image", "{ct:?}");
        assert!(message.contains("empty"), "{message}");
    }
    // Chunked and empty.
    let stream = futures_util::stream::iter(Vec::<Result<Vec<u8>, std::io::Error>>::new());
    let (s, _, v) = send(
        client()
            .post(d.url("/api/capture"))
            .header("content-type", "image/jpeg")
            .body(reqwest::Body::wrap_stream(stream)),
    )
    .await;
    assert_eq!(
        (s, error_of(&v).0),
        (StatusCode::BAD_REQUEST, "missing_image")
    );
    assert_eq!((rows(&d), photo_files(&d)), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_names_the_limit_the_operator_set() {
    let d = Daemon::start(&[("MAX_CAPTURE_BYTES", "1MB")]);
    // A JSON body over its limit (declared: refused before it is read).
    let big = vec![b'A'; 1_500_000];
    let body = format!("{{\"image\":\"{}\"}}", String::from_utf8(big).unwrap());
    let (s, _, v) = send(
        client()
            .post(d.url("/api/capture"))
            .header("content-type", "application/json")
            .body(body),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    let (code, message) = error_of(&v);
    assert_eq!(code, "payload_too_large");
    assert!(
        message.contains("1MB image (MAX_CAPTURE_BYTES)"),
        "{message}"
    );
    assert!(message.contains("as base64 JSON"), "{message}");
    // json_limit(1MB) = 1398104 + 65536 bytes: never shown as a bare count.
    assert!(!message.contains("1463640"), "{message}");
    assert!(!message.contains(" bytes"), "{message}");
    // A raw body over the limit.
    let (s, _, v) = send(
        client()
            .post(d.url("/api/capture"))
            .header("content-type", "image/jpeg")
            .body(vec![0xFFu8; 1_100_000]),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    let (code, message) = error_of(&v);
    assert_eq!(code, "payload_too_large");
    assert!(message.contains("1MB (MAX_CAPTURE_BYTES)"), "{message}");
    // A base64 image whose JSON fits but whose decoded bytes do not.
    let mut too_big = jpeg(16, 16, 5);
    too_big.resize(1_060_000, 0); // its base64 JSON is under the body limit
    let (s, _, v) = send(
        client()
            .post(d.url("/api/capture"))
            .json(&json!({"image": b64(&too_big)})),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(error_of(&v).1.contains("1MB (MAX_CAPTURE_BYTES)"), "{v}");
    assert_eq!((rows(&d), photo_files(&d)), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_background_is_refused_and_nothing_is_stored() {
    let d = Daemon::start(&[]);
    let img = jpeg(80, 60, 6);
    // Raw.
    let (s, _, v) = send(
        client()
            .post(d.url("/api/capture?background_id=no-such-bg"))
            .header("content-type", "image/jpeg")
            .body(img.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (code, message) = error_of(&v);
    assert_eq!(code, "unknown_background");
    assert!(message.contains("no-such-bg"), "{message}");
    // JSON, the image first (decoded as it streams) and last.
    for body in [
        format!(
            "{{\"image\":\"{}\",\"background_id\":\"no-such-bg\"}}",
            b64(&img)
        ),
        format!(
            "{{\"background_id\":\"no-such-bg\",\"image\":\"{}\"}}",
            b64(&img)
        ),
    ] {
        let (s, _, v) = send(
            client()
                .post(d.url("/api/capture"))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(
            (s, error_of(&v).0),
            (StatusCode::BAD_REQUEST, "unknown_background")
        );
    }
    assert_eq!((rows(&d), photo_files(&d)), (0, 0));
    assert_eq!(d.capture_temp_files(), 0, "no temp file left behind");
    // Batch: that item alone.
    let (s, _, v) = send(client().post(d.url("/api/capture-batch")).json(&json!({
        "captures": [
            {"image": b64(&img), "background_id": "no-such-bg"},
            {"image": b64(&jpeg(80, 60, 7)), "id": "batch-ok"},
        ]
    })))
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"][0]["status"], 400, "{v}");
    assert_eq!(v["results"][0]["error"]["code"], "unknown_background");
    assert_eq!(v["results"][1]["status"], 201, "{v}");
    assert_eq!((rows(&d), photo_files(&d)), (1, 1), "only the good item");
    // A background that exists is accepted, and the capture names it.
    let (s, _, bg) = send(
        admin(&d, Method::POST, "/admin/backgrounds?name=Plage")
            .header("content-type", "image/jpeg")
            .body(jpeg(64, 48, 8)),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{bg}");
    let bg_id = bg["id"].as_str().unwrap();
    let (s, _, v) = send(
        client()
            .post(d.url(&format!("/api/capture?id=with-bg&background_id={bg_id}")))
            .header("content-type", "image/jpeg")
            .body(img),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let stored: String = d
        .catalog()
        .query_row(
            "SELECT background_id FROM captures WHERE id = 'with-bg'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, bg_id);
}

// ---------------------------------------------------------------------------------------
// Phone numbers, settings

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_typed_phone_number_is_too_short_not_premium() {
    use support::ovh::{OvhTestServer, APP_KEY, APP_SECRET, CONSUMER_KEY, SENDER, SERVICE};
    let ovh = OvhTestServer::start_default();
    let d = Daemon::start(&[
        ("OVH_ENDPOINT", &ovh.base_url()),
        ("OVH_APP_KEY", APP_KEY),
        ("OVH_APP_SECRET", APP_SECRET),
        ("OVH_CONSUMER_KEY", CONSUMER_KEY),
        ("SMS_SERVICE_NAME", SERVICE),
        ("SMS_SENDER", SENDER),
        ("PUBLIC_BASE_URL", "https://vps.example.com/uploads/"),
    ]);
    let (s, _, cap) = send(
        client()
            .post(d.url("/api/capture"))
            .header("content-type", "image/jpeg")
            .body(jpeg(40, 30, 9)),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{cap}");
    let id = cap["id"].as_str().unwrap();
    for (phone, want, says) in [
        ("0612", "invalid_phone", "too short"),
        ("06 12 34 56", "invalid_phone", "too short"),
        // Real premium and service numbers keep their own code.
        ("08 99 12 34 56", "premium_number", "premium"),
        ("3654", "premium_number", "short service"),
    ] {
        let (s, _, v) = send(
            client()
                .post(d.url("/api/send-sms"))
                .json(&json!({"capture_id": id, "phone": phone})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{phone}: {v}");
        let (code, message) = error_of(&v);
        assert_eq!(code, want, "{phone}: {message}");
        assert!(message.contains(says), "{phone}: {message}");
        assert!(!message.contains(phone), "the number is never echoed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_settings_name_their_environment_variable() {
    let d = Daemon::start(&[]);
    let before = send(admin(&d, Method::GET, "/admin/config")).await.2;
    for (key, var, value) in [
        ("listen", "KIOSK_LISTEN", json!("0.0.0.0:9000")),
        ("kiosk_listen", "KIOSK_LISTEN", json!("0.0.0.0:9000")),
        ("health_listen", "HEALTH_LISTEN", json!("0.0.0.0:9001")),
        (
            "remote_database_url",
            "REMOTE_DATABASE_URL",
            json!("postgresql://u:p@db/x"),
        ),
        ("data_dir", "KIOSK_DATA_DIR", json!("/tmp/elsewhere")),
        (
            "admin_api_key",
            "ADMIN_API_KEY",
            json!("a-new-key-0123456789"),
        ),
    ] {
        // Alone, and next to a valid run-time setting that must not be applied either.
        let body = json!({"retention_days": 7, key: value});
        let (s, _, v) = send(admin(&d, Method::PUT, "/admin/config").json(&body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{key}: {v}");
        let (code, message) = error_of(&v);
        assert_eq!(code, "read_only_setting", "{key}");
        assert_eq!(v["error"]["key"], key);
        assert!(message.contains("read-only"), "{message}");
        assert!(
            message.contains(&format!("environment variable {var}")),
            "{key}: {message}"
        );
        assert!(!message.contains("u:p@"), "a value is never echoed");
    }
    let after = send(admin(&d, Method::GET, "/admin/config")).await.2;
    assert_eq!(before, after, "nothing was changed");
    // A name that is nowhere is still "unknown".
    let (s, _, v) = send(admin(&d, Method::PUT, "/admin/config").json(&json!({"colour": 1}))).await;
    assert_eq!(
        (s, error_of(&v).0),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_setting")
    );
}

// ---------------------------------------------------------------------------------------
// Routes and methods

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_404_and_405_has_the_json_error_shape_on_every_listener() {
    let health_port = free_port();
    let d = Daemon::start(&[("HEALTH_LISTEN", &format!("127.0.0.1:{health_port}"))]);
    let main = |p: &str| d.url(p);
    let health = |p: &str| format!("http://127.0.0.1:{health_port}{p}");
    let cases: Vec<(Method, String, StatusCode, &str)> = vec![
        (
            Method::GET,
            main("/no/such/route"),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            Method::POST,
            main("/api/nothing"),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            Method::GET,
            main("/console/no-such.js"),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            Method::GET,
            main("/uploads/unknown.jpg"),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            Method::GET,
            main("/api/capture"),
            StatusCode::METHOD_NOT_ALLOWED,
            "POST",
        ),
        (
            Method::DELETE,
            main("/health"),
            StatusCode::METHOD_NOT_ALLOWED,
            "GET",
        ),
        (
            Method::PUT,
            main("/api/captures/status"),
            StatusCode::METHOD_NOT_ALLOWED,
            "GET",
        ),
        (
            Method::POST,
            main("/openapi.json"),
            StatusCode::METHOD_NOT_ALLOWED,
            "GET",
        ),
        (
            Method::POST,
            main("/uploads/x.jpg"),
            StatusCode::METHOD_NOT_ALLOWED,
            "GET",
        ),
        (
            Method::POST,
            main("/metrics"),
            StatusCode::METHOD_NOT_ALLOWED,
            "GET",
        ),
        (
            Method::GET,
            health("/admin/config"),
            StatusCode::NOT_FOUND,
            "",
        ),
        (Method::GET, health("/nothing"), StatusCode::NOT_FOUND, ""),
        (
            Method::POST,
            health("/health"),
            StatusCode::METHOD_NOT_ALLOWED,
            "GET",
        ),
        (
            Method::PUT,
            health("/metrics"),
            StatusCode::METHOD_NOT_ALLOWED,
            "GET",
        ),
    ];
    for (method, url, status, allow) in cases {
        let (s, h, v) = send(
            client()
                .request(method.clone(), &url)
                .header("x-api-key", ADMIN_KEY),
        )
        .await;
        assert_eq!(s, status, "{method} {url}: {v}");
        let (code, message) = error_of(&v);
        assert!(!message.is_empty());
        if status == StatusCode::NOT_FOUND {
            assert_eq!(code, "not_found", "{method} {url}");
        } else {
            assert_eq!(code, "method_not_allowed", "{method} {url}");
            let allowed = h["allow"].to_str().unwrap();
            assert!(allowed.contains(allow), "{method} {url}: Allow {allowed}");
            assert!(!allowed.contains(method.as_str()), "{allowed}");
        }
        assert!(
            h["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{method} {url}"
        );
    }
    // Admin routes: the wrong method is 405 in the same shape, with or without the key
    // (the route's methods are no secret: /openapi.json lists them).
    for key in [Some(ADMIN_KEY), None] {
        let mut req = client().delete(d.url("/admin/stats"));
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        let (s, h, v) = send(req).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{key:?}: {v}");
        assert_eq!(error_of(&v).0, "method_not_allowed");
        assert!(h["allow"].to_str().unwrap().contains("GET"));
    }
}

// ---------------------------------------------------------------------------------------
// Conditional GET

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_and_listed_etags_give_304_everywhere() {
    let d = Daemon::start(&[]);
    let img = jpeg(400, 300, 10);
    let (s, _, cap) = send(
        client()
            .post(d.url("/api/capture?id=etag-1"))
            .header("content-type", "image/jpeg")
            .body(img),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{cap}");
    let (s, _, bg) = send(
        admin(&d, Method::POST, "/admin/backgrounds?name=Plage")
            .header("content-type", "image/jpeg")
            .body(jpeg(64, 48, 11)),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{bg}");
    let bg_id = bg["id"].as_str().unwrap();
    let paths = [
        "/uploads/etag-1.jpg".to_string(),
        "/api/download/etag-1".to_string(),
        "/admin/captures/etag-1/thumbnail".to_string(),
        format!("/api/backgrounds/{bg_id}"),
        format!("/api/backgrounds/{bg_id}/thumbnail"),
        "/console/".to_string(),
        "/console/app.js".to_string(),
    ];
    for path in paths {
        let first = admin(&d, Method::GET, &path).send().await.unwrap();
        assert_eq!(first.status(), StatusCode::OK, "{path}");
        let tag = first.headers()["etag"].to_str().unwrap().to_string();
        let opaque = tag.trim_start_matches("W/").to_string();
        for inm in [
            tag.clone(),
            format!("W/{opaque}"),
            format!("\"other\", W/{opaque}"),
            format!("W/\"other\", {opaque}"),
        ] {
            let r = admin(&d, Method::GET, &path)
                .header("if-none-match", &inm)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{path} with {inm}");
            assert_eq!(r.headers()["etag"].to_str().unwrap(), tag, "{path}");
        }
        // A tag that is not ours (nor a prefix of it) gets the whole answer.
        let r = admin(&d, Method::GET, &path)
            .header("if-none-match", "W/\"other\", \"another\"")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    assert_eq!(
        cap["sha256"].as_str().map(|s| s.len()),
        Some(64),
        "the photo's tag is its sha256"
    );
}
