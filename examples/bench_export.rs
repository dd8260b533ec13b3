//! Excel export benchmark: how long does `GET /admin/export/excel` take on a large catalog,
//! and how much memory does the daemon take for it?
//!
//! ```text
//! cargo build --release --bin selfie-kiosk --example bench_export
//! target/release/examples/bench_export [--bin target/release/selfie-kiosk]
//!     [--rows 100000] [--runs 3] [--dir DIR] [--keep] [--no-verify]
//! ```
//!
//! Steps:
//! 1. generates `--rows` captures straight into a fresh catalog with the library
//!    (`Catalog::open` + `insert_capture`, one transaction), spread over the last 20 days,
//!    90 % synced, half with a `taken_at`, a third with one of 5 backgrounds, 20 % with an
//!    SMS; no image files (the export reads rows only; the rows are marked `file_missing`
//!    so start-up has nothing to reconcile);
//! 2. starts the daemon binary on that data dir (free port), waits for `/health`, reads
//!    its idle VmRSS;
//! 3. downloads the export `--runs` times, sampling the daemon's VmRSS every 20 ms;
//! 4. checks the workbook (calamine: one row per capture plus the header) unless
//!    `--no-verify`;
//! 5. prints the figures against the targets (≤ 3 s per export, RSS growth ≤ 50 MB over
//!    idle), and one JSON line (the last line of the output). Exit status 1 when a target
//!    is missed.
//!
//! The daemon is stopped and the temp dir removed at the end and on error (`--keep`
//! keeps it).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use selfie_kiosk::catalog::{self, Catalog, NewBackground, NewCapture};

const TARGET_SECS: f64 = 3.0;
const TARGET_RSS_GROWTH_MB: f64 = 50.0;
const ADMIN_KEY: &str = "bench-admin-key-0123456789abcdef";
const DAY_MS: i64 = 86_400_000;

struct Args {
    bin: PathBuf,
    rows: usize,
    runs: usize,
    dir: PathBuf,
    keep: bool,
    verify: bool,
}

fn usage() -> &'static str {
    "usage: bench_export [--bin PATH] [--rows N] [--runs N] [--dir DIR] [--keep] [--no-verify]\n\
     \x20 --bin        daemon binary (default target/release/selfie-kiosk)\n\
     \x20 --rows       captures in the catalog (default 100000)\n\
     \x20 --runs       exports to time (default 3)\n\
     \x20 --dir        where the temp data dir is created (default: $TMPDIR or /tmp)\n\
     \x20 --keep       keep the temp dir (daemon log, data, last workbook) at the end\n\
     \x20 --no-verify  do not read the workbook back"
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        bin: PathBuf::from("target/release/selfie-kiosk"),
        rows: 100_000,
        runs: 3,
        dir: std::env::temp_dir(),
        keep: false,
        verify: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| anyhow!("{name} needs a value\n{}", usage()))
        };
        match arg.as_str() {
            "--bin" => a.bin = PathBuf::from(value("--bin")?),
            "--rows" => a.rows = value("--rows")?.parse().context("--rows")?,
            "--runs" => a.runs = value("--runs")?.parse().context("--runs")?,
            "--dir" => a.dir = PathBuf::from(value("--dir")?),
            "--keep" => a.keep = true,
            "--no-verify" => a.verify = false,
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{}", usage()),
        }
    }
    if a.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(a)
}

