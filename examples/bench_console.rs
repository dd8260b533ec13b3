#![allow(clippy::disallowed_methods)]
//! The staff console's budgets (issue 19, item 9), measured:
//!
//! - **gallery**: a kiosk with `--captures` (10,000) captures whose thumbnails exist; the
//!   gallery's first page as the browser loads it — `GET /admin/captures?limit=60`, then
//!   its 60 thumbnails over 6 keep-alive connections (a browser's per-host limit) — timed
//!   `--runs` times (≥ 50) after 5 warm-up pages; p50/p95 against the 50 ms target;
//! - **thumbnail**: making one thumbnail (`storage::thumbnails::make_jpeg`: the photo's
//!   1/8-scale image read from its DC coefficients, then encoded) of a photo-like 2048×1536
//!   JPEG of ~1.6 MB (or the `--photo` given), against a full decode of the same photo by
//!   the `image` crate's decoder (zune-jpeg); target ≤ 1/3. Also printed: the DC read
//!   alone (`storage::jpeg_dc::decode`), which is almost all entropy decoding — the part
//!   of a full decode no reduced scale can skip.
//!
//! ```text
//! cargo build --release --bin selfie-kiosk --example bench_console
//! target/release/examples/bench_console [--bin target/release/selfie-kiosk]
//!     [--captures 10000] [--runs 100] [--dir DIR] [--keep] [--photo FILE.jpg]
//! ```
//!
//! The catalog is written with the library (one transaction); every capture's file and
//! thumbnail are hard links to one photo and one thumbnail made from it (what the server
//! does per request — open, read, send — is the same as with distinct files, and 10,000
//! copies of 1.6 MB would not fit on a small disk). The last line is a JSON summary; exit
//! status 1 when a target is missed. `tools/bench-console.sh` runs this, the console's size
//! budget and (with `--binary-growth`) the binary's growth.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use selfie_kiosk::catalog::{self, Catalog, NewCapture};

const GALLERY_TARGET_MS: f64 = 50.0;
const THUMB_TARGET_RATIO: f64 = 1.0 / 3.0;
const PAGE: usize = 60;
const PARALLEL: usize = 6;
const ADMIN_KEY: &str = "bench-admin-key-0123456789abcdef";

struct Args {
    bin: PathBuf,
    captures: usize,
    runs: usize,
    dir: PathBuf,
    keep: bool,
    photo: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        bin: PathBuf::from("target/release/selfie-kiosk"),
        captures: 10_000,
        runs: 100,
        dir: std::env::temp_dir(),
        keep: false,
        photo: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().context("a value is missing after a flag");
        match flag.as_str() {
            "--bin" => a.bin = PathBuf::from(value()?),
            "--captures" => a.captures = value()?.parse()?,
            "--runs" => a.runs = value()?.parse()?,
            "--dir" => a.dir = PathBuf::from(value()?),
            "--keep" => a.keep = true,
            "--photo" => a.photo = Some(PathBuf::from(value()?)),
            other => bail!(
                "unknown flag {other}\nusage: bench_console [--bin PATH] [--captures N] \
                 [--runs N (≥ 50)] [--dir DIR] [--keep] [--photo FILE.jpg]"
            ),
        }
    }
    if a.runs < 50 {
        bail!("--runs must be at least 50");
    }
    Ok(a)
}

