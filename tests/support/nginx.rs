//! A real nginx serving WebDAV on loopback, for remote-storage tests.
//!
//! Layout of the generated server on `127.0.0.1:{port}`:
//! - `/uploads/`: WebDAV (`dav_methods PUT DELETE`, `create_full_put_path on`,
//!   `client_max_body_size 64m`); GET/HEAD serve the stored files. With
//!   [`NginxOptions::basic_auth`], every method except GET/HEAD needs HTTP basic auth.
//!   Files live under [`Nginx::root`] on disk.
//! - `/forbidden/`: `403` for every method.
//! - `/full/`: `507 Insufficient Storage` for every method.
//! - anything else: `404`.
//!
//! nginx runs in the foreground (`daemon off; master_process on;`) as a child of the test
//! process, all paths (pid, logs, temp paths) inside its temp dir. As root, workers run as
//! `nobody:nogroup`, so the uploads and temp dirs are owned by that user.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::pg::{free_port, running_as_root};

const DIR_PREFIX: &str = "kiosk-test-nginx-";
const INSTALL_HINT: &str =
    "run tools/install-test-deps.sh (apt-get install nginx-light) to install nginx with the WebDAV module";

#[derive(Clone, Debug, Default)]
pub struct NginxOptions {
    /// `(user, password)`: PUT/DELETE (everything but GET/HEAD) on `/uploads/` need it.
    pub basic_auth: Option<(String, String)>,
}

/// Path of the nginx binary (PATH, then /usr/sbin/nginx). Panics with an install hint.
pub fn nginx_bin() -> PathBuf {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join("nginx");
            if p.is_file() {
                return p;
            }
        }
    }
    for p in [
        "/usr/sbin/nginx",
        "/usr/local/sbin/nginx",
        "/usr/local/nginx/sbin/nginx",
    ] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!("nginx not found: {INSTALL_HINT}");
}

fn nobody_ids() -> (u32, u32) {
    let id = |args: &[&str]| -> u32 {
        let out = Command::new("id").args(args).output().expect("run `id`");
        assert!(out.status.success(), "user `nobody` missing: {:?}", out);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("numeric id")
    };
    // Debian: nobody / nogroup (65534 both).
    (id(&["-u", "nobody"]), id(&["-g", "nobody"]))
}

fn worker_group() -> String {
    let out = Command::new("id").args(["-gn", "nobody"]).output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => "nogroup".to_string(),
    }
}