/// Fills a fresh catalog; returns how long it took.
fn generate(data_dir: &Path, rows: usize) -> Result<Duration> {
    let t = Instant::now();
    std::fs::create_dir_all(data_dir)?;
    let cat = Catalog::open(&data_dir.join("catalog.sqlite3"))?;
    let now = selfie_kiosk::clock::system_now_ms();
    let start = now - 20 * DAY_MS;
    let step = (20 * DAY_MS / rows.max(1) as i64).max(1);
    cat.write_blocking(|tx| {
        let mut backgrounds = Vec::new();
        for (i, name) in ["Plage", "Montagne", "Ville", "Forêt", "Espace"]
            .iter()
            .enumerate()
        {
            let b = catalog::insert_background(
                tx,
                &NewBackground {
                    id: format!("bg-{i}"),
                    name: name.to_string(),
                    position: Some(i as i64),
                    bytes: 300_000,
                    width: 1920,
                    height: 1080,
                    sha256: "0".repeat(64),
                    created_ms: start,
                },
            )?;
            backgrounds.push(b.id);
        }
        let fmt = time::format_description::well_known::Rfc3339;
        let mut sms = tx.prepare(
            "INSERT INTO sms (id, capture_id, phone, phone_hmac, phone_masked, status,
                attempts, tag, created_ms, expires_ms, sent_ms)
             VALUES (?1, ?2, NULL, 'hmac', '+33 6 •• •• •• 00', 'sent', 1, ?1, ?3, ?3, ?3)",
        )?;
        for i in 0..rows {
            let created = start + i as i64 * step;
            let id = format!("{:032x}", (i as u128) * 0x9E37_79B9_7F4A_7C15 + 1);
            let taken_at = (i % 2 == 0).then(|| {
                time::OffsetDateTime::from_unix_timestamp_nanos(
                    (created - 1500) as i128 * 1_000_000,
                )
                .ok()
                .and_then(|t| t.format(&fmt).ok())
                .unwrap_or_default()
            });
            catalog::insert_capture(
                tx,
                &NewCapture {
                    id: id.clone(),
                    created_ms: created,
                    taken_at,
                    background_id: (i % 3 == 0).then(|| backgrounds[i % 5].clone()),
                    bytes: 1_400_000 + (i as i64 % 400_000),
                    width: 2048,
                    height: 1536,
                    sha256: format!("{:064x}", i),
                    source_sha256: format!("{:064x}", i),
                    source_format: "jpeg".into(),
                },
            )?;
            if i % 5 == 0 {
                sms.execute(rusqlite::params![format!("sms-{i}"), id, created + 60_000])?;
            }
        }
        drop(sms);
        tx.execute(
            "UPDATE captures SET file_missing = 1,
                synced_ms = CASE WHEN seq % 10 = 0 THEN NULL ELSE created_ms + 5000 END",
            [],
        )?;
        Ok(())
    })?;
    drop(cat);
    Ok(t.elapsed())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A kB figure (`VmRSS`, `VmHWM`) from /proc/PID/status.
