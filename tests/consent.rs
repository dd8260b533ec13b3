#![allow(clippy::disallowed_methods)]
//! Consent (issue 20): `send-sms` carries the id of the consent text the guest agreed
//! to; it is stored with the SMS row and in the remote SMS log (never the number), and the
//! run-time setting `sms_require_consent` makes it mandatory. The real daemon, PostgreSQL,
//! nginx and the OVH-faithful server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::daemon::{Daemon, ADMIN_KEY};
use support::images::{b64, jpeg};
use support::nginx::Nginx;
use support::ovh::{OvhTestServer, APP_KEY, APP_SECRET, CONSUMER_KEY, SENDER, SERVICE};
use support::pg::PgCluster;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn answer(r: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = r.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn refused(got: (StatusCode, Value), status: StatusCode, want: &str) {
    let (s, v) = got;
    assert_eq!(s, status, "{v}");
    assert_eq!(v["error"]["code"], want, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

async fn capture(d: &Daemon, seed: u32) -> String {
    let (s, v) = answer(
        client()
            .post(d.url("/api/capture"))
            .json(&json!({"image": b64(&jpeg(32, 24, seed))})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn send(d: &Daemon, body: Value) -> (StatusCode, Value) {
    answer(client().post(d.url("/api/send-sms")).json(&body)).await
}

async fn put_config(d: &Daemon, body: Value) -> (StatusCode, Value) {
    answer(
        client()
            .request(Method::PUT, d.url("/admin/config"))
            .header("x-api-key", ADMIN_KEY)
            .json(&body),
    )
    .await
}

fn sms_rows(d: &Daemon) -> i64 {
    d.catalog()
        .query_row("SELECT COUNT(*) FROM sms", [], |r| r.get(0))
        .unwrap()
}

fn local_consent(d: &Daemon, sms_id: &str) -> Option<String> {
    d.catalog()
        .query_row("SELECT consent FROM sms WHERE id = ?1", [sms_id], |r| {
            r.get(0)
        })
        .unwrap()
}

async fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consent_is_stored_locally_and_remotely_and_can_be_required() {
    let ovh = OvhTestServer::start_default();
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    let env = [
        ("OVH_ENDPOINT", ovh.base_url()),
        ("OVH_APP_KEY", APP_KEY.into()),
        ("OVH_APP_SECRET", APP_SECRET.into()),
        ("OVH_CONSUMER_KEY", CONSUMER_KEY.into()),
        ("SMS_SERVICE_NAME", SERVICE.into()),
        ("SMS_SENDER", SENDER.into()),
        ("PUBLIC_BASE_URL", nginx.base_url()),
        ("REMOTE_STORAGE_URL", nginx.base_url()),
        ("REMOTE_DATABASE_URL", pg.url()),
    ];
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let d = Daemon::start(&pairs);

    // Optional by default: without it, a request is taken (and stores none).
    let a = capture(&d, 1).await;
    let (s, v) = send(&d, json!({"capture_id": a, "phone": "06 12 34 56 01"})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let without = v["sms_id"].as_str().unwrap().to_string();
    assert_eq!(local_consent(&d, &without), None);

    // With it: stored with the row, and in the remote log once the text is final.
    let b = capture(&d, 2).await;
    let (s, v) = send(
        &d,
        json!({"capture_id": b, "phone": "06 12 34 56 02", "consent": "cgu-2026.06_v2"}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let with = v["sms_id"].as_str().unwrap().to_string();
    assert_eq!(local_consent(&d, &with).as_deref(), Some("cgu-2026.06_v2"));
    wait_until(
        "both texts in the remote log",
        Duration::from_secs(60),
        || {
            pg.try_psql("SELECT count(*) FROM kiosk_sms_log WHERE status = 'sent'")
                .is_ok_and(|s| s.trim() == "2")
        },
    )
    .await;
    wait_until(
        "the consent in the remote log",
        Duration::from_secs(30),
        || {
            pg.psql(&format!(
                "SELECT consent FROM kiosk_sms_log WHERE sms_id = '{with}'"
            ))
            .trim()
                == "cgu-2026.06_v2"
        },
    )
    .await;
    assert_eq!(
        pg.psql(&format!(
            "SELECT consent IS NULL FROM kiosk_sms_log WHERE sms_id = '{without}'"
        ))
        .trim(),
        "t"
    );
    let log = pg.psql("SELECT * FROM kiosk_sms_log");
    assert!(!log.contains("12345602") && !log.contains("+33"), "{log}");

    // Malformed ids: 400 invalid_consent, nothing recorded.
    let rows = sms_rows(&d);
    let c = capture(&d, 3).await;
    let long = "a".repeat(65);
    for bad in [
        json!(""),
        json!("with space"),
        json!("cgu/v1"),
        json!(long),
        json!("é"),
    ] {
        refused(
            send(
                &d,
                json!({"capture_id": c, "phone": "06 12 34 56 03", "consent": bad}),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_consent",
        );
    }
    refused(
        send(
            &d,
            json!({"capture_id": c, "phone": "06 12 34 56 03", "consent": 12}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    assert_eq!(sms_rows(&d), rows);

    // Required: 400 consent_required, nothing queued, nothing counted against the limits
    // (one text per number per hour here, and the refusals do not use it up).
    let (s, v) = put_config(&d, json!({"sms_require_consent": "maybe"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["key"], "sms_require_consent", "{v}");
    let (s, v) = put_config(
        &d,
        json!({"sms_require_consent": true, "sms_per_phone_per_hour": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["settings"]["sms_require_consent"], true, "{v}");
    let sent_before = ovh.sent_jobs().len();
    for _ in 0..3 {
        refused(
            send(&d, json!({"capture_id": c, "phone": "06 12 34 56 03"})).await,
            StatusCode::BAD_REQUEST,
            "consent_required",
        );
    }
    assert_eq!(sms_rows(&d), rows);
    let (s, v) = send(
        &d,
        json!({"capture_id": c, "phone": "06 12 34 56 03", "consent": "cgu-v1"}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let third = v["sms_id"].as_str().unwrap().to_string();
    wait_until("the consented text", Duration::from_secs(60), || {
        ovh.sent_jobs().len() == sent_before + 1
    })
    .await;
    assert_eq!(local_consent(&d, &third).as_deref(), Some("cgu-v1"));

    // Off again: optional again.
    let (s, _) = put_config(&d, json!({"sms_require_consent": false})).await;
    assert_eq!(s, StatusCode::OK);
    let e = capture(&d, 4).await;
    let (s, v) = send(&d, json!({"capture_id": e, "phone": "06 12 34 56 04"})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
}
