#![allow(clippy::disallowed_methods)]
//! Time to link: how long after its 201 does a guest's SMS reach OVH, when the kiosk's
//! uplink is a venue's (8 Mbit/s up, 40 ms round trip) — against the floor the link
//! itself sets, measured in the same run.
//!
//! ```text
//! cargo build --release --bin selfie-kiosk --example bench_link
//! target/release/examples/bench_link [--bin target/release/selfie-kiosk] [--count 30]
//!     [--up-mbit 8] [--rtt-ms 40] [--images 3]
//! ```
//!
//! Flow:
//! 1. real PostgreSQL, nginx (WebDAV) and the OVH-faithful server of `tests/support/`,
//!    each behind the test proxy in its shaping mode (`Mode::Shaped`: the upload's
//!    bandwidth, a round trip per direction and per connection);
//! 2. the daemon with its remotes through those proxies, warmed up by one capture + SMS
//!    (connections made, remote schema migrated, OVH's clock offset known);
//! 3. `--count` times, one guest after the other: the FLOOR first — the same photo PUT to
//!    the same nginx through the same proxy by a plain HTTP client (a warm connection,
//!    like the daemon's pool) — then the app's sequence: `POST /api/capture` (raw JPEG,
//!    local), `POST /api/send-sms` at once, and the time from the 201 until the OVH server
//!    has the text (polled every millisecond in this process);
//! 4. prints p50/p95 of both, the ratio of the p50s (target ≤ 1.3) against the floor
//!    (PUT + the two round trips the protocol needs after it: the PostgreSQL upsert and
//!    OVH's `POST /sms/{service}/jobs`), where the time goes (from the catalog's own
//!    timestamps: remote file, remote row, SMS attempt), and one JSON line (the last).
//!
//! Needs nginx (WebDAV), PostgreSQL: `tools/install-test-deps.sh` installs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../tests/support/images.rs"]
mod images;
#[allow(dead_code)]
#[path = "../tests/support/nginx.rs"]
mod nginx;
#[allow(dead_code)]
#[path = "../tests/support/ovh.rs"]
mod ovh;
#[allow(dead_code)]
#[path = "../tests/support/pg.rs"]
mod pg;
#[allow(dead_code)]
#[path = "../tests/support/proxy.rs"]
mod proxy;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};

use proxy::{Mode, Proxy, Shape};

const ADMIN_KEY: &str = "bench-admin-key-0123456789abcdef";
const PHOTO_BYTES: usize = 1_600_000;
const TARGET_RATIO: f64 = 1.3;
/// Round trips the protocol needs after the upload: the PostgreSQL upsert, OVH's POST.
const PROTOCOL_ROUND_TRIPS: u32 = 2;

struct Args {
    bin: PathBuf,
    count: usize,
    up_mbit: f64,
    rtt_ms: u64,
    images: usize,
}

