//! Retention cleanup benchmark: how long does removing 100,000 expired captures (rows and
//! files) take, and how responsive is the API meanwhile?
//!
//! ```text
//! tools/bench-cleanup.sh [--rows 100000] [--bin target/release/selfie-kiosk]
//! ```
//!
//! 1. generates `--rows` captures 40 days old straight into a fresh catalog (library,
//!    one transaction) and a small JPEG file for each on disk;
//! 2. starts the daemon with `RETENTION_DAYS=3650` (nothing expires) and measures the
//!    request latency at rest: a client alternating `GET /health` and a raw 2 KB
//!    `POST /api/capture`, back to back;
//! 3. sets `retention_days` to 30 (`PUT /admin/config`) and runs `POST /admin/cleanup`
//!    while the same client keeps going; reports the cleanup time, captures/s, and the
//!    latency (p50/p99/max) during the cleanup against the baseline;
//! 4. checks nothing old is left (rows and files) and stops the daemon.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use selfie_kiosk::catalog::{self, Catalog, NewCapture};

const ADMIN_KEY: &str = "bench-admin-key-0123456789abcdef";
const DAY_MS: i64 = 86_400_000;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn small_jpeg(seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(48, 32, |x, y| {
        image::Rgb([(x * 5 + seed) as u8, (y * 7) as u8, seed as u8])
    });
    let mut out = Vec::new();
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
        &mut out, 90,
    ))
    .unwrap();
    out
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs the probe client until `stop`; returns latencies in ms.
async fn probe(client: reqwest::Client, base: String, stop: Arc<AtomicBool>) -> Vec<f64> {
    let img = small_jpeg(7);
    let mut lat = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let ok = if i.is_multiple_of(2) {
            client
                .get(format!("{base}/health"))
                .send()
                .await
                .map(|r| r.status().as_u16() < 500)
        } else {
            client
                .post(format!("{base}/api/capture"))
                .header("content-type", "image/jpeg")
                .body(img.clone())
                .send()
                .await
                .map(|r| r.status().as_u16() < 300)
        };
        if !matches!(ok, Ok(true)) {
            eprintln!("probe request {i} failed: {ok:?}");
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    lat
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rows: usize = arg("--rows").map(|s| s.parse().unwrap()).unwrap_or(100_000);
    let bin = PathBuf::from(arg("--bin").unwrap_or_else(|| "target/release/selfie-kiosk".into()));
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let uploads = data.join("uploads");
    std::fs::create_dir_all(&uploads).unwrap();

    // 1. The expired backlog.
    let t = Instant::now();
    let cat = Catalog::open(&data.join("catalog.sqlite3")).unwrap();
    let now = selfie_kiosk::clock::system_now_ms();
    let jpeg = small_jpeg(1);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&jpeg))
    };
    cat.write_blocking(|tx| {
        for i in 0..rows {
            let id = format!("{:032x}", i as u128 + 1);
            catalog::insert_capture(
                tx,
                &NewCapture {
                    id: id.clone(),
                    created_ms: now - 40 * DAY_MS + i as i64,
                    taken_at: None,
                    background_id: None,
                    bytes: jpeg.len() as i64,
                    width: 48,
                    height: 32,
                    sha256: sha.clone(),
                    source_sha256: sha.clone(),
                    source_format: "jpeg".into(),
                },
            )?;
            catalog::mark_synced(tx, &id, now - 40 * DAY_MS)?;
        }
        Ok(())
    })
    .unwrap();
    drop(cat);
    for i in 0..rows {
        std::fs::write(uploads.join(format!("{:032x}.jpg", i as u128 + 1)), &jpeg).unwrap();
    }
    println!(
        "generated {rows} expired captures (rows + files) in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // 2. The daemon, nothing expiring yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(&bin)
        .arg("serve")
        .env("KIOSK_DATA_DIR", &data)
        .env("KIOSK_LISTEN", format!("127.0.0.1:{port}"))
        .env("ADMIN_API_KEY", ADMIN_KEY)
        .env("RETENTION_DAYS", "3650")
        .env("KIOSK_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the daemon (build it: cargo build --release)");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let t = Instant::now();
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "daemon did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "daemon ready after {:.1} s (start-up reconciliation of {rows} files)",
        t.elapsed().as_secs_f64()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let h = tokio::spawn(probe(client.clone(), base.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut baseline = h.await.unwrap();

    // 3. Expire them all and clean, with the probe running.
    let r = client
        .put(format!("{base}/admin/config"))
        .header("x-api-key", ADMIN_KEY)
        .json(&serde_json::json!({"retention_days": 30}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "PUT /admin/config: {}", r.status());
    let stop = Arc::new(AtomicBool::new(false));
    let h = tokio::spawn(probe(client.clone(), base.clone(), stop.clone()));
    let t = Instant::now();
    let r = client
        .post(format!("{base}/admin/cleanup"))
        .header("x-api-key", ADMIN_KEY)
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .unwrap();
    let took = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut during = h.await.unwrap();
    let report: serde_json::Value = r.json().await.unwrap();
    let removed = report["removed"].as_u64().unwrap_or(0);

    // 4. Nothing old left.
    let left_files = std::fs::read_dir(&uploads)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .map(|e| e.file_name().to_string_lossy().starts_with("0000"))
                .unwrap_or(false)
        })
        .count();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();

    let (b50, b99, bmax) = (
        pct(&mut baseline, 0.5),
        pct(&mut baseline, 0.99),
        pct(&mut baseline, 1.0),
    );
    let (d50, d99, dmax) = (
        pct(&mut during, 0.5),
        pct(&mut during, 0.99),
        pct(&mut during, 1.0),
    );
    println!();
    println!("cleanup of {removed} expired captures: {took:.2} s ({:.0} captures/s), old files left: {left_files}", removed as f64 / took);
    println!("API latency (GET /health + POST /api/capture 2 KB, back to back):");
    println!(
        "  at rest          n={:5}  p50 {b50:7.2} ms  p99 {b99:7.2} ms  max {bmax:7.2} ms",
        baseline.len()
    );
    println!(
        "  during cleanup   n={:5}  p50 {d50:7.2} ms  p99 {d99:7.2} ms  max {dmax:7.2} ms",
        during.len()
    );
    println!(
        "  ratio during/rest: p50 {:.2}x, p99 {:.2}x",
        d50 / b50.max(0.001),
        d99 / b99.max(0.001)
    );
    println!(
        "{}",
        serde_json::json!({"bench": "cleanup", "rows": rows, "removed": removed, "seconds": took,
            "per_second": removed as f64 / took, "left_files": left_files,
            "rest_ms": {"p50": b50, "p99": b99, "max": bmax},
            "during_ms": {"p50": d50, "p99": d99, "max": dmax}})
    );
    if removed as usize != rows || left_files != 0 {
        std::process::exit(1);
    }
}
