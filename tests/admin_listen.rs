#![allow(clippy::disallowed_methods)]
//! `ADMIN_LISTEN`, the staff's listener, against the real binary: the console, `/admin/*`,
//! `/health`, `/metrics` and `/openapi.json` answer there, every guest route is the JSON
//! 404 there (and stores nothing), the API listener still serves everything, requests on
//! it are logged and counted like the API's, a SIGTERM drains it, and a bad value stops
//! start-up naming the variable. Also `console_idle_minutes`, the console's idle sign-out
//! setting, through `/admin/config`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::daemon::{free_port, run_cli, Daemon, ADMIN_KEY};
use support::images::{jpeg, sha256_hex};

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A daemon with `ADMIN_LISTEN` on a free port, and that listener's base URL.
fn start_with_admin_listener(env: &[(&str, &str)]) -> (Daemon, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut all = vec![("ADMIN_LISTEN", addr.as_str())];
    all.extend_from_slice(env);
    let d = Daemon::start(&all);
    (d, format!("http://{addr}"))
}

async fn send(r: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let r = r.send().await.unwrap();
    let (s, h) = (r.status(), r.headers().clone());
    (s, h, r.bytes().await.unwrap().to_vec())
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// `selfie_kiosk_http_requests_total` summed over the samples of `route` in a scrape.
fn requests_counted(scrape: &str, route: &str) -> f64 {
    let needle = format!("route=\"{route}\"");
    scrape
        .lines()
        .filter(|l| l.starts_with("selfie_kiosk_http_requests_total{") && l.contains(&needle))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The log without its colour codes.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
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

async fn post_capture(base: &str, seed: u32) -> (StatusCode, Vec<u8>) {
    let (s, _, b) = send(
        client()
            .post(format!("{base}/api/capture"))
            .header("content-type", "image/jpeg")
            .body(jpeg(64, 48, seed)),
    )
    .await;
    (s, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_console_and_admin_but_never_the_guest_routes() {
    let (d, staff) = start_with_admin_listener(&[]);
    let api = d.url("");
    let c = client();

    // Something to look at: a capture over the API, a background uploaded by staff.
    let (s, b) = post_capture(&api, 1).await;
    assert_eq!(s, StatusCode::CREATED);
    let id = json_of(&b)["id"].as_str().unwrap().to_string();
    let (s, _, b) = send(
        c.post(format!("{staff}/admin/backgrounds?name=Plage"))
            .header("x-api-key", ADMIN_KEY)
            .header("content-type", "image/jpeg")
            .body(jpeg(64, 48, 9)),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
    let bg = json_of(&b)["id"].as_str().unwrap().to_string();

    // The console and what it reads.
    let (s, h, _) = send(c.get(format!("{staff}/"))).await;
    assert_eq!(s, StatusCode::FOUND);
    assert_eq!(h["location"], "/console/");
    let (s, h, body) = send(c.get(format!("{staff}/console/"))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(
        String::from_utf8_lossy(&body).contains("<script"),
        "the page"
    );
    assert!(h.contains_key("content-security-policy"));
    let (s, _, _) = send(c.get(format!("{staff}/console/app.js"))).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = send(c.get(format!("{staff}/docs"))).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, b) = send(c.get(format!("{staff}/openapi.json"))).await;
    assert_eq!(s, StatusCode::OK);
    // The whole API's document: /docs describes the API, wherever it is read.
    let doc = json_of(&b);
    assert!(doc["paths"]["/api/capture"].is_object());
    assert!(doc["paths"]["/admin/stats"].is_object());
    let (s, _, b) = send(c.get(format!("{staff}/health"))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json_of(&b)["kiosk_id"], "test-kiosk");

    // Admin routes, behind the key as on the API listener.
    let (s, _, b) = send(c.get(format!("{staff}/admin/config"))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(&b)["error"]["code"], "unauthorized");
    let admin = |m: Method, path: &str| {
        c.request(m, format!("{staff}{path}"))
            .header("x-api-key", ADMIN_KEY)
    };
    let (s, _, b) = send(admin(Method::GET, "/admin/config")).await;
    assert_eq!(s, StatusCode::OK);
    let cfg = json_of(&b);
    assert_eq!(
        cfg["read_only"]["admin_listen"],
        staff.trim_start_matches("http://")
    );
    let (s, _, b) = send(admin(Method::GET, "/admin/captures?limit=60")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json_of(&b)["items"][0]["id"], id.as_str());
    let (s, _, b) = send(admin(Method::GET, &format!("/admin/captures/{id}"))).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let (s, h, b) = send(admin(
        Method::GET,
        &format!("/admin/captures/{id}/thumbnail"),
    ))
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "image/jpeg");
    assert_eq!(&b[..2], &[0xFF, 0xD8]);
    // The photo itself for staff (the console's detail and download), behind the key.
    let sha = json_of(
        &send(admin(Method::GET, &format!("/admin/captures/{id}")))
            .await
            .2,
    )["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, h, b) = send(admin(Method::GET, &format!("/admin/captures/{id}/photo"))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "image/jpeg");
    assert_eq!(
        h["content-disposition"],
        format!("attachment; filename=\"{id}.jpg\"").as_str()
    );
    assert_eq!(sha256_hex(&b), sha, "the stored bytes");
    let (s, _, _) = send(
        admin(Method::GET, &format!("/admin/captures/{id}/photo"))
            .header("if-none-match", format!("W/\"{sha}\"")),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    let (s, _, b) = send(c.get(format!("{staff}/admin/captures/{id}/photo"))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(&b)["error"]["code"], "unauthorized");
    let (s, _, b) = send(admin(Method::GET, "/admin/captures/nobody-here/photo")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(json_of(&b)["error"]["code"], "not_found");
    let (s, _, b) = send(admin(Method::GET, "/admin/captures/bad%20id/photo")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(json_of(&b)["error"]["code"], "invalid_id");
    let (s, _, b) = send(admin(Method::GET, "/admin/backgrounds")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8_lossy(&b).contains(&bg));
    for path in ["/admin/stats", "/admin/sms", "/admin/export/excel"] {
        let (s, _, _) = send(admin(Method::GET, path)).await;
        assert_eq!(s, StatusCode::OK, "{path}");
    }

    // Every guest route is the JSON 404 here, whatever the method and body.
    let body = jpeg(64, 48, 2);
    let guest: Vec<(Method, String, Option<Vec<u8>>)> = vec![
        (Method::POST, "/api/capture".into(), Some(body.clone())),
        (Method::POST, "/api/capture?id=via-admin".into(), Some(body)),
        (
            Method::POST,
            "/api/capture-batch".into(),
            Some(br#"{"captures": []}"#.to_vec()),
        ),
        (Method::GET, format!("/api/captures/status?ids={id}"), None),
        (
            Method::POST,
            "/api/send-sms".into(),
            Some(format!(r#"{{"capture_id": "{id}", "phone": "0612345678"}}"#).into_bytes()),
        ),
        (
            Method::GET,
            "/api/sms/0123456789abcdef0123456789abcdef".into(),
            None,
        ),
        (Method::GET, format!("/api/download/{id}"), None),
        (Method::GET, format!("/uploads/{id}.jpg"), None),
        (Method::HEAD, format!("/uploads/{id}.jpg"), None),
        (Method::GET, "/api/backgrounds".into(), None),
        (Method::GET, format!("/api/backgrounds/{bg}"), None),
        (
            Method::GET,
            format!("/api/backgrounds/{bg}/thumbnail"),
            None,
        ),
        (Method::GET, format!("/api/captures/{id}/share"), None),
        (Method::GET, format!("/api/captures/{id}/qr.svg"), None),
    ];
    for (m, path, body) in &guest {
        let mut r = c.request(m.clone(), format!("{staff}{path}"));
        if let Some(b) = body {
            r = r
                .header(
                    "content-type",
                    if b.starts_with(b"{") {
                        "application/json"
                    } else {
                        "image/jpeg"
                    },
                )
                .body(b.clone());
        }
        let (s, _, b) = send(r).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m} {path} on ADMIN_LISTEN");
        if *m != Method::HEAD {
            let v = json_of(&b);
            assert_eq!(v["error"]["code"], "not_found", "{m} {path}: {v}");
            assert!(v["error"]["message"].is_string(), "{m} {path}: {v}");
        }
    }
    // Nothing the guest routes would have done was done.
    let n: i64 = d
        .catalog()
        .query_row("SELECT COUNT(*) FROM captures", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1, "a capture was stored through ADMIN_LISTEN");
    let sms: i64 = d
        .catalog()
        .query_row("SELECT COUNT(*) FROM sms", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sms, 0);

    // The API listener still serves all of it: guest routes and the console alike.
    for path in [
        format!("/api/captures/status?ids={id}"),
        format!("/api/download/{id}"),
        format!("/uploads/{id}.jpg"),
        "/api/backgrounds".to_string(),
        format!("/api/backgrounds/{bg}/thumbnail"),
        "/console/".to_string(),
        "/docs".to_string(),
        "/health".to_string(),
        "/metrics".to_string(),
    ] {
        let (s, _, _) = send(c.get(format!("{api}{path}"))).await;
        assert_eq!(s, StatusCode::OK, "{path} on KIOSK_LISTEN");
    }
    let (s, _) = post_capture(&api, 3).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, _) = send(
        c.get(format!("{api}/admin/config"))
            .header("x-api-key", ADMIN_KEY),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_logged_and_counted_like_the_apis() {
    let (d, staff) = start_with_admin_listener(&[]);
    let c = client();
    let scrape = || async {
        let (s, _, b) = send(c.get(format!("{staff}/metrics"))).await;
        assert_eq!(s, StatusCode::OK);
        String::from_utf8(b).unwrap()
    };
    let before = scrape().await;
    for _ in 0..3 {
        let (s, _, _) = send(
            c.get(format!("{staff}/admin/stats"))
                .header("x-api-key", ADMIN_KEY),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, _, _) = send(c.get(format!("{staff}/api/download/nope"))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = send(c.get(format!("{staff}/docs"))).await;
    assert_eq!(s, StatusCode::OK);
    // The access line is written once the answer is sent: give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = scrape().await;
    assert_eq!(
        requests_counted(&after, "/admin/stats") - requests_counted(&before, "/admin/stats"),
        3.0,
        "{after}"
    );
    assert!(
        requests_counted(&after, "unmatched") - requests_counted(&before, "unmatched") >= 1.0,
        "{after}"
    );
    let log = strip_ansi(&d.log_text());
    let line = log
        .lines()
        .find(|l| l.contains(" request ") && l.contains("route=/docs"))
        .unwrap_or_else(|| panic!("no access line for /docs in:\n{log}"));
    assert!(line.contains("status=200"), "{line}");
    assert!(
        log.contains("ADMIN_LISTEN"),
        "the listener is announced at start:\n{log}"
    );
}

/// A SIGTERM lets a request in flight on ADMIN_LISTEN finish (its body arrives after the
/// signal), then the daemon exits 0 and the port is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_staff_listener() {
    let (mut d, staff) = start_with_admin_listener(&[]);
    let addr = staff.trim_start_matches("http://").to_string();
    let image = jpeg(64, 48, 5);
    let (first, rest) = image.split_at(image.len() / 2);
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    write!(
        conn,
        "POST /admin/backgrounds?name=Late HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {ADMIN_KEY}\r\n\
         Content-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        image.len()
    )
    .unwrap();
    conn.write_all(first).unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = d.pid();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    conn.write_all(rest).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let (code, took) = d.terminate(Duration::from_secs(20));
    assert_eq!(code, Some(0), "exit after {took:?}; log:\n{}", d.log_text());
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "ADMIN_LISTEN still accepts after the daemon stopped"
    );
}

#[test]
fn a_bad_admin_listen_stops_start_up_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data = data.to_str().unwrap();
    let api = format!("127.0.0.1:{}", free_port());
    for bad in ["nowhere", "127.0.0.1:99999", "no-such-host.invalid:8100"] {
        let env = [
            ("KIOSK_DATA_DIR", data),
            ("KIOSK_LISTEN", api.as_str()),
            ("ADMIN_LISTEN", bad),
        ];
        let (code, _, err) = run_cli(&["serve"], &env, tmp.path());
        assert_eq!(code, 64, "ADMIN_LISTEN={bad}: {err}");
        assert!(
            err.lines().any(|l| l.contains("ADMIN_LISTEN")),
            "ADMIN_LISTEN={bad}: {err}"
        );
        let (code, out, err) = run_cli(&["check-config"], &env, tmp.path());
        assert_eq!(code, 64, "{out}{err}");
        assert!(
            out.lines()
                .any(|l| l.contains("ADMIN_LISTEN") && l.contains("INVALID")),
            "{out}"
        );
    }
    // A good one is shown by check-config; unset, it says there is none.
    let staff = format!("127.0.0.1:{}", free_port());
    let env = [
        ("KIOSK_DATA_DIR", data),
        ("KIOSK_LISTEN", api.as_str()),
        ("ADMIN_LISTEN", staff.as_str()),
    ];
    let (code, out, _) = run_cli(&["check-config"], &env, tmp.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("ADMIN_LISTEN") && l.contains(&staff)),
        "{out}"
    );
    let (code, out, _) = run_cli(&["check-config"], &env[..2], tmp.path());
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .any(|l| l.contains("ADMIN_LISTEN") && l.contains("unset")),
        "{out}"
    );
    // A port already taken: exit 1, naming the variable.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let env = [
        ("KIOSK_DATA_DIR", data),
        ("KIOSK_LISTEN", api.as_str()),
        ("ADMIN_LISTEN", taken.as_str()),
    ];
    let (code, _, err) = run_cli(&["serve"], &env, tmp.path());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("ADMIN_LISTEN"), "{err}");
}

/// `console_idle_minutes`: 15 by default, 1 to 1440, a refused value is 422 naming the
/// key (nothing stored), a good one sticks across a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_idle_minutes_is_a_checked_run_time_setting() {
    let (mut d, staff) = start_with_admin_listener(&[]);
    let c = client();
    let get = |base: String| {
        let c = c.clone();
        async move {
            let (s, _, b) = send(
                c.get(format!("{base}/admin/config"))
                    .header("x-api-key", ADMIN_KEY),
            )
            .await;
            assert_eq!(s, StatusCode::OK);
            json_of(&b)
        }
    };
    let put = |body: Value| {
        c.put(format!("{staff}/admin/config"))
            .header("x-api-key", ADMIN_KEY)
            .json(&body)
    };
    assert_eq!(
        get(staff.clone()).await["settings"]["console_idle_minutes"],
        15
    );
    for bad in [
        json!(0),
        json!(1441),
        json!(-3),
        json!("soon"),
        json!(2.5),
        json!(null),
    ] {
        let (s, _, b) = send(put(json!({ "console_idle_minutes": bad }))).await;
        let v = json_of(&b);
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
        assert_eq!(v["error"]["code"], "invalid_setting", "{v}");
        assert_eq!(v["error"]["key"], "console_idle_minutes", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("console_idle_minutes"),
            "{v}"
        );
    }
    assert_eq!(
        get(staff.clone()).await["settings"]["console_idle_minutes"],
        15
    );
    let (s, _, b) = send(put(json!({"console_idle_minutes": 5}))).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    assert_eq!(json_of(&b)["settings"]["console_idle_minutes"], 5);
    // The same on the API listener, and after a restart.
    assert_eq!(get(d.url("")).await["settings"]["console_idle_minutes"], 5);
    d.restart();
    assert_eq!(
        get(staff.clone()).await["settings"]["console_idle_minutes"],
        5
    );
    let (s, _, _) = send(put(json!({"console_idle_minutes": 1440}))).await;
    assert_eq!(s, StatusCode::OK);
}