fn chown_to_worker(path: &Path) {
    if running_as_root() {
        let (uid, gid) = nobody_ids();
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {} to nobody: {e}", path.display()));
    }
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn send_signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Stop and remove nginx instances whose owning test process is gone.
fn reap_stale() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let dir = entry.path();
        let Some(owner) = fs::read_to_string(dir.join("owner.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            continue;
        };
        if pid_alive(owner) {
            continue;
        }
        if let Some(master) = fs::read_to_string(dir.join("nginx.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            let is_nginx = fs::read_to_string(format!("/proc/{master}/cmdline"))
                .map(|c| c.contains("nginx"))
                .unwrap_or(false);
            if is_nginx {
                send_signal(master, "-TERM");
            }
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

fn htpasswd_line(user: &str, password: &str) -> String {
    // nginx understands `{PLAIN}` passwords in auth_basic_user_file.
    format!("{user}:{{PLAIN}}{password}\n")
}

struct State {
    child: Option<Child>,
}

pub struct Nginx {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    opts: NginxOptions,
    state: Mutex<State>,
}

impl Nginx {
    /// Start with default options (no auth).
    pub fn start() -> Nginx {
        Self::start_with(NginxOptions::default())
    }

    /// Start with options; returns once the port accepts connections.
    pub fn start_with(opts: NginxOptions) -> Nginx {
        let bin = nginx_bin();
        reap_stale();
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir_in(std::env::temp_dir())
            .expect("create nginx temp dir");
        fs::write(dir.path().join("owner.pid"), std::process::id().to_string())
            .expect("write owner.pid");
        // Workers (nobody as root) must traverse into the tree.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let www = dir.path().join("www");
        let uploads = www.join("uploads");
        fs::create_dir_all(&uploads).expect("mkdir uploads");
        fs::set_permissions(&www, fs::Permissions::from_mode(0o755)).expect("chmod www");
        chown_to_worker(&uploads);
        fs::set_permissions(&uploads, fs::Permissions::from_mode(0o755)).expect("chmod");
        let tmp = dir.path().join("tmp");
        fs::create_dir(&tmp).expect("mkdir tmp");
        for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            let p = tmp.join(sub);
            fs::create_dir(&p).expect("mkdir temp path");
            chown_to_worker(&p);
            fs::set_permissions(&p, fs::Permissions::from_mode(0o700)).expect("chmod");
        }
        if let Some((user, pw)) = &opts.basic_auth {
            let f = dir.path().join("htpasswd");
            fs::write(&f, htpasswd_line(user, pw)).expect("write htpasswd");
            fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).expect("chmod");
        }

        let mut nginx = Nginx {
            dir,
            bin,
            port: 0,
            opts,
            state: Mutex::new(State { child: None }),
        };
        let mut last_err = String::new();
        for _ in 0..5 {
            nginx.port = free_port();
            nginx.write_config();
            match nginx.try_start() {
                Ok(()) => return nginx,
                Err(e) if e.contains("Address already in use") => last_err = e,
                Err(e) => panic!("starting nginx failed: {e}"),
            }
        }
        panic!("starting nginx failed: {last_err}");
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    fn error_log_path(&self) -> PathBuf {
        self.dir.path().join("error.log")
    }

    /// nginx's error log so far (for assertion messages).
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.error_log_path()).unwrap_or_default()
    }

    /// nginx's access log so far (one line per request).
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    fn write_config(&self) {
        let d = self.dir.path().display();
        let mut c = String::new();
        if running_as_root() {
            let _ = writeln!(c, "user nobody {};", worker_group());
        }
        let _ = write!(
            c,
            "daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    default_type application/octet-stream;
    types {{ image/jpeg jpg jpeg; image/png png; text/plain txt; application/json json; text/html html; }}
    sendfile on;
    server_tokens off;
    # Also for /full/ and /forbidden/: a big upload gets their status, not 413.
    client_max_body_size 64m;
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        location /uploads/ {{
            root {d}/www;
            dav_methods PUT DELETE;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
            client_max_body_size 64m;
            autoindex off;
{auth}        }}
        location /forbidden/ {{ return 403; }}
        location /full/ {{ return 507; }}
        location / {{ return 404; }}
    }}
}}
",
            port = self.port,
            auth = if self.opts.basic_auth.is_some() {
                format!(
                    "            limit_except GET HEAD {{\n                auth_basic \"kiosk test\";\n                auth_basic_user_file {d}/htpasswd;\n            }}\n"
                )
            } else {
                String::new()
            }
        );
        fs::write(self.conf_path(), c).expect("write nginx.conf");
    }

    fn base_cmd(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-p")
            .arg(format!("{}/", self.dir.path().display()))
            .arg("-c")
            .arg(self.conf_path())
            .arg("-e")
            .arg(self.error_log_path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    fn try_start(&self) -> Result<(), String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.child.is_some() {
            return Ok(());
        }
        let log_before = self.error_log().len();
        let out = self
            .base_cmd()
            .arg("-t")
            .output()
            .map_err(|e| format!("spawn {}: {e}: {INSTALL_HINT}", self.bin.display()))?;
        if !out.status.success() {
            return Err(format!(
                "nginx -t rejected the config: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                fs::read_to_string(self.conf_path()).unwrap_or_default()
            ));
        }
        let stderr =
            fs::File::create(self.dir.path().join("stderr.log")).map_err(|e| e.to_string())?;
        let mut child = self
            .base_cmd()
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.bin.display()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = self.error_log();
                let new_part = log.get(log_before..).unwrap_or(&log).to_string();
                let stderr =
                    fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
                return Err(format!("nginx exited with {status}: {stderr}\n{new_part}"));
            }
            if TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok() {
                state.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "nginx did not accept on {} within 10 s\n{}",
                    self.addr(),
                    self.error_log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start again (same port, same root) after [`stop`](Self::stop). No-op when running.
    pub fn restart(&self) {
        self.stop();
        if let Err(e) = self.try_start() {
            panic!("restarting nginx on port {} failed: {e}", self.port);
        }
    }

    /// Stop nginx (SIGTERM to the master, wait for it, SIGKILL after 5 s). The port then
    /// refuses connections. Idempotent.
    pub fn stop(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut child) = state.child.take() else {
            return;
        };
        send_signal(child.id(), "-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        // Workers exit with the master on TERM; wait until the port is really closed.
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect_timeout(&self.addr(), Duration::from_millis(100)).is_ok()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn is_running(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.child.as_mut() {
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

    /// `http://127.0.0.1:{port}/uploads/` (what `REMOTE_STORAGE_URL` points at).
    pub fn base_url(&self) -> String {
        self.base_url_with_port(self.port)
    }

    /// `http://127.0.0.1:{port}/uploads/` for another port (e.g. a proxy in front).
    pub fn base_url_with_port(&self, port: u16) -> String {
        format!("http://127.0.0.1:{port}/uploads/")
    }

    /// URL of a file under `/uploads/`: `url_for("a.jpg")` is `base_url() + "a.jpg"`,
    /// stored at `root().join("a.jpg")`. A leading `/` is ignored.
    pub fn url_for(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), path.trim_start_matches('/'))
    }

    /// Any URL on this server: `server_url("/full/x.jpg")`. A leading `/` is optional.
    pub fn server_url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// `http://127.0.0.1:{port}/forbidden/` (403 for everything).
    pub fn forbidden_url(&self) -> String {
        self.server_url("forbidden/")
    }

    /// `http://127.0.0.1:{port}/full/` (507 for everything).
    pub fn full_url(&self) -> String {
        self.server_url("full/")
    }

    /// The directory on disk behind `/uploads/` (`base_url() + "a.jpg"` is
    /// `root().join("a.jpg")`).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("www").join("uploads")
    }

    /// Names of the regular files directly under [`root`](Self::root), sorted.
    pub fn stored_files(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.root())
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}
