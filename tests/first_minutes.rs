//! The first ten minutes of a newcomer, checked as they would check them: run the binary,
//! read what it prints, its exit code and its answers (issue 18).
//!
//! Configuration (`check-config` reporting every problem, host names, the heartbeat read
//! through the configuration), the command line (`--help`, `--version`, one exit-code
//! table), the start-up banner, the error answers, the admin-key slow-down, SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests measure real time; the rule that time is read through `clock` (clippy.toml) is
// for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::daemon::{free_port, run_cli, Daemon};

fn data_env(dir: &Path) -> (String, String) {
    (
        "KIOSK_DATA_DIR".into(),
        dir.join("data").display().to_string(),
    )
}

// ---------------------------------------------------------------------------------------
// Configuration

#[test]
fn check_config_reports_every_bad_value_at_once_then_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    let (dk, dv) = data_env(dir.path());
    let (code, out, err) = run_cli(
        &["check-config"],
        &[
            (&dk, &dv),
            ("RETENTION_DAYS", "abc"),
            ("KIOSK_LISTEN", "nonsense"),
            ("KIOSK_HEARTBEAT_SECS", "abc"),
            ("MAX_CAPTURE_BYTES", "lots"),
            ("REDIS_URL", "redis://localhost:6379/0"),
        ],
        dir.path(),
    );
    assert_eq!(code, 64, "{out}{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "one line per bad value:\n{err}");
    for var in [
        "KIOSK_LISTEN",
        "RETENTION_DAYS",
        "MAX_CAPTURE_BYTES",
        "KIOSK_HEARTBEAT_SECS",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(&format!("{var}: "))),
            "{var} not reported:\n{err}"
        );
    }
    assert!(!out.contains("configuration OK"), "{out}");
    // Every setting is printed all the same, the bad ones marked.
    for var in [
        "KIOSK_LISTEN",
        "HEALTH_LISTEN",
        "KIOSK_DATA_DIR",
        "UPLOADS_DIR",
        "KIOSK_ID",
        "ADMIN_API_KEY",
        "SECRET_KEY",
        "REMOTE_DATABASE_URL",
        "REMOTE_STORAGE_URL",
        "PUBLIC_BASE_URL",
        "OVH_ENDPOINT",
        "SMS_SERVICE_NAME",
        "SMS_SENDER",
        "RETENTION_DAYS",
        "MAX_CAPTURE_BYTES",
        "KIOSK_DISK_RESERVE",
        "KIOSK_CORS_ORIGINS",
        "KIOSK_LOG",
        "OVH_TIMEOUT_SECS",
        "KIOSK_HEARTBEAT_SECS",
    ] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(var)),
            "{var} not shown:\n{out}"
        );
    }
    let line = |var: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{var} ")))
            .unwrap_or_else(|| panic!("{var} missing:\n{out}"))
            .to_string()
    };
    assert!(line("RETENTION_DAYS").contains("INVALID"), "{out}");
    assert!(!line("KIOSK_ID").contains("INVALID"), "{out}");
    assert!(out.contains("REDIS_URL is set but ignored"), "{out}");
}

