//! Packaging, checked with the real tools: the Yocto crate list against `Cargo.lock`, the
//! systemd units (`systemd-analyze`), sysusers.d/tmpfiles.d, the sd_notify protocol of the
//! real daemon, the USB diagnostics flow on a real loop-mounted file system image, the
//! example configuration, and the VPS nginx/Apache configurations served for real.
//!
//! A missing tool is a failure naming `tools/install-packaging-deps.sh`, never a skip.
//! The USB and web server tests need root (mount, ports, `user nobody`): CI runs as root.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_selfie-kiosk");
const INSTALL_HINT: &str =
    "run tools/install-packaging-deps.sh as root (tools/install-test-deps.sh installs the rest)";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The path of a tool, or a failure saying how to install it.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    for dir in dirs {
        let p = dir.join(name);
        if p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
        {
            return p;
        }
    }
    panic!("`{name}` is not installed: {INSTALL_HINT}");
}

fn require_root(what: &str) {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "{what} needs root (mount, loop devices, privileged ports, `user nobody`); CI runs as root"
    );
}

fn describe(cmd: &Command, out: &Output) -> String {
    format!(
        "{:?} -> {}\n--- stdout\n{}\n--- stderr\n{}",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd` to completion, failing the test unless it succeeds; returns stdout+stderr.
fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{}", describe(cmd, &out));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "server exited with {status} before listening:\n{}",
                read(log)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on port {port} after 20 s:\n{}", read(log));
}

/// Kills a child process when dropped (a failing assertion must not leak servers).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A temporary directory other users can traverse (servers drop to `nobody`).
fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

// ---------------------------------------------------------------------------------------
// Yocto / Buildroot metadata
// ---------------------------------------------------------------------------------------

/// One `[[package]]` of Cargo.lock (a minimal reader, independent of the Python tool).
struct LockedPackage {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
}

fn cargo_lock_packages() -> Vec<LockedPackage> {
    let mut out = Vec::new();
    for block in read(repo().join("Cargo.lock")).split("[[package]]").skip(1) {
        let field = |key: &str| {
            block.lines().find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|r| r.trim_start().strip_prefix('='))
                    .map(|v| v.trim().trim_matches('"').to_string())
            })
        };
        out.push(LockedPackage {
            name: field("name").expect("package name"),
            version: field("version").expect("package version"),
            source: field("source"),
            checksum: field("checksum"),
        });
    }
    out
}

#[test]
fn yocto_crates_inc_matches_cargo_lock() {
    let python = tool("python3");
    let mut check = Command::new(python);
    check
        .arg(repo().join("tools/gen-yocto-crates.py"))
        .arg("--check");
    let out = check.output().expect("run gen-yocto-crates.py");
    assert!(
        out.status.success(),
        "yocto/meta-selfie-kiosk/recipes-core/selfie-kiosk/selfie-kiosk-crates.inc does not match \
         Cargo.lock: run `python3 tools/gen-yocto-crates.py`\n{}",
        describe(&check, &out)
    );

    // Cross-check with a reader that shares no code with the generator.
    let inc = read(
        repo().join("yocto/meta-selfie-kiosk/recipes-core/selfie-kiosk/selfie-kiosk-crates.inc"),
    );
    let lines: BTreeSet<&str> = inc.lines().collect();
    let mut registry = 0;
    for p in cargo_lock_packages() {
        match p.source.as_deref() {
            None => assert_eq!(
                p.name, "selfie-kiosk",
                "unexpected path dependency {}",
                p.name
            ),
            Some(s) if s.starts_with("registry+https://github.com/rust-lang/crates.io-index") => {
                registry += 1;
                let uri = format!("    crate://crates.io/{}/{} \\", p.name, p.version);
                assert!(lines.contains(uri.as_str()), "missing `{uri}`");
                let sum = format!(
                    "SRC_URI[{}-{}.sha256sum] = \"{}\"",
                    p.name,
                    p.version,
                    p.checksum
                        .as_deref()
                        .expect("registry crates have a checksum")
                );
                assert!(lines.contains(sum.as_str()), "missing `{sum}`");
            }
            Some(s) => panic!(
                "{} comes from {s}: the Yocto recipe needs a SRC_URI for it",
                p.name
            ),
        }
    }
    assert_eq!(
        inc.matches("crate://crates.io/").count(),
        registry,
        "extra crates in the .inc"
    );
    assert!(
        !inc.contains("crate://crates.io/selfie-kiosk/"),
        "the root package is not a crate to fetch"
    );
}

#[test]
fn license_checksums_match_the_license_file() {
    let license = repo().join("LICENSE");
    let text = read(&license);
    assert!(text.starts_with("MIT License") && text.contains("selfie-kiosk developers"));

    let md5 = run_ok(Command::new(tool("md5sum")).arg(&license));
    let md5 = md5.split_whitespace().next().unwrap();
    let recipe = read(
        repo().join("yocto/meta-selfie-kiosk/recipes-core/selfie-kiosk/selfie-kiosk_0.1.0.bb"),
    );
    assert!(
        recipe.contains(&format!("LIC_FILES_CHKSUM = \"file://LICENSE;md5={md5}\"")),
        "LIC_FILES_CHKSUM in the recipe is not the md5 of LICENSE ({md5})"
    );

    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    let hash = read(repo().join("buildroot/package/selfie-kiosk/selfie-kiosk.hash"));
    assert!(
        hash.lines().any(
            |l| l.split_whitespace().collect::<Vec<_>>() == ["sha256", sha.as_str(), "LICENSE"]
        ),
        "selfie-kiosk.hash has no `sha256  {sha}  LICENSE` line"
    );
}

#[test]
fn yocto_and_buildroot_install_every_asset() {
    let recipe = read(
        repo().join("yocto/meta-selfie-kiosk/recipes-core/selfie-kiosk/selfie-kiosk_0.1.0.bb"),
    );
    let mk = read(repo().join("buildroot/package/selfie-kiosk/selfie-kiosk.mk"));
    let mut assets = vec!["assets/selfie-kiosk.env.example".to_string()];
    for dir in ["assets/systemd", "assets/udev", "assets/usb"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            assets.push(format!(
                "{dir}/{}",
                entry.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    for a in &assets {
        assert!(
            recipe.contains(&format!("${{S}}/{a}")),
            "the Yocto recipe does not install {a}"
        );
        assert!(
            mk.contains(&format!("$(@D)/{a}")),
            "the Buildroot package does not install {a}"
        );
    }
    assert!(recipe.contains("SYSTEMD_SERVICE:${PN} = \"selfie-kiosk.service\""));
    assert!(mk.contains("$(eval $(cargo-package))"));
    let layer = read(repo().join("yocto/meta-selfie-kiosk/conf/layer.conf"));
    assert!(layer.contains("LAYERSERIES_COMPAT_selfie-kiosk = \"scarthgap styhead walnascar\""));
}

// ---------------------------------------------------------------------------------------
// Example configuration
// ---------------------------------------------------------------------------------------

/// The DESIGN.md configuration table plus the implemented extras.
const DOCUMENTED: &[&str] = &[
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
    "KIOSK_DISK_RESERVE",
    "KIOSK_LOG",
];
/// Read by the code but not for the operator's env file: an alias documented in another
/// variable's comment, and what systemd sets.
const NOT_IN_EXAMPLE: &[&str] = &[
    "RUST_LOG",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "JOURNAL_STREAM",
];

fn looks_like_variable(s: &str) -> bool {
    s.len() > 3
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.contains('_')
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Variable names the daemon reads: `get("X")` / `var("X")` / `var_os("X")` anywhere in
/// `src/`, and every variable-like string literal of the configuration parsers (which
/// also read names from lists), outside `#[cfg(test)]` code.
fn variables_read_by_the_code() -> BTreeSet<String> {
    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    sources(&repo().join("src"), &mut files);
    let mut names = BTreeSet::new();
    for f in files {
        let text = read(&f);
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let parser = f.ends_with("src/config.rs") || f.ends_with("src/sync/s3.rs");
        let pieces: Vec<&str> = code.split('"').collect();
        for (i, lit) in pieces.iter().enumerate().skip(1).step_by(2) {
            let before = pieces[i - 1];
            let read_call = ["get(", "var(", "var_os("]
                .iter()
                .any(|c| before.ends_with(c));
            let compile_time = before.ends_with("env!(");
            if looks_like_variable(lit)
                && (parser || read_call)
                && !compile_time
                && !NOT_IN_EXAMPLE.contains(lit)
            {
                names.insert((*lit).to_string());
            }
        }
    }
    names
}

#[test]
fn env_example_documents_every_variable_and_is_valid() {
    let example = read(repo().join("assets/selfie-kiosk.env.example"));
    let assigned: BTreeSet<String> = example
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k.to_string())
        .filter(|k| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    for name in DOCUMENTED {
        assert!(
            assigned.contains(*name),
            "selfie-kiosk.env.example lacks `#{name}=...`"
        );
    }
    for name in variables_read_by_the_code() {
        assert!(
            assigned.contains(&name),
            "the code reads {name}; document it in assets/selfie-kiosk.env.example"
        );
    }
    for line in example.lines() {
        assert!(
            line.is_empty() || line.starts_with('#'),
            "not commented out: {line}"
        );
    }

    // Uncommented, the example is a valid configuration (what `check-config` accepts).
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("selfie-kiosk.env");
    let active: String = example
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter(|l| l.split_once('=').is_some_and(|(k, _)| assigned.contains(k)))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&env, active).unwrap();
    run_ok(
        Command::new(BIN)
            .arg("check-config")
            .arg("--env-file")
            .arg(&env)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default()),
    );
}