/// A photo-like 2048×1536 JPEG of ~1.6 MB: soft colour fields, edges, and sensor-like
/// noise whose strength is searched for until the file has the size wanted.
fn photo() -> Result<Vec<u8>> {
    const W: usize = 2048;
    const H: usize = 1536;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    let grain: Vec<f32> = (0..W * H).map(|_| noise() + noise()).collect();
    let encode = |strength: f32| -> Result<Vec<u8>> {
        let mut px = Vec::with_capacity(W * H * 3);
        for y in 0..H {
            for x in 0..W {
                let (fx, fy) = (x as f32 / W as f32, y as f32 / H as f32);
                let ring = ((fx - 0.55).hypot(fy - 0.45) * 18.0).sin() * 20.0;
                let edge = if (x / 256 + y / 192) % 3 == 0 {
                    35.0
                } else {
                    0.0
                };
                let g = grain[y * W + x] * strength;
                for (c, base) in [
                    200.0 * fx + 30.0,
                    140.0 + 80.0 * fy,
                    90.0 + 60.0 * (1.0 - fx),
                ]
                .into_iter()
                .enumerate()
                {
                    let v = base + ring * (c as f32 - 1.0) + edge + g;
                    px.push(v.clamp(0.0, 255.0) as u8);
                }
            }
        }
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode(
            &px,
            W as u32,
            H as u32,
            image::ExtendedColorType::Rgb8,
        )?;
        Ok(out)
    };
    let (mut lo, mut hi) = (0.0f32, 160.0f32);
    let mut best = encode(hi / 2.0)?;
    for _ in 0..10 {
        let mid = (lo + hi) / 2.0;
        let jpeg = encode(mid)?;
        let size = jpeg.len();
        if size.abs_diff(1_600_000) < best.len().abs_diff(1_600_000) {
            best = jpeg;
        }
        if size.abs_diff(1_600_000) < 16_000 {
            break;
        }
        if size < 1_600_000 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(best)
}

fn median_ms(mut f: impl FnMut() -> Result<()>, n: usize) -> Result<f64> {
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(percentile(&mut t, 50.0))
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

/// The data directory of a kiosk with `n` captures, each with its file and thumbnail.
fn populate(data: &Path, n: usize, jpeg: &[u8], thumb: &[u8]) -> Result<()> {
    let (uploads, thumbs) = (data.join("uploads"), data.join("thumbnails"));
    std::fs::create_dir_all(&uploads)?;
    std::fs::create_dir_all(&thumbs)?;
    let (photo_src, thumb_src) = (data.join("photo.src"), data.join("thumb.src"));
    std::fs::write(&photo_src, jpeg)?;
    std::fs::write(&thumb_src, thumb)?;
    let cat = Catalog::open(&data.join("catalog.sqlite3"))?;
    let now = selfie_kiosk::clock::system_now_ms();
    let sha = hex::encode(sha2::Sha256::digest(jpeg));
    let mut ids = Vec::with_capacity(n);
    cat.write_blocking(|tx| {
        for i in 0..n {
            let id = format!("{:032x}", (i as u128 + 1) * 0x9E37_79B9_7F4A_7C15);
            catalog::insert_capture(
                tx,
                &NewCapture {
                    id: id.clone(),
                    created_ms: now - (n - i) as i64 * 60_000,
                    taken_at: None,
                    background_id: None,
                    bytes: jpeg.len() as i64,
                    width: 2048,
                    height: 1536,
                    sha256: sha.clone(),
                    source_sha256: sha.clone(),
                    source_format: "jpeg".into(),
                },
            )?;
            ids.push(id);
        }
        Ok(())
    })?;
    drop(cat);
    for id in &ids {
        std::fs::hard_link(&photo_src, uploads.join(format!("{id}.jpg")))?;
        std::fs::hard_link(&thumb_src, thumbs.join(format!("{id}.jpg")))?;
    }
    std::fs::remove_file(photo_src)?;
    std::fs::remove_file(thumb_src)?;
    Ok(())
}

use sha2::Digest as _;

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start(bin: &Path, dir: &Path, port: u16, client: &reqwest::Client) -> Result<Daemon> {
    let log = std::fs::File::create(dir.join("daemon.log"))?;
    let child = Command::new(bin)
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("KIOSK_DATA_DIR", dir.join("data"))
        .env("KIOSK_LISTEN", format!("127.0.0.1:{port}"))
        .env("KIOSK_ID", "bench-console")
        .env("ADMIN_API_KEY", ADMIN_KEY)
        .env("KIOSK_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let daemon = Daemon(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
        {
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            if v["checks"]["workers"]["workers"]["recovery"]["state"] == "done" {
                return Ok(daemon);
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the daemon did not finish starting (see {}/daemon.log)",
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One gallery page as the console loads it; (whole page, list only) in ms.
async fn page(client: &reqwest::Client, base: &str) -> Result<(f64, f64)> {
    let t = Instant::now();
    let r = client
        .get(format!("{base}/admin/captures?limit={PAGE}"))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("listing: {}", r.status());
    }
    let v: serde_json::Value = r.json().await?;
    let list_ms = t.elapsed().as_secs_f64() * 1000.0;
    let urls: Vec<String> = v["items"]
        .as_array()
        .context("no items")?
        .iter()
        .filter_map(|i| i["thumbnail_url"].as_str().map(str::to_string))
        .collect();
    if urls.len() != PAGE {
        bail!("the first page has {} thumbnails, not {PAGE}", urls.len());
    }
    let urls = Arc::new(urls);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..PARALLEL {
        let (client, base, urls, next) =
            (client.clone(), base.to_string(), urls.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(u) = urls.get(i) else {
                    return Ok::<(), anyhow::Error>(());
                };
                let r = client
                    .get(format!("{base}{u}"))
                    .header("x-api-key", ADMIN_KEY)
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("{u}: {}", r.status());
                }
                let b = r.bytes().await?;
                if !b.starts_with(&[0xFF, 0xD8]) {
                    bail!("{u}: not a JPEG");
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((t.elapsed().as_secs_f64() * 1000.0, list_ms))
}

async fn run() -> Result<bool> {
    let args = parse_args()?;
    selfie_kiosk::install_crypto();

    // Thumbnail against full decode.
    let jpeg = match &args.photo {
        Some(p) => std::fs::read(p).with_context(|| p.display().to_string())?,
        None => photo()?,
    };
    let (pw, ph) = selfie_kiosk::storage::image::jpeg_dimensions(&jpeg)?;
    let thumb = selfie_kiosk::storage::thumbnails::make_jpeg(&jpeg, 320)?;
    let n = 15;
    let thumb_ms = median_ms(
        || {
            selfie_kiosk::storage::thumbnails::make_jpeg(&jpeg, 320)?;
            Ok(())
        },
        n,
    )?;
    let dc_ms = median_ms(
        || {
            selfie_kiosk::storage::jpeg_dc::decode(&jpeg)?;
            Ok(())
        },
        n,
    )?;
    let img_ms = median_ms(
        || {
            image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)?;
            Ok(())
        },
        n,
    )?;
    let ratio = thumb_ms / img_ms;

    // The gallery's first page.
    let tmp = tempfile::Builder::new()
        .prefix("bench-console-")
        .tempdir_in(&args.dir)?;
    let setup = Instant::now();
    populate(&tmp.path().join("data"), args.captures, &jpeg, &thumb)?;
    let setup_s = setup.elapsed().as_secs_f64();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(PARALLEL)
        .timeout(Duration::from_secs(30))
        .build()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let daemon = start(&args.bin, tmp.path(), port, &client).await?;
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..5 {
        page(&client, &base).await?;
    }
    let (mut whole, mut list) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let (w, l) = page(&client, &base).await?;
        whole.push(w);
        list.push(l);
    }
    drop(daemon);
    let (p50, p95) = (percentile(&mut whole, 50.0), percentile(&mut whole, 95.0));
    let (l50, l95) = (percentile(&mut list, 50.0), percentile(&mut list, 95.0));

    let gallery_ok = p95 <= GALLERY_TARGET_MS;
    let thumb_ok = ratio <= THUMB_TARGET_RATIO;
    let ok = |b: bool| if b { "ok" } else { "MISSED" };
    println!(
        "photo: {pw}x{ph}, {} bytes; thumbnail {} bytes",
        jpeg.len(),
        thumb.len()
    );
    println!(
        "thumbnail: {thumb_ms:.1} ms (median of {n}), of which the DC read {dc_ms:.1} ms; \
         full decode (image) {img_ms:.1} ms; ratio {ratio:.3} (target <= 0.333) {}",
        ok(thumb_ok)
    );
    println!(
        "gallery first page ({} captures, {PAGE} thumbnails, {PARALLEL} connections, {} runs): \
         p50 {p50:.2} ms, p95 {p95:.2} ms (target <= {GALLERY_TARGET_MS} ms) {}; \
         listing alone p50 {l50:.2} ms, p95 {l95:.2} ms; setup {setup_s:.1} s",
        args.captures,
        args.runs,
        ok(gallery_ok)
    );
    let summary = serde_json::json!({
        "bench": "console",
        "captures": args.captures,
        "runs": args.runs,
        "gallery_p50_ms": p50,
        "gallery_p95_ms": p95,
        "listing_p50_ms": l50,
        "listing_p95_ms": l95,
        "photo_bytes": jpeg.len(),
        "thumbnail_ms": thumb_ms,
        "dc_read_ms": dc_ms,
        "full_decode_image_ms": img_ms,
        "thumbnail_ratio": ratio,
        "ok": gallery_ok && thumb_ok,
    });
    if args.keep {
        let kept = tmp.keep();
        eprintln!("kept {}", kept.display());
    }
    println!("{summary}");
    Ok(gallery_ok && thumb_ok)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    match run().await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("bench_console: {e:#}");
            std::process::exit(2);
        }
    }
}
