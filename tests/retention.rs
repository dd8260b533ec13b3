//! Retention, erasure and honest clocks.
//!
//! In-process tests drive the library with a manual clock (the kiosk's clock is an input);
//! end-to-end tests run the real binary against real PostgreSQL and nginx.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use selfie_kiosk::capture::{self, CaptureMeta};
use selfie_kiosk::clock::{ManualClock, BUILD_EPOCH_MS};
use selfie_kiosk::{catalog, cleanup, startup, App, Config};
use serde_json::{json, Value};
use support::daemon::{Daemon, ADMIN_KEY};
use support::images::{b64, jpeg};
use support::nginx::Nginx;
use support::pg::PgCluster;
use support::share::{public_token, remote_files};

const DAY: i64 = 86_400_000;
/// A sane "now" for the manual clock: some days after the build epoch.
const NOW: i64 = BUILD_EPOCH_MS + 40 * DAY;

fn open(dir: &std::path::Path, clock: Arc<ManualClock>) -> Arc<App> {
    selfie_kiosk::install_crypto();
    // Reopened in the same process: sled lets go of the outbox's lock file only once its
    // flusher thread has noticed the drop, so a reopen right after may find it still held.
    let t = Instant::now();
    loop {
        match startup::open(Config::with_data_dir(dir), clock.clone()) {
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && t.elapsed() < Duration::from_secs(10) =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            r => return r.unwrap(),
        }
    }
}

/// As [`open`], with a remote database configured (never reached: no worker runs here).
fn open_with_remote(dir: &std::path::Path, clock: Arc<ManualClock>) -> Arc<App> {
    selfie_kiosk::install_crypto();
    let mut config = Config::with_data_dir(dir);
    config.remote_database_url = Some(selfie_kiosk::config::Secret::new(
        "postgresql://kiosk:unused@127.0.0.1:9/kiosks",
    ));
    startup::open(config, clock).unwrap()
}

async fn ingest(app: &App, seed: u32) -> String {
    let (_, a) = capture::ingest(app, jpeg(32, 32, seed), CaptureMeta::default())
        .await
        .unwrap();
    a.id
}

fn exists(app: &App, id: &str) -> bool {
    let on_disk = app.uploads.path_for(id).exists();
    let row = app
        .catalog
        .write_blocking(|c| catalog::get_capture(c, id))
        .unwrap()
        .is_some();
    assert_eq!(on_disk, row, "file and row disagree for {id}");
    row
}