// ---------------------------------------------------------------------------------------
// systemd
// ---------------------------------------------------------------------------------------

const UNIT_DIRECTIVES: &[&str] = &[
    "Type=notify",
    "WatchdogSec=120",
    "Restart=always",
    "RestartSec=2",
    "TimeoutStopSec=30",
    "User=selfie-kiosk",
    "Group=selfie-kiosk",
    "StateDirectory=selfie-kiosk",
    "StateDirectoryMode=0750",
    "Environment=KIOSK_DATA_DIR=/var/lib/selfie-kiosk",
    "Environment=MALLOC_ARENA_MAX=2",
    "EnvironmentFile=-/etc/selfie-kiosk/selfie-kiosk.env",
    "WorkingDirectory=/var/lib/selfie-kiosk",
    "ExecStart=/usr/bin/selfie-kiosk --env-file /etc/selfie-kiosk/selfie-kiosk.env serve",
    "ExecReload=/bin/kill -HUP $MAINPID",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "NoNewPrivileges=yes",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "RestrictNamespaces=yes",
    "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes",
    "RestrictRealtime=yes",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "UMask=0027",
];

/// The units copied into `dir` with their executables pointing at this build: the real
/// binary and the repository's script (`systemd-analyze verify` checks they exist).
fn units_for_verify(dir: &Path) -> (PathBuf, PathBuf) {
    let script = repo().join("assets/usb/selfie-kiosk-usb-diag");
    let main = read(repo().join("assets/systemd/selfie-kiosk.service"));
    assert!(main.contains("ExecStart=/usr/bin/selfie-kiosk --env-file"));
    let main_path = dir.join("selfie-kiosk.service");
    std::fs::write(&main_path, main.replace("/usr/bin/selfie-kiosk", BIN)).unwrap();

    let diag = read(repo().join("assets/systemd/selfie-kiosk-diag@.service"));
    assert!(diag.contains("ExecStart=/usr/libexec/selfie-kiosk/selfie-kiosk-usb-diag %I"));
    std::fs::write(
        dir.join("selfie-kiosk-diag@.service"),
        diag.replace(
            "/usr/libexec/selfie-kiosk/selfie-kiosk-usb-diag",
            &script.display().to_string(),
        ),
    )
    .unwrap();
    (main_path, dir.join("selfie-kiosk-diag@sdz1.service"))
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let analyze = tool("systemd-analyze");
    let unit = read(repo().join("assets/systemd/selfie-kiosk.service"));
    let lines: BTreeSet<&str> = unit.lines().map(str::trim).collect();
    for d in UNIT_DIRECTIVES {
        assert!(lines.contains(d), "selfie-kiosk.service lacks `{d}`");
    }

    let dir = tempfile::tempdir().unwrap();
    let (main, diag_instance) = units_for_verify(dir.path());
    let mut verify = Command::new(&analyze);
    verify.arg("verify").arg(&main).arg(&diag_instance);
    let out = verify.output().expect("systemd-analyze verify");
    // verify exits 0 on "Unknown key ..., ignoring" and similar: any line about our units
    // is a failure too. (Lines about the host's own units are not ours to fix.)
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("selfie-kiosk") || l.contains(&*dir.path().to_string_lossy()))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "{}",
        describe(&verify, &out)
    );
    if !text.trim().is_empty() {
        eprintln!("systemd-analyze verify (host noise, ignored):\n{text}");
    }

    // The sandbox stays tight: systemd's own exposure score (0 best, 10 worst).
    let mut security = Command::new(&analyze);
    security
        .arg("security")
        .arg("--offline=yes")
        .arg("--no-pager")
        .arg(&main);
    let text = run_ok(&mut security);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for").nth(1))
        .and_then(|rest| rest.split(':').nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(
        score <= 2.0,
        "selfie-kiosk.service exposure {score} > 2.0:\n{text}"
    );
}

