//! `GET /metrics` and the access log, black-box: a real Prometheus (Debian's `prometheus`)
//! scrapes the real daemon on both listeners while it stores captures, syncs them to real
//! nginx and PostgreSQL and texts a guest through the OVH-faithful server; the values are
//! read back through Prometheus's query API and the scrape is checked by `promtool check
//! metrics`. The access log is read from the daemon's stderr, and from a journald socket
//! the test binds (in a mount namespace, so the machine's `/run/systemd` is untouched).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests measure real time; the rule that time is read through `clock` is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::daemon::{free_port, Daemon, ADMIN_KEY};
use support::images::{b64, jpeg};
use support::nginx::Nginx;
use support::ovh::{OvhTestServer, APP_KEY, APP_SECRET, CONSUMER_KEY, SENDER, SERVICE};
use support::pg::PgCluster;

const PHONE: &str = "06 12 34 56 78";
/// What any form of the test's phone number contains.
const PHONE_DIGITS: &str = "612345678";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn tool(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "{name} not found: install Debian's prometheus package (tools/install-test-deps.sh does)"
    );
}

/// A Prometheus server of its own: temp config and data, a free port, 1 s scrapes.
struct Prometheus {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Scrapes each `(job, port)` on 127.0.0.1 every second.
    fn start(targets: &[(&str, u16)]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cfg =
            String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
        for (job, p) in targets {
            cfg.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{p}']\n"
            ));
        }
        let cfg_path = dir.path().join("prometheus.yml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", cfg_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Prometheus { child, port, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    async fn wait_ready(&mut self) {
        let t = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("prometheus exited with {st}:\n{}", self.log());
            }
            let url = format!("http://127.0.0.1:{}/-/ready", self.port);
            if let Ok(r) = client().get(url).send().await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "prometheus not ready:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn api(&self, path: &str, param: &str, value: &str) -> Value {
        let url = format!(
            "http://127.0.0.1:{}/api/v1/{path}?{param}={}",
            self.port,
            utf8_percent_encode(value, NON_ALPHANUMERIC)
        );
        let v: Value = client()
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["status"], "success", "{path} {value}: {v}");
        v["data"].clone()
    }

    /// An instant query: each series' labels and value.
    async fn query(&self, q: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let data = self.api("query", "query", q).await;
        data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels = serde_json::from_value(s["metric"].clone()).unwrap();
                let v = s["value"][1].as_str().unwrap().parse::<f64>().unwrap();
                (labels, v)
            })
            .collect()
    }

    /// The value of a query that must match exactly one series.
    async fn value(&self, q: &str) -> f64 {
        let r = self.query(q).await;
        assert_eq!(r.len(), 1, "{q}: expected one series, got {r:?}");
        r[0].1
    }

    /// Waits until every job has been scraped successfully, starting after `after`.
    async fn wait_scraped_after(&self, jobs: &[&str], after: f64) {
        let t = Instant::now();
        for job in jobs {
            loop {
                // `timestamp()` of a plain selector is the sample's time, i.e. the scrape's
                // start (of any other expression it would be the evaluation time).
                let ts = self.query(&format!("timestamp(up{{job=\"{job}\"}})")).await;
                let up = self.query(&format!("up{{job=\"{job}\"}}")).await;
                let r = (ts.first().map(|x| x.1), up.first().map(|x| x.1));
                if let (Some(ts), Some(up)) = r {
                    // Both read the same newest sample unless a scrape fell in between;
                    // then the next round reads them again.
                    if ts > after && up == 1.0 {
                        break;
                    }
                }
                assert!(
                    t.elapsed() < Duration::from_secs(60),
                    "{job} not scraped successfully since {after}: {r:?}\n{}",
                    self.log()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `promtool check metrics` on a scrape: it must exit 0 and print nothing (lint problems
/// are printed with exit code 3, parse errors with 1).
fn promtool_check(text: &str) {
    let mut child = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {} {said}\n--- scrape:\n{text}",
        out.status
    );
}

async fn scrape(url: String) -> String {
    let r = client().get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    r.text().await.unwrap()
}

async fn post_capture(d: &Daemon, body: Value) -> StatusCode {
    client()
        .post(d.url("/api/capture"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
}

async fn wait_synced(d: &Daemon, ids: &[&str]) {
    let t = Instant::now();
    loop {
        let v: Value = client()
            .get(d.url(&format!("/api/captures/status?ids={}", ids.join(","))))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ids.iter().all(|id| v[*id]["is_synced"] == true) {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "not synced: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_sms(d: &Daemon, sms_id: &str, want: &str) {
    let t = Instant::now();
    loop {
        let v: Value = client()
            .get(d.url(&format!("/api/sms/{sms_id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["status"] == want {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "SMS never {want}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_scrapes_both_listeners_and_reads_back_what_happened() {
    let ovh = OvhTestServer::start_default();
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    let health_port = free_port();
    let env: Vec<(String, String)> = vec![
        ("OVH_ENDPOINT".into(), ovh.base_url()),
        ("OVH_APP_KEY".into(), APP_KEY.into()),
        ("OVH_APP_SECRET".into(), APP_SECRET.into()),
        ("OVH_CONSUMER_KEY".into(), CONSUMER_KEY.into()),
        ("SMS_SERVICE_NAME".into(), SERVICE.into()),
        ("SMS_SENDER".into(), SENDER.into()),
        ("PUBLIC_BASE_URL".into(), nginx.base_url()),
        ("REMOTE_STORAGE_URL".into(), nginx.base_url()),
        ("REMOTE_DATABASE_URL".into(), pg.url()),
        ("HEALTH_LISTEN".into(), format!("127.0.0.1:{health_port}")),
    ];
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let d = Daemon::start(&pairs);
    let mut prom = Prometheus::start(&[("kiosk_api", d.port), ("kiosk_health", health_port)]);
    prom.wait_ready().await;
    prom.wait_scraped_after(&["kiosk_api", "kiosk_health"], 0.0)
        .await;
    let api = |m: &str| format!("selfie_kiosk_{m}{{job=\"kiosk_api\"}}");
    let created_q = r#"selfie_kiosk_captures_total{job="kiosk_api",result="created"}"#;
    let created_before = prom.value(created_q).await;

    // 3 captures stored, 1 retried (same id, same bytes), 2 refused.
    let ids = ["metrics-cap-1", "metrics-cap-2", "metrics-cap-3"];
    let images: Vec<Vec<u8>> = (0..3).map(|i| jpeg(64, 48, 40 + i)).collect();
    for (id, img) in ids.iter().zip(&images) {
        let s = post_capture(&d, json!({"id": id, "image": b64(img)})).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let again = json!({"id": ids[0], "image": b64(&images[0])});
    assert_eq!(post_capture(&d, again).await, StatusCode::OK);
    for _ in 0..2 {
        let s = post_capture(&d, json!({"image": "not base64!"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }
    wait_synced(&d, &ids).await;
    let r = client()
        .post(d.url("/api/send-sms"))
        .json(&json!({"capture_id": ids[0], "phone": PHONE}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let sms_id = r.json::<Value>().await.unwrap()["sms_id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_sms(&d, &sms_id, "sent").await;
    // Paths holding an id, and one no route matches, with a phone number in the query.
    let r = client()
        .get(d.url(&format!("/api/download/{}", ids[1])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = client()
        .get(d.url(&format!("/nothing/{}?phone=%2B33{PHONE_DIGITS}", ids[2])))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Everything above has happened; wait for a scrape of each listener that started later.
    prom.wait_scraped_after(&["kiosk_api", "kiosk_health"], unix_now())
        .await;

    let v = |q: String| {
        let prom = &prom;
        async move { prom.value(&q).await }
    };
    let captures = |result: &str| {
        format!("selfie_kiosk_captures_total{{job=\"kiosk_api\",result=\"{result}\"}}")
    };
    assert_eq!(prom.value(created_q).await - created_before, 3.0);
    assert_eq!(v(captures("repeated")).await, 1.0);
    assert_eq!(v(captures("invalid_base64")).await, 2.0);
    assert_eq!(v(api("capture_duration_seconds_count")).await, 6.0);
    let http = |route: &str, method: &str, status: u16| {
        format!(
            "selfie_kiosk_http_requests_total{{job=\"kiosk_api\",route=\"{route}\",method=\"{method}\",status=\"{status}\"}}"
        )
    };
    assert_eq!(v(http("/api/capture", "POST", 201)).await, 3.0);
    assert_eq!(v(http("/api/capture", "POST", 200)).await, 1.0);
    assert_eq!(v(http("/api/capture", "POST", 400)).await, 2.0);
    assert_eq!(v(http("/api/send-sms", "POST", 202)).await, 1.0);
    assert_eq!(v(http("/api/download/{id}", "GET", 200)).await, 1.0);
    assert_eq!(v(http("unmatched", "GET", 404)).await, 1.0);
    let q = r#"selfie_kiosk_http_request_duration_seconds_count{job="kiosk_api",route="/api/capture",method="POST"}"#;
    assert_eq!(prom.value(q).await, 6.0);

    let uploads = |remote: &str, result: &str| {
        format!("selfie_kiosk_uploads_total{{job=\"kiosk_api\",remote=\"{remote}\",result=\"{result}\"}}")
    };
    assert_eq!(v(uploads("remote_storage", "ok")).await, 3.0);
    assert_eq!(v(uploads("remote_db", "ok")).await, 3.0);
    let q = r#"selfie_kiosk_sms_attempts_total{job="kiosk_api",result="sent"}"#;
    assert_eq!(prom.value(q).await, 1.0);
    let q = r#"selfie_kiosk_sms{job="kiosk_api",status="sent"}"#;
    assert_eq!(prom.value(q).await, 1.0);
    assert_eq!(v(api("sms_credits_left")).await, ovh.credits());
    assert_eq!(v(api("captures_stored")).await, 3.0);
    assert_eq!(v(api("sync_backlog_captures")).await, 0.0);
    assert_eq!(v(api("outbox_dead_letters")).await, 0.0);
    assert_eq!(v(api("clock_synchronized")).await, 1.0);
    assert!(v(api("disk_free_bytes")).await > 0.0);
    for remote in ["remote_db", "remote_storage"] {
        let q = format!("selfie_kiosk_remote_reachable{{job=\"kiosk_api\",remote=\"{remote}\"}}");
        assert_eq!(prom.value(&q).await, 1.0, "{remote}");
    }
    let q = format!(
        "selfie_kiosk_build_info{{job=\"kiosk_api\",version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(prom.value(&q).await, 1.0);
    // Each worker is in exactly one state, and the job runner has run.
    let per_worker = prom
        .query(r#"sum by (worker) (selfie_kiosk_worker_state{job="kiosk_api"})"#)
        .await;
    assert!(per_worker.len() >= 5, "{per_worker:?}");
    assert!(per_worker.iter().all(|(_, n)| *n == 1.0), "{per_worker:?}");
    let q = r#"selfie_kiosk_worker_runs_total{job="kiosk_api",worker="jobs"}"#;
    assert!(prom.value(q).await >= 1.0);
    // The health listener serves the same registry.
    let q = r#"selfie_kiosk_captures_total{job="kiosk_health",result="repeated"}"#;
    assert_eq!(prom.value(q).await, 1.0);

    // No id, phone number, key or query string in any label Prometheus holds.
    let series = prom
        .api("series", "match[]", r#"{__name__=~"selfie_kiosk_.+"}"#)
        .await;
    let mut routes = BTreeSet::new();
    for s in series.as_array().unwrap() {
        for (k, val) in s.as_object().unwrap() {
            let val = val.as_str().unwrap();
            for bad in ids
                .iter()
                .copied()
                .chain([PHONE_DIGITS, ADMIN_KEY, sms_id.as_str(), "?"])
            {
                assert!(!val.contains(bad), "label {k}={val:?} holds {bad:?}");
            }
            if k == "route" {
                routes.insert(val.to_string());
            }
        }
    }
    let doc: Value = client()
        .get(d.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for r in &routes {
        assert!(
            r == "unmatched" || doc["paths"].get(r).is_some(),
            "route label {r:?} is not a route template"
        );
    }

    // promtool finds nothing to say about either listener's scrape.
    promtool_check(&scrape(d.url("/metrics")).await);
    promtool_check(&scrape(format!("http://127.0.0.1:{health_port}/metrics")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_with_another_method_is_405_json_on_both_listeners() {
    let health_port = free_port();
    let hl = format!("127.0.0.1:{health_port}");
    let d = Daemon::start(&[("HEALTH_LISTEN", &hl)]);
    for base in [d.url(""), format!("http://{hl}")] {
        for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let r = client()
                .request(m.clone(), format!("{base}/metrics"))
                .body("x")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{m} {base}");
            let allow = r.headers()["allow"].to_str().unwrap().to_string();
            assert!(allow.contains("GET"), "{m} {base}: Allow {allow}");
            let ct = r.headers()["content-type"].to_str().unwrap().to_string();
            assert!(ct.starts_with("application/json"), "{ct}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "method_not_allowed", "{v}");
            assert!(
                v["error"]["message"].as_str().unwrap().contains("GET"),
                "{v}"
            );
        }
        let r = client()
            .head(format!("{base}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "HEAD {base}");
    }
    // The refusals are counted like any answer.
    let text = scrape(d.url("/metrics")).await;
    assert!(
        text.contains(
            r#"selfie_kiosk_http_requests_total{method="POST",route="/metrics",status="405"} 2"#
        ),
        "{text}"
    );
}

/// The daemon's log without terminal colours.
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The fields of the access-log lines (`… INFO request method=GET route=… …`).
fn access_lines(log: &str) -> Vec<BTreeMap<String, String>> {
    plain(log)
        .lines()
        .filter_map(|l| l.split_once(" request ").map(|(_, f)| f.to_string()))
        .map(|fields| {
            fields
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
                .collect()
        })
        .collect()
}

/// The requests the access-log tests make, and what each answers (status, body length).
async fn logged_requests(
    api_port: u16,
    health_port: u16,
) -> Vec<(&'static str, &'static str, u16, usize)> {
    let mut out = Vec::new();
    let c = client();
    let url = |path: &str| format!("http://127.0.0.1:{api_port}{path}");
    let r = c
        .get(url(&format!("/api/captures/status?ids=0{PHONE_DIGITS}")))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    out.push((
        "GET",
        "/api/captures/status",
        s,
        r.bytes().await.unwrap().len(),
    ));
    let r = c
        .post(url("/api/send-sms"))
        .json(&json!({"capture_id": "abc", "phone": PHONE}))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    out.push(("POST", "/api/send-sms", s, r.bytes().await.unwrap().len()));
    let r = c
        .get(url("/admin/config"))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    out.push(("GET", "/admin/config", s, r.bytes().await.unwrap().len()));
    let r = c
        .get(url(&format!(
            "/secret/0{PHONE_DIGITS}?phone=%2B33{PHONE_DIGITS}&key={ADMIN_KEY}"
        )))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    out.push(("GET", "unmatched", s, r.bytes().await.unwrap().len()));
    let r = c
        .get(format!("http://127.0.0.1:{health_port}/metrics"))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    out.push(("GET", "/metrics", s, r.bytes().await.unwrap().len()));
    assert_eq!(
        out.iter().map(|r| r.2).collect::<Vec<_>>(),
        [200, 503, 200, 404, 200],
        "{out:?}"
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_has_one_line_per_request_and_no_secret() {
    let health_port = free_port();
    let hl = format!("127.0.0.1:{health_port}");
    let d = Daemon::start(&[("HEALTH_LISTEN", &hl)]);
    let made = logged_requests(d.port, health_port).await;
    // The line is written once the answer is sent: give the daemon a moment.
    let t = Instant::now();
    let lines = loop {
        let lines = access_lines(&d.log_text());
        let found = made
            .iter()
            .filter(|(_, route, _, _)| {
                lines
                    .iter()
                    .any(|l| l.get("route").map(String::as_str) == Some(route))
            })
            .count();
        if found == made.len() || t.elapsed() > Duration::from_secs(10) {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for (method, route, status, bytes) in &made {
        let mine: Vec<_> = lines
            .iter()
            .filter(|l| l.get("route").map(String::as_str) == Some(route))
            .collect();
        assert_eq!(mine.len(), 1, "{route}: {mine:?}\n{}", d.log_text());
        let l = mine[0];
        assert_eq!(l["method"], *method, "{l:?}");
        assert_eq!(l["status"], status.to_string(), "{l:?}");
        assert_eq!(l["bytes"], bytes.to_string(), "{l:?}");
        assert!(l["duration_ms"].parse::<f64>().is_ok(), "{l:?}");
        assert_eq!(
            l.keys().collect::<Vec<_>>(),
            ["bytes", "duration_ms", "method", "route", "status"],
            "exactly these fields: {l:?}"
        );
    }
    let log = d.log_text();
    for bad in [PHONE_DIGITS, ADMIN_KEY, "phone=", "ids=", "/secret/"] {
        assert!(!log.contains(bad), "the log holds {bad:?}:\n{log}");
    }
}

/// Reads the journal export fields of one native-protocol datagram (`KEY=value` lines and
/// `KEY\n<u64 LE length><bytes>\n` records).
fn journal_fields(mut b: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    while let Some(nl) = b.iter().position(|c| *c == b'\n') {
        let line = String::from_utf8_lossy(&b[..nl]).into_owned();
        b = &b[nl + 1..];
        if let Some((k, v)) = line.split_once('=') {
            out.insert(k.to_string(), v.to_string());
        } else if b.len() >= 8 {
            let len = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
            let v = String::from_utf8_lossy(&b[8..8 + len]).into_owned();
            out.insert(line, v);
            b = &b[(8 + len + 1).min(b.len())..];
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journald_gets_the_access_fields_as_fields_of_their_own() {
    use std::os::unix::net::UnixDatagram;
    // The daemon runs in its own mount namespace where a temp dir is /run/systemd, so it
    // finds "journald" at /run/systemd/journal/socket: this test's socket.
    let run = tempfile::tempdir().unwrap();
    std::fs::create_dir(run.path().join("journal")).unwrap();
    let sock = UnixDatagram::bind(run.path().join("journal/socket")).unwrap();
    // Read from the start, as journald does: a datagram socket's queue is short, and a
    // daemon whose log socket is full waits on every log line.
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    {
        let received = received.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            while let Ok(n) = sock.recv(&mut buf) {
                received.lock().unwrap().push(buf[..n].to_vec());
            }
        });
    }
    let data = tempfile::tempdir().unwrap();
    let (port, health_port) = (free_port(), free_port());
    let mut child = Command::new(tool("unshare"))
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mkdir -p /run/systemd && mount --bind "$1" /run/systemd && exec "$2" serve"#)
        .args([
            "sh",
            &run.path().display().to_string(),
            support::daemon::BIN,
        ])
        .current_dir(data.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("JOURNAL_STREAM", "8:12345")
        .env("KIOSK_DATA_DIR", data.path().join("data"))
        .env("KIOSK_LISTEN", format!("127.0.0.1:{port}"))
        .env("HEALTH_LISTEN", format!("127.0.0.1:{health_port}"))
        .env("ADMIN_API_KEY", ADMIN_KEY)
        .env("KIOSK_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare (util-linux) runs the daemon in a mount namespace");
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let guard = Kill(&mut child);
    let t = Instant::now();
    let health = format!("http://127.0.0.1:{port}/health");
    while client().get(&health).send().await.is_err() {
        if let Ok(Some(st)) = guard.0.try_wait() {
            panic!("daemon under unshare exited: {st}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "daemon not listening"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let made = logged_requests(port, health_port).await;
    let access = |events: &[(BTreeMap<String, String>, Vec<u8>)]| {
        events
            .iter()
            .filter(|(f, _)| f.get("TARGET").is_some_and(|t| t == "access"))
            .count()
    };
    let t = Instant::now();
    let events = loop {
        let events: Vec<(BTreeMap<String, String>, Vec<u8>)> = received
            .lock()
            .unwrap()
            .iter()
            .map(|raw| (journal_fields(raw), raw.clone()))
            .collect();
        // The requests made, and the health polls before them.
        if access(&events) > made.len() || t.elapsed() > Duration::from_secs(10) {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for (method, route, status, bytes) in &made {
        let mine: Vec<_> = events
            .iter()
            .map(|(f, _)| f)
            .filter(|f| f.get("TARGET").is_some_and(|t| t == "access"))
            .filter(|f| f.get("F_ROUTE").map(String::as_str) == Some(route))
            .collect();
        assert_eq!(mine.len(), 1, "{route}: {mine:?}");
        let f = mine[0];
        assert_eq!(f["MESSAGE"], "request");
        // tracing-journald's default mapping: INFO is "notice" (5), as every info line.
        assert_eq!(f["PRIORITY"], "5");
        assert_eq!(f["F_METHOD"], *method);
        assert_eq!(f["F_STATUS"], status.to_string());
        assert_eq!(f["F_BYTES"], bytes.to_string());
        assert!(f["F_DURATION_MS"].parse::<f64>().is_ok(), "{f:?}");
    }
    for (_, raw) in &events {
        let raw = String::from_utf8_lossy(raw);
        for bad in [PHONE_DIGITS, ADMIN_KEY, "phone=", "ids="] {
            assert!(!raw.contains(bad), "a journal entry holds {bad:?}: {raw}");
        }
    }
    drop(guard);
}
