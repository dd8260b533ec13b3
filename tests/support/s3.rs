//! A real S3-compatible server on loopback for remote-storage tests: `moto_server` (the
//! `moto[server]` package from PyPI, installed by `tools/install-test-deps.sh`).
//!
//! moto keeps its state in memory: a bucket, IAM users and objects live as long as the
//! process. Out of the box it accepts any credentials (it parses the `Authorization`
//! header only to route the request). [`Moto::enforce_auth`] creates an IAM user with an
//! access key and an `s3:*` policy, then switches moto to checking every request's
//! Signature V4 (moto recomputes it with botocore) and access key: wrong secrets get
//! `SignatureDoesNotMatch`, unknown keys `InvalidAccessKeyId`, as from AWS.
//!
//! Set-up requests go through `curl` before authentication is enforced (their signature
//! is a placeholder moto does not check then). moto runs as a child of the test process,
//! its log in its temp dir; it is stopped on drop, and instances left behind by a killed
//! test process are reaped by the next start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::pg::free_port;

const DIR_PREFIX: &str = "kiosk-test-moto-";
const INSTALL_HINT: &str = "run tools/install-test-deps.sh (pip install 'moto[server]' into .venv-tools/) to install moto_server";

/// The `moto_server` executable: `.venv-tools/bin/moto_server` in the repository, then
/// `PATH`. Panics with an install hint when there is none.
pub fn moto_bin() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-tools/bin/moto_server");
    if venv.is_file() {
        return venv;
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join("moto_server");
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("moto_server not found: {INSTALL_HINT}");
}

