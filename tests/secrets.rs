//! No secret and no phone number leaks anywhere: known secrets (admin key, HMAC key, OVH
//! application secret and consumer key, the PostgreSQL and WebDAV passwords, an S3 secret
//! key) and two guests' phone numbers go in; every feature is driven (captures, sync, an
//! SMS sent, an SMS failed, admin configuration, stats, export, health, diagnostics, the
//! CLI's `check-config`, `diag`, `sms-test --dry-run`, `fleet`, bad configurations, wrong
//! remote credentials); then the daemon logs, every HTTP answer, the diagnostics bundles,
//! the catalog, the outbox and the remote PostgreSQL tables are searched for each of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::daemon::{run_cli, Daemon};
use support::images::{b64, jpeg, png};
use support::nginx::{Nginx, NginxOptions};
use support::ovh::{OvhServerConfig, OvhTestServer, SENDER, SERVICE};
use support::pg::PgCluster;
use support::proxy::{Mode, Proxy};

const ADMIN: &str = "AdminKey-9f8e7d6c5b4a-SECRET";
const HMAC: &str = "HmacKey-1a2b3c4d5e6f-SECRET";
const OVH_APP_KEY: &str = "ovhAppKeyPublic01";
const OVH_SECRET: &str = "OvhAppSecret-77aa88bb99cc";
const OVH_CK: &str = "OvhConsumer-55dd66ee77ff";
const PG_USER: &str = "kiosk_s";
const PG_PW: &str = "PgPassw0rd-31415926";
const PG_WRONG_PW: &str = "PgWrongPw-161803398";
const DAV_USER: &str = "davuser";
const DAV_PW: &str = "DavPassw0rd-27182818";
const DAV_WRONG_PW: &str = "DavWrongPw-14142135";
const OVH_WRONG_SECRET: &str = "OvhWrongSecret-4669201";
const S3_SECRET: &str = "S3SecretKey-2502907875";

/// A guest whose SMS is sent, and one whose number OVH refuses (the SMS fails).
const PHONE_SENT: &str = "06 98 76 54 32";
const PHONE_FAILED: &str = "07 55 44 33 22";
const PHONE_FAILED_E164: &str = "+33755443322";
/// Used only with `sms-test --dry-run` and on the daemon with wrong credentials.
const PHONE_CLI: &str = "+33 6 11 22 33 44";

fn needles() -> Vec<(&'static str, String)> {
    let dav_basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{DAV_USER}:{DAV_PW}"));
    let dav_wrong_basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{DAV_USER}:{DAV_WRONG_PW}"));
    let mut v: Vec<(&'static str, String)> = vec![
        ("ADMIN_API_KEY", ADMIN.into()),
        ("SECRET_KEY", HMAC.into()),
        ("OVH_APP_SECRET", OVH_SECRET.into()),
        ("OVH_CONSUMER_KEY", OVH_CK.into()),
        ("PostgreSQL password", PG_PW.into()),
        ("wrong PostgreSQL password", PG_WRONG_PW.into()),
        ("WebDAV password", DAV_PW.into()),
        ("wrong WebDAV password", DAV_WRONG_PW.into()),
        ("WebDAV basic credentials", dav_basic),
        ("wrong WebDAV basic credentials", dav_wrong_basic),
        ("wrong OVH secret", OVH_WRONG_SECRET.into()),
        ("S3 secret key", S3_SECRET.into()),
    ];
    for (label, national) in [
        ("phone (sent)", PHONE_SENT),
        ("phone (failed)", PHONE_FAILED),
        ("phone (CLI)", "06 11 22 33 44"),
    ] {
        let digits: String = national.chars().filter(char::is_ascii_digit).collect();
        let nsn = &digits[1..];
        v.push((label, format!("+33{nsn}")));
        v.push((label, digits.clone()));
        v.push((label, nsn.to_string()));
        v.push((label, national.to_string()));
        v.push((label, format!("+33 {}", &national[1..])));
        // The number's last 8 digits in a row (any other format carries them).
        v.push((label, nsn[1..].to_string()));
    }
    v
}

/// Everything collected for the search: (where, bytes, needle labels allowed there).
#[derive(Default)]
struct Haystack(Vec<(String, Vec<u8>, &'static [&'static str])>);

