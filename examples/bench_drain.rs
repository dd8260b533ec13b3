//! Sync drain benchmark: a kiosk that was offline comes back — how fast does the daemon
//! push its backlog to a real nginx WebDAV server, compared with the obvious shell way of
//! doing the same (`curl -T` with `xargs -P 4`)?
//!
//! ```text
//! cargo build --release --bin selfie-kiosk --example bench_drain
//! target/release/examples/bench_drain [--bin target/release/selfie-kiosk] [--count 1000]
//!     [--pg-url postgresql://…] [--images 8] [--parallel 4] [--timeout 600] [--dir DIR] [--keep]
//! ```
//!
//! Flow:
//! 1. generates `--images` distinct photo-like 2048×1536 JPEGs of ~1.6 MB;
//! 2. starts the daemon with `REMOTE_STORAGE_URL` pointing at a loopback port where nothing
//!    listens yet (offline), and `REMOTE_DATABASE_URL` when `--pg-url` is given;
//! 3. posts `--count` captures (raw `image/jpeg`, `--parallel` clients; each image many
//!    times — ids are the server's, so every post is a new capture);
//! 4. starts nginx (WebDAV `PUT`) on that port and polls `/api/captures/status` (chunks of
//!    500) every 100 ms until every capture is synced, sampling the daemon's VmRSS every
//!    50 ms. Reported: nginx start → all synced (includes the daemon's offline backoff,
//!    capped at ~30 s), the backoff wait alone (nginx ready → first PUT, from nginx's access
//!    log), and the *pure drain* (first PUT → all synced; also first synced → all synced, as
//!    polled) that the throughput figures use;
//! 5. REFERENCE: the same number of files of the same sizes, written to a temp dir first,
//!    uploaded to the same nginx with `xargs -P <parallel> -L 1 curl -sS -f -T FILE URL`;
//! 6. prints a table, the ratio daemon/reference (target ≥ 1) and one JSON line (the last
//!    line of the output).
//!
//! nginx runs in the foreground as our child with its own config, logs, pid and temp paths
//! in the temp dir; as root its workers run as `nobody`, so the WebDAV root and temp paths
//! are given to that user. Everything (nginx, daemon, temp dir) is cleaned up at the end,
//! on error and on Ctrl-C (`--keep` keeps the temp dir).
//!
//! Needs nginx with the WebDAV module and curl: `tools/install-test-deps.sh` installs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _, Result};
use sha2::{Digest as _, Sha256};

const WIDTH: u32 = 2048;
const HEIGHT: u32 = 1536;
const TARGET_BYTES: usize = 1_600_000;
const JPEG_QUALITY: u8 = 90;
const TARGET_RATIO: f64 = 1.0;
const STATUS_CHUNK: usize = 500;
const INSTALL_HINT: &str =
    "run tools/install-test-deps.sh (as root) to install nginx-light and curl";

// ---------------------------------------------------------------- arguments

struct Args {
    bin: PathBuf,
    count: usize,
    pg_url: Option<String>,
    images: usize,
    parallel: usize,
    timeout: Duration,
    dir: PathBuf,
    keep: bool,
}

