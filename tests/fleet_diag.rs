//! Heartbeats and `selfie-kiosk fleet` against a real PostgreSQL shared by two daemons;
//! `selfie-kiosk diag` with the daemon running and stopped, searched for planted secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::daemon::{free_port, run_cli, Daemon};
use support::images::{b64, jpeg};
use support::pg::PgCluster;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn fleet_json(pg_url: &str, cwd: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["fleet", "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = run_cli(
        &args,
        &[
            ("REMOTE_DATABASE_URL", pg_url),
            ("KIOSK_ID", "staff-laptop"),
            ("KIOSK_DATA_DIR", &cwd.join("nodata").display().to_string()),
        ],
        cwd,
    );
    assert_eq!(code, 0, "fleet failed: {err}");
    serde_json::from_str::<Value>(&out)
        .unwrap_or_else(|e| panic!("fleet --json printed no JSON ({e}): {out}"))
        .as_array()
        .unwrap()
        .clone()
}

fn by_id(rows: &[Value]) -> BTreeMap<String, Value> {
    rows.iter()
        .map(|r| (r["kiosk_id"].as_str().unwrap().to_string(), r.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fleet_lists_fresh_kiosks_then_the_stopped_one_as_stale() {
    let pg = PgCluster::new();
    let url = pg.url();
    let env = |id: &'static str| {
        vec![
            ("KIOSK_ID", id),
            ("REMOTE_DATABASE_URL", url.as_str()),
            ("KIOSK_HEARTBEAT_SECS", "1"),
        ]
    };
    let a = Daemon::start(&env("kiosk-a"));
    let mut b = Daemon::start(&env("kiosk-b"));
    let cwd = tempfile::tempdir().unwrap();

    // Both appear, fresh.
    let t = Instant::now();
    let rows = loop {
        let rows = by_id(&fleet_json(&url, cwd.path(), &[]));
        if rows.len() == 2 && rows.values().all(|r| r["stale"] == false) {
            break rows;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "fleet: {rows:#?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    for id in ["kiosk-a", "kiosk-b"] {
        let r = &rows[id];
        assert_eq!(r["status"], "ok", "{r:#}");
        assert_eq!(r["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(r["backlog"], 0, "{r:#}");
        assert!(r["disk_free_bytes"].as_u64().unwrap() > 0, "{r:#}");
        assert!(r["age_s"].as_f64().unwrap() < 10.0, "{r:#}");
        assert_eq!(r["sms_configured"], false);
        assert_eq!(r["report"]["kiosk_id"], id);
    }

    // The backlog column follows the kiosk's outbox: remote storage is not configured
    // so captures sync at once; post one and it shows up in the counts.
    let r = client()
        .post(a.url("/api/capture"))
        .json(&json!({"image": b64(&jpeg(16, 16, 3))}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // The table names both.
    let (code, table, err) = run_cli(
        &["fleet"],
        &[("REMOTE_DATABASE_URL", &url), ("KIOSK_ID", "staff-laptop")],
        cwd.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        table.contains("KIOSK") && table.contains("LAST SEEN"),
        "{table}"
    );
    assert!(
        table.contains("kiosk-a") && table.contains("kiosk-b"),
        "{table}"
    );
    assert!(!table.contains("STALE ("), "{table}");

    // History: one row per beat, bounded by age (issue 21: `heartbeat_history_days`, 30 by
    // default, replaced the former bound of 1,000 rows per kiosk): 1,501 recent rows stay,
    // 10 rows older than 30 days go at the next beat.
    pg.psql(
        "INSERT INTO kiosk_heartbeat_history (kiosk_id, seen_at, status, report)
         SELECT 'kiosk-a', now() - make_interval(secs => g), 'ok', '{}'::jsonb
         FROM generate_series(100, 1600) g
         UNION ALL
         SELECT 'kiosk-a', now() - make_interval(days => g), 'ok', '{}'::jsonb
         FROM generate_series(31, 40) g",
    );
    let t = Instant::now();
    loop {
        let old: i64 = pg
            .psql(
                "SELECT count(*) FROM kiosk_heartbeat_history
                 WHERE kiosk_id = 'kiosk-a' AND seen_at < now() - interval '30 days'",
            )
            .parse()
            .unwrap();
        if old == 0 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "history not pruned: {old} rows older than 30 days"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let kept: i64 = pg
        .psql(
            "SELECT count(*) FROM kiosk_heartbeat_history
             WHERE kiosk_id = 'kiosk-a' AND seen_at < now() - interval '99 seconds'",
        )
        .parse()
        .unwrap();
    assert_eq!(kept, 1501, "rows within the 30 days are kept");
    let newest = pg.psql(
        "SELECT count(*) FROM kiosk_heartbeat_history
         WHERE kiosk_id = 'kiosk-a' AND seen_at > now() - interval '60 seconds'",
    );
    assert!(
        newest.parse::<i64>().unwrap() >= 2,
        "recent beats kept: {newest}"
    );
    let b_rows: i64 = pg
        .psql("SELECT count(*) FROM kiosk_heartbeat_history WHERE kiosk_id = 'kiosk-b'")
        .parse()
        .unwrap();
    assert!(b_rows >= 1, "the other kiosk's history is untouched");

    // Stop kiosk-b; past --stale-after 3 it is stale, kiosk-a is not.
    b.terminate(Duration::from_secs(15));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let rows = by_id(&fleet_json(&url, cwd.path(), &["--stale-after", "3"]));
    assert_eq!(rows["kiosk-b"]["stale"], true, "{:#}", rows["kiosk-b"]);
    assert_eq!(rows["kiosk-b"]["status"], "stale");
    assert_eq!(rows["kiosk-b"]["reported_status"], "ok");
    assert!(rows["kiosk-b"]["age_s"].as_f64().unwrap() > 3.0);
    assert_eq!(rows["kiosk-a"]["stale"], false, "{:#}", rows["kiosk-a"]);
    assert_eq!(
        rows["kiosk-a"]["report"]["checks"]["local_db"]["captures"],
        1
    );
    let (code, table, _) = run_cli(
        &["fleet", "--stale-after", "3"],
        &[("REMOTE_DATABASE_URL", &url), ("KIOSK_ID", "staff-laptop")],
        cwd.path(),
    );
    assert_eq!(code, 0);
    let b_line = table.lines().find(|l| l.starts_with("kiosk-b")).unwrap();
    assert!(b_line.contains("STALE"), "{table}");
    let a_line = table.lines().find(|l| l.starts_with("kiosk-a")).unwrap();
    assert!(!a_line.contains("STALE"), "{table}");
    drop(a);
}

#[test]
fn fleet_without_a_remote_database_exits_64() {
    let cwd = tempfile::tempdir().unwrap();
    let (code, out, err) = run_cli(&["fleet", "--json"], &[("KIOSK_ID", "x")], cwd.path());
    assert_eq!(code, 64, "{out}{err}");
    assert!(err.contains("REMOTE_DATABASE_URL is not set"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
}

// ---------------------------------------------------------------------------------------
// diag

const PLANTED: &[&str] = &[
    "planted-admin-key-7f3a9c2e51",
    "planted-secret-key-5b8d0e4f77",
    "planted-ovh-app-secret-c0ffee",
    "planted-ovh-consumer-key-beef",
    "planted-ovh-app-key-a11ce",
    "planted-dav-password-93ab",
    // The PostgreSQL role's password (support::pg::PASSWORD) rides in REMOTE_DATABASE_URL.
    support::pg::PASSWORD,
    // The guest's phone number, in any form.
    "+33612345678",
    "0612345678",
    "612345678",
];

fn unpack(tar_gz: &Path, into: &Path) -> Vec<PathBuf> {
    let f = std::fs::File::open(tar_gz).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    ar.unpack(into).unwrap();
    let mut files = Vec::new();
    let mut stack = vec![into.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    files
}

/// Runs `diag --out out` and returns (stdout, unpacked files by name, summary.txt).
fn run_diag(
    env: &[(&str, &str)],
    cwd: &Path,
    out: &Path,
) -> (String, BTreeMap<String, String>, String) {
    let (code, stdout, stderr) = run_cli(&["diag", "--out", &out.display().to_string()], env, cwd);
    // The bundle is written either way; the exit says whether the kiosk is DOWN (2) or
    // not (0), checked against health.json below.
    assert!(code == 0 || code == 2, "diag failed:\n{stdout}\n{stderr}");
    let bundles: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    assert_eq!(bundles.len(), 1, "{bundles:?}");
    let name = bundles[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // selfie-kiosk-diag-<kiosk>-<YYYYmmddTHHMMSSZ>.tar.gz
    let stamp = name
        .strip_prefix("selfie-kiosk-diag-diag-kiosk-")
        .and_then(|s| s.strip_suffix(".tar.gz"))
        .unwrap_or_else(|| panic!("bundle name {name}"));
    assert_eq!(stamp.len(), 16, "{stamp}");
    assert!(
        stamp.ends_with('Z') && stamp.as_bytes()[8] == b'T',
        "{stamp}"
    );
    assert!(stdout.contains(&name), "{stdout}");
    let dir = out.join("unpacked");
    let files = unpack(&bundles[0], &dir);
    let mut by_name = BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        by_name.insert(f.file_name().unwrap().to_string_lossy().into_owned(), text);
    }
    for want in [
        "health.json",
        "config.json",
        "outbox.json",
        "catalog.json",
        "disk.txt",
        "versions.txt",
        "logs.txt",
        "summary.txt",
    ] {
        assert!(
            by_name.contains_key(want),
            "{want} missing: {:?}",
            by_name.keys()
        );
    }
    let health: Value = serde_json::from_str(&by_name["health.json"]).unwrap();
    assert_eq!(
        code == 2,
        health["status"] == "down",
        "exit {code} for status {}",
        health["status"]
    );
    let summary = std::fs::read_to_string(out.join("summary.txt")).unwrap();
    // No planted secret anywhere: every unpacked file, the summary, the file names.
    let mut all: Vec<(String, &str)> = by_name
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str()))
        .collect();
    all.push(("summary.txt (outside)".into(), &summary));
    all.push(("stdout".into(), &stdout));
    for (file, text) in &all {
        for s in PLANTED {
            assert!(!text.contains(s), "{s} found in {file}:\n{text}");
        }
    }
    (stdout, by_name, summary)
}

/// Names, sizes and modification times of everything under `dir`.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let md = e.metadata().unwrap();
            if md.is_dir() {
                stack.push(e.path());
            } else {
                m.insert(e.path(), (md.len(), md.modified().unwrap()));
            }
        }
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn diag_bundle_online_and_offline_without_secrets() {
    let pg = PgCluster::new();
    let pg_url = pg.url();
    let dead = free_port();
    let dav_url = format!("http://kiosk:planted-dav-password-93ab@127.0.0.1:{dead}/uploads/");
    let ovh = format!("http://127.0.0.1:{dead}/1.0");
    let public = format!("http://127.0.0.1:{dead}/uploads/");
    let tmp = tempfile::tempdir().unwrap();
    let env: Vec<(&str, &str)> = vec![
        ("KIOSK_ID", "diag-kiosk"),
        ("ADMIN_API_KEY", PLANTED[0]),
        ("SECRET_KEY", PLANTED[1]),
        ("OVH_APP_SECRET", PLANTED[2]),
        ("OVH_CONSUMER_KEY", PLANTED[3]),
        ("OVH_APP_KEY", PLANTED[4]),
        ("OVH_ENDPOINT", &ovh),
        ("SMS_SERVICE_NAME", "sms-ab12345-1"),
        ("SMS_SENDER", "Selfie"),
        ("PUBLIC_BASE_URL", &public),
        ("REMOTE_DATABASE_URL", &pg_url),
        ("REMOTE_STORAGE_URL", &dav_url),
    ];
    let mut d = Daemon::new_in(tmp.path(), &env);
    d.spawn();
    let c = client();
    let r = c
        .post(d.url("/api/capture"))
        .json(&json!({"image": b64(&jpeg(24, 24, 9))}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c
        .post(d.url("/api/send-sms"))
        .json(&json!({"capture_id": id, "phone": "+33612345678"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    // Let the worker fail against the dead storage, so errors reach the logs.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The CLI sees the same configuration as the daemon.
    let owned_env: Vec<(String, String)> = d
        .env
        .iter()
        .filter(|(k, _)| *k != "KIOSK_LOG")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let cli_env: Vec<(&str, &str)> = owned_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();

    // Daemon running: data from GET /admin/diag.
    let out = tmp.path().join("usb1");
    let (_, files, summary) = run_diag(&cli_env, tmp.path(), &out);
    let health: Value = serde_json::from_str(&files["health.json"]).unwrap();
    assert_eq!(health["kiosk_id"], "diag-kiosk");
    assert_eq!(health["status"], "degraded", "{health:#}");
    assert_eq!(health["checks"]["remote_storage"]["status"], "degraded");
    assert_eq!(health["checks"]["sms"]["configured"], true);
    let catalog: Value = serde_json::from_str(&files["catalog.json"]).unwrap();
    assert_eq!(catalog["captures"], 1, "{catalog:#}");
    assert_eq!(catalog["last_captures"][0]["id"], id.as_str());
    assert!(
        catalog["sms_by_status"]
            .as_object()
            .unwrap()
            .values()
            .any(|n| n == 1),
        "{catalog:#}"
    );
    let outbox: Value = serde_json::from_str(&files["outbox.json"]).unwrap();
    assert!(
        outbox["summary"]["pending"].as_u64().unwrap() >= 1,
        "{outbox:#}"
    );
    assert!(outbox["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|j| j["target"] == id.as_str()));
    let config: Value = serde_json::from_str(&files["config.json"]).unwrap();
    // The view check-config and GET /admin/config show.
    let ro = &config["read_only"];
    assert_eq!(ro["kiosk_id"], "diag-kiosk");
    assert_eq!(ro["remote_database"]["user"], "kiosk", "{config:#}");
    assert_eq!(
        ro["remote_storage"]["url"],
        format!("http://127.0.0.1:{dead}/uploads/")
    );
    // No journald on test machines: the daemon's own recent-log buffer.
    let logs = &files["logs.txt"];
    assert!(
        logs.starts_with("# journald") || logs.starts_with("# no journal available"),
        "{logs}"
    );
    if !logs.starts_with("# journald") {
        assert!(
            logs.contains("listening") && logs.contains("diag-kiosk"),
            "{logs}"
        );
    }
    assert!(files["versions.txt"].contains(env!("CARGO_PKG_VERSION")));
    assert!(files["versions.txt"].contains("kernel:"));
    assert!(
        files["disk.txt"].contains("free of"),
        "{}",
        files["disk.txt"]
    );
    assert!(summary.contains("STATUS: DEGRADED"), "{summary}");
    assert!(summary.contains("daemon: running"), "{summary}");
    assert!(summary.contains("workers: ok (buffer_trim "), "{summary}");
    assert!(summary.contains("remote storage: degraded"), "{summary}");
    assert!(summary.contains("WHAT TO DO"), "{summary}");
    assert_eq!(summary, files["summary.txt"]);

    // Running, but this shell has another admin key: the public /health, the rest offline.
    let other_key: Vec<(&str, &str)> = cli_env
        .iter()
        .map(|&(k, v)| {
            if k == "ADMIN_API_KEY" {
                (k, "not-the-daemons-key-0042")
            } else {
                (k, v)
            }
        })
        .collect();
    let out = tmp.path().join("usb-wrong-key");
    let (_, files, summary) = run_diag(&other_key, tmp.path(), &out);
    assert!(summary.contains("answered /health"), "{summary}");
    assert!(summary.contains("401"), "{summary}");
    assert!(summary.contains("locked"), "{summary}");
    let health: Value = serde_json::from_str(&files["health.json"]).unwrap();
    assert_eq!(
        health["checks"]["remote_storage"]["status"], "degraded",
        "{health:#}"
    );
    let catalog: Value = serde_json::from_str(&files["catalog.json"]).unwrap();
    assert_eq!(
        catalog["captures"], 1,
        "read-only next to the running daemon"
    );
    assert!(!summary.contains("not-the-daemons-key-0042"));

    // Daemon stopped: read offline, touching nothing in the data directory.
    d.terminate(Duration::from_secs(20));
    let before = snapshot(&d.data_dir());
    let out = tmp.path().join("usb2");
    let (_, files, summary) = run_diag(&cli_env, tmp.path(), &out);
    assert_eq!(
        snapshot(&d.data_dir()),
        before,
        "diag changed the data directory"
    );
    let health: Value = serde_json::from_str(&files["health.json"]).unwrap();
    assert_eq!(health["daemon_running"], false, "{health:#}");
    assert_eq!(health["status"], "down");
    assert_eq!(health["checks"]["local_db"]["status"], "ok", "{health:#}");
    assert_eq!(health["checks"]["disk"]["status"], "ok", "{health:#}");
    let catalog: Value = serde_json::from_str(&files["catalog.json"]).unwrap();
    assert_eq!(catalog["captures"], 1, "{catalog:#}");
    let outbox: Value = serde_json::from_str(&files["outbox.json"]).unwrap();
    assert!(
        outbox["summary"]["pending"].as_u64().unwrap() >= 1,
        "{outbox:#}"
    );
    assert!(summary.contains("daemon: NOT ANSWERING"), "{summary}");
    assert!(summary.contains("systemctl"), "{summary}");
    let logs = &files["logs.txt"];
    assert!(
        logs.starts_with("# no logs") || logs.starts_with("# journald"),
        "{logs}"
    );

    // The outbox locked by someone else (a hung daemon): said so, not fatal.
    let lock = std::fs::File::open(d.data_dir().join("outbox").join("db")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let out = tmp.path().join("usb3");
    let (_, files, summary) = run_diag(&cli_env, tmp.path(), &out);
    assert!(summary.contains("locked"), "{summary}");
    let outbox: Value = serde_json::from_str(&files["outbox.json"]).unwrap();
    assert_eq!(outbox["status"], "unknown", "{outbox:#}");
    let catalog: Value = serde_json::from_str(&files["catalog.json"]).unwrap();
    assert_eq!(catalog["captures"], 1);
    drop(lock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_diag_needs_the_key() {
    let d = Daemon::start(&[]);
    let r = client().get(d.url("/admin/diag")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = client()
        .get(d.url("/admin/diag"))
        .header("x-api-key", support::daemon::ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    for k in ["health", "workers", "outbox", "catalog", "config", "logs"] {
        assert!(!v[k].is_null(), "{k}: {v:#}");
    }
    // Every background loop is listed with its state.
    let workers: Vec<&str> = v["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    for w in [
        "cleanup",
        "clock_fix",
        "buffer_trim",
        "heartbeat",
        "remote_probes",
    ] {
        assert!(workers.contains(&w), "{w} missing from {workers:?}");
    }
    assert_eq!(v["health"]["checks"]["workers"]["status"], "ok", "{v:#}");
    let text = v.to_string();
    assert!(
        !text.contains(support::daemon::ADMIN_KEY),
        "the admin key leaked"
    );
}