fn proc_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Stops the daemon however main ends.
struct DaemonGuard(Child);

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_daemon(bin: &Path, data_dir: &Path, port: u16, log: &Path) -> Result<DaemonGuard> {
    let log_file = std::fs::File::create(log)?;
    let child = Command::new(bin)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KIOSK_DATA_DIR", data_dir)
        .env("KIOSK_LISTEN", format!("127.0.0.1:{port}"))
        .env("KIOSK_ID", "bench")
        .env("ADMIN_API_KEY", ADMIN_KEY)
        .env("KIOSK_LOG", "warn")
        .current_dir(data_dir)
        .stdout(Stdio::from(log_file.try_clone()?))
        .stderr(Stdio::from(log_file))
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let mut guard = DaemonGuard(child);
    let t = Instant::now();
    loop {
        if let Ok(Some(status)) = guard.0.try_wait() {
            bail!(
                "the daemon exited ({status}) during start-up:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Ok(Reply(200, _, _)) = http_get(port, "/health", None, None) {
            return Ok(guard);
        }
        if t.elapsed() > Duration::from_secs(60) {
            bail!("the daemon did not answer /health within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Status, lower-cased headers, body length.
struct Reply(u16, Vec<(String, String)>, u64);

/// A minimal HTTP/1.1 GET (Connection: close). The body goes to `save` when given;
/// returns (status, headers, body bytes).
fn http_get(port: u16, path: &str, key: Option<&str>, save: Option<&Path>) -> Result<Reply> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let auth = key
        .map(|k| format!("X-API-Key: {k}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut r = BufReader::with_capacity(256 * 1024, s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut out: Box<dyn Write> = match save {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => Box::new(std::io::sink()),
    };
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            break;
        }
        out.write_all(&buf[..k])?;
        n += k as u64;
    }
    out.flush()?;
    Ok(Reply(status, headers, n))
}

struct Run {
    secs: f64,
    bytes: u64,
    peak_rss_kb: u64,
}

fn run() -> Result<bool> {
    let mut args = parse_args()?;
    // Absolute: the daemon runs with its data dir as working directory.
    args.bin = std::fs::canonicalize(&args.bin).with_context(|| {
        format!(
            "{} not found: build it first (cargo build --release --bin selfie-kiosk)",
            args.bin.display()
        )
    })?;
    let tmp = tempfile::Builder::new()
        .prefix("bench-export-")
        .tempdir_in(&args.dir)
        .context("cannot create the temp dir")?;
    let root = tmp.path().to_path_buf();
    println!("bench root: {}", root.display());
    let data_dir = root.join("data");

    let gen = generate(&data_dir, args.rows)?;
    println!(
        "generated {} captures in {:.1} s (catalog {:.1} MB)",
        args.rows,
        gen.as_secs_f64(),
        std::fs::metadata(data_dir.join("catalog.sqlite3"))
            .map(|m| m.len() as f64 / 1e6)
            .unwrap_or(0.0)
    );

    let port = free_port()?;
    let log = root.join("daemon.log");
    let daemon = start_daemon(&args.bin, &data_dir, port, &log)?;
    let pid = daemon.0.id();
    std::thread::sleep(Duration::from_millis(500));
    let rss_before = proc_kb(pid, "VmRSS:").unwrap_or(0);
    println!("daemon pid {pid}, idle VmRSS {:.1} MB", mb(rss_before));

    let xlsx = root.join("export.xlsx");
    let mut runs = Vec::new();
    for i in 0..args.runs {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let sampler = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(kb) = proc_kb(pid, "VmRSS:") {
                        peak.fetch_max(kb, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let t = Instant::now();
        let Reply(status, headers, bytes) =
            http_get(port, "/admin/export/excel", Some(ADMIN_KEY), Some(&xlsx))?;
        let secs = t.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let _ = sampler.join();
        if status != 200 {
            bail!(
                "export answered {status}: {}",
                std::fs::read_to_string(&xlsx).unwrap_or_default()
            );
        }
        let rows_header = headers
            .iter()
            .find(|(k, _)| k == "x-export-rows")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        println!(
            "run {}: {:.2} s, {:.1} MB workbook, {rows_header} rows, peak VmRSS {:.1} MB",
            i + 1,
            secs,
            bytes as f64 / 1e6,
            mb(peak.load(Ordering::Relaxed))
        );
        runs.push(Run {
            secs,
            bytes,
            peak_rss_kb: peak.load(Ordering::Relaxed).max(rss_before),
        });
    }
    let hwm = proc_kb(pid, "VmHWM:").unwrap_or(0);
    let rss_after = proc_kb(pid, "VmRSS:").unwrap_or(0);
    drop(daemon);

    if args.verify {
        use calamine::Reader;
        let t = Instant::now();
        let mut wb: calamine::Xlsx<_> = calamine::open_workbook(&xlsx)?;
        let n = wb.worksheet_range("Captures")?.height();
        if n != args.rows + 1 {
            bail!(
                "the workbook has {n} rows in Captures, expected {}",
                args.rows + 1
            );
        }
        println!(
            "verified: Captures has {n} rows (header + {}), read back in {:.1} s",
            args.rows,
            t.elapsed().as_secs_f64()
        );
    }

    let worst = runs.iter().map(|r| r.secs).fold(0.0, f64::max);
    let best = runs.iter().map(|r| r.secs).fold(f64::MAX, f64::min);
    let peak = runs.iter().map(|r| r.peak_rss_kb).max().unwrap_or(0);
    let growth = mb(peak.saturating_sub(rss_before));
    let time_ok = worst <= TARGET_SECS;
    let rss_ok = growth <= TARGET_RSS_GROWTH_MB;
    let verdict = |ok: bool| if ok { "OK" } else { "MISSED" };
    println!();
    println!("== export of {} captures, {} runs", args.rows, runs.len());
    println!(
        "  time (worst of runs):   {worst:>6.2} s  (≤ {TARGET_SECS} s)   {}   [best {best:.2} s]",
        verdict(time_ok)
    );
    println!(
        "  RSS growth over idle:   {growth:>6.1} MB (≤ {TARGET_RSS_GROWTH_MB} MB)   {}   [idle {:.1} MB, peak of 20 ms samples {:.1} MB, VmHWM {:.1} MB, after {:.1} MB]",
        verdict(rss_ok),
        mb(rss_before),
        mb(peak),
        mb(hwm),
        mb(rss_after)
    );
    let summary = serde_json::json!({
        "rows": args.rows,
        "runs_s": runs.iter().map(|r| (r.secs * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
        "workbook_bytes": runs.last().map(|r| r.bytes),
        "rss_idle_mb": (mb(rss_before) * 10.0).round() / 10.0,
        "rss_peak_mb": (mb(peak) * 10.0).round() / 10.0,
        "rss_growth_mb": (growth * 10.0).round() / 10.0,
        "vm_hwm_mb": (mb(hwm) * 10.0).round() / 10.0,
        "targets": {"time_s_max": TARGET_SECS, "rss_growth_mb_max": TARGET_RSS_GROWTH_MB},
        "ok": time_ok && rss_ok,
    });
    if args.keep {
        let kept = tmp.keep();
        println!("kept {}", kept.display());
    }
    println!("{summary}");
    Ok(time_ok && rss_ok)
}

fn main() {
    match run() {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("bench_export: {e:#}");
            std::process::exit(2);
        }
    }
}