#[test]
fn sysusers_and_tmpfiles_create_user_and_directories() {
    let sysusers = tool("systemd-sysusers");
    let tmpfiles = tool("systemd-tmpfiles");
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    run_ok(
        Command::new(sysusers)
            .arg(format!("--root={}", root.path().display()))
            .arg(repo().join("assets/systemd/selfie-kiosk.sysusers")),
    );
    let passwd = read(root.path().join("etc/passwd"));
    let entry = passwd
        .lines()
        .find(|l| l.starts_with("selfie-kiosk:"))
        .unwrap_or_else(|| panic!("no selfie-kiosk user in\n{passwd}"));
    let fields: Vec<&str> = entry.split(':').collect();
    let (uid, gid): (u32, u32) = (fields[2].parse().unwrap(), fields[3].parse().unwrap());
    assert!(uid < 1000 && gid < 1000, "not a system user: {entry}");
    assert_eq!(fields[5], "/var/lib/selfie-kiosk");

    run_ok(
        Command::new(tmpfiles)
            .arg(format!("--root={}", root.path().display()))
            .arg("--create")
            .arg(repo().join("assets/systemd/selfie-kiosk.tmpfiles")),
    );
    let etc = std::fs::metadata(root.path().join("etc/selfie-kiosk")).unwrap();
    assert_eq!(
        (etc.mode() & 0o7777, etc.uid(), etc.gid()),
        (0o750, 0, gid),
        "/etc/selfie-kiosk"
    );
    let state = std::fs::metadata(root.path().join("var/lib/selfie-kiosk")).unwrap();
    assert_eq!(
        (state.mode() & 0o7777, state.uid(), state.gid()),
        (0o750, uid, gid),
        "/var/lib/selfie-kiosk"
    );
}

