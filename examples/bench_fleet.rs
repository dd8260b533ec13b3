#![allow(clippy::disallowed_methods)]
//! Fleet benchmark: N kiosks (default 50), each with a backlog of M photo-like captures
//! (default 40), start at the same moment against one empty PostgreSQL and one nginx —
//! first directly, then through PgBouncer in transaction pooling.
//!
//! ```text
//! cargo build --bin selfie-kiosk --example bench_fleet
//! target/debug/examples/bench_fleet --bin target/debug/selfie-kiosk [--kiosks 50]
//!     [--captures 40] [--width 640] [--height 480] [--pool 10] [--timeout 240]
//! ```
//!
//! Per run: the backlogs are seeded offline (daemons whose remotes are ports nobody
//! listens on, stopped once the captures are in), then a fresh PostgreSQL, nginx (and
//! PgBouncer) start, all daemons are spawned at once pointed at them, and the VPS side is
//! polled every 250 ms until every row and file is there and every kiosk has sent a
//! heartbeat. Checked: exactly N×M rows (no duplicate (kiosk, id)), M per kiosk, N×M photos and N×M share pages,
//! N heartbeats, every migration applied once. Reported: drain time, the most client
//! connections PostgreSQL had at once (`pg_stat_activity`, sampled), and the CPU seconds
//! of the VPS-side processes (postgres with its reaped backends, nginx master and workers,
//! pgbouncer) from `/proc`. The last line is a JSON summary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The tests' fixtures, as top-level modules (their `super::pg` is then this crate's `pg`).
#[allow(dead_code)]
#[path = "../tests/support/images.rs"]
mod images;
#[allow(dead_code)]
#[path = "../tests/support/nginx.rs"]
mod nginx;
#[allow(dead_code)]
#[path = "../tests/support/pg.rs"]
mod pg;
#[allow(dead_code)]
#[path = "../tests/support/pgbouncer.rs"]
mod pgbouncer;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use nginx::Nginx;
use pg::PgCluster;
use pgbouncer::{PgBouncer, PgBouncerOptions};

struct Args {
    bin: PathBuf,
    kiosks: usize,
    captures: usize,
    width: u32,
    height: u32,
    pool: u32,
    timeout: Duration,
}

