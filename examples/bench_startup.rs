//! Start-up benchmark: time from `exec` to READY (the `READY=1` sd_notify datagram) with a
//! big data directory against an empty one, measured alternately in one run.
//!
//! ```text
//! tools/bench-startup.sh [--captures 100000] [--runs 5] [--bin target/release/selfie-kiosk]
//! ```
//!
//! The full data directory holds `--captures` captures (rows and small files), 2 % of them
//! not synced yet, with a remote configured that is not there (the kiosk is offline), so
//! the recovery after READY has files to list, rows to read and sync jobs to check. Both
//! kinds of start run with the same environment; each is also timed to the end of the
//! start-up recovery (`/health`: worker `recovery` done), which now runs after READY.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use selfie_kiosk::catalog::{self, Catalog, NewCapture};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn small_jpeg() -> Vec<u8> {
    let img =
        image::RgbImage::from_fn(48, 32, |x, y| image::Rgb([(x * 5) as u8, (y * 7) as u8, 9]));
    let mut out = Vec::new();
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
        &mut out, 90,
    ))
    .unwrap();
    out
}

fn seed(data: &Path, captures: usize) {
    let uploads = data.join("uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    let jpeg = small_jpeg();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&jpeg))
    };
    let cat = Catalog::open(&data.join("catalog.sqlite3")).unwrap();
    let now = selfie_kiosk::clock::system_now_ms();
    let len = jpeg.len() as i64;
    cat.write_blocking(|tx| {
        for i in 0..captures {
            let id = format!("{:032x}", i as u128 + 1);
            catalog::insert_capture(
                tx,
                &NewCapture {
                    id: id.clone(),
                    created_ms: now - 86_400_000 + i as i64,
                    taken_at: None,
                    background_id: None,
                    bytes: len,
                    width: 48,
                    height: 32,
                    sha256: sha.clone(),
                    source_sha256: sha.clone(),
                    source_format: "jpeg".into(),
                },
            )?;
            if i % 50 != 0 {
                catalog::mark_synced(tx, &id, now)?;
            }
        }
        Ok(())
    })
    .unwrap();
    drop(cat);
    for i in 0..captures {
        std::fs::write(uploads.join(format!("{:032x}.jpg", i as u128 + 1)), &jpeg).unwrap();
    }
}

struct Start {
    ready: Duration,
    recovered: Duration,
}

/// Starts the daemon on `data`, waits for READY=1, then for the recovery; stops it.
fn start(bin: &Path, data: &Path, sock_dir: &Path) -> Start {
    let sock_path = sock_dir.join("notify.sock");
    let _ = std::fs::remove_file(&sock_path);
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t0 = Instant::now();
    let mut child = Command::new(bin)
        .arg("serve")
        .env("KIOSK_DATA_DIR", data)
        .env("KIOSK_LISTEN", format!("127.0.0.1:{port}"))
        .env("ADMIN_API_KEY", "bench-admin-key-0123456789abcdef")
        .env("REMOTE_STORAGE_URL", "http://127.0.0.1:9/uploads/")
        .env("KIOSK_LOG", "warn")
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the daemon (build it: cargo build --release)");
    let mut buf = [0u8; 512];
    let ready = loop {
        if let Ok(n) = sock.recv(&mut buf) {
            if String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == "READY=1")
            {
                break t0.elapsed();
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no READY=1");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the daemon exited: {status}");
        }
    };
    let recovered = loop {
        if recovery_done(port) {
            break t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "recovery never done"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    Start { ready, recovered }
}

/// Whether `/health` shows the start-up recovery done (plain HTTP/1.0 over a socket).
fn recovery_done(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(body).ok())
        .is_some_and(|v| {
            let workers = &v["checks"]["workers"]["workers"];
            // A binary from before the recovery worker recovered before READY.
            workers["recovery"]["state"] == "done"
                || (workers.is_object() && workers.get("recovery").is_none())
        })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let captures: usize = arg("--captures").map_or(100_000, |s| s.parse().unwrap());
    let runs: usize = arg("--runs").map_or(5, |s| s.parse().unwrap());
    let bin = PathBuf::from(arg("--bin").unwrap_or_else(|| "target/release/selfie-kiosk".into()));
    let tmp = tempfile::tempdir().unwrap();
    let (empty, full) = (tmp.path().join("empty"), tmp.path().join("full"));
    std::fs::create_dir_all(&empty).unwrap();
    let t = Instant::now();
    seed(&full, captures);
    println!(
        "seeded {captures} captures ({} unsynced) in {:.1} s; binary {}",
        captures.div_ceil(50),
        t.elapsed().as_secs_f64(),
        bin.display()
    );
    // One start each to warm the page cache and make the outbox (kept from then on, as on
    // a kiosk that restarts).
    start(&bin, &empty, tmp.path());
    start(&bin, &full, tmp.path());
    let (mut e_ready, mut f_ready, mut e_rec, mut f_rec) = (vec![], vec![], vec![], vec![]);
    for run in 0..runs {
        let e = start(&bin, &empty, tmp.path());
        let f = start(&bin, &full, tmp.path());
        println!(
            "run {run}: empty READY {:7.1} ms (recovered {:7.1} ms) | {captures} captures READY {:7.1} ms (recovered {:7.1} ms)",
            e.ready.as_secs_f64() * 1e3,
            e.recovered.as_secs_f64() * 1e3,
            f.ready.as_secs_f64() * 1e3,
            f.recovered.as_secs_f64() * 1e3
        );
        e_ready.push(e.ready.as_secs_f64() * 1e3);
        f_ready.push(f.ready.as_secs_f64() * 1e3);
        e_rec.push(e.recovered.as_secs_f64() * 1e3);
        f_rec.push(f.recovered.as_secs_f64() * 1e3);
    }
    let (er, fr) = (median(e_ready), median(f_ready));
    println!(
        "median READY: empty {er:.1} ms, {captures} captures {fr:.1} ms: ratio {:.2}× (target ≤ 3×)",
        fr / er
    );
    println!(
        "median recovery done: empty {:.1} ms, {captures} captures {:.1} ms (after READY, while captures are taken)",
        median(e_rec),
        median(f_rec)
    );
}