#[test]
fn udev_rule_hands_kioskdiag_sticks_to_systemd() {
    let rules = read(repo().join("assets/udev/90-selfie-kiosk-diag.rules"));
    let rule: Vec<&str> = rules
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(rule.len(), 1, "one rule expected:\n{rules}");
    let keys: BTreeSet<&str> = rule[0].split(", ").map(str::trim).collect();
    for k in [
        "ACTION==\"add\"",
        "SUBSYSTEM==\"block\"",
        "SUBSYSTEMS==\"usb\"",
        "ENV{ID_FS_USAGE}==\"filesystem\"",
        "ENV{ID_FS_LABEL}==\"KIOSKDIAG\"",
        "TAG+=\"systemd\"",
        "ENV{SYSTEMD_WANTS}+=\"selfie-kiosk-diag@%k.service\"",
    ] {
        assert!(keys.contains(k), "the udev rule lacks {k}");
    }
    assert!(
        !rules.contains("RUN"),
        "no RUN+= in the rule: long work never runs inside udev"
    );
}

// ---------------------------------------------------------------------------------------
// sd_notify, with the real daemon
// ---------------------------------------------------------------------------------------

/// The real daemon under a fake `NOTIFY_SOCKET`.
struct NotifiedDaemon {
    child: KillOnDrop,
    sock: UnixDatagram,
    log: PathBuf,
    started: Instant,
}