#[test]
fn check_config_prints_sizes_as_written_and_where_the_key_file_is() {
    let dir = tempfile::tempdir().unwrap();
    let (dk, dv) = data_env(dir.path());
    let env = [
        (dk.as_str(), dv.as_str()),
        ("MAX_CAPTURE_BYTES", "25MB"),
        ("KIOSK_DISK_RESERVE", "512k"),
        ("HEALTH_LISTEN", "127.0.0.1:9100"),
        ("KIOSK_CORS_ORIGINS", "http://localhost:3000"),
        ("KIOSK_LOG", "debug"),
    ];
    let (code, out, err) = run_cli(&["check-config"], &env, dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("configuration OK"), "{out}");
    let line = |var: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{var} ")))
            .unwrap_or_else(|| panic!("{var} missing:\n{out}"))
            .to_string()
    };
    assert!(line("MAX_CAPTURE_BYTES").ends_with("25MB"), "{out}");
    assert!(line("KIOSK_DISK_RESERVE").ends_with("512KB"), "{out}");
    assert!(line("HEALTH_LISTEN").ends_with("127.0.0.1:9100"), "{out}");
    assert!(line("KIOSK_CORS_ORIGINS").ends_with("http://localhost:3000"));
    assert!(line("KIOSK_LOG").ends_with("debug"), "{out}");
    let key_path = dir.path().join("data").join("admin_api_key");
    let admin = line("ADMIN_API_KEY");
    assert!(admin.contains(&key_path.display().to_string()), "{admin}");
    assert!(admin.contains("does not exist yet"), "{admin}");

    // The daemon generates the file; check-config now says it exists, never its content.
    let mut d = Daemon::new_in(dir.path(), &[]);
    d.env.remove("ADMIN_API_KEY");
    d.spawn();
    let key = std::fs::read_to_string(&key_path).unwrap();
    d.terminate(Duration::from_secs(20));
    let (code, out, _) = run_cli(&["check-config"], &env, dir.path());
    assert_eq!(code, 0);
    let admin = out
        .lines()
        .find(|l| l.trim_start().starts_with("ADMIN_API_KEY"))
        .unwrap();
    assert!(admin.contains("(exists)"), "{admin}");
    assert!(!out.contains(key.trim()), "the key itself was printed");
    // Given in the environment: "set", and no path to look for.
    let (_, out, _) = run_cli(
        &["check-config"],
        &[(&dk, &dv), ("ADMIN_API_KEY", "given-admin-key-0123456789")],
        dir.path(),
    );
    assert!(out.contains("ADMIN_API_KEY         set"), "{out}");
    assert!(!out.contains("given-admin-key-0123456789"));
}

#[test]
fn the_heartbeat_interval_is_checked_from_the_env_file_too() {
    let dir = tempfile::tempdir().unwrap();
    let (dk, dv) = data_env(dir.path());
    let env_file = dir.path().join("kiosk.env");
    for bad in ["abc", "0"] {
        std::fs::write(&env_file, format!("KIOSK_HEARTBEAT_SECS={bad}\n")).unwrap();
        let file = env_file.display().to_string();
        for cmd in ["check-config", "serve"] {
            let (code, out, err) = run_cli(
                &[cmd, "--env-file", &file],
                &[
                    (&dk, &dv),
                    ("KIOSK_LISTEN", &format!("127.0.0.1:{}", free_port())),
                ],
                dir.path(),
            );
            assert_eq!(
                code, 64,
                "{cmd} with KIOSK_HEARTBEAT_SECS={bad}: {out}{err}"
            );
            assert!(err.contains("KIOSK_HEARTBEAT_SECS: "), "{err}");
        }
    }
    // ./.env, read from the working directory.
    std::fs::write(dir.path().join(".env"), "KIOSK_HEARTBEAT_SECS=7\n").unwrap();
    let (code, out, err) = run_cli(&["check-config"], &[(&dk, &dv)], dir.path());
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("KIOSK_HEARTBEAT_SECS"))
        .unwrap();
    assert!(line.trim_end().ends_with(" 7"), "{line}");
}

#[test]
fn addresses_accept_host_names() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new_in(dir.path(), &[]);
    let port = d.port;
    d.set_env("KIOSK_LISTEN", &format!("localhost:{port}"));
    d.set_env("HEALTH_LISTEN", &format!("localhost:{}", free_port()));
    // spawn() waits until /health answers on 127.0.0.1:port.
    d.spawn();
    let (code, _) = d.terminate(Duration::from_secs(20));
    assert_eq!(code, Some(0));

    let (dk, dv) = data_env(dir.path());
    for var in ["KIOSK_LISTEN", "HEALTH_LISTEN"] {
        let (code, out, err) = run_cli(
            &["serve"],
            &[(&dk, &dv), (var, "no-such-host.invalid:8000")],
            dir.path(),
        );
        assert_eq!(code, 64, "{out}{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&format!("{var}: cannot resolve")), "{err}");
    }
}

