//! Chaos: the whole daemon attacked at once. Client tasks post captures (JSON and raw,
//! server and client ids) and ask for SMS, while PostgreSQL, the WebDAV server and the OVH
//! API flap behind fault-injecting proxies, and the real binary is SIGKILLed at random
//! moments 30+ times and restarted each time. Then the remotes come back for good and,
//! once everything has drained, the books must balance:
//!
//! - every capture that got a 201 is on disk, in PostgreSQL exactly once and on the WebDAV
//!   server, all with the same sha256;
//! - nothing extra remotely: every remote row and file has a local row with the same sha256
//!   (a capture whose 201 was lost in a kill may exist — complete and consistent);
//! - every local row comes from a capture that was posted;
//! - no SMS sent twice: OVH tags unique, one job at most per requested number, exactly one
//!   per SMS reported sent, none for an SMS reported failed;
//! - no orphan files, `.incoming` empty, the catalog's integrity check passes.
//!
//! Runs in about two minutes on two cores in a debug build; the figures are printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::daemon::{Daemon, ADMIN_KEY};
use support::images::{b64, jpeg, png, sha256_hex};
use support::nginx::Nginx;
use support::ovh::{OvhTestServer, APP_KEY, APP_SECRET, CONSUMER_KEY, SENDER, SERVICE};
use support::pg::PgCluster;
use support::proxy::{Mode, Proxy};

/// SIGKILLs during the chaos phase.
const KILLS: u32 = 32;
const CLIENTS: u32 = 4;

/// A small xorshift generator; the seed is printed so a run can be replayed.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

fn client(timeout: Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(timeout).build().unwrap()
}

/// What the clients saw.
#[derive(Default)]
struct Ledger {
    /// Acknowledged captures (201 or 200): id → sha256 of the stored JPEG.
    acked: HashMap<String, String>,
    /// sha256 of every image whose post got no answer (it may or may not be stored),
    /// and of the JPEG a PNG becomes is unknown then: PNG posts are only made with ids.
    unanswered_shas: HashSet<String>,
    /// Client-chosen ids whose post got no answer, with their bytes (retried later).
    unanswered_ids: Vec<(String, Vec<u8>, bool)>,
    /// SMS requests answered 202/200: sms_id → (phone E.164, capture id).
    sms_acked: HashMap<String, (String, String)>,
    /// Phones of SMS requests that got no answer.
    sms_unanswered: HashSet<String>,
    capture_statuses: BTreeMap<u16, u64>,
    sms_statuses: BTreeMap<u16, u64>,
    capture_errors: u64,
    sms_errors: u64,
    /// Retries of unanswered client-id posts and what they got.
    retries: BTreeMap<u16, u64>,
}

