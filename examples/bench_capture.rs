//! Capture-path benchmark: how fast and how lean is `POST /api/capture` compared with the
//! bare minimum the contract asks of it (write the file durably: temp file, fsync, rename,
//! fsync the directory)?
//!
//! ```text
//! cargo build --release --bin selfie-kiosk --example bench_capture
//! target/release/examples/bench_capture [--bin target/release/selfie-kiosk]
//!     [--requests 200] [--ref-iters N] [--dir DIR] [--keep]
//! ```
//!
//! Steps:
//! 1. generates a photo-like 2048×1536 JPEG of about 1.6 MB (gradients, shapes, grain);
//! 2. REFERENCE, on the same disk as the daemon's data dir (`--dir`, default the system
//!    temp dir): write the bytes to a temp file, fsync, rename, fsync the directory —
//!    single-threaded, then with 4 threads;
//! 3. HTTP FLOOR: the same requests against a server that only reads the body and answers
//!    201 (this example re-run as `--http-floor-server`): what loopback HTTP alone costs;
//! 4. starts the daemon (no remote, fresh data dir, free port) with the environment the
//!    shipped systemd unit gives it (its `Environment=` lines, e.g. `MALLOC_ARENA_MAX=2`;
//!    Yocto and Buildroot images install that unit), waits for `/health`, reads its idle
//!    VmRSS;
//! 5. runs {base64 JSON, raw image/jpeg} × {1, 4 clients}, `--requests` each, sampling the
//!    daemon's VmRSS every 50 ms; then, for information, the 4-client runs again against a
//!    daemon started with glibc's defaults (as `cargo run` starts it) for its peak RSS;
//! 6. prints a table, the targets (single-client p50 ≤ 1.5 × reference p50, ≥ 300
//!    captures/s with 4 clients, RSS ≤ 20 MB idle and ≤ 64 MB under load) and one JSON
//!    line (the last line of the output).
//!
//! The daemon is stopped (SIGTERM) and the temp dir removed at the end, on error and on
//! Ctrl-C too (`--keep` keeps the temp dir for inspection).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

const WIDTH: u32 = 2048;
const HEIGHT: u32 = 1536;
const TARGET_BYTES: usize = 1_600_000;
const JPEG_QUALITY: u8 = 90;

const TARGET_P50_RATIO: f64 = 1.5;
const TARGET_THROUGHPUT: f64 = 300.0;
const TARGET_RSS_IDLE_MB: f64 = 20.0;
const TARGET_RSS_LOAD_MB: f64 = 64.0;

/// The shipped systemd unit: the daemon is measured with its environment.
const UNIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/systemd/selfie-kiosk.service"
);

/// The unit's `Environment=` assignments, but the data directory (the benchmark's own).
fn unit_environment() -> Result<Vec<(String, String)>> {
    let text = fs::read_to_string(UNIT).with_context(|| format!("cannot read {UNIT}"))?;
    let mut env = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("Environment=") else {
            continue;
        };
        for item in rest.split_whitespace() {
            let item = item.trim_matches('"');
            if let Some((k, v)) = item.split_once('=') {
                if k != "KIOSK_DATA_DIR" {
                    env.push((k.to_string(), v.to_string()));
                }
            }
        }
    }
    Ok(env)
}

// ---------------------------------------------------------------- arguments

struct Args {
    bin: PathBuf,
    requests: usize,
    ref_iters: usize,
    dir: PathBuf,
    keep: bool,
}

fn usage() -> &'static str {
    "usage: bench_capture [--bin PATH] [--requests N] [--ref-iters N] [--dir DIR] [--keep]\n\
     \x20 --bin        daemon binary (default target/release/selfie-kiosk)\n\
     \x20 --requests   requests per scenario (default 200)\n\
     \x20 --ref-iters  reference write+fsync iterations (default: --requests)\n\
     \x20 --dir        where the temp data dir is created; the reference runs there too\n\
     \x20              (default: $TMPDIR or /tmp) — use the disk you care about\n\
     \x20 --keep       keep the temp dir (daemon log, data) at the end"
}

fn parse_args() -> Result<Args> {
    let mut bin = PathBuf::from("target/release/selfie-kiosk");
    let mut requests = 200usize;
    let mut ref_iters: Option<usize> = None;
    let mut dir = std::env::temp_dir();
    let mut keep = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| anyhow!("{name} needs a value\n{}", usage()))
        };
        match a.as_str() {
            "--bin" => bin = PathBuf::from(value("--bin")?),
            "--requests" => requests = value("--requests")?.parse().context("--requests")?,
            "--ref-iters" => {
                ref_iters = Some(value("--ref-iters")?.parse().context("--ref-iters")?)
            }
            "--dir" => dir = PathBuf::from(value("--dir")?),
            "--keep" => keep = true,
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{}", usage()),
        }
    }
    if requests == 0 {
        bail!("--requests must be at least 1");
    }
    Ok(Args {
        bin,
        requests,
        ref_iters: ref_iters.unwrap_or(requests).max(1),
        dir,
        keep,
    })
}

// ---------------------------------------------------------------- photo-like JPEG