fn args() -> Result<Args> {
    let mut a = Args {
        bin: PathBuf::from("target/debug/selfie-kiosk"),
        kiosks: 50,
        captures: 40,
        width: 640,
        height: 480,
        pool: 10,
        timeout: Duration::from_secs(240),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().context("missing value");
        match k.as_str() {
            "--bin" => a.bin = PathBuf::from(v()?),
            "--kiosks" => a.kiosks = v()?.parse()?,
            "--captures" => a.captures = v()?.parse()?,
            "--width" => a.width = v()?.parse()?,
            "--height" => a.height = v()?.parse()?,
            "--pool" => a.pool = v()?.parse()?,
            "--timeout" => a.timeout = Duration::from_secs(v()?.parse()?),
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

struct Kiosk {
    id: String,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Kiosk {
    fn spawn(&mut self, bin: &Path, db: &str, dav: &str) -> Result<()> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("daemon.log"))?;
        let child = Command::new(bin)
            .arg("serve")
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("KIOSK_DATA_DIR", self.dir.join("data"))
            .env("KIOSK_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("KIOSK_ID", &self.id)
            .env("ADMIN_API_KEY", "bench-admin-key-0123456789abcdef")
            .env("KIOSK_LOG", "warn")
            .env("KIOSK_HEARTBEAT_SECS", "5")
            .env("REMOTE_DATABASE_URL", db)
            .env("REMOTE_STORAGE_URL", dav)
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("spawn selfie-kiosk")?;
        self.child = Some(child);
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Kiosk {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn wait_listening(http: &reqwest::Client, port: u16) -> Result<()> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        if http
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("kiosk on {port} not listening after 60 s")
}

/// Seeds every kiosk's backlog offline, ten at a time (then stops them).
async fn seed(a: &Args, root: &Path, http: &reqwest::Client, run: &str) -> Result<Vec<Kiosk>> {
    let dead_db = format!("postgresql://kiosk:x@127.0.0.1:{}/kiosk", pg::free_port());
    let dead_dav = format!("http://127.0.0.1:{}/uploads/", pg::free_port());
    let mut kiosks: Vec<Kiosk> = (0..a.kiosks)
        .map(|i| Kiosk {
            id: format!("kiosk-{i:03}"),
            dir: root.join(format!("{run}-{i:03}")),
            port: pg::free_port(),
            child: None,
        })
        .collect();
    for k in &kiosks {
        fs::create_dir_all(&k.dir)?;
    }
    // The same set of photos on every kiosk (each kiosk's rows are its own all the same):
    // making 2,000 distinct JPEGs in a debug build took most of ten minutes on a loaded
    // machine, and what is measured is the drain, not the seeding.
    let photos: Vec<bytes::Bytes> = (0..a.captures)
        .map(|j| bytes::Bytes::from(images::jpeg(a.width, a.height, 1000 + j as u32)))
        .collect();
    for batch in kiosks.chunks_mut(10) {
        for k in batch.iter_mut() {
            k.spawn(&a.bin, &dead_db, &dead_dav)?;
        }
        let mut posts = Vec::new();
        for k in batch.iter() {
            wait_listening(http, k.port).await?;
            for img in photos.iter().cloned() {
                let url = format!("http://127.0.0.1:{}/api/capture", k.port);
                let http = http.clone();
                posts.push(tokio::spawn(async move {
                    let r = http
                        .post(url)
                        .header("content-type", "image/jpeg")
                        .body(img)
                        .send()
                        .await?;
                    if r.status() != reqwest::StatusCode::CREATED {
                        bail!("capture answered {}", r.status());
                    }
                    Ok::<_, anyhow::Error>(())
                }));
            }
        }
        for p in posts {
            p.await??;
        }
        for k in batch.iter_mut() {
            k.stop();
        }
    }
    Ok(kiosks)
}

/// utime+stime (and, with `children`, the reaped children's) of `pid`, in clock ticks.
fn ticks(pid: u32, children: bool) -> u64 {
    let Ok(s) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else {
        return 0;
    };
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // After the comm: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    let own = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    if children {
        own + f.get(13).copied().unwrap_or(0) + f.get(14).copied().unwrap_or(0)
    } else {
        own
    }
}

fn ppid_and_cmd(pid: u32) -> Option<(u32, String)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
    let cmd = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some((ppid, String::from_utf8_lossy(&cmd).replace('\0', " ")))
}

fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// CPU ticks of a process and its live children, plus its reaped children.
fn tree_ticks(root: u32) -> u64 {
    let mut total = ticks(root, true);
    for pid in all_pids() {
        if let Some((ppid, _)) = ppid_and_cmd(pid) {
            if ppid == root {
                total += ticks(pid, false);
            }
        }
    }
    total
}

fn postmaster_pid(pg: &PgCluster) -> Result<u32> {
    let s = fs::read_to_string(pg.dir().join("data/postmaster.pid"))?;
    Ok(s.lines()
        .next()
        .context("empty postmaster.pid")?
        .trim()
        .parse()?)
}

fn nginx_master_pid(nginx: &Nginx) -> Result<u32> {
    // root() is <dir>/www/uploads; the master's command line names <dir>.
    let dir = nginx
        .root()
        .parent()
        .and_then(Path::parent)
        .context("nginx root")?
        .display()
        .to_string();
    all_pids()
        .into_iter()
        .find(|p| {
            ppid_and_cmd(*p)
                .map(|(_, c)| c.contains("master process") && c.contains(&dir))
                .unwrap_or(false)
        })
        .context("nginx master not found")
}

/// A count, 0 while no kiosk has created the table yet.
async fn count(c: &tokio_postgres::Client, sql: &str) -> Result<i64> {
    match c.query_one(sql, &[]).await {
        Ok(r) => Ok(r.get(0)),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Ok(0),
        Err(e) => bail!("{sql}: {}", selfie_kiosk::net::pg::describe(&e)),
    }
}

struct Figures {
    drain_s: f64,
    max_pg_clients: i64,
    pg_cpu_s: f64,
    nginx_cpu_s: f64,
    bouncer_cpu_s: f64,
    rows: i64,
    files: usize,
}

/// Copies of the seeded kiosks' directories (same ids, same backlogs) for one run.
fn copies(seeded: &[Kiosk], root: &Path, name: &str) -> Result<Vec<Kiosk>> {
    let mut out = Vec::new();
    for (i, k) in seeded.iter().enumerate() {
        let dir = root.join(format!("{name}-{i:03}"));
        let st = Command::new("cp")
            .arg("-a")
            .arg(&k.dir)
            .arg(&dir)
            .status()?;
        if !st.success() {
            bail!("cp -a {} failed", k.dir.display());
        }
        out.push(Kiosk {
            id: k.id.clone(),
            dir,
            port: pg::free_port(),
            child: None,
        });
    }
    Ok(out)
}

async fn run(a: &Args, root: &Path, seeded: &[Kiosk], pooled: bool) -> Result<Figures> {
    let name = if pooled { "pooled" } else { "direct" };
    let mut kiosks = copies(seeded, root, name)?;
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    let bouncer = pooled.then(|| {
        PgBouncer::start_with(
            &pg,
            PgBouncerOptions {
                pool_size: a.pool,
                max_client_conn: 1000,
            },
        )
    });
    let db_url = bouncer
        .as_ref()
        .map(|b| b.url())
        .unwrap_or_else(|| pg.url());
    let (monitor, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let (pm, nm) = (postmaster_pid(&pg)?, nginx_master_pid(&nginx)?);
    let bpid = bouncer.as_ref().map(|b| b.pid());
    let (pg0, ng0, b0) = (tree_ticks(pm), tree_ticks(nm), bpid.map(|p| ticks(p, true)));

    let started = Instant::now();
    for k in kiosks.iter_mut() {
        k.spawn(&a.bin, &db_url, &nginx.base_url())?;
    }
    let want = (a.kiosks * a.captures) as i64;
    let mut max_clients = 0i64;
    let drain = loop {
        let clients: i64 = monitor
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
                &[],
            )
            .await?
            .get(0);
        max_clients = max_clients.max(clients);
        let rows = count(&monitor, "SELECT count(*) FROM kiosk_captures").await?;
        let beats = count(&monitor, "SELECT count(*) FROM kiosk_heartbeats").await?;
        let files = nginx.stored_files().len() as i64;
        if rows >= want && files >= 2 * want && beats >= a.kiosks as i64 {
            break started.elapsed();
        }
        if started.elapsed() > a.timeout {
            bail!(
                "{name}: after {:?}: {rows}/{want} rows, {files} files, {beats} heartbeats",
                a.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let (pg1, ng1, b1) = (tree_ticks(pm), tree_ticks(nm), bpid.map(|p| ticks(p, true)));
    let tick = 100.0; // USER_HZ on Linux
                      // No duplicate, nothing missing.
    let check = monitor
        .query_one(
            "SELECT count(*), count(DISTINCT (kiosk_id, id)), count(DISTINCT kiosk_id),
                    min(n), max(n)
             FROM kiosk_captures, LATERAL (SELECT count(*) AS n FROM kiosk_captures c2
                                           WHERE c2.kiosk_id = kiosk_captures.kiosk_id) AS per",
            &[],
        )
        .await?;
    let (rows, distinct, kiosks_seen, min_n, max_n): (i64, i64, i64, i64, i64) = (
        check.get(0),
        check.get(1),
        check.get(2),
        check.get(3),
        check.get(4),
    );
    // Each capture is its photo and its share page (`{token}.jpg`, `{token}.html`).
    let stored = nginx.stored_files();
    let photos = stored.iter().filter(|f| f.ends_with(".jpg")).count() as i64;
    let pages = stored.iter().filter(|f| f.ends_with(".html")).count() as i64;
    let files = stored.len();
    let migrations: (i64, i64) = {
        let r = monitor
            .query_one(
                "SELECT count(*), count(DISTINCT version) FROM selfie_kiosk_migrations",
                &[],
            )
            .await?;
        (r.get(0), r.get(1))
    };
    let want_m = selfie_kiosk::sync::remote_db::REMOTE_MIGRATIONS.len() as i64;
    if rows != want
        || distinct != want
        || kiosks_seen != a.kiosks as i64
        || min_n != a.captures as i64
        || max_n != a.captures as i64
        || photos != want
        || pages != want
        || files as i64 != 2 * want
        || migrations != (want_m, want_m)
    {
        bail!("{name}: rows {rows} distinct {distinct} kiosks {kiosks_seen} per kiosk {min_n}..{max_n} files {files} migrations {migrations:?}");
    }
    let mut errors: HashMap<String, usize> = HashMap::new();
    for k in kiosks.iter_mut() {
        k.stop();
        let log = fs::read_to_string(k.dir.join("daemon.log")).unwrap_or_default();
        for l in log
            .lines()
            .filter(|l| l.contains("prepared statement") || l.contains("duplicate key"))
        {
            *errors.entry(l.chars().take(120).collect()).or_default() += 1;
        }
    }
    if !errors.is_empty() {
        bail!("{name}: errors in the daemons' logs: {errors:?}");
    }
    for k in &kiosks {
        let _ = fs::remove_dir_all(&k.dir);
    }
    Ok(Figures {
        drain_s: drain.as_secs_f64(),
        max_pg_clients: max_clients,
        pg_cpu_s: (pg1 - pg0) as f64 / tick,
        nginx_cpu_s: (ng1 - ng0) as f64 / tick,
        bouncer_cpu_s: match (b0, b1) {
            (Some(x), Some(y)) => (y - x) as f64 / tick,
            _ => 0.0,
        },
        rows,
        files,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut a = args()?;
    if !a.bin.is_file() {
        bail!(
            "{} not found: build it (cargo build --bin selfie-kiosk)",
            a.bin.display()
        );
    }
    // The daemons run in their own directories.
    a.bin = fs::canonicalize(&a.bin)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let root = tempfile::Builder::new()
        .prefix("bench-fleet-")
        .tempdir_in(pg::scratch_base())?;
    let sample = images::jpeg(a.width, a.height, 1).len();
    println!(
        "bench-fleet: {} kiosks × {} captures of {}×{} (~{} KB), binary {}",
        a.kiosks,
        a.captures,
        a.width,
        a.height,
        sample / 1024,
        a.bin.display()
    );
    let t = Instant::now();
    let seeded = seed(&a, root.path(), &http, "seed").await?;
    println!(
        "seeded {} backlogs offline in {:.1} s",
        seeded.len(),
        t.elapsed().as_secs_f64()
    );
    let direct = run(&a, root.path(), &seeded, false).await?;
    let pooled = run(&a, root.path(), &seeded, true).await?;
    println!(
        "{:<28} {:>10} {:>12} {:>12} {:>12} {:>14}",
        "run", "drain (s)", "max PG conns", "postgres CPU", "nginx CPU", "pgbouncer CPU"
    );
    for (name, f) in [("direct", &direct), ("PgBouncer (transaction)", &pooled)] {
        println!(
            "{:<28} {:>10.1} {:>12} {:>11.2}s {:>11.2}s {:>13.2}s",
            name, f.drain_s, f.max_pg_clients, f.pg_cpu_s, f.nginx_cpu_s, f.bouncer_cpu_s
        );
    }
    let captures = direct.rows as f64;
    let vps_cpu_per_capture =
        (pooled.pg_cpu_s + pooled.nginx_cpu_s + pooled.bouncer_cpu_s) / captures;
    // One VPS core at 50 % for the remote side: how many captures per hour, and so how
    // many kiosks at a busy 300 captures an hour each (an event peak).
    let per_hour = 0.5 * 3600.0 / vps_cpu_per_capture;
    println!(
        "VPS CPU per synced capture (pooled run, rows + file + heartbeats): {:.2} ms; one core at 50 %: ~{:.0} captures/hour, ~{:.0} kiosks at 300 captures/hour",
        vps_cpu_per_capture * 1000.0,
        per_hour,
        per_hour / 300.0
    );
    println!(
        "{{\"kiosks\":{},\"captures_per_kiosk\":{},\"rows\":{},\"files\":{},\"direct\":{{\"drain_s\":{:.2},\"max_pg_conns\":{},\"postgres_cpu_s\":{:.2},\"nginx_cpu_s\":{:.2}}},\"pooled\":{{\"drain_s\":{:.2},\"max_pg_conns\":{},\"postgres_cpu_s\":{:.2},\"nginx_cpu_s\":{:.2},\"pgbouncer_cpu_s\":{:.2}}},\"vps_cpu_ms_per_capture\":{:.3}}}",
        a.kiosks, a.captures, direct.rows, direct.files,
        direct.drain_s, direct.max_pg_clients, direct.pg_cpu_s, direct.nginx_cpu_s,
        pooled.drain_s, pooled.max_pg_clients, pooled.pg_cpu_s, pooled.nginx_cpu_s, pooled.bouncer_cpu_s,
        vps_cpu_per_capture * 1000.0
    );
    Ok(())
}