/// One client: captures in a loop, an SMS request after some of them.
async fn client_loop(
    task: u32,
    base: String,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    phone_seq: Arc<AtomicU64>,
    seed: u64,
) {
    let c = client(Duration::from_secs(10));
    let mut rng = Rng::new(seed);
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        // Retry an unanswered client-id post first: same id, same bytes → 201 or 200.
        let retry = {
            let mut l = ledger.lock().unwrap();
            let i = l
                .unanswered_ids
                .iter()
                .position(|(id, _, _)| id.starts_with(&format!("t{task}-")));
            i.map(|i| l.unanswered_ids.remove(i))
        };
        let (id, bytes, is_png, is_retry) = match retry {
            Some((id, b, p)) => (Some(id), b, p, true),
            None => {
                n += 1;
                let seed = task * 1_000_000 + n;
                let with_id = rng.chance(40);
                let is_png = with_id && rng.chance(25);
                let bytes = if is_png {
                    png(24, 18, seed)
                } else {
                    jpeg(40 + (n % 7) * 8, 30, seed)
                };
                (
                    with_id.then(|| format!("t{task}-{n}")),
                    bytes,
                    is_png,
                    false,
                )
            }
        };
        let raw = rng.chance(50);
        let url = match (&id, raw) {
            (Some(id), true) => format!("{base}/api/capture?id={id}"),
            _ => format!("{base}/api/capture"),
        };
        let req = if raw {
            c.post(&url)
                .header(
                    "content-type",
                    if is_png { "image/png" } else { "image/jpeg" },
                )
                .body(bytes.clone())
        } else {
            let mut body = json!({"image": b64(&bytes)});
            if let Some(id) = &id {
                body["id"] = json!(id);
            }
            c.post(&url).json(&body)
        };
        let answer = match req.send().await {
            Ok(r) => {
                let s = r.status();
                match r.json::<Value>().await {
                    Ok(v) => Some((s, v)),
                    Err(_) => None,
                }
            }
            Err(_) => None,
        };
        let mut acked_id = None;
        {
            let mut l = ledger.lock().unwrap();
            match &answer {
                Some((s, v)) => {
                    *l.capture_statuses.entry(s.as_u16()).or_default() += 1;
                    if is_retry {
                        *l.retries.entry(s.as_u16()).or_default() += 1;
                    }
                    if s.is_success() {
                        let got_id = v["id"].as_str().unwrap().to_string();
                        let sha = v["sha256"].as_str().unwrap().to_string();
                        if !is_png {
                            assert_eq!(sha, sha256_hex(&bytes), "stored bytes differ");
                        }
                        if let Some(id) = &id {
                            assert_eq!(&got_id, id);
                        }
                        l.acked.insert(got_id.clone(), sha);
                        acked_id = Some(got_id);
                    } else if s.is_server_error() {
                        // 503 while the daemon starts or stops is possible; keep the bytes
                        // as maybe-stored.
                        l.unanswered_shas.insert(sha256_hex(&bytes));
                        if let Some(id) = &id {
                            l.unanswered_ids.push((id.clone(), bytes.clone(), is_png));
                        }
                    } else {
                        panic!("capture {id:?}: {s} {v}");
                    }
                }
                None => {
                    l.capture_errors += 1;
                    l.unanswered_shas.insert(sha256_hex(&bytes));
                    if let Some(id) = &id {
                        l.unanswered_ids.push((id.clone(), bytes.clone(), is_png));
                    }
                }
            }
        }
        if answer.is_none() {
            tokio::time::sleep(Duration::from_millis(80)).await;
            continue;
        }
        // An SMS for about a third of the captures, each to a number of its own.
        if let Some(capture_id) = acked_id.filter(|_| rng.chance(35)) {
            let k = phone_seq.fetch_add(1, Ordering::SeqCst);
            let e164 = format!("+3361234{k:04}");
            let typed = if k.is_multiple_of(2) {
                e164.clone()
            } else {
                format!("06 12 34 {:02} {:02}", k / 100, k % 100)
            };
            let r = c
                .post(format!("{base}/api/send-sms"))
                .json(&json!({"capture_id": capture_id, "phone": typed}))
                .send()
                .await;
            let answer = match r {
                Ok(r) => {
                    let s = r.status();
                    r.json::<Value>().await.ok().map(|v| (s, v))
                }
                Err(_) => None,
            };
            let mut l = ledger.lock().unwrap();
            match answer {
                Some((s, v)) => {
                    *l.sms_statuses.entry(s.as_u16()).or_default() += 1;
                    if s == StatusCode::ACCEPTED || s == StatusCode::OK {
                        let sms_id = v["sms_id"].as_str().unwrap().to_string();
                        assert!(
                            l.sms_acked
                                .insert(sms_id.clone(), (e164.clone(), capture_id))
                                .is_none(),
                            "sms id {sms_id} handed out twice"
                        );
                    } else if s.is_server_error() {
                        l.sms_unanswered.insert(e164);
                    } else {
                        panic!("send-sms: {s} {v}");
                    }
                }
                None => {
                    l.sms_errors += 1;
                    l.sms_unanswered.insert(e164);
                }
            }
        }
    }
}