/// xorshift64* — deterministic, fast, good enough for image noise.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Roughly normal, mean 0, standard deviation ~1 (sum of 4 uniforms).
    fn gauss(&mut self) -> f32 {
        (self.unit() + self.unit() + self.unit() + self.unit() - 2.0) * 1.732
    }
}

/// A noise-free "scene" plus a grain field; `render(amp)` mixes them.
struct Scene {
    base: Vec<f32>,
    grain: Vec<f32>,
}

impl Scene {
    fn new(seed: u64) -> Scene {
        let (w, h) = (WIDTH as usize, HEIGHT as usize);
        let mut rng = Rng::new(seed);
        // Smooth background: two colour gradients and low-frequency waves.
        let c0 = [rng.unit() * 255.0, rng.unit() * 255.0, rng.unit() * 255.0];
        let c1 = [rng.unit() * 255.0, rng.unit() * 255.0, rng.unit() * 255.0];
        let fx = 2.0 + rng.unit() * 6.0;
        let fy = 2.0 + rng.unit() * 6.0;
        let ph = rng.unit() * std::f32::consts::TAU;
        let mut base = vec![0f32; w * h * 3];
        // Precompute the separable waves.
        let wx: Vec<f32> = (0..w)
            .map(|x| (x as f32 / w as f32 * fx * std::f32::consts::PI + ph).sin())
            .collect();
        let wy: Vec<f32> = (0..h)
            .map(|y| (y as f32 / h as f32 * fy * std::f32::consts::PI).cos())
            .collect();
        for (y, wyv) in wy.iter().enumerate() {
            let ty = y as f32 / h as f32;
            for (x, wxv) in wx.iter().enumerate() {
                let tx = x as f32 / w as f32;
                let t = (tx * 0.6 + ty * 0.4).clamp(0.0, 1.0);
                let wave = 28.0 * wxv * wyv;
                let i = (y * w + x) * 3;
                for c in 0..3 {
                    base[i + c] = c0[c] * (1.0 - t) + c1[c] * t + wave * (1.0 - 0.3 * c as f32);
                }
            }
        }
        // Shapes with soft edges: discs ("faces", lamps) and rectangles (furniture).
        for _ in 0..14 {
            let col = [rng.unit() * 255.0, rng.unit() * 255.0, rng.unit() * 255.0];
            let alpha = 0.5 + rng.unit() * 0.5;
            if rng.unit() < 0.5 {
                let cx = rng.unit() * w as f32;
                let cy = rng.unit() * h as f32;
                let r = 60.0 + rng.unit() * 380.0;
                let (x0, x1) = (
                    ((cx - r - 4.0).max(0.0)) as usize,
                    ((cx + r + 4.0) as usize).min(w),
                );
                let (y0, y1) = (
                    ((cy - r - 4.0).max(0.0)) as usize,
                    ((cy + r + 4.0) as usize).min(h),
                );
                for y in y0..y1 {
                    for x in x0..x1 {
                        let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
                        let a = alpha * (r - d + 2.0).clamp(0.0, 4.0) / 4.0;
                        if a > 0.0 {
                            // A radial shading so the disc is not flat.
                            let shade = 1.0 - 0.35 * (d / r).clamp(0.0, 1.0);
                            let i = (y * w + x) * 3;
                            for c in 0..3 {
                                base[i + c] = base[i + c] * (1.0 - a) + col[c] * shade * a;
                            }
                        }
                    }
                }
            } else {
                let x0 = (rng.unit() * w as f32) as usize;
                let y0 = (rng.unit() * h as f32) as usize;
                let x1 = (x0 + 80 + (rng.unit() * 700.0) as usize).min(w);
                let y1 = (y0 + 80 + (rng.unit() * 500.0) as usize).min(h);
                for y in y0..y1 {
                    let shade = 0.8 + 0.2 * ((y - y0) as f32 / (y1 - y0).max(1) as f32);
                    for x in x0..x1 {
                        let i = (y * w + x) * 3;
                        for c in 0..3 {
                            base[i + c] = base[i + c] * (1.0 - alpha) + col[c] * shade * alpha;
                        }
                    }
                }
            }
        }
        // Grain: mostly luminance, some chroma, like a small camera sensor.
        let mut grain = vec![0f32; w * h * 3];
        for px in grain.chunks_exact_mut(3) {
            let l = rng.gauss();
            for g in px.iter_mut() {
                *g = 0.8 * l + 0.45 * rng.gauss();
            }
        }
        Scene { base, grain }
    }

    fn render(&self, amp: f32, quality: u8) -> Result<Vec<u8>> {
        let pixels: Vec<u8> = self
            .base
            .iter()
            .zip(&self.grain)
            .map(|(b, g)| (b + amp * g).round().clamp(0.0, 255.0) as u8)
            .collect();
        let mut out = Vec::with_capacity(TARGET_BYTES + TARGET_BYTES / 4);
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .encode(&pixels, WIDTH, HEIGHT, image::ExtendedColorType::Rgb8)
            .context("JPEG encoding")?;
        Ok(out)
    }
}