impl Haystack {
    fn add(&mut self, what: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.0.push((what.into(), bytes.into(), &[]));
    }

    fn add_tree(&mut self, label: &str, root: &Path, skip_jpegs: bool) {
        self.add_tree_allowing(label, root, skip_jpegs, &[]);
    }

    /// Like `add_tree`, where the needles labelled `allowed` may legitimately appear.
    fn add_tree_allowing(
        &mut self,
        label: &str,
        root: &Path,
        skip_jpegs: bool,
        allowed: &'static [&'static str],
    ) {
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_dir() {
                    stack.push(p);
                } else if ft.is_file() {
                    if skip_jpegs && p.extension().is_some_and(|x| x == "jpg") {
                        continue;
                    }
                    if let Ok(b) = std::fs::read(&p) {
                        let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
                        self.0.push((format!("{label}/{rel}"), b, allowed));
                    }
                }
            }
        }
    }

    fn search(&self) -> Vec<String> {
        let mut hits = Vec::new();
        for (what, bytes, allowed) in &self.0 {
            for (label, needle) in needles() {
                if !allowed.contains(&label) && contains(bytes, needle.as_bytes()) {
                    hits.push(format!("{label} ({needle}) in {what}"));
                }
            }
        }
        hits
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Sends a request, records the answer (status line, headers and body) in `hay`.
async fn call(
    hay: &mut Haystack,
    req: reqwest::RequestBuilder,
    what: &str,
) -> (StatusCode, Vec<u8>) {
    let r = req.send().await.unwrap();
    let status = r.status();
    let headers = format!("{:?}", r.headers());
    let body = r.bytes().await.unwrap().to_vec();
    hay.add(format!("HTTP {what} headers"), headers);
    hay.add(format!("HTTP {what} ({status})"), body.clone());
    (status, body)
}

fn json_of(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or(Value::Null)
}

fn unpack(tar_gz: &Path, into: &Path) {
    let f = std::fs::File::open(tar_gz).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(f))
        .unpack(into)
        .unwrap();
}

/// Runs `diag --out` into a fresh directory and adds the unpacked bundle and the summary.
/// `want` is the exit code: 0, or 2 when the kiosk is DOWN (the bundle is written then too).
fn diag_into(hay: &mut Haystack, label: &str, env: &[(&str, &str)], cwd: &Path, want: i32) {
    let out = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run_cli(
        &["diag", "--out", &out.path().display().to_string()],
        env,
        cwd,
    );
    hay.add(format!("{label}: diag stdout"), stdout.clone());
    hay.add(format!("{label}: diag stderr"), stderr.clone());
    assert_eq!(code, want, "diag failed:\n{stdout}\n{stderr}");
    let mut bundles = 0;
    for e in std::fs::read_dir(out.path()).unwrap().flatten() {
        let p = e.path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".tar.gz") {
            hay.add(
                format!("{label}: {name} (compressed)"),
                std::fs::read(&p).unwrap(),
            );
            let into = out.path().join(format!("unpacked-{bundles}"));
            std::fs::create_dir(&into).unwrap();
            unpack(&p, &into);
            hay.add_tree(&format!("{label}: bundle"), &into, false);
            bundles += 1;
        } else if p.is_file() {
            hay.add(format!("{label}: {name}"), std::fs::read(&p).unwrap());
        }
    }
    assert_eq!(bundles, 1, "diag wrote {bundles} bundles");
}

