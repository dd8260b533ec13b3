#![allow(clippy::disallowed_methods)]
//! The guest's side (issue 20) against the real binary and a real nginx (WebDAV): public
//! tokens, the share page on the VPS, the share route, QR codes read back by a real
//! decoder (`zbarimg`, Debian's zbar-tools), the SMS link, and every refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::daemon::{Daemon, ADMIN_KEY};
use support::images::{b64, jpeg, sha256_hex};
use support::nginx::Nginx;
use support::ovh::{OvhTestServer, APP_KEY, APP_SECRET, CONSUMER_KEY, SENDER, SERVICE};
use support::share::{public_token, remote_files};

const HOSTILE: &str = "<script>alert(\"x\")</script> & Photo'Cie";
const CONTACT: &str = "dpo@photo.example";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn post_capture(d: &Daemon, id: &str, img: &[u8]) -> Value {
    let r = client()
        .post(d.url("/api/capture"))
        .json(&json!({"id": id, "image": b64(img)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

async fn get(d: &Daemon, path: &str) -> (StatusCode, reqwest::Response) {
    let r = client().get(d.url(path)).send().await.unwrap();
    (r.status(), r)
}

async fn get_json(d: &Daemon, path: &str) -> (StatusCode, Value) {
    let (s, r) = get(d, path).await;
    (s, r.json().await.unwrap())
}

async fn put_config(d: &Daemon, body: Value) -> (StatusCode, Value) {
    let r = client()
        .put(d.url("/admin/config"))
        .header("x-api-key", ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_link_ready(d: &Daemon, id: &str) -> Value {
    let t = Instant::now();
    loop {
        let (s, v) = get_json(d, &format!("/api/captures/status?ids={id}")).await;
        assert_eq!(s, StatusCode::OK);
        if v[id]["link_ready"] == true {
            return v[id].clone();
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "link never ready: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What zbarimg reads in an image file: the decoded texts. A missing zbarimg is a failure
/// that says how to install it.
fn zbar(file: &Path) -> Vec<String> {
    let out = std::process::Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "zbarimg cannot run ({e}): install Debian's zbar-tools \
                 (tools/install-test-deps.sh as root, or apt-get install zbar-tools)"
            )
        });
    assert!(
        out.status.success(),
        "zbarimg found no QR code in {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Every `src="…"` and `href="…"` of a page.
fn links_of(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\"", "content=\"http"] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            let after = &rest[i + attr.len()..];
            let end = after.find('"').unwrap();
            let prefix = if attr.ends_with("http") { "http" } else { "" };
            out.push(format!("{prefix}{}", &after[..end]));
            rest = &after[end..];
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_qr_code_leads_to_a_page_that_shows_the_guests_photo() {
    let nginx = Nginx::start();
    let base = nginx.base_url();
    let d = Daemon::start(&[
        ("REMOTE_STORAGE_URL", base.as_str()),
        ("PUBLIC_BASE_URL", base.as_str()),
    ]);
    let (s, v) = put_config(
        &d,
        json!({"operator_name": HOSTILE, "privacy_contact": CONTACT}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // A client-chosen, guessable id: no public URL may contain it.
    let id = "guest-001";
    let img = jpeg(640, 480, 20);
    let v = post_capture(&d, id, &img).await;
    let token = public_token(&d, id);
    assert_eq!(token.len(), 32);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let page_url = format!("{base}{token}.html");
    let photo_url = format!("{base}{token}.jpg");
    assert_eq!(v["share_url"], page_url.as_str(), "{v}");
    assert!(v["link_ready"].is_boolean(), "{v}");

    let status = wait_link_ready(&d, id).await;
    assert_eq!(status["share_url"], page_url.as_str(), "{status}");
    let (s, share) = get_json(&d, &format!("/api/captures/{id}/share")).await;
    assert_eq!(s, StatusCode::OK, "{share}");
    assert_eq!(share["share_url"], page_url.as_str());
    assert_eq!(share["image_url"], photo_url.as_str());
    assert_eq!(share["link_ready"], true);
    // Retention (30 days by default) from the capture's creation.
    let created = time::OffsetDateTime::parse(
        v["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires = time::OffsetDateTime::parse(
        share["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires - created, time::Duration::days(30), "{share}");
    // The public links never hold the id (the local `/uploads/{id}.jpg` is the app's).
    for url in [
        &v["share_url"],
        &status["share_url"],
        &share["share_url"],
        &share["image_url"],
    ] {
        assert!(!url.as_str().unwrap().contains(id), "{url}");
    }

    // Both QR codes, read by a real decoder, hold the share page's URL.
    let tmp = tempfile::tempdir().unwrap();
    let (s, r) = get(&d, &format!("/api/captures/{id}/qr.png?size=300")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    let png = r.bytes().await.unwrap();
    let dims = image::load_from_memory(&png).unwrap();
    assert!(
        dims.width() <= 300 && dims.width() >= 150,
        "{}",
        dims.width()
    );
    std::fs::write(tmp.path().join("qr.png"), &png).unwrap();
    assert_eq!(zbar(&tmp.path().join("qr.png")), vec![page_url.clone()]);
    let (s, r) = get(&d, &format!("/api/captures/{id}/qr.png")).await;
    assert_eq!(s, StatusCode::OK, "default size");
    let default = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
    assert!(default.width() <= 512 && default.width() > 300);
    let (s, r) = get(&d, &format!("/api/captures/{id}/qr.svg")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    let svg = r.text().await.unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    std::fs::write(tmp.path().join("qr.svg"), &svg).unwrap();
    assert_eq!(zbar(&tmp.path().join("qr.svg")), vec![page_url.clone()]);

    // Followed like a guest's phone does: the page on the VPS's web server.
    let r = client().get(&page_url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/html");
    let page = r.text().await.unwrap();
    assert!(
        page.contains(r#"<meta name="robots" content="noindex">"#),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            r#"<meta property="og:image" content="{photo_url}">"#
        )),
        "{page}"
    );
    assert!(page.contains(r#"<meta property="og:title""#), "{page}");
    assert!(
        page.contains(&format!(r#"<img src="{photo_url}""#)),
        "{page}"
    );
    assert!(
        page.contains(&format!(r#"href="{photo_url}" download>"#)),
        "download button: {page}"
    );
    // The retention end, as the kiosk's local date (UTC until KIOSK_TZ), in French.
    let months = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    let until = format!(
        "Disponible jusqu'au {} {} {}",
        expires.day(),
        months[u8::from(expires.month()) as usize - 1],
        expires.year()
    );
    assert!(page.contains(&until), "{until}: {page}");
    assert!(page.contains(r#"name="viewport" content="width=device-width"#));
    // The hostile operator name is text, not markup; no script at all.
    assert!(
        page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Photo&#39;Cie"),
        "{page}"
    );
    assert!(!page.to_lowercase().contains("<script"), "{page}");
    assert!(page.contains(CONTACT));
    // Nothing from another host, and never the capture id.
    for l in links_of(&page) {
        assert!(l.starts_with(&base), "{l}: another host");
    }
    assert!(!page.contains(id), "{page}");
    // The photo it shows is the capture's bytes.
    let r = client().get(&photo_url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(sha256_hex(&r.bytes().await.unwrap()), sha256_hex(&img));
    // Nothing is published under the id; no page is kept on the kiosk.
    assert_eq!(nginx.stored_files(), remote_files(&token).to_vec());
    let local_pages: Vec<_> = walk(&d.data_dir())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .collect();
    assert!(local_pages.is_empty(), "{local_pages:?}");

    // A restart, a lost outbox and a re-sync keep the same name.
    let mut d = d;
    d.terminate(Duration::from_secs(10));
    std::fs::remove_dir_all(d.data_dir().join("outbox")).unwrap();
    d.catalog()
        .execute(
            "UPDATE captures SET remote_file_ms = NULL, synced_ms = NULL WHERE id = ?1",
            [id],
        )
        .unwrap();
    d.spawn();
    wait_link_ready(&d, id).await;
    assert_eq!(public_token(&d, id), token);
    assert_eq!(nginx.stored_files(), remote_files(&token).to_vec());

    // An admin delete removes the page with the photo, remotely too.
    let r = client()
        .delete(d.url(&format!("/admin/captures/{id}")))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    wait_for(
        "remote page and photo deleted",
        Duration::from_secs(30),
        || nginx.stored_files().is_empty(),
    )
    .await;
    let (s, v) = get_json(&d, &format!("/api/captures/{id}/share")).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("capture_not_found"))
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Every refusal: a clear error and nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_refused_clearly_and_changes_nothing() {
    let nginx = Nginx::start();
    let base = nginx.base_url();
    let d = Daemon::start(&[
        ("REMOTE_STORAGE_URL", base.as_str()),
        ("PUBLIC_BASE_URL", base.as_str()),
    ]);
    let id = "bad-input";
    post_capture(&d, id, &jpeg(64, 64, 3)).await;

    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or_default().to_string();
    for size in ["10", "63", "2049", "99999999999", "abc", "-5", ""] {
        let (s, v) = get_json(&d, &format!("/api/captures/{id}/qr.png?size={size}")).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_size".into()),
            "size={size}: {v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains("64"),
            "{v}"
        );
    }
    for path in ["share", "qr.svg", "qr.png", "qr.png?size=100"] {
        let (s, v) = get_json(&d, &format!("/api/captures/nobody/{path}")).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::NOT_FOUND, "capture_not_found".into()),
            "{path}: {v}"
        );
        let (s, v) = get_json(&d, &format!("/api/captures/a%20b/{path}")).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_id".into()),
            "{path}: {v}"
        );
    }

    let (_, before) = get_json_admin(&d, "/admin/config").await;
    for (body, key, needle) in [
        (
            json!({"share_template": "<p>no photo</p>"}),
            "share_template",
            "{photo_url}",
        ),
        (
            json!({"share_template": "<img src=\"{photo_url}\"><p>{guest_name}</p>"}),
            "share_template",
            "{guest_name}",
        ),
        (json!({"share_template": 42}), "share_template", "string"),
        (json!({"sms_link": "pdf"}), "sms_link", "image"),
        (json!({"operator_name": "a\nb"}), "operator_name", "line"),
        // One bad key refuses the good one beside it.
        (
            json!({"privacy_contact": "ok@example", "share_template": "{nope}{photo_url}"}),
            "share_template",
            "{nope}",
        ),
    ] {
        let (s, v) = put_config(&d, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["error"]["code"], "invalid_setting", "{v}");
        assert_eq!(v["error"]["key"], key, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{v}"
        );
    }
    let (_, after) = get_json_admin(&d, "/admin/config").await;
    assert_eq!(before, after, "a refused change changed something");

    // An operator's own template is used for the next pages (values still escaped).
    let (s, v) = put_config(
        &d,
        json!({"share_template": "<html><body><img src=\"{photo_url}\"><p>{operator}</p><p>{expires}</p></body></html>",
               "operator_name": "A&B"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id2 = "custom-page";
    post_capture(&d, id2, &jpeg(64, 64, 4)).await;
    wait_link_ready(&d, id2).await;
    let token = public_token(&d, id2);
    let page = client()
        .get(format!("{base}{token}.html"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.starts_with(&format!(
            "<html><body><img src=\"{base}{token}.jpg\"><p>A&amp;B</p><p>"
        )),
        "{page}"
    );
}

async fn get_json_admin(d: &Daemon, path: &str) -> (StatusCode, Value) {
    let r = client()
        .get(d.url(path))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

/// Without `PUBLIC_BASE_URL` there is no link: `share_url` is null and the QR routes say
/// why. The page is still uploaded, its photo linked relatively.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_public_base_there_is_no_link_to_share() {
    let nginx = Nginx::start();
    let base = nginx.base_url();
    let d = Daemon::start(&[("REMOTE_STORAGE_URL", base.as_str())]);
    let id = "no-base";
    let v = post_capture(&d, id, &jpeg(64, 64, 5)).await;
    assert!(v["share_url"].is_null() && v["link_ready"] == false, "{v}");
    let (s, v) = get_json(&d, &format!("/api/captures/{id}/share")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["share_url"].is_null() && v["image_url"].is_null(), "{v}");
    assert!(v["expires_at"].is_string(), "{v}");
    for path in ["qr.svg", "qr.png?size=128"] {
        let (s, v) = get_json(&d, &format!("/api/captures/{id}/{path}")).await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert_eq!(v["error"]["code"], "no_public_url", "{v}");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PUBLIC_BASE_URL"));
    }
    let token = public_token(&d, id);
    wait_for("page uploaded", Duration::from_secs(30), || {
        nginx.stored_files() == remote_files(&token).to_vec()
    })
    .await;
    let page = std::fs::read_to_string(nginx.root().join(format!("{token}.html"))).unwrap();
    assert!(
        page.contains(&format!("<img src=\"{token}.jpg\"")),
        "{page}"
    );
}

/// `sms_link`: the page by default (see tests/sms.rs), the photo when set to `image`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sms_links_the_photo_when_asked_to() {
    let ovh = OvhTestServer::start_default();
    let nginx = Nginx::start();
    let (base, ovh_url) = (nginx.base_url(), ovh.base_url());
    let d = Daemon::start(&[
        ("REMOTE_STORAGE_URL", base.as_str()),
        ("PUBLIC_BASE_URL", base.as_str()),
        ("OVH_ENDPOINT", ovh_url.as_str()),
        ("OVH_APP_KEY", APP_KEY),
        ("OVH_APP_SECRET", APP_SECRET),
        ("OVH_CONSUMER_KEY", CONSUMER_KEY),
        ("SMS_SERVICE_NAME", SERVICE),
        ("SMS_SENDER", SENDER),
    ]);
    let (s, v) = put_config(&d, json!({"sms_link": "image"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["settings"]["sms_link"], "image", "{v}");
    let id = "sms-image";
    let img = jpeg(64, 64, 6);
    post_capture(&d, id, &img).await;
    let r = client()
        .post(d.url("/api/send-sms"))
        .json(&json!({"capture_id": id, "phone": "06 12 34 56 78"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    wait_for("one text", Duration::from_secs(30), || {
        ovh.sent_jobs().len() == 1
    })
    .await;
    let token = public_token(&d, id);
    let msg = ovh.sent_jobs()[0].message.clone();
    let link = format!("{base}{token}.jpg");
    assert!(msg.contains(&link) && !msg.contains(id), "{msg}");
    let got = client().get(&link).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(sha256_hex(&got.bytes().await.unwrap()), sha256_hex(&img));
}

/// A capture taken during an event: its page names the event (HTML-escaped), in the title
/// and the body; a capture outside any event has no event on its page.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_page_names_the_event_the_photo_was_taken_at() {
    let nginx = Nginx::start();
    let base = nginx.base_url();
    let d = Daemon::start(&[
        ("REMOTE_STORAGE_URL", base.as_str()),
        ("PUBLIC_BASE_URL", base.as_str()),
    ]);
    post_capture(&d, "before-event", &jpeg(64, 64, 11)).await;
    let r = client()
        .post(d.url("/admin/events"))
        .header("x-api-key", ADMIN_KEY)
        .json(&json!({"name": "Mariage <Dupont> & Cie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    post_capture(&d, "at-event", &jpeg(64, 64, 12)).await;
    for id in ["before-event", "at-event"] {
        wait_link_ready(&d, id).await;
    }
    let page = |id: &str| {
        let token = public_token(&d, id);
        std::fs::read_to_string(nginx.root().join(format!("{token}.html"))).unwrap()
    };
    let at = page("at-event");
    assert!(at.contains("Mariage &lt;Dupont&gt; &amp; Cie"), "{at}");
    assert!(!at.contains("<Dupont>"), "{at}");
    let before = page("before-event");
    assert!(!before.contains("Dupont"), "{before}");
}