/// Breaks the remotes at random until `stop`.
async fn flapper(
    proxies: Vec<(&'static str, Arc<Proxy>)>,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> u64 {
    let mut rng = Rng::new(seed);
    let mut changes = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(rng.ms(250, 1500)).await;
        if rng.chance(20) {
            for (_, p) in &proxies {
                let p = p.clone();
                tokio::task::spawn_blocking(move || p.set_mode(Mode::Pass))
                    .await
                    .unwrap();
            }
            changes += 1;
            continue;
        }
        let (_, p) = &proxies[rng.below(proxies.len() as u64) as usize];
        let mode = match rng.below(100) {
            0..=44 => Mode::Pass,
            45..=59 => Mode::Refuse,
            60..=69 => Mode::Stall,
            70..=89 => Mode::Drop,
            _ => Mode::DropAfter(100 + rng.below(6000) as usize),
        };
        let p = p.clone();
        let cut = rng.chance(15);
        tokio::task::spawn_blocking(move || {
            p.set_mode(mode);
            if cut {
                p.cut_all();
            }
        })
        .await
        .unwrap();
        changes += 1;
    }
    changes
}

fn catalog_rows(d: &Daemon) -> HashMap<String, (String, String, i64)> {
    let db = d.catalog();
    let mut st = db
        .prepare("SELECT id, sha256, source_sha256, file_missing FROM captures")
        .unwrap();
    st.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// (unsynced captures, SMS not final), straight from the catalog.
fn backlog(d: &Daemon) -> (i64, i64) {
    let db = d.catalog();
    let unsynced: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM captures WHERE synced_ms IS NULL AND file_missing = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let sms: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM sms WHERE status NOT IN ('sent', 'failed', 'expired')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    (unsynced, sms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_kills_and_flapping_remotes_lose_and_duplicate_nothing() {
    let t0 = Instant::now();
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("chaos seed {seed} (CHAOS_SEED={seed} to replay the same choices)");
    let mut rng = Rng::new(seed);

    let pg = PgCluster::new();
    let nginx = Nginx::start();
    let ovh = OvhTestServer::start_default();
    ovh.set_credits(1_000_000.0);
    let pg_proxy = Arc::new(Proxy::to_port(pg.port()));
    let dav_proxy = Arc::new(Proxy::to_port(nginx.port()));
    let ovh_proxy = Arc::new(Proxy::start(ovh.addr()));

    let db_url = pg.url_with_port(pg_proxy.port());
    let dav_url = nginx.base_url_with_port(dav_proxy.port());
    let ovh_url = format!("http://127.0.0.1:{}/1.0", ovh_proxy.port());
    let public = nginx.base_url();
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::new_in(
        tmp.path(),
        &[
            ("REMOTE_DATABASE_URL", db_url.as_str()),
            ("REMOTE_STORAGE_URL", dav_url.as_str()),
            ("PUBLIC_BASE_URL", public.as_str()),
            ("OVH_ENDPOINT", ovh_url.as_str()),
            ("OVH_APP_KEY", APP_KEY),
            ("OVH_APP_SECRET", APP_SECRET),
            ("OVH_CONSUMER_KEY", CONSUMER_KEY),
            ("SMS_SERVICE_NAME", SERVICE),
            ("SMS_SENDER", SENDER),
            ("OVH_TIMEOUT_SECS", "2"),
            ("KIOSK_HEARTBEAT_SECS", "5"),
            ("KIOSK_LOG", "info"),
        ],
    );
    d.spawn();
    let base = format!("http://127.0.0.1:{}", d.port);
    let admin = client(Duration::from_secs(30));
    let r = admin
        .put(d.url("/admin/config"))
        .header("x-api-key", ADMIN_KEY)
        .json(&json!({"sms_per_phone_per_hour": 100, "sms_per_capture": 10, "sms_per_hour": 100000, "sms_per_day": 100000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());

    // Chaos: clients + flapping remotes + SIGKILLs.
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let phone_seq = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for task in 0..CLIENTS {
        clients.push(tokio::spawn(client_loop(
            task,
            base.clone(),
            ledger.clone(),
            stop.clone(),
            phone_seq.clone(),
            rng.next(),
        )));
    }
    let flap = tokio::spawn(flapper(
        vec![
            ("postgresql", pg_proxy.clone()),
            ("webdav", dav_proxy.clone()),
            ("ovh", ovh_proxy.clone()),
        ],
        stop.clone(),
        rng.next(),
    ));
    let chaos_t = Instant::now();
    let mut kill_rng = Rng::new(rng.next());
    let (d, restarts) = tokio::task::spawn_blocking(move || {
        let mut restarts = Vec::new();
        for _ in 0..KILLS {
            // Mostly in the thick of it, sometimes right after start-up (reconciliation,
            // outbox rebuild, the first sync round).
            let wait = if kill_rng.chance(20) {
                kill_rng.ms(0, 150)
            } else {
                kill_rng.ms(400, 2200)
            };
            std::thread::sleep(wait);
            d.kill9();
            if kill_rng.chance(30) {
                std::thread::sleep(kill_rng.ms(0, 300));
            }
            let t = Instant::now();
            d.spawn();
            restarts.push(t.elapsed());
        }
        (d, restarts)
    })
    .await
    .unwrap();
    let chaos_time = chaos_t.elapsed();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let flaps = flap.await.unwrap();
    let mut d = d;

    // Remotes back for good. Unanswered client-id posts are retried once more.
    for p in [&pg_proxy, &dav_proxy, &ovh_proxy] {
        p.set_mode(Mode::Pass);
    }
    let leftovers: Vec<(String, Vec<u8>, bool)> =
        std::mem::take(&mut ledger.lock().unwrap().unanswered_ids);
    let c = client(Duration::from_secs(30));
    for (id, bytes, is_png) in leftovers {
        let r = c
            .post(d.url(&format!("/api/capture?id={id}")))
            .header(
                "content-type",
                if is_png { "image/png" } else { "image/jpeg" },
            )
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        let s = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(
            s == StatusCode::CREATED || s == StatusCode::OK,
            "retry of {id}: {s} {v}"
        );
        let mut l = ledger.lock().unwrap();
        *l.retries.entry(s.as_u16()).or_default() += 1;
        l.acked
            .insert(id, v["sha256"].as_str().unwrap().to_string());
    }

    // Drain, passively first (the daemon must notice by itself that the remotes are back).
    let drain_t = Instant::now();
    let mut expedited = false;
    let drained_after = loop {
        let (unsynced, sms) = backlog(&d);
        if unsynced == 0 && sms == 0 {
            break drain_t.elapsed();
        }
        if !expedited && drain_t.elapsed() > Duration::from_secs(60) {
            eprintln!(
                "not drained after 60 s ({unsynced} captures unsynced, {sms} SMS not final): \
                 POST /admin/sync"
            );
            let r = c
                .post(d.url("/admin/sync"))
                .header("x-api-key", ADMIN_KEY)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
            expedited = true;
        }
        assert!(
            drain_t.elapsed() < Duration::from_secs(150),
            "not drained after {:?}: {unsynced} captures unsynced, {sms} SMS not final\n{}",
            drain_t.elapsed(),
            tail(&d.log_text(), 40)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // A clean stop after all that, then the books.
    let (code, stop_took) = d.terminate(Duration::from_secs(20));
    assert_eq!(
        code,
        Some(0),
        "clean stop after the chaos:\n{}",
        tail(&d.log_text(), 30)
    );
    d.spawn();
    let l = std::mem::take(&mut *ledger.lock().unwrap());
    let rows = catalog_rows(&d);

    // Local: integrity, files == rows, whole files, empty .incoming.
    let db = d.catalog();
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let mut files: Vec<String> = std::fs::read_dir(d.uploads_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".incoming")
        .collect();
    files.sort();
    let mut expected: Vec<String> = rows.keys().map(|id| format!("{id}.jpg")).collect();
    expected.sort();
    assert_eq!(files, expected, "uploads files and catalog rows disagree");
    let incoming = std::fs::read_dir(d.uploads_dir().join(".incoming"))
        .unwrap()
        .count();
    assert_eq!(incoming, 0, ".incoming not empty");
    for (id, (sha, _, missing)) in &rows {
        assert_eq!(*missing, 0, "{id} marked missing");
        let b = std::fs::read(d.uploads_dir().join(format!("{id}.jpg"))).unwrap();
        assert_eq!(&sha256_hex(&b), sha, "{id} damaged on disk");
    }

    // Every acknowledged capture is here, synced, with its sha.
    for (id, sha) in &l.acked {
        let row = rows
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged capture {id} lost"));
        assert_eq!(&row.0, sha, "{id}: local sha");
    }
    let ids: Vec<String> = rows.keys().cloned().collect();
    for chunk in ids.chunks(400) {
        let v: Value = c
            .get(d.url(&format!("/api/captures/status?ids={}", chunk.join(","))))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for id in chunk {
            assert_eq!(v[id]["exists"], true, "{id}");
            assert_eq!(v[id]["is_synced"], true, "{id} not synced");
        }
    }
    // Every local row comes from a post: acknowledged, or unanswered with the same bytes.
    let mut unacked_local = 0;
    for (id, (_, source_sha, _)) in &rows {
        if !l.acked.contains_key(id) {
            unacked_local += 1;
            assert!(
                l.unanswered_shas.contains(source_sha),
                "{id} in the catalog but never posted (source sha {source_sha})"
            );
        }
    }

    // Remote rows: each id once, each with the local sha; every local row there.
    let remote =
        pg.psql("SELECT id || ' ' || sha256 FROM kiosk_captures WHERE kiosk_id = 'test-kiosk'");
    let mut remote_rows: HashMap<String, String> = HashMap::new();
    for line in remote.lines().filter(|l| !l.is_empty()) {
        let (id, sha) = line.split_once(' ').unwrap();
        assert!(
            remote_rows
                .insert(id.to_string(), sha.to_string())
                .is_none(),
            "{id} twice in PostgreSQL"
        );
        let local = rows
            .get(id)
            .unwrap_or_else(|| panic!("{id} in PostgreSQL but not in the catalog"));
        assert_eq!(&local.0, sha, "{id}: PostgreSQL sha");
    }
    for id in rows.keys() {
        assert!(remote_rows.contains_key(id), "{id} missing from PostgreSQL");
    }
    // Remote files: the same set, the same bytes, each photo named by its capture's public
    // token and with its share page beside it (one name each, however many re-syncs).
    let token_of: HashMap<String, String> = db
        .prepare("SELECT id, public_token FROM captures")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let id_of: HashMap<&str, &str> = token_of
        .iter()
        .map(|(id, t)| (t.as_str(), id.as_str()))
        .collect();
    let stored = nginx.stored_files();
    for f in &stored {
        let (token, page) = match (f.strip_suffix(".jpg"), f.strip_suffix(".html")) {
            (Some(t), _) => (t, false),
            (_, Some(t)) => (t, true),
            _ => panic!("unexpected file on the WebDAV server: {f}"),
        };
        let id = id_of
            .get(token)
            .unwrap_or_else(|| panic!("{f} on the WebDAV server but no such token in the catalog"));
        let local = rows
            .get(*id)
            .unwrap_or_else(|| panic!("{f} on the WebDAV server but not in the catalog"));
        let b = std::fs::read(nginx.root().join(f)).unwrap();
        if page {
            let html = String::from_utf8_lossy(&b);
            assert!(
                html.contains(&format!("{token}.jpg")),
                "{f}: not its photo's page"
            );
        } else {
            assert_eq!(sha256_hex(&b), local.0, "{f} on the WebDAV server differs");
        }
    }
    assert_eq!(
        stored.len(),
        2 * rows.len(),
        "files on the WebDAV server (a photo and a page each)"
    );

    // SMS: final everywhere; never twice. Problems are collected so one run reports all.
    let mut problems: Vec<String> = Vec::new();
    let jobs = ovh.sent_jobs();
    let mut tags = HashSet::new();
    let mut phones_texted: HashMap<String, usize> = HashMap::new();
    let requested: HashSet<&String> = l
        .sms_acked
        .values()
        .map(|(p, _)| p)
        .chain(l.sms_unanswered.iter())
        .collect();
    for j in &jobs {
        let tag = j.tag.clone().unwrap_or_default();
        if !tags.insert(tag.clone()) {
            problems.push(format!("tag {tag} sent twice"));
        }
        for r in &j.receivers {
            *phones_texted.entry(r.clone()).or_default() += 1;
            if !requested.contains(r) {
                problems.push(format!("{r} texted but never requested"));
            }
        }
    }
    for (p, n) in &phones_texted {
        if *n != 1 {
            problems.push(format!("{p} texted {n} times"));
        }
    }
    let mut sms_final: BTreeMap<String, u64> = BTreeMap::new();
    let sms_rows: Vec<(String, String)> = db
        .prepare("SELECT id, status FROM sms")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let sms_status: HashMap<String, String> = sms_rows.into_iter().collect();
    let log_text = d.log_text();
    for (sms_id, (phone, capture_id)) in &l.sms_acked {
        let Some(status) = sms_status.get(sms_id) else {
            problems.push(format!("acknowledged SMS {sms_id} lost"));
            continue;
        };
        *sms_final.entry(status.clone()).or_default() += 1;
        let matching: Vec<_> = jobs
            .iter()
            .filter(|j| {
                j.tag
                    .as_deref()
                    .is_some_and(|t| t.contains(sms_id.as_str()))
            })
            .collect();
        let details = || {
            let row: String = db
                .query_row(
                    "SELECT status || ' attempts=' || attempts || ' last_error=' || \
                     IFNULL(last_error, '') FROM sms WHERE id = ?1",
                    [sms_id],
                    |r| r.get(0),
                )
                .unwrap();
            let log: Vec<&str> = log_text
                .lines()
                .filter(|l| l.contains(sms_id.as_str()))
                .collect();
            format!("row: {row}\n    log:\n    {}", log.join("\n    "))
        };
        match status.as_str() {
            "sent" => {
                if matching.len() != 1 {
                    problems.push(format!(
                        "SMS {sms_id} sent but {} OVH jobs\n    {}",
                        matching.len(),
                        details()
                    ));
                } else if matching[0].receivers != vec![phone.clone()]
                    || !token_of
                        .get(capture_id)
                        .is_some_and(|t| matching[0].message.contains(&format!("{t}.html")))
                {
                    problems.push(format!("SMS {sms_id}: wrong receiver or link"));
                }
            }
            "failed" | "expired" => {
                if !matching.is_empty() {
                    problems.push(format!(
                        "SMS {sms_id} reported {status} but OVH accepted it ({:?}): the guest \
                         got a text the kiosk says {status}\n    {}",
                        matching[0].state,
                        details()
                    ));
                }
            }
            other => problems.push(format!(
                "SMS {sms_id} still {other} after the drain\n    {}",
                details()
            )),
        }
    }
    let unanswered_sent = l
        .sms_unanswered
        .iter()
        .filter(|p| phones_texted.contains_key(*p))
        .count();

    let restarts_max = restarts.iter().max().copied().unwrap_or_default();
    let restarts_avg = restarts.iter().sum::<Duration>() / restarts.len().max(1) as u32;
    eprintln!(
        "chaos: {KILLS} SIGKILLs in {chaos_time:?} (restart avg {restarts_avg:?}, max \
         {restarts_max:?}), {flaps} remote mode changes (proxy cuts: pg {}, dav {}, ovh {}); \
         captures: {} acknowledged, {} posts unanswered, {unacked_local} stored without an \
         answer, statuses {:?}, retries of unanswered ids {:?}; SMS: {} acknowledged {:?}, \
         {} unanswered ({unanswered_sent} of them sent anyway), request statuses {:?}, OVH \
         jobs {}; drained in {drained_after:?}{}; clean stop in {stop_took:?}; {} local rows, \
         {} remote rows, {} remote files; total {:?}",
        pg_proxy.cuts(),
        dav_proxy.cuts(),
        ovh_proxy.cuts(),
        l.acked.len(),
        l.capture_errors,
        l.capture_statuses,
        l.retries,
        l.sms_acked.len(),
        sms_final,
        l.sms_unanswered.len(),
        l.sms_statuses,
        jobs.len(),
        if expedited {
            " (after POST /admin/sync)"
        } else {
            ""
        },
        rows.len(),
        remote_rows.len(),
        stored.len(),
        t0.elapsed()
    );
    assert!(
        problems.is_empty(),
        "{} SMS problems:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    assert!(l.acked.len() >= 50, "too few captures for a meaningful run");
    assert!(!l.sms_acked.is_empty(), "no SMS request got through");
    assert!(!d.log_text().contains("panicked"), "the daemon panicked");
    assert!(
        !expedited,
        "the backlog did not drain by itself within 60 s of the remotes coming back"
    );
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