fn parse_args() -> Result<Args> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let mut a = Args {
        bin: PathBuf::from(format!("{target}/release/selfie-kiosk")),
        count: 30,
        up_mbit: 8.0,
        rtt_ms: 40,
        images: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().with_context(|| format!("{k} needs a value"));
        match k.as_str() {
            "--bin" => a.bin = PathBuf::from(v()?),
            "--count" => a.count = v()?.parse()?,
            "--up-mbit" => a.up_mbit = v()?.parse()?,
            "--rtt-ms" => a.rtt_ms = v()?.parse()?,
            "--images" => a.images = v()?.parse::<usize>()?.max(1),
            "-h" | "--help" => {
                println!("usage: bench_link [--bin PATH] [--count N] [--up-mbit M] [--rtt-ms MS] [--images N]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other} (see --help)"),
        }
    }
    Ok(a)
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `p`-th percentile (nearest rank) of `v`.
fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

struct Daemon {
    child: Child,
    base: String,
    data: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One guest: what the bench saw and what the catalog recorded (Unix ms).
#[derive(Debug, Default, Clone)]
struct Guest {
    floor_put_ms: f64,
    link_ms: f64,
    created: i64,
    sms_requested: i64,
    remote_file: i64,
    remote_db: i64,
    attempt_started: i64,
    at_ovh: i64,
}

async fn wait_healthy(client: &reqwest::Client, d: &mut Daemon) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = d.child.try_wait()? {
            bail!("the daemon exited at start: {status}");
        }
        // Listening is enough: the warm-up guest then waits for the remotes.
        if client
            .get(format!("{}/health", d.base))
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the daemon did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn start_daemon(args: &Args, nginx_url: &str, pg_url: &str, ovh_url: &str) -> Result<Daemon> {
    let data = tempfile::tempdir()?;
    let port = pg::free_port();
    let child = Command::new(&args.bin)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KIOSK_DATA_DIR", data.path().join("data"))
        .env("KIOSK_LISTEN", format!("127.0.0.1:{port}"))
        .env("KIOSK_ID", "bench-link")
        .env("ADMIN_API_KEY", ADMIN_KEY)
        .env("KIOSK_LOG", "warn")
        .env("REMOTE_STORAGE_URL", nginx_url)
        .env("PUBLIC_BASE_URL", nginx_url)
        .env("REMOTE_DATABASE_URL", pg_url)
        .env("OVH_ENDPOINT", ovh_url)
        .env("OVH_APP_KEY", ovh::APP_KEY)
        .env("OVH_APP_SECRET", ovh::APP_SECRET)
        .env("OVH_CONSUMER_KEY", ovh::CONSUMER_KEY)
        .env("SMS_SERVICE_NAME", ovh::SERVICE)
        .env("SMS_SENDER", ovh::SENDER)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(data.path().join("daemon.log"))?)
        .spawn()
        .with_context(|| format!("starting {} (build it with --release)", args.bin.display()))?;
    Ok(Daemon {
        child,
        base: format!("http://127.0.0.1:{port}"),
        data,
    })
}

/// Capture, send-sms at once, then wait for OVH to have one more job than `before`.
async fn one_guest(
    client: &reqwest::Client,
    d: &Daemon,
    ovh: &ovh::OvhTestServer,
    photo: &[u8],
    phone: &str,
) -> Result<(String, Guest)> {
    let before = ovh.sent_jobs().len();
    let r = client
        .post(format!("{}/api/capture", d.base))
        .header("content-type", "image/jpeg")
        .body(photo.to_vec())
        .send()
        .await?;
    let t0 = Instant::now();
    let created_unix = unix_ms();
    if r.status() != reqwest::StatusCode::CREATED {
        bail!("capture answered {}", r.status());
    }
    let id = r.json::<Value>().await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let r = client
        .post(format!("{}/api/send-sms", d.base))
        .json(&json!({"capture_id": id, "phone": phone, "consent": "bench"}))
        .send()
        .await?;
    let sms_requested = unix_ms();
    if r.status() != reqwest::StatusCode::ACCEPTED {
        bail!("send-sms answered {}: {}", r.status(), r.text().await?);
    }
    let deadline = t0 + Duration::from_secs(120);
    while ovh.sent_jobs().len() <= before {
        if Instant::now() > deadline {
            bail!("no SMS at OVH 120 s after the capture");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let link = t0.elapsed();
    let g = Guest {
        link_ms: ms(link),
        created: created_unix,
        sms_requested,
        at_ovh: created_unix + link.as_millis() as i64,
        ..Guest::default()
    };
    Ok((id, g))
}

/// The catalog's own timestamps for one capture and its SMS.
fn catalog_marks(d: &Daemon, id: &str, g: &mut Guest) -> Result<()> {
    let db = rusqlite::Connection::open(d.data.path().join("data/catalog.sqlite3"))?;
    let (file, row): (Option<i64>, Option<i64>) = db.query_row(
        "SELECT remote_file_ms, remote_db_ms FROM captures WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let attempt: Option<i64> = db.query_row(
        "SELECT attempt_started_ms FROM sms WHERE capture_id = ?1",
        [id],
        |r| r.get(0),
    )?;
    g.remote_file = file.unwrap_or(0);
    g.remote_db = row.unwrap_or(0);
    g.attempt_started = attempt.unwrap_or(0);
    Ok(())
}

async fn run(args: Args) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    eprintln!(
        "bench-link: {} photo-like images of ~{} bytes…",
        args.images, PHOTO_BYTES
    );
    let photos: Vec<Vec<u8>> = (0..args.images as u32)
        .map(|s| images::photo_like(s + 1, PHOTO_BYTES))
        .collect();
    let pg = pg::PgCluster::new();
    let nginx = nginx::Nginx::start();
    let ovh = ovh::OvhTestServer::start_default();
    let shape = Shape::new(args.up_mbit, 0.0, args.rtt_ms);
    let (pp, np, op) = (
        Proxy::to_port(pg.port()),
        Proxy::to_port(nginx.port()),
        Proxy::start(ovh.addr()),
    );
    for p in [&pp, &np, &op] {
        p.set_mode(Mode::Shaped(shape));
    }
    let nginx_url = nginx.base_url_with_port(np.port());
    let ovh_url = format!("http://127.0.0.1:{}/1.0", op.port());
    let mut d = start_daemon(&args, &nginx_url, &pg.url_with_port(pp.port()), &ovh_url)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    wait_healthy(&client, &mut d).await?;

    // Warm-up: connections, remote migrations, OVH's clock offset; the floor's client too.
    one_guest(&client, &d, &ovh, &photos[0], "+33612340000").await?;
    let floor_client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    floor_client
        .put(format!("{nginx_url}floor-warmup.jpg"))
        .body(photos[0].clone())
        .send()
        .await?
        .error_for_status()?;

    let mut guests = Vec::with_capacity(args.count);
    for i in 0..args.count {
        let photo = &photos[i % photos.len()];
        let t = Instant::now();
        floor_client
            .put(format!("{nginx_url}floor-{i}.jpg"))
            .body(photo.clone())
            .send()
            .await?
            .error_for_status()?;
        let floor_put = ms(t.elapsed());
        let phone = format!("+336123{:05}", i + 1);
        let (id, mut g) = one_guest(&client, &d, &ovh, photo, &phone).await?;
        g.floor_put_ms = floor_put;
        catalog_marks(&d, &id, &mut g)?;
        eprintln!(
            "  guest {:>2}: link {:>7.1} ms   floor PUT {:>7.1} ms",
            i + 1,
            g.link_ms,
            g.floor_put_ms
        );
        guests.push(g);
    }

    let rtt = args.rtt_ms as f64;
    let link: Vec<f64> = guests.iter().map(|g| g.link_ms).collect();
    let put: Vec<f64> = guests.iter().map(|g| g.floor_put_ms).collect();
    let floor: Vec<f64> = put
        .iter()
        .map(|p| p + f64::from(PROTOCOL_ROUND_TRIPS) * rtt)
        .collect();
    let seg = |f: &dyn Fn(&Guest) -> i64| -> f64 {
        pct(
            &guests.iter().map(|g| f(g) as f64).collect::<Vec<_>>(),
            50.0,
        )
    };
    let to_file = seg(&|g| g.remote_file - g.created);
    let file_to_row = seg(&|g| g.remote_db - g.remote_file);
    let row_to_attempt = seg(&|g| g.attempt_started - g.remote_db);
    let attempt_to_ovh = seg(&|g| g.at_ovh - g.attempt_started);
    let sms_request = seg(&|g| g.sms_requested - g.created);
    let (l50, l95, f50, f95) = (
        pct(&link, 50.0),
        pct(&link, 95.0),
        pct(&floor, 50.0),
        pct(&floor, 95.0),
    );
    let ratio = l50 / f50;

    println!();
    println!(
        "time to link: {} guests, {:.1} MB photos, {} Mbit/s up, {} ms round trip",
        guests.len(),
        photos[0].len() as f64 / 1e6,
        args.up_mbit,
        args.rtt_ms
    );
    println!("| measure | p50 ms | p95 ms |");
    println!("| --- | ---: | ---: |");
    println!("| 201 → SMS at OVH (daemon) | {l50:.1} | {l95:.1} |");
    println!(
        "| plain PUT through the same proxy | {:.1} | {:.1} |",
        pct(&put, 50.0),
        pct(&put, 95.0)
    );
    println!("| floor = PUT + {PROTOCOL_ROUND_TRIPS} round trips | {f50:.1} | {f95:.1} |");
    println!();
    println!("ratio p50 daemon / floor: {ratio:.3} (target ≤ {TARGET_RATIO})");
    println!("where the time goes (p50 of each step, catalog timestamps):");
    println!("  201 → send-sms answered          {sms_request:>7.1} ms");
    println!("  201 → file in remote storage     {to_file:>7.1} ms");
    println!("  file → row in PostgreSQL         {file_to_row:>7.1} ms");
    println!("  row → SMS attempt starts         {row_to_attempt:>7.1} ms");
    println!("  attempt → OVH has the text       {attempt_to_ovh:>7.1} ms");
    let out = json!({
        "bench": "link",
        "guests": guests.len(),
        "photo_bytes": photos[0].len(),
        "up_mbit": args.up_mbit,
        "rtt_ms": args.rtt_ms,
        "link_p50_ms": l50,
        "link_p95_ms": l95,
        "put_p50_ms": pct(&put, 50.0),
        "floor_p50_ms": f50,
        "floor_p95_ms": f95,
        "ratio_p50": ratio,
        "target_ratio": TARGET_RATIO,
        "steps_p50_ms": {
            "to_remote_file": to_file,
            "file_to_remote_row": file_to_row,
            "row_to_sms_attempt": row_to_attempt,
            "attempt_to_ovh": attempt_to_ovh,
        },
    });
    println!("{out}");
    drop(d);
    Ok(())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(args))
}