// ---------------------------------------------------------------------------------------
// Command line

#[test]
fn help_says_where_configuration_comes_from_and_every_option_is_described() {
    let dir = tempfile::tempdir().unwrap();
    let (code, help, err) = run_cli(&["--help"], &[], dir.path());
    assert_eq!(code, 0, "{err}");
    for needle in [
        ".env",
        "--env-file",
        "KIOSK_LISTEN",
        "127.0.0.1:8000",
        "KIOSK_DATA_DIR",
        "./data",
        "X-API-Key",
        "NO_COLOR",
        "Exit codes",
        "64",
        "69",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    for cmd in ["serve", "check-config", "sms-test", "fleet", "diag"] {
        let (code, h, err) = run_cli(&[cmd, "--help"], &[], dir.path());
        assert_eq!(code, 0, "{cmd}: {err}");
        assert!(h.contains("Exit codes"), "{cmd} --help:\n{h}");
        // Every option line has a description after the flag.
        for l in h.lines().filter(|l| l.trim_start().starts_with('-')) {
            let t = l.trim_start();
            let flag_end = t.find("  ").unwrap_or(t.len());
            assert!(
                !t[flag_end..].trim().is_empty(),
                "{cmd}: option without a description: {l:?}\n{h}"
            );
        }
    }
    let (_, h, _) = run_cli(&["diag", "--help"], &[], dir.path());
    assert!(h.contains("Directory to write"), "{h}");
    let (_, h, _) = run_cli(&["fleet", "--help"], &[], dir.path());
    assert!(h.contains("--check"), "{h}");

    // A usage error is 64, like a configuration error.
    let (code, _, err) = run_cli(&["--no-such-option"], &[], dir.path());
    assert_eq!(code, 64, "{err}");
    let (code, _, err) = run_cli(&["diag"], &[], dir.path());
    assert_eq!(code, 64, "diag without --out: {err}");
}

#[test]
fn version_shows_the_commit_and_the_build_date() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run_cli(&["--version"], &[], dir.path());
    assert_eq!(code, 0, "{err}");
    let v = out.trim();
    let rest = v
        .strip_prefix(&format!(
            "selfie-kiosk {} (commit ",
            env!("CARGO_PKG_VERSION")
        ))
        .unwrap_or_else(|| panic!("{v}"));
    let (commit, rest) = rest.split_once(", built ").unwrap_or_else(|| panic!("{v}"));
    let date = rest.strip_suffix(')').unwrap_or_else(|| panic!("{v}"));
    assert_eq!(date.len(), 10, "{v}");
    assert!(
        date.chars().enumerate().all(|(i, c)| if i == 4 || i == 7 {
            c == '-'
        } else {
            c.is_ascii_digit()
        }),
        "{v}"
    );
    let repo = env!("CARGO_MANIFEST_DIR");
    let head = std::process::Command::new("git")
        .args(["-C", repo, "rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success() && Path::new(repo).join(".git").exists())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(h) => assert_eq!(commit, h, "{v}"),
        None => assert_eq!(commit, "unknown", "{v}"),
    }
}

#[test]
fn exit_codes_follow_one_table() {
    let dir = tempfile::tempdir().unwrap();
    let (dk, dv) = data_env(dir.path());
    let base = [(dk.as_str(), dv.as_str())];
    let run = |args: &[&str], extra: &[(&str, &str)]| {
        let mut env = base.to_vec();
        env.extend_from_slice(extra);
        run_cli(args, &env, dir.path())
    };
    // Not configured: a configuration error (64), the same for every command.
    let (code, _, err) = run(&["fleet"], &[]);
    assert_eq!(code, 64, "fleet unconfigured: {err}");
    assert!(err.contains("REMOTE_DATABASE_URL"), "{err}");
    let (code, _, err) = run(&["sms-test", "0612345678", "--dry-run"], &[]);
    assert_eq!(code, 64, "sms-test unconfigured: {err}");
    assert!(err.contains("not configured"), "{err}");

    // A remote that does not answer: 69.
    let dead = free_port();
    let url = format!("postgresql://kiosk@127.0.0.1:{dead}/kiosk?connect_timeout=2");
    let (code, _, err) = run(&["fleet"], &[("REMOTE_DATABASE_URL", &url)]);
    assert_eq!(code, 69, "fleet, database down: {err}");
    let ovh = format!("http://127.0.0.1:{dead}/1.0");
    let (code, _, err) = run(
        &["sms-test", "0612345678", "--dry-run"],
        &[
            ("OVH_ENDPOINT", &ovh),
            ("OVH_APP_KEY", "appkey"),
            ("OVH_APP_SECRET", "appsecret"),
            ("OVH_CONSUMER_KEY", "consumerkey"),
            ("SMS_SERVICE_NAME", "sms-ab12345-1"),
            ("SMS_SENDER", "SelfieBox"),
            ("OVH_TIMEOUT_SECS", "2"),
        ],
    );
    assert_eq!(code, 69, "sms-test, OVH unreachable: {err}");

    // `diag` with no daemon: the bundle is written, the kiosk is DOWN: 2.
    let out = dir.path().join("usb");
    let (code, stdout, err) = run(
        &["diag", "--out", &out.display().to_string()],
        &[("KIOSK_LISTEN", &format!("127.0.0.1:{dead}"))],
    );
    assert_eq!(code, 2, "diag, kiosk down: {stdout}{err}");
    assert!(stdout.contains("kiosk status:       DOWN"), "{stdout}");
    assert!(out.join("summary.txt").exists());

    // `diag` next to a running daemon: 0.
    let d = Daemon::new_in(dir.path(), &[]);
    let mut d = d;
    d.spawn();
    let listen = d.env["KIOSK_LISTEN"].clone();
    let (code, stdout, err) = run(
        &[
            "diag",
            "--out",
            &dir.path().join("usb2").display().to_string(),
        ],
        &[
            ("KIOSK_LISTEN", &listen),
            ("ADMIN_API_KEY", support::daemon::ADMIN_KEY),
        ],
    );
    assert_eq!(code, 0, "diag, kiosk up: {stdout}{err}");
    d.terminate(Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_check_fails_on_a_stale_kiosk() {
    let pg = support::pg::PgCluster::new();
    let url = pg.url();
    let mut d = Daemon::start(&[
        ("KIOSK_ID", "kiosk-check"),
        ("REMOTE_DATABASE_URL", &url),
        ("KIOSK_HEARTBEAT_SECS", "1"),
    ]);
    let cwd = tempfile::tempdir().unwrap();
    let env = [
        ("REMOTE_DATABASE_URL", url.as_str()),
        ("KIOSK_ID", "laptop"),
    ];
    let t = Instant::now();
    loop {
        let (code, out, err) = run_cli(&["fleet", "--check"], &env, cwd.path());
        if code == 0 && out.contains("kiosk-check") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "fleet --check never passed: {code} {out}{err}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Without --check, a stale kiosk is shown but the exit is 0; with it, 2.
    d.terminate(Duration::from_secs(20));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (code, out, err) = run_cli(&["fleet", "--stale-after", "1"], &env, cwd.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("STALE"), "{out}");
    let (code, out, err) = run_cli(
        &["fleet", "--check", "--stale-after", "1"],
        &env,
        cwd.path(),
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("kiosk-check (stale)"), "{err}");
    // A kiosk reporting down fails the check even when fresh.
    pg.psql("UPDATE kiosk_heartbeats SET status = 'down', seen_at = now() WHERE kiosk_id = 'kiosk-check'");
    let (code, _, err) = run_cli(&["fleet", "--check"], &env, cwd.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("kiosk-check (down)"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Admin key slow-down

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_admin_key_is_never_delayed() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let d = Daemon::start(&[]);
    let client = reqwest::Client::new();
    let call = |key: &'static str| {
        let req = client.get(d.url("/admin/stats")).header("x-api-key", key);
        async move {
            let t = Instant::now();
            let status = req.send().await.unwrap().status();
            (status, t.elapsed())
        }
    };
    for _ in 0..8 {
        let (status, _) = call("wrong-key-wrong-key-wrong").await;
        assert_eq!(status, 401);
    }
    // A wrong key is slowed now...
    let (status, wrong) = call("wrong-key-wrong-key-wrong").await;
    assert_eq!(status, 401);
    assert!(
        wrong >= Duration::from_millis(1000),
        "wrong key after 9 failures: {wrong:?}"
    );
    // ...the right one answers before half that delay, from the same address.
    let (status, right) = call(support::daemon::ADMIN_KEY).await;
    assert_eq!(status, 200);
    assert!(
        right < wrong / 2,
        "right key {right:?}, wrong key {wrong:?}"
    );
    // The slow-down is per address and only for wrong keys: a success forgets the
    // address's failures (tests/admin.rs relies on that), and a wrong key after it is
    // still refused.
    let (status, _) = call("wrong-key-wrong-key-wrong").await;
    assert_eq!(status, 401);
}

// ---------------------------------------------------------------------------------------
// Start banner

#[test]
fn serve_prints_a_plain_banner_a_person_can_act_on() {
    // Defaults: the key generated into the data directory, every optional part off.
    let d = Daemon::start(&[("ADMIN_API_KEY", "")]);
    let log = d.log_text();
    let key_file = std::fs::canonicalize(d.data_dir().join("admin_api_key")).unwrap();
    let line = |start: &str| {
        log.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no '{start}' line in:\n{log}"))
            .to_string()
    };
    assert!(
        line("selfie-kiosk ").contains("ready — kiosk test-kiosk"),
        "{log}"
    );
    let api = line("API:");
    assert!(
        api.contains(&format!("http://127.0.0.1:{}/", d.port)),
        "{api}"
    );
    assert!(
        api.contains(&format!("http://127.0.0.1:{}/console/", d.port)),
        "{api}"
    );
    assert!(
        line("Admin key:").contains(&key_file.display().to_string()),
        "{log}"
    );
    assert!(
        log.contains(&format!("X-API-Key: $(cat {})", key_file.display())),
        "how to send the key:\n{log}"
    );
    assert!(line("Sync:").contains("off — REMOTE_DATABASE_URL and REMOTE_STORAGE_URL unset"));
    assert!(line("SMS:").contains(
        "off — OVH_APP_KEY, OVH_APP_SECRET, OVH_CONSUMER_KEY, SMS_SERVICE_NAME, SMS_SENDER unset"
    ));
    assert!(line("Health:").contains("HEALTH_LISTEN unset"), "{log}");
    // The key itself is never printed.
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert!(!log.contains(key.trim()), "the admin key is in the log");
    // stderr is a file here: no colour codes anywhere in the log.
    assert!(
        !log.contains("\x1b["),
        "ANSI escape codes in a log file:\n{log}"
    );

    // What is configured is said to be on; a URL's password is not shown.
    let health = free_port();
    let d = Daemon::start(&[
        ("HEALTH_LISTEN", &format!("127.0.0.1:{health}")),
        (
            "REMOTE_STORAGE_URL",
            "http://kiosk:dav-secret@127.0.0.1:9/uploads/",
        ),
        ("NO_COLOR", "1"),
    ]);
    let log = d.log_text();
    assert!(
        log.contains("Sync:      on — remote files http://127.0.0.1:9/uploads/"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "on — http://127.0.0.1:{health}/health (HEALTH_LISTEN)"
        )),
        "{log}"
    );
    assert!(log.contains("X-API-Key: $ADMIN_API_KEY"), "{log}");
    assert!(!log.contains("dav-secret"), "{log}");
    assert!(!log.contains(support::daemon::ADMIN_KEY), "{log}");
    assert!(!log.contains("\x1b["), "{log}");
}