fn xlsx_text(bytes: &[u8]) -> String {
    use calamine::Reader as _;
    let mut wb: calamine::Xlsx<_> =
        calamine::Xlsx::new(std::io::Cursor::new(bytes.to_vec())).expect("the export is an xlsx");
    let mut text = String::new();
    for name in wb.sheet_names().to_vec() {
        let range = wb.worksheet_range(&name).unwrap();
        for row in range.rows() {
            for c in row {
                text.push_str(&c.to_string());
                text.push('\t');
            }
            text.push('\n');
        }
    }
    text
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = Instant::now();
    while !f().await {
        assert!(t.elapsed() < timeout, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn sms_status(d: &Daemon, id: &str) -> Value {
    match client().get(d.url(&format!("/api/sms/{id}"))).send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_and_no_phone_number_anywhere() {
    let t0 = Instant::now();
    let mut hay = Haystack::default();

    // Remotes with credentials of their own.
    let pg = PgCluster::new();
    pg.psql_admin(&format!("CREATE ROLE {PG_USER} LOGIN PASSWORD '{PG_PW}'"));
    pg.psql_admin(&format!("GRANT ALL ON SCHEMA public TO {PG_USER}"));
    let pg_proxy = Proxy::to_port(pg.port());
    let nginx = Nginx::start_with(NginxOptions {
        basic_auth: Some((DAV_USER.into(), DAV_PW.into())),
    });
    let ovh = OvhTestServer::start(OvhServerConfig {
        app_key: OVH_APP_KEY.into(),
        app_secret: OVH_SECRET.into(),
        consumer_key: OVH_CK.into(),
        ..OvhServerConfig::default()
    });
    ovh.set_unreachable(&[PHONE_FAILED_E164]);

    let db_url = format!(
        "postgresql://{PG_USER}:{PG_PW}@127.0.0.1:{}/kiosk",
        pg_proxy.port()
    );
    let dav_url = format!(
        "http://{DAV_USER}:{DAV_PW}@127.0.0.1:{}/uploads/",
        nginx.port()
    );
    let ovh_url = ovh.base_url();
    let public = nginx.base_url();
    let env: Vec<(&str, &str)> = vec![
        ("ADMIN_API_KEY", ADMIN),
        ("SECRET_KEY", HMAC),
        ("REMOTE_DATABASE_URL", db_url.as_str()),
        ("REMOTE_STORAGE_URL", dav_url.as_str()),
        ("PUBLIC_BASE_URL", public.as_str()),
        ("OVH_ENDPOINT", ovh_url.as_str()),
        ("OVH_APP_KEY", OVH_APP_KEY),
        ("OVH_APP_SECRET", OVH_SECRET),
        ("OVH_CONSUMER_KEY", OVH_CK),
        ("SMS_SERVICE_NAME", SERVICE),
        ("SMS_SENDER", SENDER),
        ("OVH_TIMEOUT_SECS", "2"),
        ("KIOSK_HEARTBEAT_SECS", "1"),
        // What a technician sets when something is wrong: the most verbose of our own logs.
        ("KIOSK_LOG", "debug,selfie_kiosk=trace"),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::new_in(tmp.path(), &env);
    // The PostgreSQL side starts unreachable, so connection errors get logged too.
    pg_proxy.set_mode(Mode::Refuse);
    d.spawn();
    let full_env: Vec<(String, String)> =
        d.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let full_env: Vec<(&str, &str)> = full_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let c = client();
    let admin = |rb: reqwest::RequestBuilder| rb.header("x-api-key", ADMIN);

    // Captures: JSON, raw JPEG, raw PNG.
    let mut ids = Vec::new();
    for i in 0..2u32 {
        let (s, b) = call(
            &mut hay,
            c.post(d.url("/api/capture"))
                .json(&json!({"image": b64(&jpeg(48, 32, i))})),
            "POST /api/capture",
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        ids.push(json_of(&b)["id"].as_str().unwrap().to_string());
    }
    let (s, b) = call(
        &mut hay,
        c.post(d.url("/api/capture?id=secret-test-png"))
            .header("content-type", "image/png")
            .body(png(20, 20, 3)),
        "POST /api/capture (png)",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    ids.push(json_of(&b)["id"].as_str().unwrap().to_string());

    // SMS requests while PostgreSQL is unreachable (they wait for the sync).
    let (s, b) = call(
        &mut hay,
        c.post(d.url("/api/send-sms"))
            .json(&json!({"capture_id": ids[0], "phone": PHONE_SENT})),
        "POST /api/send-sms (sent)",
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&b));
    let sms_sent = json_of(&b)["sms_id"].as_str().unwrap().to_string();
    let (s, b) = call(
        &mut hay,
        c.post(d.url("/api/send-sms"))
            .json(&json!({"capture_id": ids[1], "phone": PHONE_FAILED})),
        "POST /api/send-sms (failed)",
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&b));
    let sms_failed = json_of(&b)["sms_id"].as_str().unwrap().to_string();
    // Refusals echo nothing either.
    for (phone, what) in [
        ("06 98 76 54 3", "too short"),
        ("01 98 76 54 32", "landline"),
        ("+33 6 98 76 54 32 1", "too long"),
    ] {
        call(
            &mut hay,
            c.post(d.url("/api/send-sms"))
                .json(&json!({"capture_id": ids[2], "phone": phone})),
            &format!("POST /api/send-sms ({what})"),
        )
        .await;
    }
    // A GDPR erasure request by phone number (of a number that never texted).
    call(
        &mut hay,
        admin(c.post(d.url("/admin/gdpr/erase"))).json(&json!({"phone": "06 11 22 33 44"})),
        "POST /admin/gdpr/erase",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg_proxy.set_mode(Mode::Pass);

    // Everything syncs, one SMS is sent, the other fails.
    let status_url = d.url(&format!("/api/captures/status?ids={}", ids.join(",")));
    wait_for("sync", Duration::from_secs(60), || {
        let (c, url) = (c.clone(), status_url.clone());
        let ids = ids.clone();
        async move {
            let Ok(r) = c.get(&url).send().await else {
                return false;
            };
            let v: Value = r.json().await.unwrap_or(Value::Null);
            ids.iter().all(|id| v[id]["is_synced"] == true)
        }
    })
    .await;
    wait_for("SMS sent", Duration::from_secs(60), || {
        let d = &d;
        let id = sms_sent.clone();
        async move { sms_status(d, &id).await["status"] == "sent" }
    })
    .await;
    wait_for("SMS failed", Duration::from_secs(60), || {
        let d = &d;
        let id = sms_failed.clone();
        async move { sms_status(d, &id).await["status"] == "failed" }
    })
    .await;
    assert_eq!(ovh.sent_jobs().len(), 1);
    assert_eq!(
        ovh.sent_jobs()[0].receivers,
        vec!["+33698765432".to_string()]
    );

    // Every other route that answers something.
    let gets = [
        format!("/api/sms/{sms_sent}"),
        format!("/api/sms/{sms_failed}"),
        format!("/api/captures/status?ids={}", ids.join(",")),
        "/health".to_string(),
        "/api/backgrounds".to_string(),
        format!("/api/download/{}", "no-such-capture"),
    ];
    for path in &gets {
        call(&mut hay, c.get(d.url(path)), &format!("GET {path}")).await;
    }
    let admin_gets = [
        "/admin/config",
        "/admin/stats",
        "/admin/captures?limit=50",
        "/admin/diag",
        "/admin/backgrounds",
    ];
    for path in admin_gets {
        let (s, _) = call(&mut hay, admin(c.get(d.url(path))), &format!("GET {path}")).await;
        assert_eq!(s, StatusCode::OK, "{path}");
    }
    let (s, xlsx) = call(
        &mut hay,
        admin(c.get(d.url("/admin/export/excel"))),
        "GET /admin/export/excel",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    hay.add("Excel export (cells)", xlsx_text(&xlsx));
    let (s, _) = call(
        &mut hay,
        admin(c.put(d.url("/admin/config")))
            .json(&json!({"retention_days": 25, "sms_template": "Votre photo : {link}"})),
        "PUT /admin/config",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    call(
        &mut hay,
        admin(c.put(d.url("/admin/config")))
            .json(&json!({"admin_api_key": "x", "retention_days": -1})),
        "PUT /admin/config (refused)",
    )
    .await;
    call(
        &mut hay,
        admin(c.post(d.url("/admin/sync"))),
        "POST /admin/sync",
    )
    .await;
    call(
        &mut hay,
        admin(c.post(d.url("/admin/cleanup"))),
        "POST /admin/cleanup",
    )
    .await;
    // Wrong keys (the answer must not hint at the right one).
    call(
        &mut hay,
        c.get(d.url("/admin/config"))
            .header("x-api-key", "AdminKey-9f8e7d6c5b4a-SECRE"),
        "GET /admin/config (wrong key)",
    )
    .await;
    // A capture deleted (remote deletion through the outbox).
    let (s, _) = call(
        &mut hay,
        admin(c.delete(d.url(&format!("/admin/captures/{}", ids[2])))),
        "DELETE /admin/captures",
    )
    .await;
    assert!(s.is_success());

    // The technician's CLI while the daemon runs.
    let (code, out, err) = run_cli(&["check-config"], &full_env, tmp.path());
    assert_eq!(code, 0, "{out}{err}");
    hay.add("check-config stdout", out);
    hay.add("check-config stderr", err);
    let (code, out, err) = run_cli(&["sms-test", "--dry-run", PHONE_CLI], &full_env, tmp.path());
    assert_eq!(code, 0, "sms-test --dry-run: {out}{err}");
    hay.add("sms-test --dry-run stdout", out);
    hay.add("sms-test --dry-run stderr", err);
    let (code, out, err) = run_cli(&["fleet", "--json"], &full_env, tmp.path());
    hay.add(format!("fleet --json stdout (exit {code})"), out);
    hay.add("fleet --json stderr", err);
    diag_into(&mut hay, "diag (daemon running)", &full_env, tmp.path(), 0);

    // Bad configurations: each refused with one line that shows no secret.
    let bad: Vec<(&str, String)> = vec![
        ("RETENTION_DAYS", "0".into()),
        (
            "REMOTE_DATABASE_URL",
            format!("mysql://{PG_USER}:{PG_PW}@127.0.0.1/kiosk"),
        ),
        (
            "REMOTE_STORAGE_URL",
            format!("ftp://{DAV_USER}:{DAV_PW}@127.0.0.1/uploads/"),
        ),
        (
            "REMOTE_STORAGE_URL",
            format!("http://{DAV_USER}:{DAV_PW}@/uploads/"),
        ),
        (
            "REMOTE_STORAGE_URL",
            format!("http://{DAV_USER}:{DAV_PW}@127.0.0.1/uploads/?x=1"),
        ),
        (
            "REMOTE_STORAGE_URL",
            format!("s3://AKIAEXAMPLE:{S3_SECRET}@bucket/p?region=bad!region"),
        ),
        (
            "REMOTE_STORAGE_URL",
            format!("s3://AKIAEXAMPLE:{S3_SECRET}@b/p"),
        ),
        ("OVH_ENDPOINT", "ftp://ovh.example".into()),
        ("SMS_SENDER", "A sender name too long".into()),
        ("KIOSK_LISTEN", "not-an-address".into()),
        ("OVH_APP_KEY", String::new()),
        ("ADMIN_API_KEY", "short".into()),
    ];
    for (var, value) in &bad {
        let mut env: Vec<(&str, &str)> =
            full_env.iter().filter(|(k, _)| k != var).copied().collect();
        env.push((var, value.as_str()));
        for cmd in [&["serve"][..], &["check-config"][..]] {
            let (code, out, err) = run_cli(cmd, &env, tmp.path());
            assert_eq!(
                code, 64,
                "{cmd:?} with a bad {var}: exit {code}\n{out}{err}"
            );
            hay.add(format!("{cmd:?} with a bad {var}: stdout"), out);
            hay.add(format!("{cmd:?} with a bad {var}: stderr"), err);
        }
    }

    // A kiosk with wrong remote credentials (errors logged, SMS failing on signatures).
    {
        let wtmp = tempfile::tempdir().unwrap();
        let wrong_db = format!(
            "postgresql://{PG_USER}:{PG_WRONG_PW}@127.0.0.1:{}/kiosk",
            pg.port()
        );
        let wrong_dav = format!(
            "http://{DAV_USER}:{DAV_WRONG_PW}@127.0.0.1:{}/uploads/",
            nginx.port()
        );
        let mut wenv: Vec<(&str, &str)> = env
            .iter()
            .filter(|(k, _)| {
                ![
                    "REMOTE_DATABASE_URL",
                    "REMOTE_STORAGE_URL",
                    "OVH_APP_SECRET",
                ]
                .contains(k)
            })
            .copied()
            .collect();
        wenv.push(("REMOTE_DATABASE_URL", wrong_db.as_str()));
        wenv.push(("REMOTE_STORAGE_URL", wrong_dav.as_str()));
        wenv.push(("OVH_APP_SECRET", OVH_WRONG_SECRET));
        wenv.push(("KIOSK_ID", "wrong-creds-kiosk"));
        let mut w = Daemon::new_in(wtmp.path(), &wenv);
        w.spawn();
        let (s, b) = call(
            &mut hay,
            c.post(w.url("/api/capture"))
                .json(&json!({"image": b64(&jpeg(30, 30, 99))})),
            "wrong creds: POST /api/capture",
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        let id = json_of(&b)["id"].as_str().unwrap().to_string();
        call(
            &mut hay,
            c.post(w.url("/api/send-sms"))
                .json(&json!({"capture_id": id, "phone": PHONE_CLI})),
            "wrong creds: POST /api/send-sms",
        )
        .await;
        let (code, out, err) = run_cli(
            &["sms-test", "--dry-run", PHONE_CLI],
            &w.env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
            wtmp.path(),
        );
        assert_ne!(code, 0, "sms-test with a wrong OVH secret succeeded: {out}");
        hay.add("wrong creds: sms-test stdout", out);
        hay.add("wrong creds: sms-test stderr", err);
        tokio::time::sleep(Duration::from_secs(4)).await;
        call(
            &mut hay,
            c.get(w.url("/health")),
            "wrong creds: GET /health",
        )
        .await;
        call(
            &mut hay,
            admin(c.get(w.url("/admin/diag"))),
            "wrong creds: GET /admin/diag",
        )
        .await;
        let (code, _) = w.terminate(Duration::from_secs(15));
        assert_eq!(code, Some(0));
        let log = w.log_text();
        assert!(
            log.contains("password") || log.contains("authentication") || log.contains("401"),
            "the wrong credentials were never reported:\n{log}"
        );
        hay.add("wrong creds: daemon log", log);
        // Its SMS never left (the photo never reached the VPS): the catalog keeps the
        // number, by design, until the SMS is sent, fails or expires.
        hay.add_tree_allowing(
            "wrong creds: data dir",
            &w.data_dir(),
            true,
            &["phone (CLI)"],
        );
    }

    // A clean stop, then the files at rest and a diagnostics bundle of the stopped daemon.
    let (code, _) = d.terminate(Duration::from_secs(15));
    assert_eq!(code, Some(0));
    diag_into(&mut hay, "diag (daemon stopped)", &full_env, tmp.path(), 2);
    let log = d.log_text();
    assert!(log.contains("stopped"));
    hay.add("daemon log", log);
    let data: PathBuf = d.data_dir();
    let catalog_files: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("catalog"))
        .collect();
    assert!(catalog_files.contains(&"catalog.sqlite3".to_string()));
    hay.add_tree("data dir", &data, true);
    // The catalog's rows as text too (a value could be stored encoded).
    {
        let db = rusqlite::Connection::open(data.join("catalog.sqlite3")).unwrap();
        let tables: Vec<String> = db
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for t in tables {
            let mut st = db.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
            let n = st.column_count();
            let rows: Vec<String> = st
                .query_map([], |r| {
                    let mut s = String::new();
                    for i in 0..n {
                        let v: rusqlite::types::Value = r.get(i)?;
                        s.push_str(&format!("{v:?}|"));
                    }
                    Ok(s)
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            hay.add(format!("catalog table {t}"), rows.join("\n"));
        }
    }
    // The remote tables, every row as JSON.
    let tables =
        pg.psql_admin("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
    let mut remote_rows = 0;
    for t in tables.lines().filter(|l| !l.is_empty()) {
        let rows = pg.psql_admin(&format!("SELECT row_to_json(x)::text FROM \"{t}\" x"));
        remote_rows += rows.lines().count();
        hay.add(format!("PostgreSQL table {t}"), rows);
    }
    assert!(
        tables.contains("kiosk_captures") && tables.contains("kiosk_sms_log"),
        "{tables}"
    );
    // What reached the WebDAV server is only images; its access log must not carry creds.
    hay.add("nginx access log", nginx.access_log());

    // Positive control: the search does find a number where it must be (the text OVH got).
    let mut control = Haystack::default();
    control.add("OVH job body", ovh.sent_jobs()[0].raw_body.clone());
    assert!(
        control
            .search()
            .iter()
            .any(|h| h.starts_with("phone (sent)")),
        "the search cannot even find the number in the SMS sent to it"
    );
    let hits = hay.search();
    let total: usize = hay.0.iter().map(|(_, b, _)| b.len()).sum();
    eprintln!(
        "secrets: searched {} artifacts ({total} bytes, {remote_rows} remote rows) for {} \
         needles in {:?}; {} hits",
        hay.0.len(),
        needles().len(),
        t0.elapsed(),
        hits.len()
    );
    assert!(
        hits.is_empty(),
        "secrets or phone numbers found:\n  {}",
        hits.join("\n  ")
    );
}