/// Finds the grain amplitude that brings the JPEG to ~`TARGET_BYTES`; returns
/// (jpeg, amplitude).
fn tuned_photo(scene: &Scene) -> Result<(Vec<u8>, f32)> {
    let (mut lo, mut hi) = (0.0f32, 48.0f32);
    let mut best: Option<(Vec<u8>, f32)> = None;
    for _ in 0..12 {
        let amp = (lo + hi) / 2.0;
        let jpeg = scene.render(amp, JPEG_QUALITY)?;
        let len = jpeg.len();
        let better = best
            .as_ref()
            .is_none_or(|(b, _)| len.abs_diff(TARGET_BYTES) < b.len().abs_diff(TARGET_BYTES));
        if better {
            best = Some((jpeg, amp));
        }
        if len.abs_diff(TARGET_BYTES) < TARGET_BYTES / 100 {
            break;
        }
        if len < TARGET_BYTES {
            lo = amp;
        } else {
            hi = amp;
        }
    }
    best.ok_or_else(|| anyhow!("no JPEG produced"))
}

// ---------------------------------------------------------------- statistics

#[derive(Clone, Copy, Default, serde::Serialize)]
struct Stats {
    n: usize,
    p50_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
    max_ms: f64,
}

fn stats(samples: &[Duration]) -> Stats {
    if samples.is_empty() {
        return Stats::default();
    }
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let rank = |p: f64| ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    Stats {
        n: ms.len(),
        p50_ms: rank(0.50),
        p99_ms: rank(0.99),
        mean_ms: ms.iter().sum::<f64>() / ms.len() as f64,
        max_ms: ms[ms.len() - 1],
    }
}

// ---------------------------------------------------------------- reference

/// One durable write, exactly as the contract describes it.
fn durable_write(dir: &Path, tmp_name: &str, final_name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(tmp_name);
    let mut f = fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(final_name))?;
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

struct RefResult {
    stats: Stats,
    ops_per_s: f64,
}

fn reference(dir: &Path, bytes: &[u8], iters: usize, threads: usize) -> Result<RefResult> {
    fs::create_dir_all(dir)?;
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let lat: Vec<Duration> = std::thread::scope(|s| -> Result<Vec<Duration>> {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let next = &next;
                s.spawn(move || -> Result<Vec<Duration>> {
                    let mut v = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= iters {
                            break;
                        }
                        let t0 = Instant::now();
                        durable_write(
                            dir,
                            &format!(".tmp-{t}-{i}"),
                            &format!("{t}-{i}.jpg"),
                            bytes,
                        )?;
                        v.push(t0.elapsed());
                    }
                    Ok(v)
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(
                h.join()
                    .map_err(|_| anyhow!("reference thread panicked"))??,
            );
        }
        Ok(all)
    })?;
    let wall = started.elapsed();
    // Leave the disk as we found it for the daemon.
    fs::remove_dir_all(dir)?;
    Ok(RefResult {
        stats: stats(&lat),
        ops_per_s: iters as f64 / wall.as_secs_f64(),
    })
}

// ---------------------------------------------------------------- the daemon

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Reads a `Vm*:` line of /proc/PID/status, in kB.
fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))
        .and_then(|l| l[key.len() + 1..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// CPU time (user + system) a process has used so far, in ms.
fn proc_cpu_ms(pid: u32) -> Option<f64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 * 1000.0 / clock_ticks() as f64)
}

/// Busy CPU time of the whole machine so far (all CPUs, in ms).
fn machine_busy_ms() -> Option<f64> {
    let s = fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    let busy: u64 = v.iter().take(8).sum::<u64>() - v.get(3)? - v.get(4)?;
    Some(busy as f64 * 1000.0 / clock_ticks() as f64)
}

