//! The fleet's remote schema (`kiosk_heartbeat_history` figures, `kiosk_status`) and the
//! fleet page (`selfie-kiosk fleet serve`), against a real PostgreSQL written by real
//! kiosk daemons, and in Debian's Chromium (`tests/browser/fleet.mjs`).
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::daemon::{Daemon, ADMIN_KEY};
use support::pg::PgCluster;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

/// Polls `sql` (one value) until `ok` holds for it, for up to 20 s.
async fn wait_for(pg: &PgCluster, sql: &str, ok: impl Fn(&str) -> bool) -> String {
    let t = Instant::now();
    loop {
        // The tables appear with the kiosk's first connection.
        let v = pg.try_psql(sql).unwrap_or_default();
        if ok(&v) {
            return v;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{sql}: still {v:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn count(pg: &PgCluster, sql: &str) -> i64 {
    pg.psql(sql).parse().unwrap()
}

#[tokio::test]
async fn heartbeats_fill_the_history_and_kiosk_status_and_prune_by_age() {
    let pg = PgCluster::new();
    let url = pg.url();
    let kiosk = Daemon::start(&[
        ("KIOSK_ID", "kiosk-h"),
        ("REMOTE_DATABASE_URL", url.as_str()),
        // Stale after 3 intervals: 6 s leaves room for a loaded CI machine.
        ("KIOSK_HEARTBEAT_SECS", "2"),
    ]);

    // Two beats, two history rows, each with its figures taken out of the report.
    wait_for(
        &pg,
        "SELECT count(*) FROM kiosk_heartbeat_history WHERE kiosk_id = 'kiosk-h'",
        |v| v.parse::<i64>().unwrap_or(0) >= 2,
    )
    .await;
    let rows = pg.psql(
        "SELECT status, version, backlog, oldest_pending_s, disk_free_bytes > 0,
                sms_credits IS NULL, report->'checks'->'disk'->>'free_bytes' = disk_free_bytes::text
         FROM kiosk_heartbeat_history WHERE kiosk_id = 'kiosk-h' ORDER BY seen_at",
    );
    let version = env!("CARGO_PKG_VERSION");
    for line in rows.lines() {
        // No job waiting: no oldest age in the report, so NULL.
        assert_eq!(line, format!("ok|{version}|0||t|t|t"), "{rows}");
    }

    // The view: one row for the kiosk, its newest beat, not stale.
    let latest = pg.psql(
        "SELECT s.last_seen = (SELECT max(seen_at) FROM kiosk_heartbeat_history
                                WHERE kiosk_id = 'kiosk-h'),
                s.status, s.version, s.backlog, s.disk_free_bytes > 0, s.stale
         FROM kiosk_status s WHERE s.kiosk_id = 'kiosk-h'",
    );
    assert_eq!(latest, format!("t|ok|{version}|0|t|f"));

    // A row written the way older daemons write it (no figure columns) gets its figures
    // too; a report without them gives NULLs, a non-number too.
    pg.psql(
        "INSERT INTO kiosk_heartbeat_history (kiosk_id, seen_at, status, report) VALUES
         ('old-daemon', now() - interval '1 minute', 'degraded',
          '{\"version\": \"0.0.9\", \"checks\": {\"outbox\": {\"pending\": 12,
            \"oldest_pending_age_s\": 340}, \"disk\": {\"free_bytes\": 1073741824},
            \"sms\": {\"credits_left\": 41.5}}}'),
         ('old-daemon', now() - interval '2 minutes', 'ok', '{}'),
         ('old-daemon', now() - interval '3 minutes', 'ok',
          '{\"checks\": {\"outbox\": {\"pending\": \"many\"}}}')",
    );
    assert_eq!(
        pg.psql(
            "SELECT coalesce(version, '-'), coalesce(backlog::text, '-'),
                    coalesce(oldest_pending_s::text, '-'), coalesce(disk_free_bytes::text, '-'),
                    coalesce(sms_credits::text, '-')
             FROM kiosk_heartbeat_history WHERE kiosk_id = 'old-daemon' ORDER BY seen_at DESC"
        ),
        "0.0.9|12|340|1073741824|41\n-|-|-|-|-\n-|-|-|-|-"
    );

    // A kiosk last seen 10 minutes ago is stale (3 × its 60 s interval); a live one is not.
    pg.psql(
        "INSERT INTO kiosk_heartbeats (kiosk_id, seen_at, status, version, report) VALUES
         ('gone', now() - interval '10 minutes', 'ok', '0.0.9',
          '{\"checks\": {\"workers\": {\"workers\": {\"heartbeat\":
             {\"details\": {\"interval_s\": 60}}}}}}'),
         ('slow-beats', now() - interval '10 minutes', 'ok', '0.0.9',
          '{\"checks\": {\"workers\": {\"workers\": {\"heartbeat\":
             {\"details\": {\"interval_s\": 600}}}}}}')",
    );
    assert_eq!(
        pg.psql("SELECT kiosk_id, stale FROM kiosk_status ORDER BY kiosk_id"),
        "gone|t\nkiosk-h|f\nslow-beats|f"
    );

    // Prune by age: with `heartbeat_history_days` = 2, this kiosk's rows older than 2 days
    // go at its next beat; its younger rows and other kiosks' rows stay.
    pg.psql(
        "INSERT INTO kiosk_heartbeat_history (kiosk_id, seen_at, status, report) VALUES
         ('kiosk-h', now() - interval '1 day', 'ok', '{}'),
         ('kiosk-h', now() - interval '3 days', 'ok', '{}'),
         ('kiosk-h', now() - interval '40 days', 'ok', '{}'),
         ('old-daemon', now() - interval '3 days', 'ok', '{}')",
    );
    let r = client()
        .put(kiosk.url("/admin/config"))
        .header("x-api-key", ADMIN_KEY)
        .json(&json!({"heartbeat_history_days": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["settings"]["heartbeat_history_days"],
        2
    );
    wait_for(
        &pg,
        "SELECT count(*) FROM kiosk_heartbeat_history
         WHERE kiosk_id = 'kiosk-h' AND seen_at < now() - interval '2 days'",
        |v| v == "0",
    )
    .await;
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM kiosk_heartbeat_history
             WHERE kiosk_id = 'kiosk-h' AND seen_at BETWEEN now() - interval '25 hours'
                                                     AND now() - interval '23 hours'"
        ),
        1,
        "the day-old row stays"
    );
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM kiosk_heartbeat_history WHERE kiosk_id = 'old-daemon'"
        ),
        4,
        "another kiosk's rows are its own to prune"
    );

    // The setting is checked like every other.
    for bad in [json!(0), json!(3651), json!("x")] {
        let r = client()
            .put(kiosk.url("/admin/config"))
            .header("x-api-key", ADMIN_KEY)
            .json(&json!({ "heartbeat_history_days": bad }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["key"], "heartbeat_history_days", "{body}");
    }
}

const FLEET_KEY: &str = "fleet-test-key-0123456789";
const XSS_ID: &str = "<img src=x onerror=alert(1)>";
const XSS_VERSION: &str = "\"'><script>alert(2)</script>";

/// `selfie-kiosk fleet serve` as a child process; stopped (SIGTERM) on drop.
struct FleetServer {
    child: std::process::Child,
    port: u16,
    /// Its working directory, holding its log (`fleet.log`).
    dir: tempfile::TempDir,
}

impl FleetServer {
    fn start(pg_url: &str) -> FleetServer {
        let port = support::daemon::free_port();
        let cwd = tempfile::tempdir().unwrap();
        let child = support::daemon::command()
            .args(["fleet", "serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(cwd.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("REMOTE_DATABASE_URL", pg_url)
            .env("FLEET_API_KEY", FLEET_KEY)
            .env("KIOSK_DATA_DIR", cwd.path().join("unused"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(cwd.path().join("fleet.log")).unwrap())
            .spawn()
            .unwrap();
        let s = FleetServer {
            child,
            port,
            dir: cwd,
        };
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "fleet serve did not listen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("fleet.log")).unwrap_or_default()
    }

    /// SIGTERM, then the exit code.
    fn stop(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let t = Instant::now();
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            if t.elapsed() > Duration::from_secs(15) {
                let _ = self.child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FleetServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A health report shaped like the daemon's, with the figures the page shows.
fn report(version: &str, backlog: i64, disk: i64) -> String {
    json!({
        "status": "ok", "version": version, "kiosk_id": "x",
        "checks": {
            "outbox": {"status": "ok", "pending": backlog, "oldest_pending_age_s": 30 * backlog},
            "disk": {"status": "ok", "free_bytes": disk},
            "sms": {"status": "ok", "configured": true, "credits_left": 120.0},
            "workers": {"status": "ok", "workers": {"heartbeat": {"details": {"interval_s": 60}}}}
        }
    })
    .to_string()
}

/// A PostgreSQL with two live kiosks (real daemons), and, written as the daemon writes
/// them (one last-report row, one history row per beat; five beats over two days), a
/// stale kiosk, a kiosk reporting `down` and a kiosk whose id and version are HTML; and
/// `fleet serve`.
struct Setup {
    pg: PgCluster,
    kiosks: Vec<Daemon>,
    server: FleetServer,
}

async fn setup() -> Setup {
    let pg = PgCluster::new();
    let url = pg.url();
    let mut kiosks = Vec::new();
    for id in ["kiosk-a", "kiosk-b"] {
        kiosks.push(Daemon::start(&[
            ("KIOSK_ID", id),
            ("REMOTE_DATABASE_URL", url.as_str()),
            // Stale after 3 intervals: 9 s leaves room for a loaded CI machine.
            ("KIOSK_HEARTBEAT_SECS", "3"),
        ]));
    }
    wait_for(&pg, "SELECT count(*) FROM kiosk_status", |v| v == "2").await;
    // A capture of today on kiosk-a, synced to the database by the kiosk itself.
    let r = client()
        .post(kiosks[0].url("/api/capture"))
        .json(&json!({"image": support::images::b64(&support::images::jpeg(16, 16, 3))}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    wait_for(
        &pg,
        "SELECT count(*) FROM kiosk_captures WHERE kiosk_id = 'kiosk-a'",
        |v| v == "1",
    )
    .await;
    let client = pg.client().await;
    for (id, version, last_seen_min, status) in [
        ("kiosk-stale", "0.0.9", 90i32, "ok"),
        ("kiosk-down", "0.1.0", 1, "down"),
        (XSS_ID, XSS_VERSION, 1, "ok"),
    ] {
        for beat in 0..5i32 {
            // Five beats, the newest `last_seen_min` minutes ago, the others up to 2 days back.
            let minutes = last_seen_min + beat * 700;
            let rep = report(
                version,
                i64::from(4 - beat) * 3,
                8_000_000_000 - i64::from(beat) * 1_000_000_000,
            );
            client
                .execute(
                    "INSERT INTO kiosk_heartbeat_history (kiosk_id, seen_at, status, report)
                     VALUES ($1, now() - make_interval(mins => $2), $3, $4::text::jsonb)",
                    &[&id, &minutes, &status, &rep],
                )
                .await
                .unwrap();
            if beat == 0 {
                client
                    .execute(
                        "INSERT INTO kiosk_heartbeats (kiosk_id, seen_at, status, version, report)
                         VALUES ($1, now() - make_interval(mins => $2), $3, $4, $5::text::jsonb)",
                        &[&id, &minutes, &status, &version, &rep],
                    )
                    .await
                    .unwrap();
            }
        }
    }
    let server = FleetServer::start(&url);
    Setup { pg, kiosks, server }
}

async fn fleet_get(
    s: &Setup,
    path: &str,
    key: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = client().get(s.server.url(path));
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

fn assert_page_headers(h: &reqwest::header::HeaderMap, what: &str) {
    assert_eq!(
        h["content-security-policy"],
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        "{what}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
}

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn fleet_page_and_api_show_every_kiosk_behind_the_key() {
    let mut s = setup().await;
    let c = client();

    // The page: compiled in, with the console's caching and policy.
    let r = c.get(s.server.url("/fleet/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_page_headers(r.headers(), "GET /fleet/");
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let etag = r.headers()["etag"].clone();
    let html = r.text().await.unwrap();
    assert!(html.contains("/fleet/app.js") && !html.contains("<style") && !html.contains("style="));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    let r = c
        .get(s.server.url("/fleet/"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_page_headers(r.headers(), "304");
    for f in [
        "app.js",
        "api.js",
        "chart.js",
        "dom.js",
        "style.css",
        "icon.svg",
    ] {
        let r = c
            .get(s.server.url(&format!("/fleet/{f}")))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{f}");
        assert_page_headers(r.headers(), f);
    }
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(s.server.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()["location"], "/fleet/");

    // Its own OpenAPI document (public), valid, listing exactly what it serves.
    let (st, _, doc) = fleet_get(&s, "/fleet/api/openapi.json", None).await;
    assert_eq!(st, StatusCode::OK);
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert_eq!(
        paths,
        [
            "/",
            "/fleet",
            "/fleet/",
            "/fleet/api/kiosks",
            "/fleet/api/kiosks/{id}",
            "/fleet/api/openapi.json",
            "/fleet/{file}"
        ],
        "{doc:#}"
    );
    let doc_file = s.server.dir.path().join("openapi.json");
    std::fs::write(&doc_file, doc.to_string()).unwrap();
    let validator = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv-tools/bin/openapi-spec-validator");
    assert!(
        validator.exists(),
        "{} is missing: run tools/install-test-deps.sh as root",
        validator.display()
    );
    let out = Command::new(&validator).arg(&doc_file).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for p in paths {
        let concrete = p.replace("{id}", "kiosk-a").replace("{file}", "app.js");
        let r = c
            .get(s.server.url(&concrete))
            .header("x-api-key", FLEET_KEY)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success() || r.status().is_redirection(),
            "{p} (documented) answers {}",
            r.status()
        );
    }

    // No key, a wrong key: 401 in the JSON error shape, with the page's headers.
    let (st, h, body) = fleet_get(&s, "/fleet/api/kiosks", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_error(&body, "unauthorized");
    assert_page_headers(&h, "401");
    let (st, _, body) = fleet_get(&s, "/fleet/api/kiosks", Some("not-the-fleet-key")).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_error(&body, "unauthorized");
    assert!(!body.to_string().contains(FLEET_KEY));

    // The list: four kiosks, the stale one says so, the live ones do not.
    let t = Instant::now();
    let list = loop {
        let (st, h, list) = fleet_get(&s, "/fleet/api/kiosks", Some(FLEET_KEY)).await;
        assert_eq!(st, StatusCode::OK, "{list}");
        assert_eq!(h["cache-control"], "no-store");
        let a = list["kiosks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kiosk_id"] == "kiosk-a")
            .cloned();
        if a.is_some_and(|a| a["captures_today"] == 1) {
            break list;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{list:#}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let by_id = |id: &str| -> Value {
        list["kiosks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kiosk_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} missing: {list:#}"))
    };
    assert_eq!(list["kiosks"].as_array().unwrap().len(), 5, "{list:#}");
    assert_eq!(
        (list["stale"].as_u64(), list["down"].as_u64()),
        (Some(1), Some(1))
    );
    let down = by_id("kiosk-down");
    assert_eq!(
        (down["stale"].as_bool(), down["state"].as_str()),
        (Some(false), Some("down")),
        "{down}"
    );
    let stale = by_id("kiosk-stale");
    assert_eq!(
        (stale["stale"].as_bool(), stale["state"].as_str()),
        (Some(true), Some("stale")),
        "{stale}"
    );
    assert_eq!(stale["status"], "ok");
    assert_eq!(stale["backlog"], 12);
    assert_eq!(stale["disk_free_bytes"], 8_000_000_000i64);
    assert_eq!(stale["sms_credits"], 120);
    assert!(stale["age_s"].as_f64().unwrap() > 89.0 * 60.0);
    for id in ["kiosk-a", "kiosk-b"] {
        let k = by_id(id);
        assert_eq!(
            (k["stale"].as_bool(), k["state"].as_str()),
            (Some(false), Some("ok")),
            "{k}"
        );
        assert_eq!(k["version"], env!("CARGO_PKG_VERSION"));
        assert!(k["disk_free_bytes"].as_i64().unwrap() > 0);
    }
    assert_eq!(by_id("kiosk-b")["captures_today"], 0);
    assert_eq!(by_id(XSS_ID)["version"], XSS_VERSION);

    // A detail: the kiosk and its history, as many points as rows in the database.
    let (st, _, d) = fleet_get(&s, "/fleet/api/kiosks/kiosk-stale", Some(FLEET_KEY)).await;
    assert_eq!(st, StatusCode::OK, "{d}");
    assert_eq!(d["days"], 7);
    let hist = d["history"].as_array().unwrap();
    assert_eq!(hist.len(), 5, "{d:#}");
    assert_eq!(hist[0]["backlog"], 0, "oldest first: {d:#}");
    assert_eq!(hist[4]["backlog"], 12);
    let (_, _, d1) = fleet_get(&s, "/fleet/api/kiosks/kiosk-stale?days=1", Some(FLEET_KEY)).await;
    assert_eq!(
        d1["history"].as_array().unwrap().len(),
        2,
        "the last day only: {d1:#}"
    );
    // At least two beats (3 s apart) before the count, so the chart has a line to draw
    // however loaded the machine is.
    let sql = "SELECT count(*) FROM kiosk_heartbeat_history WHERE kiosk_id = 'kiosk-a'";
    wait_for(&s.pg, sql, |v| v.parse::<i64>().is_ok_and(|n| n >= 2)).await;
    let rows = count(&s.pg, sql);
    let (_, _, da) = fleet_get(&s, "/fleet/api/kiosks/kiosk-a", Some(FLEET_KEY)).await;
    let n = da["history"].as_array().unwrap().len() as i64;
    assert!(n >= rows && n >= 2, "{n} points, {rows} rows before");
    let xss_path = format!("/fleet/api/kiosks/{}", urlencoding(XSS_ID));
    let (st, _, dx) = fleet_get(&s, &xss_path, Some(FLEET_KEY)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(dx["kiosk"]["kiosk_id"], XSS_ID);

    // Refusals.
    let (st, _, body) = fleet_get(&s, "/fleet/api/kiosks/no-such-kiosk", Some(FLEET_KEY)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_error(&body, "unknown_kiosk");
    let (st, _, body) = fleet_get(&s, "/fleet/api/kiosks/no-such-kiosk", None).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "the key first: no probing of ids"
    );
    assert_error(&body, "unauthorized");
    for q in ["days=0", "days=32", "days=x", "other=1"] {
        let (st, _, body) = fleet_get(
            &s,
            &format!("/fleet/api/kiosks/kiosk-a?{q}"),
            Some(FLEET_KEY),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}");
        assert_error(&body, "invalid_query");
    }
    let r = c
        .post(s.server.url("/fleet/api/kiosks"))
        .header("x-api-key", FLEET_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&r.json().await.unwrap(), "method_not_allowed");
    let (st, h, body) = fleet_get(&s, "/fleet/nothing-here.js", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    assert_page_headers(&h, "404");
    let (st, _, body) = fleet_get(&s, "/admin/config", Some(FLEET_KEY)).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "only the fleet's routes");
    assert_error(&body, "not_found");

    // Wrong keys from one address are slowed (behind the web server: X-Real-IP from
    // loopback); another address is not, and the right key never waits.
    let wrong = |ip: &'static str, key: &'static str| {
        let c = c.clone();
        let url = s.server.url("/fleet/api/kiosks");
        async move {
            let t = Instant::now();
            let r = c
                .get(url)
                .header("x-real-ip", ip)
                .header("x-api-key", key)
                .send()
                .await
                .unwrap();
            (r.status(), t.elapsed())
        }
    };
    // Seven failures (3.75 s of delays in all) earn the longest delay, 4 s, so the margins
    // below hold on a loaded machine.
    for _ in 0..7 {
        assert_eq!(
            wrong("203.0.113.9", "wrong-fleet-key").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (st, slow) = wrong("203.0.113.9", "wrong-fleet-key").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(
        slow >= Duration::from_millis(3900),
        "eighth wrong key after {slow:?}"
    );
    let (st, other) = wrong("198.51.100.4", "wrong-fleet-key").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(
        other < Duration::from_millis(3000),
        "another address: {other:?}"
    );
    let (st, right) = wrong("203.0.113.9", FLEET_KEY).await;
    assert_eq!(st, StatusCode::OK);
    let log = s.server.log();
    assert!(
        log.contains("request with a wrong fleet key") && log.contains("203.0.113.9"),
        "wrong keys are logged with their address: {log}"
    );
    assert!(
        !log.contains(FLEET_KEY) && !log.contains("wrong-fleet-key"),
        "no key in the log: {log}"
    );
    assert!(
        right < Duration::from_millis(3000),
        "the right key waited {right:?}"
    );

    // The database goes away: 503 in the JSON shape, and back when it returns.
    s.pg.stop();
    let (st, _, body) = fleet_get(&s, "/fleet/api/kiosks", Some(FLEET_KEY)).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_error(&body, "remote_db_unavailable");
    assert!(!body.to_string().contains(support::pg::PASSWORD));
    s.pg.start();
    let t = Instant::now();
    loop {
        let (st, _, _) = fleet_get(&s, "/fleet/api/kiosks", Some(FLEET_KEY)).await;
        if st == StatusCode::OK {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "fleet serve did not reconnect: {st}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    assert_eq!(
        s.server.stop(),
        Some(0),
        "SIGTERM stops fleet serve cleanly"
    );
    drop(s.kiosks);
}

/// Percent-encodes a path segment (only what the test ids need).
fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn fleet_serve_refuses_to_start_without_what_it_needs() {
    let cwd = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)]| {
        let port = support::daemon::free_port().to_string();
        let listen = format!("127.0.0.1:{port}");
        support::daemon::run_cli(&["fleet", "serve", "--listen", &listen], env, cwd.path())
    };
    let url_down = format!(
        "postgresql://kiosk:secret-pw-123@127.0.0.1:{}/kiosk",
        support::daemon::free_port()
    );
    for (env, code, says) in [
        (
            vec![("REMOTE_DATABASE_URL", url_down.as_str())],
            64,
            "FLEET_API_KEY",
        ),
        (
            vec![
                ("REMOTE_DATABASE_URL", url_down.as_str()),
                ("FLEET_API_KEY", "short"),
            ],
            64,
            "FLEET_API_KEY",
        ),
        (
            vec![("FLEET_API_KEY", FLEET_KEY)],
            64,
            "REMOTE_DATABASE_URL",
        ),
        (
            vec![
                ("FLEET_API_KEY", FLEET_KEY),
                (
                    "REMOTE_DATABASE_URL",
                    "postgresql://kiosk@127.0.0.1:notaport/kiosk",
                ),
            ],
            64,
            "REMOTE_DATABASE_URL",
        ),
        (
            vec![
                ("FLEET_API_KEY", FLEET_KEY),
                ("REMOTE_DATABASE_URL", url_down.as_str()),
            ],
            69,
            "cannot reach the remote database",
        ),
    ] {
        let (got, out, err) = run(&env);
        assert_eq!(got, code, "{env:?}: {out}{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.contains(says), "{env:?}: {err}");
        assert!(
            !err.contains("secret-pw-123") && !err.contains(FLEET_KEY),
            "{err}"
        );
    }
    // A listen address that is not IP:PORT is a usage error.
    let (got, _, err) = support::daemon::run_cli(
        &["fleet", "serve", "--listen", "not-an-address"],
        &[("FLEET_API_KEY", FLEET_KEY)],
        cwd.path(),
    );
    assert_eq!(got, 64, "{err}");
}

/// The browser suite (`tests/browser/fleet.mjs`) in Debian's chromium: sign in, the stale
/// kiosk stands out, a kiosk's detail with one bar / point per history row, HTML in an id
/// or version shown as text, no request to another host, axe-core, screenshots into
/// `target/fleet-screenshots/`.
#[tokio::test]
async fn fleet_page_works_in_chromium() {
    let browser = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run tools/install-test-deps.sh as root"
    );
    assert!(
        browser.join("node_modules/playwright-core").is_dir()
            && browser.join("node_modules/axe-core").is_dir(),
        "tests/browser/node_modules is missing: npm ci --prefix tests/browser"
    );
    let s = setup().await;
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let shots = target.join("fleet-screenshots");
    // Blocking is fine here: the kiosks, PostgreSQL and `fleet serve` are other processes.
    let out = Command::new("node")
        .arg(browser.join("fleet.mjs"))
        .env("FLEET_URL", s.server.url(""))
        .env("FLEET_KEY", FLEET_KEY)
        .env("STALE_KIOSK", "kiosk-stale")
        .env("DOWN_KIOSK", "kiosk-down")
        .env("XSS_ID", XSS_ID)
        .env("XSS_VERSION", XSS_VERSION)
        .env("SCREENSHOT_DIR", &shots)
        .output()
        .expect("run node (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser suite failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for page in ["sign-in", "fleet", "detail"] {
        for w in [1280, 375] {
            let f = shots.join(format!("{page}-{w}.png"));
            assert!(
                f.metadata().map(|m| m.len() > 1000).unwrap_or(false),
                "{}",
                f.display()
            );
        }
    }
    drop(s);
}
