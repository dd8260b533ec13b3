#![allow(clippy::disallowed_methods)]
//! The staff console: its serving (CSP on every answer, ETag and 304, gzip, the `/`
//! redirect) over real HTTP, and the end-to-end browser tests of `tests/browser/` run in
//! Debian's chromium against the real daemon (`node tests/browser/console.mjs`), so they
//! count in `cargo test`. `tools/install-test-deps.sh` installs chromium and the npm
//! packages (`npm ci --prefix tests/browser`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::daemon::{Daemon, ADMIN_KEY};
use support::images::{jpeg, png};
use support::ovh::OvhTestServer;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn assert_secure(r: &reqwest::Response, what: &str) {
    let h = r.headers();
    assert_eq!(h["content-security-policy"], CSP, "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
}

#[tokio::test]
async fn console_is_served_with_its_policy_etag_and_gzip() {
    let d = Daemon::start(&[]);
    let c = client();

    let r = c.get(d.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/console/");
    assert_secure(&r, "GET /");

    let r = c.get(d.url("/console/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_secure(&r, "GET /console/");
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let html = r.text().await.unwrap();
    assert!(html.contains("/console/app.js"), "{html}");
    // No inline script or style: the page passes its own CSP.
    assert!(
        !html.contains("<style") && !html.contains("style="),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");

    let r = c
        .get(d.url("/console/"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_secure(&r, "304");
    assert!(r.bytes().await.unwrap().is_empty());

    // gzip when accepted, a tag of its own, and the same bytes once decompressed.
    let plain = c.get(d.url("/console/app.js")).send().await.unwrap();
    assert_eq!(
        plain.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_tag = plain.headers()["etag"].to_str().unwrap().to_string();
    let plain = plain.bytes().await.unwrap();
    let gz = c
        .get(d.url("/console/app.js"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_ne!(gz.headers()["etag"].to_str().unwrap(), plain_tag);
    let body = gz.bytes().await.unwrap();
    assert!(body.len() < plain.len());
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out).unwrap();
    assert_eq!(out, plain);

    // The reference page is the same document; an unknown file is a JSON 404, with the policy.
    let r = c.get(d.url("/docs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), html);
    let r = c.get(d.url("/console/nope.js")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_secure(&r, "404");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "not_found");
    // The guest and admin routes are untouched: the admin group still wants the key.
    let r = c.get(d.url("/admin/config")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

/// Every asset file of the console is listed in the binary (a file added to the folder but
/// not to `src/api/console.rs` would be a 404 in the browser).
#[tokio::test]
async fn every_asset_file_is_served() {
    let d = Daemon::start(&[]);
    let c = client();
    let dir = repo().join("assets/console");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let r = c
            .get(d.url(&format!("/console/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(
            r.bytes().await.unwrap(),
            std::fs::read(e.path()).unwrap(),
            "{name}"
        );
        n += 1;
    }
    assert!(n >= 10);
}

fn node_ready(browser: &Path) -> Result<(), String> {
    if !Path::new("/usr/bin/chromium").exists() {
        return Err("/usr/bin/chromium is missing (apt-get install chromium)".into());
    }
    if !browser.join("node_modules/playwright-core").is_dir()
        || !browser.join("node_modules/axe-core").is_dir()
    {
        return Err("tests/browser/node_modules is missing (npm ci --prefix tests/browser)".into());
    }
    Ok(())
}

/// The guest whose SMS fails and is retried from the console, and the one whose failed
/// SMS carries an error written like an attack.
const RETRY_PHONE: &str = "06 87 65 43 21";
const RETRY_E164: &str = "+33687654321";
const XSS_E164: &str = "+33698765432";
const XSS: &str = "<img src=x onerror=alert(1)>";

/// Posts a capture and asks for an SMS to `phone` that OVH refuses (the number is set
/// unreachable); returns (capture id, SMS id) once the SMS has failed.
async fn failed_sms(d: &Daemon, seed: u32, phone: &str) -> (String, String) {
    let c = client();
    let r = c
        .post(d.url("/api/capture"))
        .header("content-type", "image/jpeg")
        .body(jpeg(640, 480, seed))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    let capture_id = v["id"].as_str().unwrap().to_string();
    let r = c
        .post(d.url("/api/send-sms"))
        .json(&serde_json::json!({"capture_id": capture_id, "phone": phone}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let v: serde_json::Value = r.json().await.unwrap();
    let sms_id = v["sms_id"].as_str().unwrap().to_string();
    let t = std::time::Instant::now();
    loop {
        let v: serde_json::Value = c
            .get(d.url(&format!("/api/sms/{sms_id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["status"] == "failed" {
            return (capture_id, sms_id);
        }
        assert!(t.elapsed().as_secs() < 30, "the SMS never failed: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The browser suite (`tests/browser/console.mjs`): sign in, gallery (thumbnails, page 2
/// by scrolling, filters, detail, delete through the dialog), Text messages (a failed SMS
/// retried with the number typed again, then sent by the OVH-faithful server), backgrounds,
/// settings, erasure, Excel, charts, XSS, no foreign request, axe-core, screenshots into
/// `target/console-screenshots/`. Missing tools fail the test with the command to run.
#[test]
fn browser_suite_passes_in_chromium() {
    let browser = repo().join("tests/browser");
    if let Err(e) = node_ready(&browser) {
        panic!("{e}: run tools/install-test-deps.sh as root");
    }
    let ovh = OvhTestServer::start_default();
    let env = ovh.daemon_env("http://127.0.0.1:9/uploads/");
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let d = Daemon::start(&pairs);
    // Two failed SMS, made before the page opens: one to retry, one whose recorded error
    // reads like an attack. OVH never answers such an error, so it is written into the
    // catalog row by hand (the page must show whatever text the row holds).
    ovh.set_unreachable(&[RETRY_E164, XSS_E164]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (retry_capture, retry_sms) = rt.block_on(failed_sms(&d, 21, RETRY_PHONE));
    let (_, xss_sms) = rt.block_on(failed_sms(&d, 22, XSS_E164));
    let db = d.catalog();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let n = db
        .execute(
            "UPDATE sms SET last_error = ?1 WHERE id = ?2",
            [format!("OVH said: {XSS} \"'><b>bold</b>"), xss_sms.clone()],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);
    // From now on OVH takes the number: the console's retry goes through.
    ovh.set_unreachable(&[]);

    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("target"));
    let shots = target.join("console-screenshots");
    let tmp = tempfile::tempdir().unwrap();
    let cap = tmp.path().join("capture.jpg");
    let filler = tmp.path().join("filler.jpg");
    let bg = tmp.path().join("background.png");
    std::fs::write(&cap, jpeg(640, 480, 7)).unwrap();
    std::fs::write(&filler, jpeg(160, 120, 8)).unwrap();
    std::fs::write(&bg, png(320, 180, 3)).unwrap();
    let out = Command::new("node")
        .arg(browser.join("console.mjs"))
        .env("CONSOLE_URL", d.url(""))
        .env("ADMIN_KEY", ADMIN_KEY)
        .env("CAPTURE_JPEG", &cap)
        .env("FILLER_JPEG", &filler)
        .env("BACKGROUND_PNG", &bg)
        .env("SCREENSHOT_DIR", &shots)
        .env("RETRY_SMS_ID", &retry_sms)
        .env("RETRY_CAPTURE_ID", &retry_capture)
        .env("RETRY_PHONE", RETRY_PHONE)
        .env("XSS_SMS_ID", &xss_sms)
        .output()
        .expect("run node (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser suite failed ({}):\n{stdout}\n{stderr}\ndaemon log:\n{}",
        out.status,
        d.log_text()
    );
    // The retry reached OVH once, to the guest's number; the other failed SMS stayed put.
    let jobs = ovh.sent_jobs();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].receivers, vec![RETRY_E164.to_string()]);
    assert!(
        !d.log_text().contains(&RETRY_E164[3..]),
        "a clear number reached the log"
    );
    for page in [
        "overview",
        "gallery",
        "gallery-detail",
        "gallery-delete",
        "text-messages",
        "text-messages-retry",
        "statistics",
        "backgrounds",
        "settings",
        "api-reference",
        "events",
        "events-rename",
        "gallery-event",
        "statistics-event",
    ] {
        for w in [1280, 375] {
            let f = shots.join(format!("{page}-{w}.png"));
            assert!(
                f.metadata().map(|m| m.len() > 1000).unwrap_or(false),
                "{}",
                f.display()
            );
        }
    }
}
