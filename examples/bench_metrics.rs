//! `/metrics` benchmark: what a scrape costs the daemon in CPU, on a daemon with a
//! realistic state, and what that is as a share of one core at one scrape every 15 s
//! (Prometheus's default interval). Target: under 1 %.
//!
//! ```text
//! cargo build --release --bin selfie-kiosk --example bench_metrics
//! target/release/examples/bench_metrics --bin target/release/selfie-kiosk
//!     [--captures 2000] [--scrapes 1000]
//! ```
//!
//! Steps:
//! 1. starts the daemon on a fresh temp dir with a remote storage that does not answer
//!    (a closed port: the kiosk is offline), so every capture stays in the sync backlog
//!    and the outbox, the probes fail and retry, and every worker runs;
//! 2. stores `--captures` captures (a small JPEG, raw body) and makes requests on a dozen
//!    routes with several statuses, so the scrape has many series to render;
//! 3. measures the daemon's CPU time (utime + stime of every thread, `/proc/<pid>/stat`)
//!    over an idle stretch, then over `--scrapes` back-to-back scrapes, then idle again;
//!    the scrapes' cost is their CPU minus the idle CPU of the same wall time;
//! 4. prints CPU seconds per scrape, the share of a core at 1/15 s, the scrape's size and
//!    wall-clock latency, and a JSON line (the last line of the output). No assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Benchmarks measure real time; the rule that time is read through `clock` is for the
// daemon.
#![allow(clippy::disallowed_methods)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};

const SCRAPE_INTERVAL_S: f64 = 15.0;
const TARGET_PERCENT: f64 = 1.0;

struct Args {
    bin: PathBuf,
    captures: usize,
    scrapes: usize,
}

fn args() -> Result<Args> {
    let mut a = Args {
        bin: PathBuf::from("target/release/selfie-kiosk"),
        captures: 2000,
        scrapes: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| anyhow!("{k} needs a value"));
        match k.as_str() {
            "--bin" => a.bin = PathBuf::from(v()?),
            "--captures" => a.captures = v()?.parse()?,
            "--scrapes" => a.scrapes = v()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The daemon's CPU time so far (all threads), in seconds.
fn cpu_seconds(pid: u32, ticks_per_s: f64) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').ok_or_else(|| anyhow!("odd stat"))? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here (0-based).
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    Ok(ticks / ticks_per_s)
}

fn clock_ticks() -> Result<f64> {
    let out = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn small_jpeg() -> Result<Vec<u8>> {
    let img = image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)?;
    Ok(out.into_inner())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let a = args()?;
    let ticks = clock_ticks()?;
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let dead_port = free_port()?;
    let log = std::fs::File::create(dir.path().join("daemon.log"))?;
    let child = Command::new(&a.bin)
        .arg("serve")
        .current_dir(dir.path())
        .env("KIOSK_DATA_DIR", dir.path().join("data"))
        .env("KIOSK_LISTEN", format!("127.0.0.1:{port}"))
        .env("KIOSK_ID", "bench-metrics")
        .env("ADMIN_API_KEY", "bench-admin-key-0123456789abcdef")
        .env(
            "REMOTE_STORAGE_URL",
            format!("http://127.0.0.1:{dead_port}/uploads/"),
        )
        .env("KIOSK_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("start {}", a.bin.display()))?;
    let pid = child.id();
    let _daemon = Daemon(child);
    let base = format!("http://127.0.0.1:{port}");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let t = Instant::now();
    while client.get(format!("{base}/health")).send().await.is_err() {
        if t.elapsed() > Duration::from_secs(30) {
            bail!("daemon not listening after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let jpeg = small_jpeg()?;
    let t = Instant::now();
    for i in 0..a.captures {
        let r = client
            .post(format!("{base}/api/capture?id=bench-{i}"))
            .header("content-type", "image/jpeg")
            .body(jpeg.clone())
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("capture {i}: {}", r.status());
        }
    }
    println!(
        "state: {} captures stored in {:.1} s (all in the sync backlog: remote storage unreachable)",
        a.captures,
        t.elapsed().as_secs_f64()
    );
    // A spread of routes and statuses, as a day of use leaves them.
    let key = "bench-admin-key-0123456789abcdef";
    for path in [
        "/health",
        "/api/captures/status?ids=bench-1,bench-2",
        "/api/captures/status",
        "/api/download/bench-1",
        "/api/download/nope",
        "/uploads/bench-2.jpg",
        "/api/backgrounds",
        "/api/sms/0123456789abcdef0123456789abcdef",
        "/openapi.json",
        "/nowhere",
        "/admin/config",
        "/admin/stats",
        "/admin/captures?limit=5",
    ] {
        for with_key in [false, true] {
            let mut r = client.get(format!("{base}{path}"));
            if with_key {
                r = r.header("x-api-key", key);
            }
            r.send().await?.bytes().await?;
        }
    }
    let r = client
        .post(format!("{base}/api/send-sms"))
        .json(&serde_json::json!({"capture_id": "bench-1", "phone": "0612345678"}))
        .send()
        .await?;
    r.bytes().await?;
    // Let the start-up work settle (outbox pushes, first probes).
    tokio::time::sleep(Duration::from_secs(2)).await;

    let first = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let series = first.lines().filter(|l| !l.starts_with('#')).count();

    // Idle, scrapes, idle: the idle CPU rate is the mean of the two stretches.
    let idle = |secs: f64| async move {
        let c0 = cpu_seconds(pid, ticks)?;
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        Ok::<f64, anyhow::Error>((cpu_seconds(pid, ticks)? - c0) / secs)
    };
    let idle_before = idle(5.0).await?;
    let mut latencies = Vec::with_capacity(a.scrapes);
    let mut bytes = 0usize;
    let c0 = cpu_seconds(pid, ticks)?;
    let t = Instant::now();
    for _ in 0..a.scrapes {
        let s = Instant::now();
        let r = client.get(format!("{base}/metrics")).send().await?;
        if !r.status().is_success() {
            bail!("scrape: {}", r.status());
        }
        bytes += r.bytes().await?.len();
        latencies.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid, ticks)? - c0;
    let idle_after = idle(5.0).await?;
    let idle_rate = (idle_before + idle_after) / 2.0;
    let per_scrape = (cpu - idle_rate * wall).max(0.0) / a.scrapes as f64;
    let percent = per_scrape / SCRAPE_INTERVAL_S * 100.0;
    latencies.sort_by(f64::total_cmp);

    println!("scrape: {series} samples, {} bytes", bytes / a.scrapes);
    println!(
        "{} scrapes in {wall:.2} s: daemon CPU {cpu:.3} s (idle rate {:.4} CPU-s/s, {:.3} s of it idle work)",
        a.scrapes,
        idle_rate,
        idle_rate * wall
    );
    println!(
        "latency p50 {:.2} ms, p99 {:.2} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    println!(
        "CPU per scrape: {:.3} ms; at one scrape per {SCRAPE_INTERVAL_S} s: {percent:.4} % of a core (target < {TARGET_PERCENT} %: {})",
        per_scrape * 1000.0,
        if percent < TARGET_PERCENT { "met" } else { "NOT met" }
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "metrics",
            "captures": a.captures,
            "samples": series,
            "scrape_bytes": bytes / a.scrapes,
            "scrapes": a.scrapes,
            "wall_s": wall,
            "cpu_s": cpu,
            "idle_cpu_rate": idle_rate,
            "cpu_s_per_scrape": per_scrape,
            "percent_core_at_15s": percent,
            "p50_ms": percentile(&latencies, 0.5),
            "p99_ms": percentile(&latencies, 0.99),
        })
    );
    Ok(())
}
