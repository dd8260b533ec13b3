//! Runs the real `selfie-kiosk` binary: start with a data dir and env, wait for /health,
//! SIGKILL or SIGTERM it, restart it on the same data.
//!
//! The binary is Cargo's unless `SELFIE_KIOSK_BIN` names another one (a cross-built one,
//! see `tools/cross-test.sh`), run through `SELFIE_KIOSK_RUNNER` when that is set (e.g.
//! `qemu-aarch64-static`; its words are the program and its first arguments).

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_selfie-kiosk");
pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";

/// The binary the harness runs: `SELFIE_KIOSK_BIN`, else the one Cargo built.
pub fn bin() -> String {
    std::env::var("SELFIE_KIOSK_BIN")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| BIN.to_string())
}

/// The runner's words (`SELFIE_KIOSK_RUNNER`), empty when the binary runs natively.
pub fn runner() -> Vec<String> {
    std::env::var("SELFIE_KIOSK_RUNNER")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// A command that runs [`bin`], through [`runner`] if there is one. Under qemu-user the
/// child's pid is the emulated process's: signals and exit codes pass through.
pub fn command() -> Command {
    let runner = runner();
    match runner.split_first() {
        Some((prog, args)) => {
            let mut c = Command::new(prog);
            c.args(args).arg(bin());
            c
        }
        None => Command::new(bin()),
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub struct Daemon {
    pub dir: PathBuf,
    pub port: u16,
    pub env: HashMap<String, String>,
    child: Option<Child>,
    log: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Daemon {
    /// A daemon on a fresh temp data dir with `env` on top of test defaults.
    pub fn start(env: &[(&str, &str)]) -> Daemon {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut d = Daemon::new_in(tmp.path(), env);
        d._tmp = Some(tmp);
        d.spawn();
        d
    }

    /// Not started yet: call [`Daemon::spawn`].
    pub fn new_in(dir: &Path, env: &[(&str, &str)]) -> Daemon {
        let port = free_port();
        let mut map = HashMap::new();
        map.insert(
            "KIOSK_DATA_DIR".to_string(),
            dir.join("data").display().to_string(),
        );
        map.insert("KIOSK_LISTEN".to_string(), format!("127.0.0.1:{port}"));
        map.insert("KIOSK_ID".to_string(), "test-kiosk".to_string());
        map.insert("ADMIN_API_KEY".to_string(), ADMIN_KEY.to_string());
        map.insert(
            "KIOSK_LOG".to_string(),
            "info,selfie_kiosk=debug".to_string(),
        );
        for (k, v) in env {
            map.insert(k.to_string(), v.to_string());
        }
        Daemon {
            dir: dir.to_path_buf(),
            port,
            env: map,
            child: None,
            log: dir.join("daemon.log"),
            _tmp: None,
        }
    }

    pub fn set_env(&mut self, k: &str, v: &str) {
        self.env.insert(k.to_string(), v.to_string());
    }

    /// Starts the daemon and waits until it listens and its start-up recovery is done, so
    /// that files and rows agree and the outbox is whole, as tests expect after a restart.
    pub fn spawn(&mut self) {
        self.spawn_inner();
        self.wait_ready(start_timeout(), true);
    }

    fn spawn_inner(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = command()
            .arg("serve")
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&self.env)
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn selfie-kiosk");
        self.child = Some(child);
    }

    /// [`Daemon::spawn`] without waiting for the start-up recovery (files against rows,
    /// outbox rebuild), which runs after READY: returns as soon as `/health` answers.
    pub fn spawn_listening(&mut self) {
        self.spawn_inner();
        self.wait_ready(start_timeout(), false);
    }

    /// Waits until the start-up recovery has finished (`/health`: worker `recovery` done).
    pub fn wait_recovered(&mut self) {
        let secs = if runner().is_empty() { 60 } else { 180 };
        self.wait_ready(Duration::from_secs(secs), true);
    }

    fn wait_ready(&mut self, timeout: Duration, recovered: bool) {
        let start = Instant::now();
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!(
                        "daemon exited early with {status}; log:\n{}",
                        self.log_text()
                    );
                }
            }
            match health_answers(self.port) {
                Some(body) if !recovered || recovery_done(&body) => return,
                _ => {}
            }
            if start.elapsed() > timeout {
                panic!(
                    "daemon not listening after {timeout:?}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn data_dir(&self) -> PathBuf {
        PathBuf::from(&self.env["KIOSK_DATA_DIR"])
    }

    pub fn uploads_dir(&self) -> PathBuf {
        self.env
            .get("UPLOADS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.data_dir().join("uploads"))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Capture temp files the daemon has in `uploads/.incoming/` (see
    /// [`capture_temp_files`]).
    pub fn capture_temp_files(&self) -> usize {
        capture_temp_files(self.pid(), &self.uploads_dir().join(".incoming"))
    }

    /// SIGKILL, like a power cut for the process.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait; returns the exit code and how long it took.
    pub fn terminate(&mut self, timeout: Duration) -> (Option<i32>, Duration) {
        let mut c = self.child.take().expect("running");
        let t = Instant::now();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return (st.code(), t.elapsed());
            }
            if t.elapsed() > timeout {
                let _ = c.kill();
                let _ = c.wait();
                return (None, t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Opens the catalog read-only (sqlite is fine with a concurrent reader in WAL mode).
    pub fn catalog(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.data_dir().join("catalog.sqlite3")).expect("open catalog")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs the binary with arguments and env, returning (code, stdout, stderr).
pub fn run_cli(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> (i32, String, String) {
    let out = command()
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .output()
        .expect("run selfie-kiosk");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether `GET /health` gets an HTTP answer (the port is bound before start-up work ends).
/// How long a start may take: an emulated one (qemu-user) is many times slower.
fn start_timeout() -> Duration {
    Duration::from_secs(if runner().is_empty() { 20 } else { 90 })
}

/// The answer to `GET /health` (status line, headers, body), if the daemon answers.
fn health_answers(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    s.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.")
        .then(|| String::from_utf8_lossy(&buf).into_owned())
}

/// Whether a `/health` answer shows the start-up recovery finished.
fn recovery_done(answer: &str) -> bool {
    let Some((_, body)) = answer.split_once("\r\n\r\n") else {
        return false;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return false;
    };
    v["checks"]["workers"]["workers"]["recovery"]["state"] == "done"
}

/// Capture temp files process `pid` has in `incoming`: named ones, and unnamed
/// (`O_TMPFILE`) ones it holds open that have bytes. An empty unnamed one is the spare
/// made ahead for the next capture, not counted.
pub fn capture_temp_files(pid: u32, incoming: &Path) -> usize {
    let named = std::fs::read_dir(incoming).map_or(0, |rd| rd.count());
    let unnamed = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |fds| {
        fds.flatten()
            .filter(|fd| {
                // An unnamed file's link reads "{incoming}/#{inode} (deleted)".
                std::fs::read_link(fd.path()).is_ok_and(|t| t.starts_with(incoming))
                    && std::fs::metadata(fd.path()).is_ok_and(|m| m.len() > 0)
            })
            .count()
    });
    named + unnamed
}