fn usage() -> &'static str {
    "usage: bench_drain [--bin PATH] [--count N] [--pg-url URL] [--images N] [--parallel N]\n\
     \x20                  [--timeout SECS] [--dir DIR] [--keep]\n\
     \x20 --bin       daemon binary (default target/release/selfie-kiosk)\n\
     \x20 --count     captures to post while offline, then drain (default 1000)\n\
     \x20 --pg-url    also sync metadata to this PostgreSQL (REMOTE_DATABASE_URL)\n\
     \x20 --images    distinct JPEGs to generate (default 8)\n\
     \x20 --parallel  posting clients, and curl uploads in parallel for the reference (default 4)\n\
     \x20 --timeout   give up if not drained after this many seconds (default 600)\n\
     \x20 --dir       where the temp dir is created (default: $TMPDIR or /tmp)\n\
     \x20 --keep      keep the temp dir (daemon and nginx logs, data) at the end"
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        bin: PathBuf::from("target/release/selfie-kiosk"),
        count: 1000,
        pg_url: None,
        images: 8,
        parallel: 4,
        timeout: Duration::from_secs(600),
        dir: std::env::temp_dir(),
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| anyhow!("{name} needs a value\n{}", usage()))
        };
        match arg.as_str() {
            "--bin" => a.bin = PathBuf::from(value("--bin")?),
            "--count" => a.count = value("--count")?.parse().context("--count")?,
            "--pg-url" => a.pg_url = Some(value("--pg-url")?),
            "--images" => a.images = value("--images")?.parse().context("--images")?,
            "--parallel" => a.parallel = value("--parallel")?.parse().context("--parallel")?,
            "--timeout" => {
                a.timeout = Duration::from_secs(value("--timeout")?.parse().context("--timeout")?)
            }
            "--dir" => a.dir = PathBuf::from(value("--dir")?),
            "--keep" => a.keep = true,
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{}", usage()),
        }
    }
    if a.count == 0 || a.images == 0 || a.parallel == 0 {
        bail!("--count, --images and --parallel must be at least 1");
    }
    Ok(a)
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
        env: &[(&str, String)],
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

// ---------------------------------------------------------------- tools

fn loadavg() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

fn find_in_path(name: &str, extra: &[&str]) -> Option<PathBuf> {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    extra.iter().map(PathBuf::from).find(|p| p.is_file())
}

fn nginx_bin() -> Result<PathBuf> {
    let bin = find_in_path(
        "nginx",
        &[
            "/usr/sbin/nginx",
            "/usr/local/sbin/nginx",
            "/usr/local/nginx/sbin/nginx",
        ],
    )
    .ok_or_else(|| anyhow!("nginx not found: {INSTALL_HINT}"))?;
    let out = Command::new(&bin).arg("-V").output()?;
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    if !text.contains("http_dav_module") {
        bail!(
            "{} has no WebDAV module (http_dav_module): {INSTALL_HINT}",
            bin.display()
        );
    }
    Ok(bin)
}

fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn id_of(args: &[&str]) -> Result<String> {
    let out = Command::new("id").args(args).output()?;
    if !out.status.success() {
        bail!(
            "`id {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

// ---------------------------------------------------------------- nginx

/// A real nginx with WebDAV on `127.0.0.1:port`, files under `dir/www/uploads/`.
struct Nginx {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Nginx {
    /// Writes the config and the directory tree; does not start anything.
    fn prepare(bin: PathBuf, dir: &Path, port: u16) -> Result<Nginx> {
        fs::create_dir_all(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
        let www = dir.join("www");
        let uploads = www.join("uploads");
        fs::create_dir_all(&uploads)?;
        fs::set_permissions(&www, fs::Permissions::from_mode(0o755))?;
        fs::set_permissions(&uploads, fs::Permissions::from_mode(0o755))?;
        let tmp = dir.join("tmp");
        let mut owned = vec![uploads.clone()];
        for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            let p = tmp.join(sub);
            fs::create_dir_all(&p)?;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o700))?;
            owned.push(p);
        }
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
        let mut conf = String::new();
        if running_as_root() {
            // Workers drop to nobody: give them the WebDAV root and the temp paths.
            let uid: u32 = id_of(&["-u", "nobody"])?.parse()?;
            let gid: u32 = id_of(&["-g", "nobody"])?.parse()?;
            let group = id_of(&["-gn", "nobody"]).unwrap_or_else(|_| "nogroup".into());
            for p in &owned {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))
                    .with_context(|| format!("chown {} to nobody", p.display()))?;
            }
            writeln!(conf, "user nobody {group};")?;
        }
        let d = dir.display();
        write!(
            conf,
            r#"worker_processes 2;
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
    log_format bench '$msec $request_time $request_method $status $request_length $uri';
    access_log {d}/access.log bench;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    sendfile on;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
        location /uploads/ {{
            dav_methods PUT DELETE;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
            client_max_body_size 64m;
        }}
    }}
}}
"#
        )?;
        fs::write(dir.join("nginx.conf"), conf)?;
        Ok(Nginx {
            bin,
            dir: dir.to_path_buf(),
            port,
            child: None,
        })
    }

    fn uploads(&self) -> PathBuf {
        self.dir.join("www/uploads")
    }

    fn access_log(&self) -> PathBuf {
        self.dir.join("access.log")
    }

    fn error_tail(&self) -> String {
        let s = fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// Starts nginx; returns once the port accepts connections.
    fn start(&mut self) -> Result<()> {
        let child = Command::new(&self.bin)
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .arg("-e")
            .arg(self.dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    let mut err = String::new();
                    if let Some(mut e) = c.stderr.take() {
                        let _ = std::io::Read::read_to_string(&mut e, &mut err);
                    }
                    self.child = None;
                    bail!(
                        "nginx exited ({status}): {}\n{}",
                        err.trim(),
                        self.error_tail()
                    );
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "nginx does not listen on port {} after 10 s:\n{}",
                    self.port,
                    self.error_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// PUTs seen in nginx's access log under a path prefix.
#[derive(Default)]
struct PutLog {
    ok: usize,
    failed: usize,
    bytes: u64,
    /// Epoch seconds.
    first_start: f64,
    last_end: f64,
}

fn parse_puts(log: &Path, prefix: &str, exclude: Option<&str>) -> Result<PutLog> {
    let text = fs::read_to_string(log).with_context(|| format!("read {}", log.display()))?;
    let mut r = PutLog {
        first_start: f64::MAX,
        last_end: 0.0,
        ..PutLog::default()
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[2] != "PUT" || !f[5].starts_with(prefix) {
            continue;
        }
        if exclude.is_some_and(|x| f[5].starts_with(x)) {
            continue;
        }
        let (Ok(msec), Ok(rt), Ok(status), Ok(len)) = (
            f[0].parse::<f64>(),
            f[1].parse::<f64>(),
            f[3].parse::<u16>(),
            f[4].parse::<u64>(),
        ) else {
            continue;
        };
        if (200..300).contains(&status) {
            r.ok += 1;
            r.bytes += len;
            r.first_start = r.first_start.min(msec - rt);
            r.last_end = r.last_end.max(msec);
        } else {
            r.failed += 1;
        }
    }
    Ok(r)
}

/// (files, total bytes) of the `.jpg` files directly in `dir`.
fn dir_jpegs(dir: &Path) -> Result<(usize, u64)> {
    let mut n = 0;
    let mut bytes = 0;
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_file() && e.file_name().to_string_lossy().ends_with(".jpg") {
            n += 1;
            bytes += e.metadata()?.len();
        }
    }
    Ok((n, bytes))
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

// ---------------------------------------------------------------- the run

struct Photo {
    jpeg: bytes::Bytes,
    sha256: String,
}

async fn post_all(
    client: &reqwest::Client,
    base: &str,
    photos: &Arc<Vec<Photo>>,
    count: usize,
    parallel: usize,
) -> Result<Vec<String>> {
    let url = Arc::new(format!("{base}/api/capture"));
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..parallel {
        let (client, url, next, photos) =
            (client.clone(), url.clone(), next.clone(), photos.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let p = &photos[i % photos.len()];
                let resp = client
                    .post(url.as_str())
                    .header(reqwest::header::CONTENT_TYPE, "image/jpeg")
                    .body(p.jpeg.clone())
                    .send()
                    .await
                    .context("POST /api/capture")?;
                let status = resp.status();
                let body = resp.bytes().await?;
                if status != reqwest::StatusCode::CREATED {
                    bail!(
                        "POST /api/capture answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                let v: serde_json::Value = serde_json::from_slice(&body)?;
                if v["sha256"].as_str() != Some(p.sha256.as_str()) {
                    bail!("the 201 answer does not describe the bytes sent: {v}");
                }
                let id = v["id"].as_str().ok_or_else(|| anyhow!("no id in {v}"))?;
                ids.push(id.to_string());
            }
            Ok::<_, anyhow::Error>(ids)
        }));
    }
    let mut ids = Vec::with_capacity(count);
    for t in tasks {
        ids.extend(t.await.map_err(|e| anyhow!("client task failed: {e}"))??);
    }
    Ok(ids)
}

/// The ids among `ids` that are synced.
async fn synced_among(client: &reqwest::Client, base: &str, ids: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(STATUS_CHUNK) {
        let url = format!("{base}/api/captures/status?ids={}", chunk.join(","));
        let resp = client.get(url).send().await?;
        let status = resp.status();
        let v: serde_json::Value = resp.json().await?;
        if !status.is_success() {
            bail!("GET /api/captures/status answered {status}: {v}");
        }
        for id in chunk {
            if !v[id.as_str()]["exists"].as_bool().unwrap_or(false) {
                bail!("capture {id} vanished: {}", v[id.as_str()]);
            }
            if v[id.as_str()]["is_synced"].as_bool().unwrap_or(false) {
                out.push(id.clone());
            }
        }
    }
    Ok(out)
}

async fn health(client: &reqwest::Client, base: &str) -> Result<serde_json::Value> {
    Ok(client
        .get(format!("{base}/health"))
        .send()
        .await?
        .json()
        .await?)
}

fn fmt_rate(n: f64, secs: f64) -> f64 {
    if secs > 0.0 {
        n / secs
    } else {
        f64::NAN
    }
}

async fn run(args: Args, root: &Path) -> Result<()> {
    let bin = fs::canonicalize(&args.bin).with_context(|| {
        format!(
            "daemon binary {} not found (cargo build --release --bin selfie-kiosk)",
            args.bin.display()
        )
    })?;
    let nginx_bin = nginx_bin()?;
    let curl =
        find_in_path("curl", &[]).ok_or_else(|| anyhow!("curl not found: {INSTALL_HINT}"))?;
    let xargs = find_in_path("xargs", &[]).ok_or_else(|| anyhow!("xargs not found (findutils)"))?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_start = loadavg();
    println!(
        "bench root: {} — {cpus} CPUs, load average {load_start:.2}",
        root.display()
    );
    if load_start > 0.5 * cpus as f64 {
        println!("WARNING: the machine is busy (load {load_start:.2} on {cpus} CPUs): figures will be noisy");
    }

    // 1. Photos.
    let t = Instant::now();
    let (photos, amp) = tokio::task::block_in_place(|| -> Result<(Vec<Photo>, f32)> {
        let first = Scene::new(1);
        let (jpeg, amp) = tuned_photo(&first)?;
        drop(first);
        let mut v = vec![jpeg];
        for seed in 2..=args.images as u64 {
            v.push(Scene::new(seed).render(amp, JPEG_QUALITY)?);
        }
        Ok((
            v.into_iter()
                .map(|j| Photo {
                    sha256: hex::encode(Sha256::digest(&j)),
                    jpeg: bytes::Bytes::from(j),
                })
                .collect(),
            amp,
        ))
    })?;
    let sizes: Vec<usize> = photos.iter().map(|p| p.jpeg.len()).collect();
    let total_bytes: u64 = (0..args.count).map(|i| sizes[i % sizes.len()] as u64).sum();
    println!(
        "photos: {} × {WIDTH}x{HEIGHT} JPEG q{JPEG_QUALITY} (grain {amp:.2}), {:.2}–{:.2} MB, generated in {:.1} s; {} captures = {:.1} MB",
        photos.len(),
        *sizes.iter().min().unwrap_or(&0) as f64 / 1e6,
        *sizes.iter().max().unwrap_or(&0) as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        args.count,
        total_bytes as f64 / 1e6
    );
    let photos = Arc::new(photos);

    // 2. nginx prepared (not started) on a port nobody listens on; the daemon offline.
    let port = free_port()?;
    let mut nginx = Nginx::prepare(nginx_bin, &root.join("nginx"), port)?;
    let storage_url = format!("http://127.0.0.1:{port}/uploads/");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .timeout(Duration::from_secs(120))
        .build()?;
    let data_dir = root.join("data");
    fs::create_dir_all(&data_dir)?;
    let mut env = vec![
        ("REMOTE_STORAGE_URL", storage_url.clone()),
        ("KIOSK_ID", "bench-drain".to_string()),
    ];
    if let Some(pg) = &args.pg_url {
        env.push(("REMOTE_DATABASE_URL", pg.clone()));
    }
    let mut daemon = Daemon::start(&bin, &data_dir, root, &env)?;
    daemon.wait_healthy(&client).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_idle_kb = daemon.rss_kb();
    println!(
        "daemon pid {} up, REMOTE_STORAGE_URL={storage_url} (nothing listening){}; data in {}",
        daemon.pid,
        if args.pg_url.is_some() {
            ", REMOTE_DATABASE_URL set"
        } else {
            ""
        },
        data_dir.display()
    );

    // 3. Offline captures.
    print!(
        "posting {} captures offline ({} clients) ... ",
        args.count, args.parallel
    );
    let _ = std::io::stdout().flush();
    let sampler = RssSampler::start(daemon.pid);
    let t = Instant::now();
    let ids = post_all(&client, &daemon.base, &photos, args.count, args.parallel).await?;
    let post_wall = t.elapsed();
    let rss_post_peak_kb = sampler.finish(daemon.pid).await;
    println!(
        "{:.1} captures/s",
        fmt_rate(ids.len() as f64, post_wall.as_secs_f64())
    );
    let synced_early = synced_among(&client, &daemon.base, &ids).await?;
    if !synced_early.is_empty() {
        bail!(
            "{} captures are synced while the remote is down?",
            synced_early.len()
        );
    }
    let h = health(&client, &daemon.base).await?;
    let rs: String = h["checks"]["remote_storage"]
        .to_string()
        .chars()
        .take(400)
        .collect();
    println!(
        "offline: outbox pending {}; remote_storage check: {rs}",
        h["checks"]["outbox"]["pending"]
    );

    // 4. The remote comes back.
    let rss_before_drain_kb = daemon.rss_kb();
    let nginx_start_wall = SystemTime::now();
    let t0 = Instant::now();
    tokio::task::block_in_place(|| nginx.start())?;
    let nginx_ready = t0.elapsed();
    println!(
        "nginx up on port {port} after {:.0} ms; waiting for the drain (timeout {} s) ...",
        nginx_ready.as_secs_f64() * 1000.0,
        args.timeout.as_secs()
    );
    let sampler = RssSampler::start(daemon.pid);
    let mut remaining = ids.clone();
    let mut first_synced: Option<(Duration, SystemTime)> = None;
    let mut last_progress = Instant::now();
    let (all_synced, all_synced_wall) = loop {
        let newly = synced_among(&client, &daemon.base, &remaining).await?;
        let now = t0.elapsed();
        if !newly.is_empty() {
            first_synced.get_or_insert((now, SystemTime::now()));
            let done: std::collections::HashSet<String> = newly.into_iter().collect();
            remaining.retain(|id| !done.contains(id));
        }
        if remaining.is_empty() {
            break (now, SystemTime::now());
        }
        if last_progress.elapsed() > Duration::from_secs(5) {
            last_progress = Instant::now();
            println!(
                "  {:>6.1} s: {}/{} synced",
                now.as_secs_f64(),
                ids.len() - remaining.len(),
                ids.len()
            );
        }
        if now > args.timeout {
            let h = health(&client, &daemon.base).await.unwrap_or_default();
            bail!(
                "not drained after {} s: {}/{} synced; /health: {h}\ndaemon log:\n{}",
                args.timeout.as_secs(),
                ids.len() - remaining.len(),
                ids.len(),
                daemon.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rss_drain_peak_kb = sampler.finish(daemon.pid).await;
    let hwm_kb = daemon.hwm_kb();
    let h_end = health(&client, &daemon.base).await?;
    drop(daemon); // SIGTERM: the reference runs without it
    let (first_synced, _) = first_synced.unwrap_or((all_synced, all_synced_wall));

    let puts = parse_puts(&nginx.access_log(), "/uploads/", Some("/uploads/ref/"))?;
    let (files, file_bytes) = dir_jpegs(&nginx.uploads())?;
    if files != args.count || file_bytes != total_bytes {
        bail!(
            "nginx holds {files} files / {file_bytes} bytes, expected {} / {total_bytes}",
            args.count
        );
    }
    let backoff_wait = (puts.first_start - epoch(nginx_start_wall)).max(0.0);
    let pure = epoch(all_synced_wall) - puts.first_start;
    let synced_window = (all_synced - first_synced).as_secs_f64();
    let put_window = puts.last_end - puts.first_start;
    println!(
        "drained: {} PUTs ok ({} refused before that), all {} files on nginx ({:.1} MB)",
        puts.ok,
        puts.failed,
        files,
        file_bytes as f64 / 1e6
    );

    // 5. Reference: curl -T with xargs -P.
    let src = root.join("ref-src");
    fs::create_dir_all(&src)?;
    print!("reference: writing {} files ... ", args.count);
    let _ = std::io::stdout().flush();
    let mut list = String::new();
    tokio::task::block_in_place(|| -> Result<()> {
        for i in 0..args.count {
            let p = src.join(format!("ref-{i}.jpg"));
            fs::write(&p, &photos[i % photos.len()].jpeg)?;
            writeln!(
                list,
                "{} http://127.0.0.1:{port}/uploads/ref/ref-{i}.jpg",
                p.display()
            )?;
        }
        Ok(())
    })?;
    fs::write(root.join("ref-list.txt"), &list)?;
    print!("uploading with xargs -P {} curl -T ... ", args.parallel);
    let _ = std::io::stdout().flush();
    let t = Instant::now();
    let out = tokio::task::block_in_place(|| {
        Command::new(&xargs)
            .args(["-P", &args.parallel.to_string(), "-L", "1"])
            .arg(&curl)
            .args(["-sS", "-f", "-o", "/dev/null", "-T"])
            .stdin(fs::File::open(root.join("ref-list.txt"))?)
            .output()
    })?;
    let ref_wall = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "the reference upload failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    println!("{ref_wall:.2} s");
    let (ref_files, ref_bytes) = dir_jpegs(&nginx.uploads().join("ref"))?;
    if ref_files != args.count || ref_bytes != total_bytes {
        bail!("reference: nginx holds {ref_files} files / {ref_bytes} bytes, expected {} / {total_bytes}", args.count);
    }
    let ref_puts = parse_puts(&nginx.access_log(), "/uploads/ref/", None)?;
    nginx.stop();

    // 6. Report.
    let load_end = loadavg();
    let n = args.count as f64;
    let mbytes = total_bytes as f64 / 1e6;
    let d_cps = fmt_rate(n, pure);
    let d_mbps = fmt_rate(mbytes, pure);
    let r_cps = fmt_rate(n, ref_wall);
    let r_mbps = fmt_rate(mbytes, ref_wall);
    let ratio = d_cps / r_cps;
    let ok = ratio >= TARGET_RATIO;
    println!();
    println!(
        "=== drain benchmark: {} captures, {:.1} MB, WebDAV nginx on loopback{}; {cpus} CPUs, load {load_start:.2} → {load_end:.2} ===",
        args.count,
        mbytes,
        if args.pg_url.is_some() { " + PostgreSQL" } else { "" }
    );
    println!(
        "{:<52} {:>9} {:>12} {:>9}",
        "", "seconds", "captures/s", "MB/s"
    );
    let row = |label: &str, secs: f64| {
        println!(
            "{:<52} {:>9.2} {:>12.1} {:>9.1}",
            label,
            secs,
            fmt_rate(n, secs),
            fmt_rate(mbytes, secs)
        );
    };
    println!(
        "{:<52} {:>9.2} {:>12.1} {:>9.1}",
        "offline ingest (POST, daemon writes locally)",
        post_wall.as_secs_f64(),
        fmt_rate(n, post_wall.as_secs_f64()),
        fmt_rate(mbytes, post_wall.as_secs_f64())
    );
    row(
        "DAEMON nginx start → all synced (incl. backoff wait)",
        all_synced.as_secs_f64(),
    );
    println!(
        "{:<52} {:>9.2}",
        "  backoff wait: nginx start → first PUT", backoff_wait
    );
    row("DAEMON pure drain: first PUT → all synced", pure);
    row(
        "  first synced → all synced (polled, 100 ms)",
        synced_window,
    );
    row("  first PUT → last PUT (nginx log)", put_window);
    row(
        &format!("REFERENCE xargs -P {} curl -T", args.parallel),
        ref_wall,
    );
    row(
        "  first PUT → last PUT (nginx log)",
        ref_puts.last_end - ref_puts.first_start,
    );
    println!();
    println!(
        "daemon/reference throughput: {ratio:.2} (target ≥ {TARGET_RATIO})   {}",
        if ok { "OK" } else { "MISS" }
    );
    println!(
        "daemon RSS: idle {:.1} MB, peak while posting {:.1} MB, before drain {:.1} MB, peak during drain {:.1} MB, VmHWM {:.1} MB",
        mb(rss_idle_kb),
        mb(rss_post_peak_kb),
        mb(rss_before_drain_kb),
        mb(rss_drain_peak_kb),
        mb(hwm_kb)
    );
    let status_of = |c: &serde_json::Value| {
        let msg = c["message"]
            .as_str()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        format!("{}{msg}", c["status"].as_str().unwrap_or("?"))
    };
    println!(
        "after the drain: outbox pending {}, remote_storage {}, remote_db {}",
        h_end["checks"]["outbox"]["pending"],
        status_of(&h_end["checks"]["remote_storage"]),
        status_of(&h_end["checks"]["remote_db"])
    );
    let line = serde_json::json!({
        "bench": "drain",
        "count": args.count,
        "bytes": total_bytes,
        "images": photos.len(),
        "parallel": args.parallel,
        "with_postgres": args.pg_url.is_some(),
        "cpus": cpus,
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "ingest_s": post_wall.as_secs_f64(),
        "nginx_start_to_drained_s": all_synced.as_secs_f64(),
        "backoff_wait_s": backoff_wait,
        "pure_drain_s": pure,
        "first_synced_to_last_s": synced_window,
        "first_put_to_last_put_s": put_window,
        "daemon_captures_per_s": d_cps,
        "daemon_mb_per_s": d_mbps,
        "reference_s": ref_wall,
        "reference_captures_per_s": r_cps,
        "reference_mb_per_s": r_mbps,
        "ratio": ratio,
        "target_ratio_min": TARGET_RATIO,
        "target_met": ok,
        "rss_idle_mb": mb(rss_idle_kb),
        "rss_post_peak_mb": mb(rss_post_peak_kb),
        "rss_drain_peak_mb": mb(rss_drain_peak_kb),
        "vm_hwm_mb": mb(hwm_kb),
    });
    println!("{line}");
    Ok(())
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_drain: {e:#}");
            std::process::exit(2);
        }
    };
    let root = match tempfile::Builder::new()
        .prefix("bench-drain-")
        .tempdir_in(&args.dir)
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "bench_drain: cannot create a temp dir in {}: {e}",
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
    // `run` stopped nginx and the daemon (their guards) on every path; now the files.
    if keep {
        println!("kept {}", root.keep().display());
    } else if let Err(e) = root.close() {
        eprintln!("bench_drain: could not remove the temp dir: {e}");
    }
    if let Err(e) = outcome {
        eprintln!("bench_drain: {e:#}");
        std::process::exit(1);
    }
}