/// /proc counts CPU time in USER_HZ ticks, 100 per second on Linux.
fn clock_ticks() -> u64 {
    100
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Configuration variables the daemon reads that must not leak in from our environment.
const DAEMON_VARS: &[&str] = &[
    "KIOSK_LISTEN",
    "KIOSK_DATA_DIR",
    "UPLOADS_DIR",
    "KIOSK_ID",
    "ADMIN_API_KEY",
    "SECRET_KEY",
    "REMOTE_DATABASE_URL",
    "REMOTE_STORAGE_URL",
    "PUBLIC_BASE_URL",
    "OVH_ENDPOINT",
    "OVH_APP_KEY",
    "OVH_APP_SECRET",
    "OVH_CONSUMER_KEY",
    "SMS_SERVICE_NAME",
    "SMS_SENDER",
    "RETENTION_DAYS",
    "REDIS_URL",
    "HEALTH_LISTEN",
    "MAX_CAPTURE_BYTES",
    "KIOSK_CORS_ORIGINS",
];

/// The daemon child; SIGTERM (then SIGKILL after 10 s) when dropped.
struct Daemon {
    child: Child,
    pid: u32,
    base: String,
    log: PathBuf,
}

impl Daemon {
    fn start(
        bin: &Path,
        data_dir: &Path,
        work_dir: &Path,
        env: &[(String, String)],
    ) -> Result<Daemon> {
        let port = free_port()?;
        let log = work_dir.join("daemon.log");
        let log_file = fs::File::create(&log)?;
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            // No `.env` from the caller's directory.
            .current_dir(work_dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        for v in DAEMON_VARS {
            cmd.env_remove(v);
        }
        cmd.env("KIOSK_DATA_DIR", data_dir)
            .env("KIOSK_LISTEN", format!("127.0.0.1:{port}"));
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        Ok(Daemon {
            pid: child.id(),
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        })
    }

    fn log_tail(&self) -> String {
        let s = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    async fn wait_healthy(&mut self, client: &reqwest::Client) -> Result<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the daemon exited ({status}) during start-up:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(r) = client.get(format!("{}/health", self.base)).send().await {
                if r.status().is_success() {
                    return Ok(r.json().await?);
                }
            }
            if Instant::now() > deadline {
                bail!("no healthy /health within 30 s:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn rss_kb(&self) -> u64 {
        proc_status_kb(self.pid, "VmRSS").unwrap_or(0)
    }

    fn hwm_kb(&self) -> u64 {
        proc_status_kb(self.pid, "VmHWM").unwrap_or(0)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("daemon did not stop within 10 s of SIGTERM: SIGKILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Samples VmRSS every 50 ms until stopped; returns the peak in kB.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            while !s.load(Ordering::Relaxed) {
                tick.tick().await;
                if let Some(kb) = proc_status_kb(pid, "VmRSS") {
                    p.fetch_max(kb, Ordering::Relaxed);
                }
            }
        });
        RssSampler { stop, peak, task }
    }

    async fn finish(self, pid: u32) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        // One last sample, so a short scenario still has one.
        self.peak
            .load(Ordering::Relaxed)
            .max(proc_status_kb(pid, "VmRSS").unwrap_or(0))
    }
}

// ---------------------------------------------------------------- scenarios

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Base64Json,
    RawJpeg,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Base64Json => "base64 JSON",
            Kind::RawJpeg => "raw image/jpeg",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Kind::Base64Json => "base64_json",
            Kind::RawJpeg => "raw_jpeg",
        }
    }
    fn content_type(self) -> &'static str {
        match self {
            Kind::Base64Json => "application/json",
            Kind::RawJpeg => "image/jpeg",
        }
    }
}

struct Payloads {
    json: bytes::Bytes,
    raw: bytes::Bytes,
    sha256: String,
    len: usize,
}

impl Payloads {
    fn body(&self, k: Kind) -> bytes::Bytes {
        match k {
            Kind::Base64Json => self.json.clone(),
            Kind::RawJpeg => self.raw.clone(),
        }
    }
}

struct ScenarioResult {
    kind: Kind,
    clients: usize,
    requests: usize,
    wall: Duration,
    lat: Stats,
    peak_rss_kb: u64,
    /// CPU ms per request: the server process, and the whole machine (client included).
    cpu_ms: Option<f64>,
    machine_cpu_ms: Option<f64>,
    /// Single client with a paired reference: one durable write before each request.
    paired_ref: Option<Stats>,
}

impl ScenarioResult {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }
}

async fn post_one(
    client: &reqwest::Client,
    url: &str,
    kind: Kind,
    p: &Payloads,
    verify: bool,
) -> Result<()> {
    let resp = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, kind.content_type())
        .body(p.body(kind))
        .send()
        .await
        .context("POST /api/capture")?;
    let status = resp.status();
    let body = resp.bytes().await.context("reading the answer")?;
    if status != reqwest::StatusCode::CREATED {
        bail!(
            "POST /api/capture ({}) answered {status}: {}",
            kind.label(),
            String::from_utf8_lossy(&body)
        );
    }
    if !verify {
        return Ok(());
    }
    let v: serde_json::Value =
        serde_json::from_slice(&body).context("the 201 answer is not JSON")?;
    if v["sha256"].as_str() != Some(p.sha256.as_str()) || v["bytes"].as_u64() != Some(p.len as u64)
    {
        bail!("the 201 answer does not describe the bytes sent: {v}");
    }
    Ok(())
}

/// Server under test: the daemon (answers verified) or the HTTP floor (not).
struct Target<'a> {
    base: &'a str,
    pid: u32,
    verify: bool,
}