fn set_retention(app: &App, days: u32) {
    let mut s = app.settings.get();
    s.retention_days = days;
    app.settings.replace(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_is_applied_and_changeable_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let app = open_with_remote(dir.path(), clock.clone());
    let old = ingest(&app, 1).await;
    clock.advance(10 * DAY);
    let fresh = ingest(&app, 2).await;

    let r = cleanup::run(&app).await.unwrap();
    assert_eq!(r.removed, 0);
    assert!(exists(&app, &old) && exists(&app, &fresh));

    set_retention(&app, 5);
    let r = cleanup::run(&app).await.unwrap();
    // No sync worker runs here: the capture was never synced, and retention wins anyway.
    assert_eq!(
        (r.removed, r.removed_unsynced, r.retention_days),
        (1, 1, 5),
        "{r:?}"
    );
    assert!(!exists(&app, &old));
    assert!(exists(&app, &fresh));
    clock.advance(6 * DAY);
    assert_eq!(cleanup::run(&app).await.unwrap().removed, 1);
    assert!(!exists(&app, &fresh));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_remote_nothing_removed_counts_as_never_synced() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let app = open(dir.path(), clock.clone());
    let old = ingest(&app, 1).await;
    clock.advance(10 * DAY);
    set_retention(&app, 5);
    let r = cleanup::run(&app).await.unwrap();
    // Nothing to sync to: no backlog was lost.
    assert_eq!(
        (r.removed, r.removed_unsynced, r.remote_deletions_pending),
        (1, 0, 0),
        "{r:?}"
    );
    assert!(!exists(&app, &old));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_taken_at_1970_is_neither_deleted_at_once_nor_kept_forever() {
    let dir = tempfile::tempdir().unwrap();
    // A board without RTC: the clock starts at 1970.
    let clock = ManualClock::new(3_600_000);
    let app = open(dir.path(), clock.clone());
    let id = ingest(&app, 1).await;
    let row = app
        .catalog
        .write_blocking(|c| catalog::get_capture(c, &id))
        .unwrap()
        .unwrap();
    assert!(row.created_ms < BUILD_EPOCH_MS);
    // Cleanup refuses to judge ages with a clock that says 1970.
    let r = cleanup::run(&app).await.unwrap();
    assert!(r.skipped.is_some() && r.removed == 0);
    assert!(exists(&app, &id));

    // Ten minutes later NTP answers: the wall clock jumps to the real time.
    clock.advance(10 * 60_000);
    clock.set(NOW);
    let r = cleanup::run(&app).await.unwrap();
    assert_eq!((r.clocks_fixed, r.removed), (1, 0));
    let row = app
        .catalog
        .write_blocking(|c| catalog::get_capture(c, &id))
        .unwrap()
        .unwrap();
    assert_eq!(
        row.created_ms,
        NOW - 10 * 60_000,
        "time recomputed from the monotonic clock"
    );

    // Not kept forever: after the retention it goes.
    clock.advance(29 * DAY);
    assert_eq!(cleanup::run(&app).await.unwrap().removed, 0);
    clock.advance(2 * DAY);
    assert_eq!(cleanup::run(&app).await.unwrap().removed, 1);
    assert!(!exists(&app, &id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_from_a_past_boot_is_aged_from_the_first_sane_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(5_000);
    let app = open(dir.path(), clock.clone());
    let id = ingest(&app, 1).await;
    // Power cut; the next boot gets the real time, the old monotonic reading means nothing.
    clock.reboot("boot-2");
    clock.set(NOW);
    assert_eq!(cleanup::fix_clocks(&app).await.unwrap(), 1);
    let row = app
        .catalog
        .write_blocking(|c| catalog::get_capture(c, &id))
        .unwrap()
        .unwrap();
    assert_eq!(row.created_ms, NOW);
    clock.advance(31 * DAY);
    assert_eq!(cleanup::run(&app).await.unwrap().removed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_daily_run_happens_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW - 40 * DAY);
    let app = open(dir.path(), clock.clone());
    let old = ingest(&app, 1).await;
    // The kiosk was off for days: the last cleanup ran long ago.
    clock.set(NOW);
    app.catalog
        .write_blocking(|c| {
            catalog::set_schedule_last_run(c, "cleanup", NOW - 5 * DAY, "removed 0")
        })
        .unwrap();
    drop(app);
    let app = open(dir.path(), clock.clone());
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(selfie_kiosk::scheduler::run(app.clone(), stop.clone()));
    let t = Instant::now();
    while selfie_kiosk::scheduler::snapshot(&app.workers)
        .last_cleanup_removed
        .is_none()
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "start-up cleanup did not run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!exists(&app, &old));
    let snap = selfie_kiosk::scheduler::snapshot(&app.workers);
    assert_eq!(snap.last_cleanup_removed, Some(1));
    assert!(snap.next_cleanup_ms.unwrap() > NOW);
    stop.cancel();
    task.await.unwrap();
}

fn client() -> reqwest::Client {
    selfie_kiosk::install_crypto();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn post(d: &Daemon, seed: u32) -> String {
    let r = client()
        .post(d.url("/api/capture"))
        .json(&json!({"image": b64(&jpeg(40, 30, seed))}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn remote_rows(pg: &PgCluster) -> usize {
    pg.psql("SELECT id FROM kiosk_captures")
        .lines()
        .filter(|l| !l.is_empty())
        .count()
}

/// Makes captures 40 days old (the daemon is stopped; the catalog is the truth).
fn backdate(d: &Daemon, ids: &[String]) {
    let db = d.catalog();
    for id in ids {
        db.execute(
            "UPDATE captures SET created_ms = created_ms - 40 * 86400000 WHERE id = ?1",
            [id],
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_captures_disappear_everywhere_even_with_remotes_down() {
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    let (pg_url, dav) = (pg.url(), nginx.base_url());
    let mut d = Daemon::start(&[
        ("REMOTE_DATABASE_URL", pg_url.as_str()),
        ("REMOTE_STORAGE_URL", dav.as_str()),
    ]);
    let old: Vec<String> = futures_collect(&d, 0..4).await;
    let keep = post(&d, 99).await;
    // A photo and its share page each, named by the capture's public token.
    wait_until("all synced", Duration::from_secs(30), || {
        remote_rows(&pg) == 5 && nginx.stored_files().len() == 10
    })
    .await;
    let tokens: Vec<String> = old.iter().map(|id| public_token(&d, id)).collect();
    let keep_files = remote_files(&public_token(&d, &keep)).to_vec();

    // Case 1: remotes up. Old captures expire; cleanup at start removes them everywhere.
    let (code, took) = d.terminate(Duration::from_secs(10));
    assert_eq!(code, Some(0), "terminate took {took:?}:\n{}", d.log_text());
    backdate(&d, &old[..2]);
    d.spawn();
    wait_until("local removal at start", Duration::from_secs(5), || {
        old[..2]
            .iter()
            .all(|id| !d.uploads_dir().join(format!("{id}.jpg")).exists())
    })
    .await;
    wait_until("remote copies gone", Duration::from_secs(30), || {
        remote_rows(&pg) == 3 && nginx.stored_files().len() == 6
    })
    .await;
    // The pages went with the photos; the others are all still there.
    let stored = nginx.stored_files();
    for t in &tokens[..2] {
        for f in remote_files(t) {
            assert!(!stored.contains(&f), "{f} left: {stored:?}");
        }
    }
    for t in &tokens[2..] {
        for f in remote_files(t) {
            assert!(stored.contains(&f), "{f} deleted: {stored:?}");
        }
    }

    // Case 2: remotes down. Local removal is on time, the remote one when they return.
    let (code, took) = d.terminate(Duration::from_secs(10));
    assert_eq!(code, Some(0), "terminate took {took:?}:\n{}", d.log_text());
    pg.stop();
    nginx.stop();
    backdate(&d, &old[2..]);
    d.spawn();
    let t = Instant::now();
    loop {
        let rows: i64 = d
            .catalog()
            .query_row("SELECT COUNT(*) FROM captures", [], |r| r.get(0))
            .unwrap();
        if rows == 1 {
            break;
        }
        if t.elapsed() > Duration::from_secs(5) {
            let db = d.catalog();
            let mut st = db
                .prepare("SELECT id, created_ms, clock_suspect FROM captures")
                .unwrap();
            let all: Vec<(String, i64, i64)> = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let py = std::process::Command::new("python3").arg("-c").arg(format!("import sqlite3;c=sqlite3.connect('{}');print(c.execute('select count(*) from captures').fetchall(), c.execute('pragma journal_mode').fetchall())", d.data_dir().join("catalog.sqlite3").display())).output().unwrap();
            eprintln!("python sees: {}", String::from_utf8_lossy(&py.stdout));
            let log: Vec<String> = d
                .log_text()
                .lines()
                .filter(|l| {
                    l.contains("cleanup")
                        || l.contains("DEBUG")
                        || l.contains("listening")
                        || l.contains("clock")
                })
                .map(String::from)
                .collect();
            panic!(
                "local cleanup waited for the remotes: {all:?} old={old:?} keep={keep}\n{}",
                log.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The rows go first, in one transaction, then the files: wait for those too.
    let files_gone = |d: &Daemon| {
        old[2..]
            .iter()
            .all(|id| !d.uploads_dir().join(format!("{id}.jpg")).exists())
    };
    let t = Instant::now();
    while !files_gone(&d) && t.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in &old[2..] {
        assert!(
            !d.uploads_dir().join(format!("{id}.jpg")).exists(),
            "{id}.jpg is still there 5 s after its row was removed"
        );
    }
    let h: Value = client()
        .get(d.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        h["checks"]["outbox"]["by_kind"]["remote_delete"]
            .as_u64()
            .unwrap()
            >= 2,
        "{h}"
    );
    pg.start();
    nginx.restart();
    wait_until(
        "remote copies gone after reconnect",
        Duration::from_secs(40),
        || remote_rows(&pg) == 1 && nginx.stored_files() == keep_files,
    )
    .await;
    // The admin route runs it on demand and answers what it removed.
    let r = client()
        .post(d.url("/admin/cleanup"))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["removed"], 0, "{v}");
}

async fn futures_collect(d: &Daemon, seeds: std::ops::Range<u32>) -> Vec<String> {
    let mut out = Vec::new();
    for s in seeds {
        out.push(post(d, s).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn erasure_by_phone_removes_exactly_that_guests_captures() {
    use support::ovh::{OvhTestServer, APP_KEY, APP_SECRET, CONSUMER_KEY, SENDER, SERVICE};
    let ovh = OvhTestServer::start_default();
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    let (pg_url, dav, ovh_url) = (pg.url(), nginx.base_url(), ovh.base_url());
    let d = Daemon::start(&[
        ("REMOTE_DATABASE_URL", pg_url.as_str()),
        ("REMOTE_STORAGE_URL", dav.as_str()),
        ("PUBLIC_BASE_URL", dav.as_str()),
        ("OVH_ENDPOINT", ovh_url.as_str()),
        ("OVH_APP_KEY", APP_KEY),
        ("OVH_APP_SECRET", APP_SECRET),
        ("OVH_CONSUMER_KEY", CONSUMER_KEY),
        ("SMS_SERVICE_NAME", SERVICE),
        ("SMS_SENDER", SENDER),
    ]);
    let ids = futures_collect(&d, 0..4).await;
    let tokens: Vec<String> = ids.iter().map(|id| public_token(&d, id)).collect();
    for (cap, phone) in [
        (&ids[0], "0611223344"),
        (&ids[1], "+33 6 11 22 33 44"),
        (&ids[2], "0799887766"),
    ] {
        let r = client()
            .post(d.url("/api/send-sms"))
            .json(&json!({"capture_id": cap, "phone": phone}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    wait_until("texts sent and synced", Duration::from_secs(30), || {
        ovh.sent_jobs().len() == 3
            && remote_rows(&pg) == 4
            && pg.psql("SELECT count(*) FROM kiosk_sms_log").trim() == "3"
    })
    .await;

    let r = client()
        .post(d.url("/admin/gdpr/erase"))
        .header("x-api-key", ADMIN_KEY)
        .json(&json!({"phone": "06 11 22 33 44"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let mut removed: Vec<String> = v["captures_removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    removed.sort();
    let mut want = vec![ids[0].clone(), ids[1].clone()];
    want.sort();
    assert_eq!(removed, want, "{v}");
    assert_eq!(v["sms_removed"], 2);
    assert!(
        !v.to_string().contains("11223344"),
        "the receipt masks the number: {v}"
    );
    for id in &ids[..2] {
        assert!(!d.uploads_dir().join(format!("{id}.jpg")).exists());
    }
    wait_until("remote erasure", Duration::from_secs(30), || {
        remote_rows(&pg) == 2
            && nginx.stored_files().len() == 4
            && pg.psql("SELECT count(*) FROM kiosk_sms_log").trim() == "1"
    })
    .await;
    let mut left = nginx.stored_files();
    left.sort();
    // The erased guest's photos and pages are gone; the others' both stay.
    let mut want_left: Vec<String> = tokens[2..].iter().flat_map(|t| remote_files(t)).collect();
    want_left.sort();
    assert_eq!(left, want_left);
    // Bad input changes nothing.
    let r = client()
        .post(d.url("/admin/gdpr/erase"))
        .header("x-api-key", ADMIN_KEY)
        .json(&json!({"phone": "garbage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = client()
        .post(d.url("/admin/gdpr/erase"))
        .json(&json!({"phone": "0611223344"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(remote_rows(&pg), 2);
}