fn curl_bin() -> &'static str {
    let ok = Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "curl not found: run tools/install-test-deps.sh (apt-get install curl)"
    );
    "curl"
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Stop and remove moto instances whose owning test process is gone.
fn reap_stale() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let dir = entry.path();
        let read_pid = |name: &str| {
            fs::read_to_string(dir.join(name))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
        };
        let Some(owner) = read_pid("owner.pid") else {
            continue;
        };
        if pid_alive(owner) {
            continue;
        }
        if let Some(pid) = read_pid("moto.pid") {
            let is_moto = fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .map(|c| c.contains("moto"))
                .unwrap_or(false);
            if is_moto {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

pub struct Moto {
    dir: tempfile::TempDir,
    port: u16,
    child: Mutex<Option<Child>>,
}

impl Moto {
    /// Starts moto on a free port (no authentication yet).
    pub fn start() -> Moto {
        Moto::start_on(free_port())
    }

    /// Starts moto on `port` (e.g. one the daemon was already pointed at while the store
    /// was "down"); returns once it answers.
    pub fn start_on(port: u16) -> Moto {
        let bin = moto_bin();
        reap_stale();
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir_in(std::env::temp_dir())
            .expect("create moto temp dir");
        fs::write(dir.path().join("owner.pid"), std::process::id().to_string())
            .expect("write owner.pid");
        let log = fs::File::create(dir.path().join("moto.log")).expect("moto.log");
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .env("PYTHONUNBUFFERED", "1")
            .env_remove("INITIAL_NO_AUTH_ACTION_COUNT")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}: {INSTALL_HINT}", bin.display()));
        fs::write(dir.path().join("moto.pid"), child.id().to_string()).expect("write moto.pid");
        let moto = Moto {
            dir,
            port,
            child: Mutex::new(Some(child)),
        };
        moto.wait_ready(Duration::from_secs(60));
        moto
    }

    fn wait_ready(&self, timeout: Duration) {
        let t = Instant::now();
        loop {
            {
                let mut g = self.child.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(c) = g.as_mut() {
                    if let Ok(Some(status)) = c.try_wait() {
                        panic!(
                            "moto_server exited early with {status} (port {} taken?); log:\n{}",
                            self.port,
                            self.log()
                        );
                    }
                }
            }
            if TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok() {
                let (code, _) = self.curl(&["-X", "GET", &self.url("/moto-api/data.json")]);
                if code == 200 {
                    return;
                }
            }
            assert!(
                t.elapsed() < timeout,
                "moto_server not answering on {} after {timeout:?}; log:\n{}",
                self.addr(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs curl with `args`; returns (HTTP status, body).
    fn curl(&self, args: &[&str]) -> (u16, String) {
        let out = Command::new(curl_bin())
            .args(["-s", "-S", "--max-time", "20", "-w", "\n%{http_code}"])
            .args(args)
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// A request moto routes to `service` while authentication is not enforced.
    fn unauthenticated(&self, service: &str, region: &str, args: &[&str]) -> String {
        let auth = format!(
            "Authorization: AWS4-HMAC-SHA256 Credential=AKIATESTHARNESS00000/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        let mut all: Vec<&str> = vec!["-H", &auth];
        all.extend_from_slice(args);
        let (code, body) = self.curl(&all);
        assert!(
            (200..300).contains(&code),
            "moto set-up request {args:?} answered {code}: {body}\nlog:\n{}",
            self.log()
        );
        body
    }

    /// Creates `bucket` in `region` (before [`enforce_auth`](Self::enforce_auth)).
    pub fn create_bucket(&self, bucket: &str, region: &str) {
        let body = if region == "us-east-1" {
            String::new()
        } else {
            format!(
                "<CreateBucketConfiguration><LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            )
        };
        self.unauthenticated(
            "s3",
            region,
            &[
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/xml",
                "--data-binary",
                &body,
                &self.url(&format!("/{bucket}")),
            ],
        );
    }

    /// Creates an IAM user allowed `s3:*`, then makes moto check the signature and key of
    /// every later request. Returns the user's (access key id, secret access key).
    pub fn enforce_auth(&self) -> (String, String) {
        let iam = |args: &[&str]| self.unauthenticated("iam", "us-east-1", args);
        let root = self.url("/");
        iam(&[
            "-d",
            "Action=CreateUser&UserName=kiosk&Version=2010-05-08",
            &root,
        ]);
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
        iam(&[
            "-d",
            "Action=PutUserPolicy&UserName=kiosk&PolicyName=s3-all&Version=2010-05-08",
            "--data-urlencode",
            &format!("PolicyDocument={policy}"),
            &root,
        ]);
        let xml = iam(&[
            "-d",
            "Action=CreateAccessKey&UserName=kiosk&Version=2010-05-08",
            &root,
        ]);
        let tag = |t: &str| -> String {
            let open = format!("<{t}>");
            let s = xml.find(&open).unwrap_or_else(|| panic!("no {t} in {xml}")) + open.len();
            let e = xml[s..].find('<').unwrap() + s;
            xml[s..e].to_string()
        };
        let keys = (tag("AccessKeyId"), tag("SecretAccessKey"));
        // From now on every request is authenticated (moto's INITIAL_NO_AUTH_ACTION_COUNT).
        let (code, body) = self.curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: text/plain",
            "--data-binary",
            "0",
            &self.url("/moto-api/reset-auth"),
        ]);
        assert_eq!(code, 200, "moto reset-auth: {body}");
        keys
    }

    /// Stops moto (its state is lost). Idempotent.
    pub fn stop(&self) {
        let mut g = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut c) = g.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let t = Instant::now();
        while TcpStream::connect_timeout(&self.addr(), Duration::from_millis(100)).is_ok()
            && t.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn is_running(&self) -> bool {
        let mut g = self.child.lock().unwrap_or_else(|e| e.into_inner());
        match g.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `http://127.0.0.1:{port}` (the `endpoint=` of `REMOTE_STORAGE_URL`).
    pub fn endpoint(&self) -> String {
        endpoint_for(self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint())
    }

    /// moto's log so far (for assertion messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }
}

/// `http://127.0.0.1:{port}`, for a port moto is not started on yet.
pub fn endpoint_for(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}