async fn scenario(
    client: &reqwest::Client,
    target: &Target<'_>,
    p: &Arc<Payloads>,
    kind: Kind,
    clients: usize,
    requests: usize,
    paired_ref: Option<&Path>,
) -> Result<ScenarioResult> {
    let url = Arc::new(format!("{}/api/capture", target.base));
    // The paired reference (1 client only): a durable write of the same bytes right before
    // each request, so the reference sees the same disk and machine load as the daemon.
    let paired = match paired_ref {
        Some(dir) if clients == 1 => {
            fs::create_dir_all(dir)?;
            Some(dir.to_path_buf())
        }
        _ => None,
    };
    let ref_lat = Arc::new(std::sync::Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let verify = target.verify;
    let sampler = RssSampler::start(target.pid);
    let cpu0 = (proc_cpu_ms(target.pid), machine_busy_ms());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, next, p) = (client.clone(), url.clone(), next.clone(), p.clone());
        let (paired, ref_lat) = (paired.clone(), ref_lat.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(requests / clients + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                if let Some(dir) = &paired {
                    let t0 = Instant::now();
                    tokio::task::block_in_place(|| {
                        durable_write(dir, ".tmp-paired", &format!("{i}.jpg"), &p.raw)
                    })?;
                    let d = t0.elapsed();
                    ref_lat.lock().map_err(|_| anyhow!("poisoned"))?.push(d);
                }
                let t0 = Instant::now();
                post_one(&client, &url, kind, &p, verify).await?;
                lat.push(t0.elapsed());
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut lat = Vec::with_capacity(requests);
    let mut first_err: Option<anyhow::Error> = None;
    for t in tasks {
        match t.await {
            Ok(Ok(v)) => lat.extend(v),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(anyhow!("client task failed: {e}"));
            }
        }
    }
    let mut wall = started.elapsed();
    let peak_rss_kb = sampler.finish(target.pid).await;
    let per_request = |a: Option<f64>, b: Option<f64>| Some((b? - a?) / requests as f64);
    let cpu_ms = per_request(cpu0.0, proc_cpu_ms(target.pid));
    let machine_cpu_ms = per_request(cpu0.1, machine_busy_ms());
    if let Some(e) = first_err {
        return Err(e);
    }
    let paired_ref = match &paired {
        Some(dir) => {
            fs::remove_dir_all(dir)?;
            let v = ref_lat.lock().map_err(|_| anyhow!("poisoned"))?;
            // The daemon's wall time (throughput) excludes the paired writes.
            wall = wall.saturating_sub(v.iter().sum());
            Some(stats(&v))
        }
        None => None,
    };
    Ok(ScenarioResult {
        kind,
        clients,
        requests,
        wall,
        lat: stats(&lat),
        peak_rss_kb,
        cpu_ms,
        machine_cpu_ms,
        paired_ref,
    })
}

// ---------------------------------------------------------------- HTTP floor

/// Hidden mode: `bench_capture --http-floor-server` serves `POST /api/capture` that reads
/// the whole body (as the daemon does) and answers 201 — nothing else. Measuring it shows
/// what HTTP on loopback alone costs for a 1.6 MB body, so the daemon's own work can be
/// told apart from transport. It looks at each chunk and lets it go, keeping nothing:
/// gathering the body into a fresh buffer per request made glibc map and fault in new
/// pages every time, and that alone made this "floor" several times slower on the
/// benchmark VM (base64 JSON, 1 client, p50: 2.8-3.8 ms gathering, 0.6-1.3 ms not).
async fn floor_server() -> Result<()> {
    async fn handler(req: axum::extract::Request) -> (axum::http::StatusCode, &'static str) {
        use http_body_util::BodyExt;
        let mut body = req.into_body();
        let mut total = 0usize;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Ok(data) = f.into_data() {
                        total += std::hint::black_box(data).len();
                    }
                }
                Err(_) => return (axum::http::StatusCode::BAD_REQUEST, "{}"),
            }
        }
        std::hint::black_box(total);
        (axum::http::StatusCode::CREATED, "{}")
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    let app = axum::Router::new().route("/api/capture", axum::routing::post(handler));
    axum::serve(listener, app).await?;
    Ok(())
}

/// The floor server child; killed when dropped.
struct FloorServer {
    child: Child,
    base: String,
}

impl FloorServer {
    fn start() -> Result<FloorServer> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg("--http-floor-server")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        let port: u16 = line.trim().parse().context("floor server port")?;
        Ok(FloorServer {
            child,
            base: format!("http://127.0.0.1:{port}"),
        })
    }
}

impl Drop for FloorServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- main

fn fs_type(p: &Path) -> String {
    Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(p)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The 1-minute load average (the benchmark wants a quiet machine).
fn loadavg() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "OK"
    } else {
        "MISS"
    }
}

