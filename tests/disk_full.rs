//! A full disk: uploads (and, in the second test, the whole data directory) on a small
//! file system of their own. Captures fill it up to the reserve and then get 507; a junk
//! file fills it to the brim; a disk that fills up *while* a capture is being written does
//! not stop it (its blocks were reserved when it began), and where blocks cannot be
//! reserved (ext2) makes that write fail half-way (ENOSPC) — still a 507, with nothing
//! half-written; freeing space brings captures back.
//!
//! The small file system is a tmpfs (`mount -t tmpfs -o size=…`), or a loop-mounted ext4
//! image when tmpfs cannot be mounted; the half-way failure runs on a loop-mounted ext2
//! image. Mounting needs root (CI runs as root); without it the test fails with a message
//! saying so — it never skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::daemon::{Daemon, ADMIN_KEY};
use support::images::{jpeg, sha256_hex};

const MIB: u64 = 1024 * 1024;

/// A small file system mounted for the test; unmounted on drop.
struct SmallFs {
    mnt: PathBuf,
    kind: String,
    _tmp: tempfile::TempDir,
}

fn run(cmd: &mut Command) -> Result<(), String> {
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "{:?}: {} {}",
            cmd,
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{cmd:?}: {e}")),
    }
}

impl SmallFs {
    fn mount(size_mib: u64) -> SmallFs {
        let tmp = tempfile::tempdir().unwrap();
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let tmpfs = run(Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size_mib}m,mode=0755"))
            .arg("tmpfs")
            .arg(&mnt));
        if tmpfs.is_ok() {
            return SmallFs {
                mnt,
                kind: format!("tmpfs {size_mib} MiB"),
                _tmp: tmp,
            };
        }
        match Self::loop_mount(tmp, mnt, "ext4", size_mib) {
            Ok(fs) => fs,
            Err(e2) => panic!(
                "the disk-full tests need a small file system of their own and could mount \
                 neither a tmpfs ({}) nor a loop ext4 image ({e2}); run them as root (CI does) \
                 or in a container allowed to mount (CAP_SYS_ADMIN)",
                tmpfs.unwrap_err()
            ),
        }
    }

    /// A tmpfs mounted with `size=0`: unlimited, and `statfs` reports zero blocks, as some
    /// FUSE file systems do.
    fn mount_sizeless() -> SmallFs {
        let tmp = tempfile::tempdir().unwrap();
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=0,mode=0755", "tmpfs"])
            .arg(&mnt))
        .unwrap_or_else(|e| {
            panic!(
                "a file system without a size needs a tmpfs mounted with size=0 ({e}); run as \
                 root (CI does) or in a container allowed to mount (CAP_SYS_ADMIN)"
            )
        });
        SmallFs {
            mnt,
            kind: "tmpfs size=0".into(),
            _tmp: tmp,
        }
    }

    /// A loop-mounted image of file system `kind` (`mkfs.{kind}`).
    fn loop_mount(
        tmp: tempfile::TempDir,
        mnt: PathBuf,
        kind: &str,
        size_mib: u64,
    ) -> Result<SmallFs, String> {
        let img = tmp.path().join("fs.img");
        std::fs::File::create(&img)
            .and_then(|f| f.set_len(size_mib * MIB))
            .map_err(|e| e.to_string())?;
        run(Command::new(format!("mkfs.{kind}"))
            .args(["-F", "-q", "-m", "0"])
            .arg(&img))?;
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&mnt))?;
        Ok(SmallFs {
            mnt,
            kind: format!("loop {kind} {size_mib} MiB"),
            _tmp: tmp,
        })
    }

    /// A small ext2 file system: no `fallocate`, so a capture's blocks are not reserved
    /// when it begins, and its writes can still fail half-way.
    fn mount_ext2(size_mib: u64) -> SmallFs {
        let tmp = tempfile::tempdir().unwrap();
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        Self::loop_mount(tmp, mnt, "ext2", size_mib).unwrap_or_else(|e| {
            panic!(
                "could not mount a loop ext2 image ({e}); run as root (CI does) or in a \
                 container allowed to mount (CAP_SYS_ADMIN)"
            )
        })
    }

    fn path(&self) -> &Path {
        &self.mnt
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        for _ in 0..20 {
            if run(Command::new("umount").arg(&self.mnt)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = run(Command::new("umount").arg("-l").arg(&self.mnt));
    }
}

fn free_bytes(p: &Path) -> u64 {
    let st = rustix::fs::statvfs(p).unwrap();
    st.f_bavail * st.f_frsize
}

/// A valid JPEG of about `size` bytes: a real small JPEG with comment segments of random
/// bytes (incompressible, and the structure walk accepts them).
fn big_jpeg(size: usize, seed: u32) -> Vec<u8> {
    let base = jpeg(64, 48, seed);
    let mut out = Vec::with_capacity(size + 70_000);
    out.extend_from_slice(&base[..2]);
    let mut x = u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() + base.len() < size {
        let n = (size - out.len() - base.len()).clamp(16, 65_000);
        out.extend_from_slice(&[0xFF, 0xFE]);
        out.extend_from_slice(&((n + 2) as u16).to_be_bytes());
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.push(x as u8);
        }
    }
    out.extend_from_slice(&base[2..]);
    out
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn post_raw(d: &Daemon, body: Vec<u8>) -> (StatusCode, Value) {
    let r = client()
        .post(d.url("/api/capture"))
        .header("content-type", "image/jpeg")
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn set_reserve(d: &Daemon, v: Value) {
    let r = client()
        .put(d.url("/admin/config"))
        .header("x-api-key", ADMIN_KEY)
        .json(&json!({ "kiosk_disk_reserve": v }))
        .send()
        .await
        .unwrap();
    let s = r.status();
    assert_eq!(s, StatusCode::OK, "{}", r.text().await.unwrap_or_default());
}

/// Files and rows agree, every file is whole, nothing is left in `.incoming`, the catalog
/// passes its integrity check.
fn assert_consistent(d: &Daemon, what: &str) -> usize {
    let db = d.catalog();
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok", "{what}: catalog integrity");
    let mut st = db
        .prepare("SELECT id, sha256, file_missing FROM captures ORDER BY id")
        .unwrap();
    let rows: Vec<(String, String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(d.uploads_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".incoming")
        .collect();
    files.sort();
    let expected: Vec<String> = rows.iter().map(|(id, _, _)| format!("{id}.jpg")).collect();
    assert_eq!(files, expected, "{what}: files and rows disagree");
    for (id, sha, missing) in &rows {
        assert_eq!(*missing, 0, "{what}: {id} marked missing");
        let bytes = std::fs::read(d.uploads_dir().join(format!("{id}.jpg"))).unwrap();
        assert_eq!(&sha256_hex(&bytes), sha, "{what}: {id} half-written");
    }
    let incoming: Vec<String> = std::fs::read_dir(d.uploads_dir().join(".incoming"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        incoming.is_empty(),
        "{what}: left in .incoming: {incoming:?}"
    );
    rows.len()
}

/// Writes junk into `path` until the file system says ENOSPC; returns the bytes written.
fn fill_to_the_brim(path: &Path) -> u64 {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let chunk = vec![0x5Au8; 64 * 1024];
    let mut n = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("junk write: {e}"),
        }
    }
    // Small tail writes to use the last blocks too.
    loop {
        match f.write(&chunk[..512]) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(_) => break,
        }
    }
    n
}

/// Junk that leaves exactly `leave` bytes free (rounded to the block size).
fn fill_leaving(path: &Path, dir: &Path, leave: u64) {
    let free = free_bytes(dir);
    assert!(
        free >= leave,
        "only {free} bytes free, wanted to leave {leave}"
    );
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let chunk = vec![0xA5u8; 64 * 1024];
    let mut todo = free - leave;
    while todo > 0 {
        let k = todo.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..k]).unwrap();
        todo -= k as u64;
    }
    f.sync_all().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_disk_full_gives_507_and_never_half_writes() {
    let t0 = Instant::now();
    let fs = SmallFs::mount(16);
    let uploads = fs.path().join("uploads");
    let uploads_s = uploads.display().to_string();
    let mut d = Daemon::start(&[
        ("UPLOADS_DIR", uploads_s.as_str()),
        ("KIOSK_DISK_RESERVE", "1MB"),
        ("KIOSK_LOG", "info"),
    ]);
    assert_eq!(d.uploads_dir(), uploads);

    // 1. Captures until the reserve is reached.
    let mut stored = 0u32;
    let mut seed = 0u32;
    let refusal = loop {
        seed += 1;
        let (s, v) = post_raw(&d, big_jpeg(700 * 1024, seed)).await;
        match s {
            StatusCode::CREATED => stored += 1,
            StatusCode::INSUFFICIENT_STORAGE => break v,
            other => panic!("capture {seed}: {other} {v}"),
        }
        assert!(seed < 60, "the disk never filled up");
    };
    assert_eq!(
        refusal["error"]["code"], "insufficient_storage",
        "{refusal}"
    );
    let free_at_refusal = free_bytes(fs.path());
    assert!(
        free_at_refusal >= MIB,
        "the reserve was eaten into: {free_at_refusal} bytes free"
    );
    assert!(stored >= 10, "only {stored} captures fitted");
    let health: Value = client()
        .get(d.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let disk_status = health["checks"]["disk"]["status"].clone();
    assert_ne!(disk_status, "ok", "{health}");
    assert_consistent(&d, "after the reserve was reached");
    // Smaller captures still fit above the reserve... until they don't either.
    let mut small_ok = 0;
    loop {
        seed += 1;
        let (s, _) = post_raw(&d, big_jpeg(64 * 1024, seed)).await;
        if s != StatusCode::CREATED {
            assert_eq!(s, StatusCode::INSUFFICIENT_STORAGE);
            break;
        }
        small_ok += 1;
        assert!(small_ok < 100);
    }
    assert!(free_bytes(fs.path()) >= MIB);

    // 2. A junk file fills the file system to the brim: 507, nothing written.
    let junk = fs.path().join("junk.bin");
    let junk_bytes = fill_to_the_brim(&junk);
    assert_eq!(free_bytes(fs.path()), 0);
    for i in 0..3 {
        seed += 1;
        let (s, v) = post_raw(&d, big_jpeg(10 * 1024 + i, seed)).await;
        assert_eq!(s, StatusCode::INSUFFICIENT_STORAGE, "{v}");
        assert_eq!(v["error"]["code"], "insufficient_storage");
    }
    let rows_full = assert_consistent(&d, "with the disk full to the brim");

    // 3. The disk fills up while a capture is being written (another process grabs the
    //    space). Reserve 0 so the pre-check passes. The capture's blocks were reserved
    //    when it began (`fallocate`): it is stored whole, and the grabber gets what is
    //    left. (Where they cannot be reserved, the write fails half-way: see
    //    `a_disk_filled_mid_write_without_reserved_blocks_gives_507`.)
    set_reserve(&d, json!(0)).await;
    std::fs::remove_file(&junk).unwrap();
    let race = race(&d, &fs, &mut seed, 6, 16 * 1024).await;
    assert_eq!(race.midway, 0, "{race:?}");
    assert!(
        race.grabbed_and_won >= 1,
        "the disk never filled during a write: {race:?}"
    );

    // 4. Space is back: captures work again, and survive a restart.
    make_room(&d, &fs, 4 * MIB).await;
    set_reserve(&d, json!("1MB")).await;
    let mut back = Vec::new();
    for i in 0..3 {
        seed += 1;
        let img = big_jpeg(200 * 1024 + i, seed);
        let (s, v) = post_raw(&d, img.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        back.push((v["id"].as_str().unwrap().to_string(), sha256_hex(&img)));
    }
    d.kill9();
    d.spawn();
    let rows = assert_consistent(&d, "after the restart");
    for (id, sha) in &back {
        let r = client()
            .get(d.url(&format!("/api/download/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(&sha256_hex(&r.bytes().await.unwrap()), sha);
    }
    assert!(!d.log_text().contains("panicked"));
    eprintln!(
        "disk full on {}: {stored} captures of 700 KiB + {small_ok} of 64 KiB before 507 \
         ({free_at_refusal} bytes left, disk check {disk_status}); {junk_bytes} bytes of junk \
         to the brim → 507 ×3 with {rows_full} rows intact; {rows} rows at the end; {:?}",
        fs.kind,
        t0.elapsed()
    );
    drop(d);
    drop(fs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_data_dir_on_a_full_disk_survives_and_restarts() {
    let t0 = Instant::now();
    let fs = SmallFs::mount(16);
    let tmp = tempfile::tempdir().unwrap();
    let data = fs.path().join("data");
    let data_s = data.display().to_string();
    let mut d = Daemon::new_in(
        tmp.path(),
        &[
            ("KIOSK_DATA_DIR", data_s.as_str()),
            ("KIOSK_DISK_RESERVE", "1MB"),
            ("KIOSK_LOG", "info"),
        ],
    );
    d.spawn();
    let mut acked = Vec::new();
    for i in 0..4u32 {
        let img = big_jpeg(300 * 1024, 1000 + i);
        let (s, v) = post_raw(&d, img.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        acked.push((v["id"].as_str().unwrap().to_string(), sha256_hex(&img)));
    }
    let junk = fs.path().join("junk.bin");
    let junk_bytes = fill_to_the_brim(&junk);

    // Everything that writes, with the catalog and the outbox on the full disk too.
    let c = client();
    let (s, v) = post_raw(&d, big_jpeg(20 * 1024, 2000)).await;
    assert_eq!(s, StatusCode::INSUFFICIENT_STORAGE, "{v}");
    let health = c.get(d.url("/health")).send().await.unwrap();
    let health_status = health.status();
    let health: Value = health.json().await.unwrap();
    assert_eq!(health_status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health["checks"]["disk"]["status"], "down", "{health}");
    let put = c
        .put(d.url("/admin/config"))
        .header("x-api-key", ADMIN_KEY)
        .json(&json!({"retention_days": 12, "sms_template": "Photo : {link} (disque plein)"}))
        .send()
        .await
        .unwrap();
    let put_status = put.status();
    let put_body: Value = put.json().await.unwrap_or(Value::Null);
    assert!(
        put_status == StatusCode::OK
            || (put_status.is_server_error() && put_body["error"]["code"].is_string()),
        "PUT /admin/config on a full disk: {put_status} {put_body}"
    );
    assert!(
        d.is_running(),
        "the daemon died on a full disk:\n{}",
        d.log_text()
    );

    // A power cut while the disk is full: the daemon must come back (to say so in /health,
    // and to run the retention cleanup that may free the space).
    d.kill9();
    let t_restart = Instant::now();
    let restarted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.spawn()));
    let restart = t_restart.elapsed();
    let restart_failure = match &restarted {
        Ok(()) => None,
        Err(_) => Some(
            d.log_text()
                .lines()
                .rev()
                .find(|l| l.contains("cannot start") || l.contains("ERROR"))
                .unwrap_or("(no error logged)")
                .to_string(),
        ),
    };
    if restarted.is_ok() {
        let health = c.get(d.url("/health")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
        for (id, sha) in &acked {
            let r = c
                .get(d.url(&format!("/api/download/{id}")))
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::OK,
                "{id} after a restart on a full disk"
            );
            assert_eq!(&sha256_hex(&r.bytes().await.unwrap()), sha);
        }
    }

    // Space freed: captures work again; a clean restart keeps everything.
    std::fs::remove_file(&junk).unwrap();
    if restarted.is_err() {
        d.kill9();
        d.spawn();
    }
    let img = big_jpeg(300 * 1024, 3000);
    let (s, v) = post_raw(&d, img.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    acked.push((v["id"].as_str().unwrap().to_string(), sha256_hex(&img)));
    let (code, _) = d.terminate(Duration::from_secs(15));
    assert_eq!(code, Some(0));
    d.spawn();
    let rows = assert_consistent(&d, "data dir on the small disk");
    assert_eq!(rows, acked.len());
    let settings: Value = c
        .get(d.url("/admin/config"))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let aside: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("corrupt"))
        .collect();
    eprintln!(
        "data dir on a full {}: {junk_bytes} bytes of junk; capture 507, /health {health_status}, \
         PUT /admin/config {put_status} {put_body} (retention now {}); restart on the full disk \
         in {restart:?}: {}; moved aside: {aside:?}; {rows} captures intact; {:?}",
        fs.kind,
        settings["settings"]["retention_days"],
        restart_failure.as_deref().unwrap_or("ok"),
        t0.elapsed()
    );
    assert!(!d.log_text().contains("panicked"));
    assert!(
        restart_failure.is_none(),
        "after a power cut with the disk full the daemon does not start: {}",
        restart_failure.unwrap_or_default()
    );
    assert!(
        aside.is_empty(),
        "a healthy outbox was moved aside as corrupt: {aside:?}"
    );
    drop(d);
    drop(fs);
}

/// Deletes the oldest captures until `bytes` are free.
async fn make_room(d: &Daemon, fs: &SmallFs, bytes: u64) {
    while free_bytes(fs.path()) < bytes {
        let id: String = d
            .catalog()
            .query_row(
                "SELECT id FROM captures ORDER BY created_ms LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let resp = client()
            .delete(d.url(&format!("/admin/captures/{id}")))
            .header("x-api-key", ADMIN_KEY)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "delete {id}: {}", resp.status());
    }
}

/// How the disk-full races went.
#[derive(Debug, Default)]
struct Race {
    /// The write failed half-way (507 after the temp file got bytes).
    midway: u32,
    /// Refused by the free-space check before anything was written.
    precheck: u32,
    /// Stored whole although the disk filled up while it was written.
    grabbed_and_won: u32,
    /// Stored before anything was grabbed.
    won: u32,
}

/// Up to `attempts` captures, each begun with room for it and `slack` bytes more, while
/// another process takes every free block as soon as the capture's temp file has bytes;
/// stops after 3 half-way failures. Every outcome must leave files and rows consistent.
async fn race(d: &Daemon, fs: &SmallFs, seed: &mut u32, attempts: u32, slack: u64) -> Race {
    const LEN: usize = 1536 * 1024;
    let uploads = d.uploads_dir();
    let incoming = uploads.join(".incoming");
    let mut r = Race::default();
    let race_t = Instant::now();
    for attempt in 0..attempts {
        // Make room for one capture plus a little, then leave exactly that.
        make_room(d, fs, LEN as u64 + slack + 256 * 1024).await;
        let race_junk = fs.path().join(format!("race-{attempt}.bin"));
        fill_leaving(&race_junk, fs.path(), LEN as u64 + slack);
        // The grabber waits for the daemon's temp file to get its first bytes, then
        // takes every free block.
        let stop = Arc::new(AtomicBool::new(false));
        let saw_tmp = Arc::new(AtomicBool::new(false));
        let grabber = {
            let (stop, saw_tmp, incoming, race_junk, pid) = (
                stop.clone(),
                saw_tmp.clone(),
                incoming.clone(),
                race_junk.clone(),
                d.pid(),
            );
            std::thread::spawn(move || {
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&race_junk)
                    .unwrap();
                let chunk = vec![0x3Cu8; 8 * 1024];
                while !stop.load(Ordering::Relaxed) {
                    if support::daemon::capture_temp_files(pid, &incoming) > 0 {
                        saw_tmp.store(true, Ordering::SeqCst);
                        while f.write(&chunk).is_ok_and(|k| k > 0) {}
                        while f.write(&chunk[..512]).is_ok_and(|k| k > 0) {}
                        return;
                    }
                }
            })
        };
        *seed += 1;
        let img = big_jpeg(LEN, *seed);
        let (s, v) = post_raw(d, img.clone()).await;
        stop.store(true, Ordering::Relaxed);
        grabber.join().unwrap();
        let grabbed = saw_tmp.load(Ordering::SeqCst);
        match s {
            StatusCode::CREATED => {
                let id = v["id"].as_str().unwrap();
                let on_disk = std::fs::read(uploads.join(format!("{id}.jpg"))).unwrap();
                assert_eq!(sha256_hex(&on_disk), sha256_hex(&img));
                if grabbed {
                    // The grab did leave the disk full.
                    assert!(
                        free_bytes(fs.path()) < 64 * 1024,
                        "{} bytes free",
                        free_bytes(fs.path())
                    );
                    r.grabbed_and_won += 1;
                } else {
                    r.won += 1;
                }
            }
            StatusCode::INSUFFICIENT_STORAGE if grabbed => r.midway += 1,
            StatusCode::INSUFFICIENT_STORAGE => r.precheck += 1,
            other => panic!("attempt {attempt}: {other} {v}\n{}", d.log_text()),
        }
        if s != StatusCode::CREATED {
            assert_eq!(v["error"]["code"], "insufficient_storage", "{v}");
        }
        assert_consistent(d, &format!("race attempt {attempt} ({s})"));
        std::fs::remove_file(&race_junk).unwrap();
        if r.midway >= 3 {
            break;
        }
    }
    eprintln!(
        "disk-full race on {}: {r:?} in {:?}",
        fs.kind,
        race_t.elapsed()
    );
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disk_filled_mid_write_without_reserved_blocks_gives_507() {
    // ext2 has no `fallocate`: the capture's blocks are taken as it is written, and the
    // grabber can make a write fail half-way (ENOSPC): still a 507, nothing half-written.
    let fs = SmallFs::mount_ext2(16);
    let uploads_s = fs.path().join("uploads").display().to_string();
    let d = Daemon::start(&[("UPLOADS_DIR", uploads_s.as_str())]);
    set_reserve(&d, json!(0)).await;
    let mut seed = 1000;
    // ext4's driver keeps back more blocks for an indirect-mapped file's metadata than
    // it will use: a little more room, or every write fails before the grab.
    let race = race(&d, &fs, &mut seed, 40, 512 * 1024).await;
    assert!(
        race.midway >= 1,
        "no write ever failed half-way: the race could not be provoked ({race:?})"
    );
    assert!(!d.log_text().contains("panicked"));
    drop(d);
    drop(fs);
}

/// A file system that reports no size at all (zero blocks in `statfs`) is one of unknown
/// size, not a full one: captures and backgrounds are stored, `/health` says the size is
/// unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_system_reporting_no_size_is_unknown_not_full() {
    let fs = SmallFs::mount_sizeless();
    let st = rustix::fs::statvfs(fs.path()).unwrap();
    assert_eq!(
        st.f_blocks, 0,
        "{}: the test needs a file system with no size",
        fs.kind
    );
    let mut d = Daemon::new_in(fs.path(), &[("KIOSK_DISK_RESERVE", "100MB")]);
    d.spawn();
    assert!(d.data_dir().starts_with(fs.path()) && d.uploads_dir().starts_with(fs.path()));

    let photo = big_jpeg(300 * 1024, 7);
    let (s, v) = post_raw(&d, photo.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        std::fs::read(d.uploads_dir().join(format!("{id}.jpg"))).unwrap(),
        photo
    );

    let c = client();
    let r = c
        .post(d.url("/admin/backgrounds?name=Beach"))
        .header("x-api-key", ADMIN_KEY)
        .header("content-type", "image/jpeg")
        .body(jpeg(320, 240, 3))
        .send()
        .await
        .unwrap();
    let s = r.status();
    assert_eq!(
        s,
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );

    let health: Value = c
        .get(d.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let disk = &health["checks"]["disk"];
    assert_eq!(disk["status"], "ok", "{health}");
    assert_eq!(disk["size_known"], false, "{health}");
    assert!(disk["free_bytes"].is_null(), "{health}");
    assert!(
        disk["message"]
            .as_str()
            .unwrap()
            .contains("reports no size"),
        "{health}"
    );
    assert_ne!(health["status"], "down", "{health}");
}
