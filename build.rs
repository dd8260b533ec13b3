//! Stamps the binary with its commit and build date for `--version`, and compresses the
//! web pages' files (`assets/console`, `assets/fleet`) and the OpenAPI documents
//! (`assets/openapi`) into `$OUT_DIR/assets/{dir}/{file}.gz`, the form compiled into the
//! binary (see `src/api/static_files.rs`).
//!
//! The commit comes from `git rev-parse --short HEAD`, and only when this source tree is
//! its own checkout (a `.git` next to `Cargo.toml`): a Yocto or Buildroot build unpacks a
//! tarball, perhaps inside another repository, and gets "unknown" (or what the packager
//! puts in `SELFIE_KIOSK_COMMIT`). The date is `SOURCE_DATE_EPOCH` when set (reproducible
//! builds; Yocto and Buildroot set it), else today. The script reruns when HEAD moves,
//! not at every build.
// A build script may read the clock: the `clock` rule is for the daemon.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    compress_pages();
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=SELFIE_KIOSK_COMMIT");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let commit = std::env::var("SELFIE_KIOSK_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git_commit(Path::new(&manifest)))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SELFIE_KIOSK_COMMIT={commit}");
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    println!("cargo:rustc-env=SELFIE_KIOSK_BUILD_DATE={}", date(epoch));
}

/// gzip -9 of every file of the pages, in the order of the names (reproducible: no file
/// name or time in the header). A failure stops the build: the binary would lack a page.
fn compress_pages() {
    use std::io::Write;
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let out = std::env::var("OUT_DIR").unwrap_or_else(|_| panic!("cargo sets OUT_DIR"));
    for dir in ["console", "fleet", "openapi"] {
        let src = Path::new(&manifest).join("assets").join(dir);
        println!("cargo:rerun-if-changed={}", src.display());
        let dest = Path::new(&out).join("assets").join(dir);
        std::fs::create_dir_all(&dest).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
        let entries = std::fs::read_dir(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            let gz = enc
                .write_all(&bytes)
                .and_then(|()| enc.finish())
                .unwrap_or_else(|e| panic!("gzip {}: {e}", path.display()));
            let name = format!("{}.gz", entry.file_name().to_string_lossy());
            std::fs::write(dest.join(&name), gz)
                .unwrap_or_else(|e| panic!("{}: {e}", dest.join(&name).display()));
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn git_commit(dir: &Path) -> Option<String> {
    // `.git` is a directory in a clone, a file in a worktree.
    if !dir.join(".git").exists() {
        return None;
    }
    let commit = git(dir, &["rev-parse", "--short=12", "HEAD"])?;
    // HEAD itself (a checkout of another branch) and the branch it points to (a commit).
    if let Some(head) = git(dir, &["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={}", dir.join(head).display());
    }
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        if let Some(r) = git(dir, &["rev-parse", "--git-path", &branch]) {
            println!("cargo:rerun-if-changed={}", dir.join(r).display());
        }
        if let Some(p) = git(dir, &["rev-parse", "--git-path", "packed-refs"]) {
            println!("cargo:rerun-if-changed={}", dir.join(p).display());
        }
    }
    // No "-dirty" mark: the script does not rerun when a file changes, so it would lie.
    Some(commit)
}

/// `YYYY-MM-DD` (UTC) of a Unix time (Howard Hinnant's civil-from-days).
fn date(epoch: i64) -> String {
    let z = epoch.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