async fn run(args: Args, root: &Path) -> Result<()> {
    let bin = fs::canonicalize(&args.bin).with_context(|| {
        format!(
            "daemon binary {} not found (cargo build --release --bin selfie-kiosk)",
            args.bin.display()
        )
    })?;
    let fstype = fs_type(root);
    println!("bench root: {} (filesystem {fstype})", root.display());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_start = loadavg();
    println!("machine: {cpus} CPUs, load average {load_start:.2}");
    if load_start > 0.5 * cpus as f64 {
        println!("WARNING: the machine is busy (load {load_start:.2} on {cpus} CPUs): figures will be noisy");
    }
    if fstype == "tmpfs" || fstype == "ramfs" {
        println!("WARNING: {fstype} ignores fsync: the figures say nothing about a real disk (use --dir)");
    }

    // 1. The photo.
    let t = Instant::now();
    let scene = Scene::new(1);
    let (jpeg, amp) = tuned_photo(&scene)?;
    drop(scene);
    let sha256 = hex::encode(Sha256::digest(&jpeg));
    println!(
        "photo: {WIDTH}x{HEIGHT} JPEG q{JPEG_QUALITY}, grain amplitude {amp:.2}: {} bytes ({:.2} MB), generated in {:.1} s",
        jpeg.len(),
        jpeg.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    if !(1_500_000..=1_700_000).contains(&jpeg.len()) {
        println!("WARNING: the photo is outside 1.5–1.7 MB");
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(&jpeg);
    let mut json = Vec::with_capacity(b64.len() + 16);
    json.extend_from_slice(b"{\"image\":\"");
    json.extend_from_slice(b64.as_bytes());
    json.extend_from_slice(b"\"}");
    drop(b64);
    let payloads = Arc::new(Payloads {
        len: jpeg.len(),
        json: bytes::Bytes::from(json),
        raw: bytes::Bytes::from(jpeg.clone()),
        sha256,
    });

    // 2. Reference, before the daemon runs (nothing else on the disk).
    println!(
        "reference: write {:.2} MB + fsync + rename + fsync dir, {} iterations ...",
        jpeg.len() as f64 / 1e6,
        args.ref_iters
    );
    let ref1 =
        tokio::task::block_in_place(|| reference(&root.join("ref"), &jpeg, args.ref_iters, 1))?;
    let ref4 =
        tokio::task::block_in_place(|| reference(&root.join("ref4"), &jpeg, args.ref_iters, 4))?;

    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .timeout(Duration::from_secs(120))
        .build()?;

    // 3. The HTTP floor: same requests to a server that only reads the body.
    let plan = [
        (Kind::Base64Json, 1),
        (Kind::RawJpeg, 1),
        (Kind::Base64Json, 4),
        (Kind::RawJpeg, 4),
    ];
    let mut floor = Vec::new();
    {
        let server = FloorServer::start()?;
        let target = Target {
            base: &server.base,
            pid: server.child.id(),
            verify: false,
        };
        let url = format!("{}/api/capture", server.base);
        for kind in [Kind::Base64Json, Kind::RawJpeg] {
            for _ in 0..3 {
                post_one(&client, &url, kind, &payloads, false).await?;
            }
        }
        print!("HTTP floor (server that only reads the body) ... ");
        let _ = std::io::stdout().flush();
        for (kind, clients) in plan {
            floor.push(
                scenario(
                    &client,
                    &target,
                    &payloads,
                    kind,
                    clients,
                    args.requests,
                    None,
                )
                .await?,
            );
        }
        println!("done");
    }

    // 4. The daemon.
    let data_dir = root.join("data");
    fs::create_dir_all(&data_dir)?;
    let unit_env = unit_environment()?;
    let mut daemon = Daemon::start(&bin, &data_dir, root, &unit_env)?;
    let t = Instant::now();
    let health = daemon.wait_healthy(&client).await?;
    println!(
        "daemon {} (pid {}, version {}) healthy after {:.2} s, data in {}, environment from the systemd unit: {}",
        bin.display(),
        daemon.pid,
        health["version"].as_str().unwrap_or("?"),
        t.elapsed().as_secs_f64(),
        data_dir.display(),
        show_env(&unit_env)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle_kb = daemon.rss_kb();

    // Warm-up (connections, page cache, SQLite): not measured.
    let url = format!("{}/api/capture", daemon.base);
    for kind in [Kind::Base64Json, Kind::RawJpeg] {
        for _ in 0..3 {
            post_one(&client, &url, kind, &payloads, true).await?;
        }
    }

    // 5. Scenarios.
    let target = Target {
        base: &daemon.base,
        pid: daemon.pid,
        verify: true,
    };
    let mut results = Vec::new();
    for (kind, clients) in plan {
        print!(
            "scenario {} × {clients} client(s), {} requests ... ",
            kind.label(),
            args.requests
        );
        let _ = std::io::stdout().flush();
        let paired = root.join("paired");
        let r = scenario(
            &client,
            &target,
            &payloads,
            kind,
            clients,
            args.requests,
            Some(paired.as_path()),
        )
        .await?;
        println!("{:.0} captures/s", r.throughput());
        results.push(r);
    }
    let rss_after_kb = daemon.rss_kb();
    let hwm_kb = daemon.hwm_kb();
    let final_health: serde_json::Value = client
        .get(format!("{}/health", daemon.base))
        .send()
        .await?
        .json()
        .await?;
    drop(daemon); // SIGTERM now, before the report

    // 5b. For information: peak RSS with glibc's defaults (no unit environment).
    print!("glibc defaults (no unit environment): 4-client runs for peak RSS ... ");
    let _ = std::io::stdout().flush();
    let plain_dir = root.join("data-plain");
    fs::create_dir_all(&plain_dir)?;
    let mut plain = Daemon::start(&bin, &plain_dir, root, &[])?;
    plain.wait_healthy(&client).await?;
    let plain_target = Target {
        base: &plain.base,
        pid: plain.pid,
        verify: true,
    };
    let mut plain_peak_kb = 0;
    for kind in [Kind::Base64Json, Kind::RawJpeg] {
        let r = scenario(
            &client,
            &plain_target,
            &payloads,
            kind,
            4,
            args.requests,
            None,
        )
        .await?;
        plain_peak_kb = plain_peak_kb.max(r.peak_rss_kb);
    }
    let plain_peak_kb = plain_peak_kb.max(plain.hwm_kb());
    drop(plain);
    fs::remove_dir_all(&plain_dir)?;
    println!("done");

    // 6. Report.
    let load_end = loadavg();
    println!();
    println!(
        "=== capture benchmark: {:.2} MB JPEG, {} requests per scenario, {} on {fstype}; {cpus} CPUs, load {load_start:.2} → {load_end:.2} ===",
        payloads.len as f64 / 1e6,
        args.requests,
        root.display()
    );
    println!(
        "{:<34} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "", "clients", "ops/s", "p50 ms", "p99 ms", "mean ms", "max ms", "peak RSS"
    );
    for (label, r, threads) in [
        ("REFERENCE write+fsync+rename+fsync", &ref1, 1),
        ("REFERENCE ×4 threads", &ref4, 4),
    ] {
        println!(
            "{:<34} {:>7} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10}",
            label,
            threads,
            r.ops_per_s,
            r.stats.p50_ms,
            r.stats.p99_ms,
            r.stats.mean_ms,
            r.stats.max_ms,
            "-"
        );
    }
    for r in &results {
        if let Some(st) = &r.paired_ref {
            println!(
                "{:<34} {:>7} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10}",
                format!("REFERENCE paired w/ {}", r.kind.label()),
                1,
                1000.0 / st.mean_ms,
                st.p50_ms,
                st.p99_ms,
                st.mean_ms,
                st.max_ms,
                "-"
            );
        }
    }
    for r in &floor {
        println!(
            "{:<34} {:>7} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10}",
            format!("HTTP floor {}", r.kind.label()),
            r.clients,
            r.throughput(),
            r.lat.p50_ms,
            r.lat.p99_ms,
            r.lat.mean_ms,
            r.lat.max_ms,
            "-"
        );
    }
    for r in &results {
        println!(
            "{:<34} {:>7} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>7.1} MB",
            format!("DAEMON {}", r.kind.label()),
            r.clients,
            r.throughput(),
            r.lat.p50_ms,
            r.lat.p99_ms,
            r.lat.mean_ms,
            r.lat.max_ms,
            mb(r.peak_rss_kb)
        );
    }
    println!();
    println!("CPU per request (ms, 10 ms ticks over the scenario): server process / whole machine (client included)");
    for (what, r) in floor
        .iter()
        .map(|r| ("HTTP floor", r))
        .chain(results.iter().map(|r| ("DAEMON", r)))
    {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        println!(
            "  {:<34} {:>2} client(s): {:>6} / {:>6}",
            format!("{what} {}", r.kind.label()),
            r.clients,
            f(r.cpu_ms),
            f(r.machine_cpu_ms)
        );
    }
    let find = |k: Kind, c: usize| results.iter().find(|r| r.kind == k && r.clients == c);
    let peak_load_kb = results
        .iter()
        .map(|r| r.peak_rss_kb)
        .max()
        .unwrap_or(0)
        .max(hwm_kb);
    println!();
    println!("targets:");
    let mut ratios = serde_json::Map::new();
    let mut all_ok = true;
    for k in [Kind::Base64Json, Kind::RawJpeg] {
        if let Some(r) = find(k, 1) {
            // Against the paired reference (same moment, same disk load); the standalone
            // one is shown too.
            let ref_p50 = r.paired_ref.map_or(ref1.stats.p50_ms, |st| st.p50_ms);
            let ratio = r.lat.p50_ms / ref_p50;
            let ratio_standalone = r.lat.p50_ms / ref1.stats.p50_ms;
            let ok = ratio <= TARGET_P50_RATIO;
            all_ok &= ok;
            let floor_p50 = floor
                .iter()
                .find(|f| f.kind == k && f.clients == 1)
                .map_or(0.0, |f| f.lat.p50_ms);
            println!(
                "  single-client p50 / paired reference p50, {:<15} {:>6.2}  (≤ {TARGET_P50_RATIO})   {}   [{:.2} ms = HTTP floor {:.2} + daemon work {:.2}; paired reference {:.2}; standalone reference {:.2} → ratio {:.2}; the HTTP floor alone is {:.2}× the paired reference]",
                format!("{}:", k.label()),
                ratio,
                verdict(ok),
                r.lat.p50_ms,
                floor_p50,
                r.lat.p50_ms - floor_p50,
                ref_p50,
                ref1.stats.p50_ms,
                ratio_standalone,
                floor_p50 / ref_p50
            );
            ratios.insert(format!("p50_ratio_{}", k.key()), ratio.into());
            ratios.insert(
                format!("p50_ratio_standalone_{}", k.key()),
                ratio_standalone.into(),
            );
        }
    }
    for k in [Kind::Base64Json, Kind::RawJpeg] {
        if let Some(r) = find(k, 4) {
            let ok = r.throughput() >= TARGET_THROUGHPUT;
            all_ok &= ok;
            println!(
                "  4-client throughput, {:<15} {:>8.1}/s (≥ {TARGET_THROUGHPUT}/s; {:.0}% of target; reference ×4 threads {:.1}/s)   {}",
                format!("{}:", k.label()),
                r.throughput(),
                r.throughput() / TARGET_THROUGHPUT * 100.0,
                ref4.ops_per_s,
                verdict(ok)
            );
        }
    }
    let idle_ok = mb(rss_idle_kb) <= TARGET_RSS_IDLE_MB;
    let load_ok = mb(peak_load_kb) <= TARGET_RSS_LOAD_MB;
    all_ok &= idle_ok && load_ok;
    println!(
        "  RSS idle after start-up:             {:>6.1} MB (≤ {TARGET_RSS_IDLE_MB} MB)   {}",
        mb(rss_idle_kb),
        verdict(idle_ok)
    );
    println!(
        "  RSS under load (peak of 50 ms samples and VmHWM, unit's environment): {:.1} MB (≤ {TARGET_RSS_LOAD_MB} MB)   {}   [VmHWM {:.1} MB, VmRSS after load {:.1} MB]",
        mb(peak_load_kb),
        verdict(load_ok),
        mb(hwm_kb),
        mb(rss_after_kb)
    );
    println!(
        "  (for information, not a target: with glibc's defaults instead of the unit's {}, as `cargo run` starts it: peak RSS under 4-client load {:.1} MB)",
        show_env(&unit_env),
        mb(plain_peak_kb)
    );
    println!(
        "  overall: {}",
        if all_ok {
            "all targets met"
        } else {
            "some targets MISSED"
        }
    );
    println!(
        "  (outbox after the run: {} pending jobs)",
        final_health["checks"]["outbox"]["pending"]
    );

    let as_json = |r: &ScenarioResult| {
        serde_json::json!({
            "mode": r.kind.key(), "clients": r.clients, "requests": r.requests,
            "wall_s": r.wall.as_secs_f64(), "captures_per_s": r.throughput(),
            "p50_ms": r.lat.p50_ms, "p99_ms": r.lat.p99_ms, "mean_ms": r.lat.mean_ms,
            "max_ms": r.lat.max_ms, "peak_rss_mb": mb(r.peak_rss_kb),
            "server_cpu_ms_per_request": r.cpu_ms,
            "machine_cpu_ms_per_request": r.machine_cpu_ms,
            "paired_reference_p50_ms": r.paired_ref.map(|st| st.p50_ms),
            "paired_reference_p99_ms": r.paired_ref.map(|st| st.p99_ms),
        })
    };
    let scen: Vec<serde_json::Value> = results.iter().map(as_json).collect();
    let floor_json: Vec<serde_json::Value> = floor.iter().map(as_json).collect();
    let mut line = serde_json::json!({
        "bench": "capture",
        "photo_bytes": payloads.len,
        "fs_type": fstype,
        "cpus": cpus,
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "reference": {
            "iterations": args.ref_iters,
            "ops_per_s": ref1.ops_per_s, "p50_ms": ref1.stats.p50_ms, "p99_ms": ref1.stats.p99_ms,
            "mean_ms": ref1.stats.mean_ms,
            "threads4_ops_per_s": ref4.ops_per_s, "threads4_p50_ms": ref4.stats.p50_ms,
        },
        "scenarios": scen,
        "http_floor": floor_json,
        "rss_idle_mb": mb(rss_idle_kb),
        "rss_peak_load_mb": mb(peak_load_kb),
        "vm_hwm_mb": mb(hwm_kb),
        "daemon_environment": show_env(&unit_env),
        "rss_peak_load_mb_glibc_defaults": mb(plain_peak_kb),
        "targets": {
            "p50_ratio_max": TARGET_P50_RATIO, "throughput_4_clients_min": TARGET_THROUGHPUT,
            "rss_idle_mb_max": TARGET_RSS_IDLE_MB, "rss_load_mb_max": TARGET_RSS_LOAD_MB,
            "all_met": all_ok,
        },
    });
    if let Some(obj) = line.as_object_mut() {
        obj.extend(ratios);
    }
    println!("{line}");
    Ok(())
}

fn show_env(env: &[(String, String)]) -> String {
    if env.is_empty() {
        return "none".to_string();
    }
    env.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::main]
async fn main() {
    if std::env::args().nth(1).as_deref() == Some("--http-floor-server") {
        if let Err(e) = floor_server().await {
            eprintln!("bench_capture floor server: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_capture: {e:#}");
            std::process::exit(2);
        }
    };
    let root = match tempfile::Builder::new()
        .prefix("bench-capture-")
        .tempdir_in(&args.dir)
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "bench_capture: cannot create a temp dir in {}: {e}",
                args.dir.display()
            );
            std::process::exit(2);
        }
    };
    let keep = args.keep;
    let outcome = tokio::select! {
        r = run(args, root.path()) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    // `run` dropped the daemon (SIGTERM) on every path; now the data.
    if keep {
        println!("kept {}", root.keep().display());
    } else if let Err(e) = root.close() {
        eprintln!("bench_capture: could not remove the temp dir: {e}");
    }
    if let Err(e) = outcome {
        eprintln!("bench_capture: {e:#}");
        std::process::exit(1);
    }
}