impl NotifiedDaemon {
    fn start(dir: &Path, extra_env: &[(&str, &str)]) -> NotifiedDaemon {
        let sock_path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&sock_path).unwrap();
        let log = dir.join("daemon.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("KIOSK_DATA_DIR", dir.join("data"))
            .env("KIOSK_LISTEN", "127.0.0.1:0")
            .env("KIOSK_ID", "test-kiosk")
            .env("KIOSK_LOG", "info")
            .env("NOTIFY_SOCKET", &sock_path)
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file));
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn selfie-kiosk serve");
        NotifiedDaemon {
            child: KillOnDrop(child),
            sock,
            log,
            started: Instant::now(),
        }
    }

    /// The next notification (its lines), or None after `timeout`.
    fn next(&self, timeout: Duration) -> Option<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.sock.recv(&mut buf) {
                Ok(n) => {
                    return Some(
                        String::from_utf8_lossy(&buf[..n])
                            .lines()
                            .map(str::to_string)
                            .collect(),
                    )
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                // A signal for the test process (another test's child exiting): wait on.
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => panic!("notify socket: {e}"),
            }
        }
    }

    /// Waits for a notification holding `line`; returns every notification seen meanwhile.
    fn wait_for(&mut self, line: &str, within: Duration) -> Vec<(Duration, Vec<String>)> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Some(msg) = self.next(left.min(Duration::from_millis(500))) {
                let found = msg.iter().any(|l| l == line);
                seen.push((self.started.elapsed(), msg));
                if found {
                    return seen;
                }
            } else if let Some(status) = self.child.0.try_wait().unwrap() {
                panic!(
                    "daemon exited ({status}) before {line}; seen {seen:?}\n{}",
                    read(&self.log)
                );
            }
        }
        panic!(
            "no {line} within {within:?}; seen {seen:?}\n{}",
            read(&self.log)
        );
    }

    fn sigterm(&self) {
        run_ok(
            Command::new("kill")
                .arg("-TERM")
                .arg(self.child.0.id().to_string()),
        );
    }

    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "daemon still running {within:?} after SIGTERM\n{}",
                read(&self.log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn daemon_speaks_sd_notify_ready_watchdog_stopping() {
    let dir = tempfile::tempdir().unwrap();
    // WATCHDOG_PID unset: the watchdog is meant for this process.
    let mut d = NotifiedDaemon::start(dir.path(), &[("WATCHDOG_USEC", "2000000")]);

    let seen = d.wait_for("READY=1", Duration::from_secs(30));
    assert!(
        !seen
            .iter()
            .any(|(_, m)| m.iter().any(|l| l == "WATCHDOG=1" || l == "STOPPING=1")),
        "notifications before READY=1: {seen:?}"
    );
    let ready_at = d.started.elapsed();

    // WATCHDOG_USEC=2 s: systemd kills a service that stays silent that long, so each ping
    // (one every second while the job runner is alive) must follow the previous one, or
    // READY=1, within 2 s.
    let mut last = ready_at;
    let mut pings = Vec::new();
    while pings.len() < 2 {
        let Some(msg) = d.next(Duration::from_secs(2)) else {
            panic!(
                "no WATCHDOG=1 within 2 s after {last:?} (pings so far at {pings:?}): systemd with \
                 WatchdogSec=2 would kill the daemon now. The job runner must report in more \
                 often than the watchdog interval, even when idle.\n{}",
                read(&d.log)
            );
        };
        assert!(
            !msg.iter().any(|l| l == "READY=1" || l == "STOPPING=1"),
            "unexpected {msg:?}"
        );
        if msg.iter().any(|l| l == "WATCHDOG=1") {
            last = d.started.elapsed();
            pings.push(last);
        }
    }
    eprintln!("READY=1 after {ready_at:?}; WATCHDOG=1 at {pings:?}");

    d.sigterm();
    let seen = d.wait_for("STOPPING=1", Duration::from_secs(30));
    eprintln!("until STOPPING=1: {seen:?}");
    let status = d.wait_exit(Duration::from_secs(30));
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        read(&d.log)
    );
    // Nothing after STOPPING=1 but, at most, a last watchdog ping already in flight.
    while let Some(msg) = d.next(Duration::from_millis(100)) {
        assert!(
            msg.iter().all(|l| l == "WATCHDOG=1"),
            "after STOPPING=1: {msg:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// USB diagnostics
// ---------------------------------------------------------------------------------------

fn mountinfo() -> String {
    read("/proc/self/mountinfo")
}

/// Unmounts on drop, so a failed assertion leaves nothing mounted.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn usb_diag_script_writes_the_bundle_onto_a_kioskdiag_stick() {
    require_root("the USB diagnostics test");
    let mount = tool("mount");
    tool("umount");
    tool("setpriv");
    let losetup = tool("losetup");
    let tmp = open_tempdir();
    let t = tmp.path();

    // A daemon ran here before: the bundle has a real catalog to report on.
    let data = t.join("data");
    {
        let mut d = NotifiedDaemon::start(t, &[]);
        d.wait_for("READY=1", Duration::from_secs(30));
        d.sigterm();
        assert!(
            d.wait_exit(Duration::from_secs(30)).success(),
            "{}",
            read(&d.log)
        );
    }
    // As on a kiosk, the data belongs to the user the script runs diag as.
    run_ok(Command::new("chown").arg("-R").arg("nobody:").arg(&data));

    // The stick: a FAT image when this kernel has vfat, else ext4 (both are what a
    // technician may use), labelled KIOSKDIAG.
    let image = t.join("stick.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(32 * 1024 * 1024)
        .unwrap();
    let vfat = read("/proc/filesystems")
        .lines()
        .any(|l| l.trim_end().ends_with("vfat"));
    if vfat {
        run_ok(
            Command::new(tool("mkfs.vfat"))
                .args(["-n", "KIOSKDIAG"])
                .arg(&image),
        );
    } else {
        run_ok(
            Command::new(tool("mkfs.ext4"))
                .args(["-q", "-L", "KIOSKDIAG"])
                .arg(&image),
        );
    }

    // Loop devices are the real thing (a block device, mounted by the script); without
    // them the stick is a directory bind-mounted by a stand-in mount command.
    let loop_ok = Command::new(&losetup)
        .arg("-f")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let stick_dir = t.join("stick-dir");
    let mut script = Command::new(repo().join("assets/usb/selfie-kiosk-usb-diag"));
    script
        .arg("sdz1")
        .current_dir(t)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", t)
        .env("SELFIE_KIOSK_BIN", BIN)
        .env("USB_DIAG_DEVICE_PATH", &image)
        .env("USB_DIAG_RUN_AS", "nobody")
        .env("KIOSK_DATA_DIR", &data)
        .env("KIOSK_ID", "test-kiosk");
    if !loop_ok {
        eprintln!("no loop device here: the stick is a bind-mounted directory");
        std::fs::create_dir(&stick_dir).unwrap();
        let fake = t.join("bind-mount");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\n# -o OPTS SOURCE DIR\nexec mount --bind '{}' \"$4\"\n",
                stick_dir.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        script.env("USB_DIAG_MOUNT_CMD", &fake);
    }
    let out = script.output().expect("run selfie-kiosk-usb-diag");
    let report = describe(&script, &out);
    eprintln!("{report}");
    assert!(
        out.status.success(),
        "the USB diagnostics script failed:\n{report}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("can be removed"));

    // Nothing left mounted, no loop device left attached, no private directory left over.
    let info = mountinfo();
    assert!(
        !info.contains("selfie-kiosk-usb-diag"),
        "still mounted:\n{info}"
    );
    let attached = run_ok(Command::new(&losetup).arg("-j").arg(&image));
    assert!(
        attached.trim().is_empty(),
        "loop device still attached: {attached}"
    );
    let leftovers: Vec<_> = std::fs::read_dir("/run")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("selfie-kiosk-usb-diag.") && report.contains(n.as_str()))
        .collect();
    assert!(leftovers.is_empty(), "left in /run: {leftovers:?}");

    // What the technician finds on the stick.
    let files_dir = if loop_ok {
        let mnt = t.join("check");
        std::fs::create_dir(&mnt).unwrap();
        run_ok(
            Command::new(&mount)
                .args(["-o", "loop,ro"])
                .arg(&image)
                .arg(&mnt),
        );
        let _guard = Mounted(mnt.clone());
        let copy = t.join("from-stick");
        run_ok(
            Command::new("cp")
                .arg("-R")
                .arg(mnt.join("selfie-kiosk-diag"))
                .arg(&copy),
        );
        copy
    } else {
        stick_dir.join("selfie-kiosk-diag")
    };
    let names: Vec<String> = std::fs::read_dir(&files_dir)
        .unwrap_or_else(|e| panic!("no selfie-kiosk-diag/ on the stick: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n == "summary.txt"),
        "no summary.txt in {names:?}"
    );
    let bundles: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("selfie-kiosk-diag-test-kiosk-") && n.ends_with(".tar.gz"))
        .collect();
    assert_eq!(
        bundles.len(),
        1,
        "one selfie-kiosk-diag-test-kiosk-<time>.tar.gz expected in {names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("FAILED")),
        "failure note on the stick: {names:?}"
    );
    let listing = run_ok(
        Command::new(tool("tar"))
            .arg("-tzf")
            .arg(files_dir.join(bundles[0])),
    );
    assert!(!listing.trim().is_empty(), "empty bundle");
    assert!(
        !read(files_dir.join("summary.txt")).trim().is_empty(),
        "empty summary.txt"
    );
    // The data directory was read by `nobody`, not root: nothing in it became root's.
    let root_owned: Vec<String> = walk(&data)
        .into_iter()
        .filter(|p| p.metadata().unwrap().uid() == 0)
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        root_owned.is_empty(),
        "diag left root-owned files in the data dir: {root_owned:?}"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

// ---------------------------------------------------------------------------------------
// VPS web servers
// ---------------------------------------------------------------------------------------

/// A VPS tree under a temp dir: uploads/ and dav-tmp/ owned by `nobody`, a self-signed
/// certificate, an htpasswd file with `kiosk:s3cret-pass`.
struct Vps {
    dir: tempfile::TempDir,
    http: u16,
    https: u16,
}

impl Vps {
    fn new() -> Vps {
        let dir = open_tempdir();
        let d = dir.path();
        for sub in ["uploads", "dav-tmp", "empty", "le", "davlock", "run"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        run_ok(
            Command::new("chown")
                .arg("nobody:")
                .arg(d.join("uploads"))
                .arg(d.join("dav-tmp"))
                .arg(d.join("davlock")),
        );
        run_ok(
            Command::new(tool("openssl"))
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=vps.example.com",
                    "-keyout",
                ])
                .arg(d.join("key.pem"))
                .arg("-out")
                .arg(d.join("cert.pem")),
        );
        let hash = run_ok(Command::new(tool("openssl")).args(["passwd", "-apr1", "s3cret-pass"]));
        std::fs::write(d.join("htpasswd"), format!("kiosk:{}\n", hash.trim())).unwrap();
        std::fs::set_permissions(d.join("htpasswd"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        Vps {
            dir,
            http: free_port(),
            https: free_port(),
        }
    }

    fn path(&self, p: &str) -> String {
        self.dir.path().join(p).display().to_string()
    }

    /// Replaces `from` by `to` in `text`, failing if `from` is absent.
    fn subst(text: &str, from: &str, to: &str) -> String {
        assert!(
            text.contains(from),
            "`{from}` not found in the VPS configuration"
        );
        text.replace(from, to)
    }

    /// curl with the site's name resolved to loopback; returns (status, headers, body).
    fn curl(&self, method: &str, url_path: &str, args: &[&str]) -> (u16, String, Vec<u8>) {
        let headers = self.dir.path().join("curl-headers");
        let body = self.dir.path().join("curl-body");
        let (port, scheme) = if url_path.starts_with("http:") {
            (self.http, "http")
        } else {
            (self.https, "https")
        };
        let path = url_path.trim_start_matches("http:");
        let mut cmd = Command::new(tool("curl"));
        cmd.args(["-sS", "-k", "-X", method, "-o"])
            .arg(&body)
            .arg("-D")
            .arg(&headers)
            .args(["-w", "%{http_code}", "--resolve"])
            .arg(format!("vps.example.com:{port}:127.0.0.1"))
            .args(args)
            .arg(format!("{scheme}://vps.example.com:{port}{path}"));
        let out = cmd.output().expect("curl");
        assert!(out.status.success(), "{}", describe(&cmd, &out));
        let status = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        (
            status,
            read(&headers).to_ascii_lowercase(),
            std::fs::read(&body).unwrap_or_default(),
        )
    }

    /// What both web servers must do, whatever their configuration language.
    fn check_behaviour(&self, server: &str) {
        let jpeg = self.dir.path().join("capture.jpg");
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
        bytes.extend((0..100_000u32).map(|i| (i % 251) as u8));
        std::fs::write(&jpeg, &bytes).unwrap();
        let file = format!("@{}", jpeg.display());
        let auth = ["-u", "kiosk:s3cret-pass"];
        let put = |path: &str, extra: &[&str]| {
            let mut a = vec![
                "--data-binary",
                file.as_str(),
                "-H",
                "Content-Type: image/jpeg",
            ];
            a.extend_from_slice(extra);
            self.curl("PUT", path, &a).0
        };

        let id = "0123456789abcdef0123456789abcdef";
        let dav = format!("/dav/uploads/{id}.jpg");
        let public = format!("/uploads/{id}.jpg");
        assert_eq!(put(&dav, &[]), 401, "{server}: PUT without credentials");
        assert_eq!(
            put(&dav, &["-u", "kiosk:wrong"]),
            401,
            "{server}: PUT with a wrong password"
        );
        let s = put(&dav, &auth);
        assert!(
            s == 201 || s == 204,
            "{server}: PUT with credentials answered {s}"
        );
        let s = put(&dav, &auth);
        assert!(
            s == 201 || s == 204,
            "{server}: repeated PUT (idempotent) answered {s}"
        );
        assert_eq!(
            put(&public, &auth),
            403,
            "{server}: PUT on the public location"
        );
        let (s, _, _) = self.curl("DELETE", &public, &auth);
        assert!(
            s == 403 || s == 405,
            "{server}: DELETE on the public location answered {s}"
        );

        let (s, headers, body) = self.curl("GET", &public, &[]);
        assert_eq!(s, 200, "{server}: public GET");
        assert!(
            body == bytes,
            "{server}: served bytes differ from the uploaded ones"
        );
        assert!(
            headers.contains("content-type: image/jpeg"),
            "{server}: {headers}"
        );
        assert!(
            headers.contains("max-age=86400"),
            "{server}: no one-day caching: {headers}"
        );
        assert!(
            headers.contains("strict-transport-security"),
            "{server}: no HSTS: {headers}"
        );
        assert!(
            headers.contains("x-content-type-options: nosniff"),
            "{server}: {headers}"
        );
        let (s, _, _) = self.curl("HEAD", &public, &["-I"]);
        assert_eq!(s, 200, "{server}: HEAD");

        let (s, _, body) = self.curl("GET", "/uploads/", &[]);
        assert!(
            s == 403 || s == 404,
            "{server}: directory listing answered {s}"
        );
        assert!(
            !String::from_utf8_lossy(&body).contains(id),
            "{server}: directory listing shows files"
        );
        let (s, _, _) = self.curl("GET", &dav, &[]);
        assert_eq!(
            s, 401,
            "{server}: the DAV location needs credentials even to read"
        );
        let (s, _, _) = self.curl(
            "PROPFIND",
            "/dav/uploads/",
            &["-H", "Depth: 1", "-u", "kiosk:s3cret-pass"],
        );
        assert!(
            s != 207 && s != 200,
            "{server}: PROPFIND (listing) answered {s}"
        );
        let (s, _, _) = self.curl("HEAD", "/dav/uploads/", &["-I", "-u", "kiosk:s3cret-pass"]);
        assert!(
            s > 0,
            "{server}: the daemon's reachability probe got no answer"
        );

        // Larger than the kiosks' default MAX_CAPTURE_BYTES (25 MB) is accepted, 64 MiB+ not.
        let big = self.dir.path().join("big.jpg");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(26 * 1024 * 1024)
            .unwrap();
        let big_arg = format!("@{}", big.display());
        let (s, _, _) = self.curl(
            "PUT",
            "/dav/uploads/big.jpg",
            &["--data-binary", &big_arg, "-u", "kiosk:s3cret-pass"],
        );
        assert!(s == 201 || s == 204, "{server}: 26 MB PUT answered {s}");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(65 * 1024 * 1024)
            .unwrap();
        let (s, _, _) = self.curl(
            "PUT",
            "/dav/uploads/huge.jpg",
            &["--data-binary", &big_arg, "-u", "kiosk:s3cret-pass"],
        );
        assert_eq!(s, 413, "{server}: 65 MiB PUT");

        let (s, _, _) = self.curl("DELETE", &dav, &[]);
        assert_eq!(s, 401, "{server}: DELETE without credentials");
        let (s, _, _) = self.curl("DELETE", &dav, &auth);
        assert!(s == 204 || s == 200, "{server}: DELETE answered {s}");
        let (s, _, _) = self.curl("GET", &public, &[]);
        assert_eq!(s, 404, "{server}: GET after DELETE");
        let (s, _, _) = self.curl("DELETE", &dav, &auth);
        assert_eq!(
            s, 404,
            "{server}: DELETE of a missing file (the daemon takes 404 as done)"
        );

        let (s, headers, _) = self.curl("GET", &format!("http:{public}"), &[]);
        assert_eq!(s, 301, "{server}: plain HTTP must redirect");
        assert!(
            headers.contains(&format!(
                "location: https://vps.example.com/uploads/{id}.jpg"
            )),
            "{server}: {headers}"
        );
        let leftovers: Vec<_> = std::fs::read_dir(self.dir.path().join("uploads"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers,
            vec![std::ffi::OsString::from("big.jpg")],
            "{server}: files left in uploads/"
        );
    }
}

#[test]
fn vps_nginx_config_serves_public_reads_and_authenticated_webdav() {
    require_root("the nginx test");
    let nginx = tool("nginx");
    tool("curl");
    let vps = Vps::new();
    let d = vps.dir.path();

    let mut site = read(repo().join("assets/vps/nginx-selfie-kiosk.conf"));
    for (from, to) in [
        (
            "/etc/letsencrypt/live/vps.example.com/fullchain.pem",
            vps.path("cert.pem"),
        ),
        (
            "/etc/letsencrypt/live/vps.example.com/privkey.pem",
            vps.path("key.pem"),
        ),
        ("/etc/nginx/selfie-kiosk.htpasswd", vps.path("htpasswd")),
        ("/var/www/selfie-kiosk/", format!("{}/", d.display())),
        ("/var/www/letsencrypt", vps.path("le")),
        ("listen [::]:80;", String::new()),
        ("listen [::]:443 ssl;", String::new()),
        ("listen 80;", format!("listen 127.0.0.1:{};", vps.http)),
        (
            "listen 443 ssl;",
            format!("listen 127.0.0.1:{} ssl;", vps.https),
        ),
        (
            "return 301 https://$host$request_uri;",
            "return 301 https://$host$request_uri;".to_string(),
        ),
    ] {
        site = Vps::subst(&site, from, &to);
    }
    std::fs::write(d.join("site.conf"), site).unwrap();
    let t = d.display();
    let conf = format!(
        "user nobody nogroup;\nworker_processes 1;\ndaemon off;\npid {t}/nginx.pid;\nerror_log {t}/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n  access_log {t}/access.log;\n\
         client_body_temp_path {t}/body-tmp;\n  proxy_temp_path {t}/proxy-tmp;\n  fastcgi_temp_path {t}/fastcgi-tmp;\n\
         uwsgi_temp_path {t}/uwsgi-tmp;\n  scgi_temp_path {t}/scgi-tmp;\n  include {t}/site.conf;\n}}\n"
    );
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    let conf_path = d.join("nginx.conf");
    run_ok(
        Command::new(&nginx)
            .arg("-t")
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(d),
    );

    let log = d.join("error.log");
    let child = Command::new(&nginx)
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let mut server = KillOnDrop(child);
    wait_for_port(vps.https, &mut server.0, &log);
    vps.check_behaviour("nginx");
    // nginx's master quits on SIGQUIT/SIGTERM; KillOnDrop's SIGKILL leaves the workers
    // orphaned, so ask it politely first.
    let _ = Command::new("kill")
        .arg("-QUIT")
        .arg(server.0.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.0.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn vps_apache_config_serves_public_reads_and_authenticated_webdav() {
    require_root("the Apache test");
    let apache = tool("apache2");
    tool("curl");
    let vps = Vps::new();
    let d = vps.dir.path();

    let mut site = read(repo().join("assets/vps/apache-selfie-kiosk.conf"));
    for (from, to) in [
        (
            "/etc/letsencrypt/live/vps.example.com/fullchain.pem",
            vps.path("cert.pem"),
        ),
        (
            "/etc/letsencrypt/live/vps.example.com/privkey.pem",
            vps.path("key.pem"),
        ),
        ("/etc/apache2/selfie-kiosk.htpasswd", vps.path("htpasswd")),
        ("/var/www/selfie-kiosk/", format!("{}/", d.display())),
        ("/var/www/letsencrypt/", format!("{}/", vps.path("le"))),
        (
            "<VirtualHost *:80>",
            format!("<VirtualHost 127.0.0.1:{}>", vps.http),
        ),
        (
            "<VirtualHost *:443>",
            format!("<VirtualHost 127.0.0.1:{}>", vps.https),
        ),
    ] {
        site = Vps::subst(&site, from, &to);
    }
    std::fs::write(d.join("site.conf"), site).unwrap();
    let modules = [
        "mpm_event",
        "authz_core",
        "authz_user",
        "authn_core",
        "authn_file",
        "auth_basic",
        "alias",
        "dav",
        "dav_fs",
        "headers",
        "expires",
        "mime",
        "ssl",
        "socache_shmcb",
    ];
    let mut conf = String::new();
    for m in modules {
        conf += &format!("LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so\n");
    }
    let t = d.display();
    conf += &format!(
        "ServerName localhost\nServerRoot {t}\nListen 127.0.0.1:{}\nListen 127.0.0.1:{}\nPidFile {t}/httpd.pid\n\
         ErrorLog {t}/error.log\nLogLevel warn\nUser nobody\nGroup nogroup\nTypesConfig /etc/mime.types\n\
         DefaultRuntimeDir {t}/run\nMutex file:{t}/run default\nDAVLockDB {t}/davlock/DAVLock\n\
         Include {t}/site.conf\n",
        vps.http, vps.https
    );
    std::fs::write(d.join("httpd.conf"), conf).unwrap();
    let conf_path = d.join("httpd.conf");
    run_ok(Command::new(&apache).arg("-t").arg("-f").arg(&conf_path));

    let child = Command::new(&apache)
        .arg("-f")
        .arg(&conf_path)
        .arg("-DFOREGROUND")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start apache2");
    let mut server = KillOnDrop(child);
    wait_for_port(vps.https, &mut server.0, &d.join("error.log"));
    vps.check_behaviour("apache");
    // Graceful stop: the parent then takes its children down.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(server.0.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.0.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}
