//! SMS end to end: the real daemon, PostgreSQL, nginx and the OVH-faithful server.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::daemon::Daemon;
use support::images::{b64, jpeg, sha256_hex};
use support::nginx::Nginx;
use support::ovh::{Fault, OvhTestServer, APP_KEY, APP_SECRET, CONSUMER_KEY, SENDER, SERVICE};
use support::pg::PgCluster;

const PHONE: &str = "06 12 34 56 78";
const E164: &str = "+33612345678";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

struct Env {
    vars: Vec<(String, String)>,
}

impl Env {
    fn new(ovh: &OvhTestServer, nginx: &Nginx, pg: Option<&PgCluster>) -> Env {
        let mut vars = vec![
            ("OVH_ENDPOINT".into(), ovh.base_url()),
            ("OVH_APP_KEY".into(), APP_KEY.into()),
            ("OVH_APP_SECRET".into(), APP_SECRET.into()),
            ("OVH_CONSUMER_KEY".into(), CONSUMER_KEY.into()),
            ("SMS_SERVICE_NAME".into(), SERVICE.into()),
            ("SMS_SENDER".into(), SENDER.into()),
            ("OVH_TIMEOUT_SECS".into(), "2".into()),
            ("PUBLIC_BASE_URL".into(), nginx.base_url()),
            ("REMOTE_STORAGE_URL".into(), nginx.base_url()),
        ];
        if let Some(pg) = pg {
            vars.push(("REMOTE_DATABASE_URL".into(), pg.url()));
        }
        Env { vars }
    }
    fn pairs(&self) -> Vec<(&str, &str)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

async fn capture(d: &Daemon, seed: u32) -> (String, Vec<u8>) {
    let img = jpeg(64, 48, seed);
    let r = client()
        .post(d.url("/api/capture"))
        .json(&json!({"image": b64(&img)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    (v["id"].as_str().unwrap().to_string(), img)
}

async fn send_sms(d: &Daemon, capture_id: &str, phone: &str) -> (StatusCode, Value) {
    let r = client()
        .post(d.url("/api/send-sms"))
        .json(&json!({"capture_id": capture_id, "phone": phone}))
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn sms_status(d: &Daemon, sms_id: &str) -> Value {
    client()
        .get(d.url(&format!("/api/sms/{sms_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_status(d: &Daemon, sms_id: &str, want: &str, timeout: Duration) -> Value {
    let t = Instant::now();
    loop {
        if let Ok(r) = client()
            .get(d.url(&format!("/api/sms/{sms_id}")))
            .send()
            .await
        {
            let v: Value = r.json().await.unwrap_or(Value::Null);
            if v["status"] == want {
                return v;
            }
            assert!(
                t.elapsed() < timeout,
                "SMS never became {want}: {v}\n{}",
                tail(&d.log_text())
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offline_capture_then_exactly_one_text_with_a_working_link() {
    let ovh = OvhTestServer::start_default();
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    pg.stop();
    nginx.stop();
    let env = Env::new(&ovh, &nginx, Some(&pg));
    let d = Daemon::start(&env.pairs());
    let (id, img) = capture(&d, 1).await;
    let (s, v) = send_sms(&d, &id, PHONE).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "waiting_for_sync");
    assert_ne!(v["phone"], E164);
    assert!(!v.to_string().contains("612345678"), "{v}");
    let sms_id = v["sms_id"].as_str().unwrap().to_string();
    // The same request again (a retry by the app) is the same SMS, not a second one.
    let (s, again) = send_sms(&d, &id, "+33 6 12 34 56 78").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["sms_id"], sms_id.as_str());

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        ovh.sent_jobs().len(),
        0,
        "no text while the photo is not online"
    );
    assert_eq!(sms_status(&d, &sms_id).await["status"], "waiting_for_sync");

    pg.start();
    nginx.restart();
    let v = wait_status(&d, &sms_id, "sent", Duration::from_secs(60)).await;
    assert!(v["sent_at"].is_string());
    let jobs = ovh.sent_jobs();
    assert_eq!(jobs.len(), 1, "exactly one text");
    let job = &jobs[0];
    assert_eq!(job.receivers, vec![E164.to_string()]);
    assert_eq!(job.sender, SENDER);
    assert!(job.no_stop_clause);
    assert!(job.tag.as_deref().unwrap().contains(&sms_id));
    // The link is the share page, named by the capture's public token (not its id).
    let token = support::share::public_token(&d, &id);
    let link = format!("{}{token}.html", nginx.base_url());
    assert!(job.message.contains(&link), "{}", job.message);
    assert!(!job.message.contains(&id), "{}", job.message);
    // The link works: the page, which shows the photo, which serves the same bytes.
    let got = client().get(&link).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    let photo = format!("{}{token}.jpg", nginx.base_url());
    let page = got.text().await.unwrap();
    assert!(page.contains(&format!("src=\"{photo}\"")), "{page}");
    let got = client().get(&photo).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(sha256_hex(&got.bytes().await.unwrap()), sha256_hex(&img));
    // Remote SMS log: no clear number, only the HMAC.
    let t = Instant::now();
    loop {
        let log = pg.psql("SELECT status || ' ' || phone_hmac FROM kiosk_sms_log");
        if log.starts_with("sent ") {
            assert!(!log.contains("612345678"));
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no SMS log row: {log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(ovh.sent_jobs().len(), 1);
}

/// A distinct number per case, so the per-number hourly limit is not what is tested.
fn phone_for(seed: u32) -> String {
    format!("+336123456{:02}", seed % 100)
}

async fn one_case(ovh: &OvhTestServer, d: &Daemon, seed: u32, want: &str) -> Value {
    let (id, _) = capture(d, seed).await;
    let (s, v) = send_sms(d, &id, &phone_for(seed)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let sms_id = v["sms_id"].as_str().unwrap().to_string();
    let _ = ovh;
    wait_status(d, &sms_id, want, Duration::from_secs(40)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failure_modes_never_send_twice() {
    let ovh = OvhTestServer::start_default();
    let nginx = Nginx::start();
    let env = Env::new(&ovh, &nginx, None);
    let mut d = Daemon::start(&[env.pairs(), vec![("KIOSK_LOG", "info")]].concat());
    let mut expected_jobs = 0;

    // 5xx then success.
    ovh.set_fault(Fault::Status5xx(2));
    one_case(&ovh, &d, 10, "sent").await;
    expected_jobs += 1;
    assert_eq!(ovh.sent_jobs().len(), expected_jobs);

    // Timeout: the first POST hangs past the client timeout and records nothing.
    ovh.set_hang(Duration::from_secs(4));
    ovh.set_fault(Fault::Timeout(1));
    let v = one_case(&ovh, &d, 11, "sent").await;
    assert!(v["attempts"].as_i64().unwrap() >= 2, "{v}");
    expected_jobs += 1;
    assert_eq!(ovh.sent_jobs().len(), expected_jobs);

    // Accepted, then the connection dropped before the answer: found by tag, not resent.
    ovh.set_fault(Fault::AcceptThenDrop);
    one_case(&ovh, &d, 12, "sent").await;
    expected_jobs += 1;
    assert_eq!(
        ovh.sent_jobs().len(),
        expected_jobs,
        "a lost answer caused a resend"
    );

    // Kiosk clock 10 minutes off (OVH's clock ahead): the time delta keeps signatures valid.
    ovh.set_skew_secs(600);
    one_case(&ovh, &d, 13, "sent").await;
    expected_jobs += 1;
    ovh.set_skew_secs(-600);
    one_case(&ovh, &d, 14, "sent").await;
    expected_jobs += 1;
    ovh.set_skew_secs(0);
    assert_eq!(ovh.sent_jobs().len(), expected_jobs);

    // 403 NOT_GRANTED_CALL: permanent, no text.
    ovh.set_fault(Fault::NotGranted);
    let v = one_case(&ovh, &d, 15, "failed").await;
    assert!(
        v["last_error"]
            .as_str()
            .unwrap()
            .contains("NOT_GRANTED_CALL"),
        "{v}"
    );
    ovh.set_fault(Fault::None);

    // Unknown sender: permanent.
    ovh.set_senders(&["SomeoneElse"]);
    let v = one_case(&ovh, &d, 16, "failed").await;
    assert!(
        v["last_error"].as_str().unwrap().contains("does not exist"),
        "{v}"
    );
    ovh.set_senders(&[SENDER]);

    // OVH says the receiver is invalid: permanent.
    ovh.set_unreachable(&[&phone_for(17)]);
    let v = one_case(&ovh, &d, 17, "failed").await;
    assert!(!v.to_string().contains(&phone_for(17)[3..]), "{v}");
    ovh.set_unreachable(&[]);
    assert_eq!(ovh.sent_jobs().len(), expected_jobs);

    // Crash right after OVH accepted: the answer is lost and the daemon is SIGKILLed
    // before it could record anything; after restart the tag is found, no second text.
    ovh.set_auto_send(false);
    ovh.set_fault(Fault::AcceptThenDrop);
    let (id, _) = capture(&d, 18).await;
    let (_, v) = send_sms(&d, &id, &phone_for(18)).await;
    let sms_id = v["sms_id"].as_str().unwrap().to_string();
    let t = Instant::now();
    while ovh.sent_jobs().len() == expected_jobs {
        assert!(t.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    d.kill9();
    expected_jobs += 1;
    d.spawn();
    wait_status(&d, &sms_id, "sent", Duration::from_secs(40)).await;
    ovh.deliver_pending();
    ovh.set_auto_send(true);

    // Crash while the POST hangs (OVH never accepted it): resent once after restart.
    ovh.set_hang(Duration::from_secs(3));
    ovh.set_fault(Fault::Timeout(1));
    let (id, _) = capture(&d, 19).await;
    let (_, v) = send_sms(&d, &id, &phone_for(19)).await;
    let sms_id = v["sms_id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(800)).await;
    d.kill9();
    d.spawn();
    wait_status(&d, &sms_id, "sent", Duration::from_secs(40)).await;
    expected_jobs += 1;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        ovh.sent_jobs().len(),
        expected_jobs,
        "exactly one text per request"
    );
    let mut tags: Vec<String> = ovh
        .sent_jobs()
        .iter()
        .map(|j| j.tag.clone().unwrap())
        .collect();
    tags.sort();
    tags.dedup();
    assert_eq!(tags.len(), expected_jobs, "a tag was sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_bad_numbers_and_no_phone_number_anywhere() {
    let ovh = OvhTestServer::start_default();
    let nginx = Nginx::start();
    let env = Env::new(&ovh, &nginx, None);
    let d = Daemon::start(&env.pairs());
    let mut answers = Vec::new();
    let mut caps = Vec::new();
    for i in 0..5 {
        caps.push(capture(&d, 100 + i).await.0);
    }
    // Bad numbers.
    for (phone, status, code) in [
        ("0899 12 34 56", StatusCode::BAD_REQUEST, "premium_number"),
        ("3620", StatusCode::BAD_REQUEST, "premium_number"),
        ("+882 1234 5678", StatusCode::BAD_REQUEST, "premium_number"),
        ("not a number", StatusCode::BAD_REQUEST, "invalid_phone"),
        ("01 40 00 00 00", StatusCode::BAD_REQUEST, "invalid_phone"),
        ("", StatusCode::BAD_REQUEST, "invalid_phone"),
    ] {
        let (s, v) = send_sms(&d, &caps[0], phone).await;
        assert_eq!(
            (s, v["error"]["code"].as_str().unwrap_or("")),
            (status, code),
            "{phone}: {v}"
        );
        answers.push(v.to_string());
    }
    let (s, v) = send_sms(&d, "0123456789abcdef0123456789abcdef", PHONE).await;
    assert_eq!(
        (s, v["error"]["code"].as_str().unwrap()),
        (StatusCode::NOT_FOUND, "capture_not_found")
    );
    let (s, v) = send_sms(&d, "../x", PHONE).await;
    assert_eq!(
        (s, v["error"]["code"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "invalid_id")
    );
    let r = client()
        .post(d.url("/api/send-sms"))
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Per number per hour: 3 by default.
    let mut ids = Vec::new();
    for cap in caps.iter().take(3) {
        let (s, v) = send_sms(&d, cap, PHONE).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        ids.push(v["sms_id"].as_str().unwrap().to_string());
        answers.push(v.to_string());
    }
    let (s, v) = send_sms(&d, &caps[3], PHONE).await;
    assert_eq!(
        (s, v["error"]["code"].as_str().unwrap()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited_phone")
    );
    answers.push(v.to_string());
    // Per capture: 3 numbers for one photo, the 4th refused.
    for p in ["0611111111", "0622222222"] {
        let (s, v) = send_sms(&d, &caps[4], p).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        ids.push(v["sms_id"].as_str().unwrap().to_string());
    }
    let (s, _) = send_sms(&d, &caps[4], "0633333333").await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, v) = send_sms(&d, &caps[4], "0644444444").await;
    assert_eq!(
        (s, v["error"]["code"].as_str().unwrap()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited_capture")
    );

    for id in &ids {
        let v = wait_status(&d, id, "sent", Duration::from_secs(40)).await;
        answers.push(v.to_string());
    }
    // After sending: the number is nowhere — not in answers, logs, or the catalog files.
    let digits = ["612345678", "611111111", "622222222"];
    let log = d.log_text();
    // Stop the daemon cleanly (it checkpoints the WAL), then read the catalog's bytes: with
    // secure_delete the cleared numbers are zeroed, not left in free space.
    let mut d = d;
    let (code, _) = d.terminate(Duration::from_secs(15));
    assert_eq!(code, Some(0));
    let mut catalog_bytes = Vec::new();
    for f in ["catalog.sqlite3", "catalog.sqlite3-wal"] {
        if let Ok(b) = std::fs::read(d.data_dir().join(f)) {
            catalog_bytes.extend(b);
        }
    }
    let hay = String::from_utf8_lossy(&catalog_bytes);
    for p in digits {
        assert!(!log.contains(p), "phone {p} in the log");
        assert!(
            answers.iter().all(|a| !a.contains(p)),
            "phone {p} in an answer"
        );
        assert!(!hay.contains(p), "phone {p} still in the catalog's bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_not_configured_is_503() {
    let d = Daemon::start(&[]);
    let (id, _) = capture(&d, 1).await;
    let (s, v) = send_sms(&d, &id, PHONE).await;
    assert_eq!(
        (s, v["error"]["code"].as_str().unwrap()),
        (StatusCode::SERVICE_UNAVAILABLE, "sms_not_configured")
    );
    let r = client()
        .get(d.url("/api/sms/0123456789abcdef0123456789abcdef"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[test]
fn sms_test_command_checks_and_sends_one_text() {
    let ovh = OvhTestServer::start_default();
    let dir = tempfile::tempdir().unwrap();
    let base = ovh.base_url();
    let env = [
        ("OVH_ENDPOINT", base.as_str()),
        ("OVH_APP_KEY", APP_KEY),
        ("OVH_APP_SECRET", APP_SECRET),
        ("OVH_CONSUMER_KEY", CONSUMER_KEY),
        ("SMS_SERVICE_NAME", SERVICE),
        ("SMS_SENDER", SENDER),
        ("KIOSK_DATA_DIR", dir.path().to_str().unwrap()),
    ];
    let (code, out, err) =
        support::daemon::run_cli(&["sms-test", PHONE, "--dry-run"], &env, dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("credits left") && out.contains("is registered"),
        "{out}"
    );
    assert_eq!(ovh.sent_jobs().len(), 0);
    let (code, out, err) = support::daemon::run_cli(&["sms-test", PHONE], &env, dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(ovh.sent_jobs().len(), 1);
    assert!(!out.contains("612345678"), "{out}");
    // Wrong sender: a clear error naming what to fix.
    let mut bad = env.to_vec();
    bad[5] = ("SMS_SENDER", "Nobody");
    let (code, _, err) = support::daemon::run_cli(&["sms-test", PHONE], &bad, dir.path());
    assert_eq!(code, 1);
    assert!(err.contains("SMS_SENDER"), "{err}");
    assert!(!err.contains(APP_SECRET) && !err.contains(CONSUMER_KEY));
    assert_eq!(ovh.sent_jobs().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_sms_credits_and_low_credit() {
    let ovh = OvhTestServer::start_default();
    ovh.set_credits(12.0);
    let nginx = Nginx::start();
    let env = Env::new(&ovh, &nginx, None);
    let d = Daemon::start(&env.pairs());
    let t = Instant::now();
    let h = loop {
        let h: Value = client()
            .get(d.url("/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if h["checks"]["sms"]["credits_left"].is_number() {
            break h;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(h["checks"]["sms"]["credits_left"], 12.0);
    // 12 < the default low threshold of 50: staff are told before the event.
    assert_eq!(h["checks"]["sms"]["status"], "degraded", "{h}");
    assert_eq!(h["status"], "degraded");
}
