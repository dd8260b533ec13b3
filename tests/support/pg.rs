//! A throw-away, real PostgreSQL cluster for tests.
//!
//! `PgCluster::new()` runs `initdb` into a fresh temp dir, starts `postgres` on a free
//! loopback TCP port (unix socket inside the cluster dir), and creates the role `kiosk`
//! (password `kiosk-test-pw`) owning the database `kiosk`. TCP clients must authenticate
//! with SCRAM; the unix socket is `trust` (used for the superuser `postgres` only).
//!
//! As root (CI), `initdb`/`pg_ctl` run as the `postgres` system user through
//! `runuser -u postgres --` on a directory chowned to it; otherwise they run directly.
//!
//! Drop stops the server (`pg_ctl stop -m immediate`) and removes the directory, also when
//! a test panics. Clusters left behind by a killed test process (owner pid gone) are
//! stopped and removed the next time any test creates a cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const USER: &str = "kiosk";
pub const PASSWORD: &str = "kiosk-test-pw";
pub const DATABASE: &str = "kiosk";

const DIR_PREFIX: &str = "kiosk-test-pg-";
const INSTALL_HINT: &str =
    "run tools/install-test-deps.sh (apt-get install postgresql) to install the PostgreSQL server";

/// True when the test process runs as root (uid 0).
pub fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A free TCP port on 127.0.0.1 (bind port 0, read it, release it).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Directory holding `initdb`, `pg_ctl`, `postgres` (and `psql`): `pg_config --bindir` if
/// it has the server binaries, else the newest `/usr/lib/postgresql/*/bin`. Panics with an
/// install hint when there is none.
pub fn bindir() -> PathBuf {
    static BINDIR: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BINDIR.get_or_init(find_bindir).clone().unwrap_or_else(|| {
        panic!("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: {INSTALL_HINT}")
    })
}

fn has_server(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|b| dir.join(b).is_file())
}

fn find_bindir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_server(&dir) {
                return Some(dir);
            }
        }
    }
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    for entry in fs::read_dir("/usr/lib/postgresql").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let version: Vec<u32> = name.split('.').filter_map(|p| p.parse().ok()).collect();
        let dir = entry.path().join("bin");
        if version.is_empty() || !has_server(&dir) {
            continue;
        }
        if best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, dir));
        }
    }
    best.map(|(_, d)| d)
}

fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("run `id`");
        assert!(
            out.status.success(),
            "running as root needs the `postgres` system user to run initdb/postgres: {INSTALL_HINT}"
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("numeric id")
    };
    (id("-u"), id("-g"))
}

fn chown_to_postgres(path: &Path) {
    if running_as_root() {
        let (uid, gid) = postgres_ids();
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {} to postgres: {e}", path.display()));
    }
}

/// A server-side command (initdb, pg_ctl), run as `postgres` when we are root.
fn server_cmd(bin: &Path, cwd: &Path) -> Command {
    let mut cmd = if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.current_dir(cwd)
        .env_remove("PGDATA")
        .env_remove("PGPORT")
        .env_remove("PGHOST")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    cmd
}

fn output_text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Stop and remove clusters whose owning test process is gone (killed by a timeout…).
fn reap_stale_clusters(bindir: &Path) {
    let mut bases = vec![
        scratch_base(),
        std::env::temp_dir(),
        PathBuf::from("/dev/shm"),
    ];
    bases.dedup();
    for entry in bases
        .iter()
        .filter_map(|b| fs::read_dir(b).ok())
        .flat_map(|rd| rd.flatten())
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(DIR_PREFIX) {
            continue;
        }
        let dir = entry.path();
        let Ok(owner) = fs::read_to_string(dir.join("owner.pid")) else {
            continue; // being created right now, or not ours
        };
        let Ok(owner) = owner.trim().parse::<u32>() else {
            continue;
        };
        if pid_alive(owner) {
            continue;
        }
        let data = dir.join("data");
        if data.join("postmaster.pid").exists() {
            let _ = server_cmd(&bindir.join("pg_ctl"), &dir)
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "-t", "10", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

/// Bump when the template's contents change (settings baked in, roles…).
const TEMPLATE_VERSION: u32 = 2;

/// Where cluster directories go: `$KIOSK_TEST_PG_DIR` if set, else `/dev/shm` when it is a
/// roomy tmpfs (copying and running a cluster on a VM's ext4 is several times slower),
/// else the system temp dir.
pub fn scratch_base() -> PathBuf {
    if let Some(dir) = std::env::var_os("KIOSK_TEST_PG_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let roomy = rustix::fs::statvfs(shm)
        .map(|st| st.f_bavail.saturating_mul(st.f_frsize) >= 2 << 30)
        .unwrap_or(false);
    if roomy {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// A temp dir for one cluster, reachable by the postgres user, with `sock/` and `owner.pid`.
fn new_cluster_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(DIR_PREFIX)
        .tempdir_in(scratch_base())
        .expect("create cluster temp dir");
    fs::write(dir.path().join("owner.pid"), std::process::id().to_string())
        .expect("write owner.pid");
    // The postgres user must be able to reach the directory.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    chown_to_postgres(dir.path());
    let sock = dir.path().join("sock");
    fs::create_dir(&sock).expect("mkdir sock");
    chown_to_postgres(&sock);
    dir
}

/// The data directory of a cluster initdb'd once (role and database created, cleanly shut
/// down), cached in cargo's target tmp dir across runs; each test cluster is a copy of it,
/// which makes starting one ~0.3 s instead of ~1.5 s of initdb.
fn template_data_dir(bindir: &Path) -> PathBuf {
    static TEMPLATE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let base = option_env!("CARGO_TARGET_TMPDIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir);
            fs::create_dir_all(&base).expect("create template base dir");
            let who = if running_as_root() { "root" } else { "user" };
            let key: String = format!("pg-template-v{TEMPLATE_VERSION}-{who}-{}", bindir.display())
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let done = base.join(&key);
            if done.join("READY").exists() {
                return done.join("data");
            }
            let fresh = PgCluster::init_fresh(bindir.to_path_buf());
            fresh.stop();
            let staging = tempfile::Builder::new()
                .prefix(&format!(".{key}.staging-"))
                .tempdir_in(&base)
                .expect("create template staging dir");
            let out = Command::new("cp")
                .arg("-a")
                .arg(fresh.data_dir())
                .arg(staging.path().join("data"))
                .output()
                .expect("spawn cp");
            assert!(
                out.status.success(),
                "saving the template cluster: {}",
                output_text(&out)
            );
            fs::write(staging.path().join("READY"), "").expect("write READY");
            drop(fresh);
            let staging = staging.keep();
            if fs::rename(&staging, &done).is_err() {
                // Another test process won the race; use its template.
                let _ = fs::remove_dir_all(&staging);
                assert!(
                    done.join("READY").exists(),
                    "template {} is incomplete",
                    done.display()
                );
            }
            done.join("data")
        })
        .clone()
}

/// A throw-away PostgreSQL cluster; see the module docs.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
    running: Mutex<bool>,
}

impl PgCluster {
    /// A fresh cluster: a copy of the cached template data directory (initdb'd once, with
    /// role `kiosk` and database `kiosk`), started on a free port. Panics (with the server
    /// log) on failure.
    pub fn new() -> PgCluster {
        let bindir = bindir();
        reap_stale_clusters(&bindir);
        let template = template_data_dir(&bindir);

        let dir = new_cluster_dir();
        let out = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(dir.path().join("data"))
            .output()
            .expect("spawn cp");
        assert!(
            out.status.success(),
            "copying the template cluster: {}",
            output_text(&out)
        );
        let mut cluster = PgCluster {
            dir,
            bindir,
            port: 0,
            running: Mutex::new(false),
        };
        cluster.start_on_free_port();
        cluster
    }

    /// `initdb` from scratch, start, create role and database.
    fn init_fresh(bindir: PathBuf) -> PgCluster {
        let dir = new_cluster_dir();
        let data = dir.path().join("data");
        let out = server_cmd(&bindir.join("initdb"), dir.path())
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                // 1 MB WAL segments: a much smaller directory to copy per test.
                "--wal-segsize=1",
            ])
            .output()
            .unwrap_or_else(|e| panic!("spawn initdb ({}): {e}: {INSTALL_HINT}", bindir.display()));
        assert!(out.status.success(), "initdb failed: {}", output_text(&out));

        // Authentication: superuser over the socket only; everything over TCP with SCRAM.
        fs::write(
            data.join("pg_hba.conf"),
            "local all postgres trust\n\
             host all all 127.0.0.1/32 scram-sha-256\n",
        )
        .expect("write pg_hba.conf");
        let mut conf = fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("open postgresql.conf");
        writeln!(conf, "\ninclude 'kiosk_test.conf'").expect("append include");
        drop(conf);

        let mut cluster = PgCluster {
            dir,
            bindir,
            port: 0,
            running: Mutex::new(false),
        };
        cluster.start_on_free_port();
        // Two statements: CREATE DATABASE cannot share a transaction.
        for sql in [
            format!("CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'"),
            format!("CREATE DATABASE {DATABASE} OWNER {USER}"),
        ] {
            let out = cluster.psql_admin_output_in("postgres", &sql);
            assert!(out.status.success(), "{sql}: {}", output_text(&out));
        }
        cluster
    }

    fn start_on_free_port(&mut self) {
        // Another process may grab the port between free_port() and postgres binding it.
        let mut last_err = String::new();
        for _ in 0..5 {
            self.port = free_port();
            self.write_settings();
            match self.try_start() {
                Ok(()) => return,
                Err(e) if e.contains("Address already in use") || e.contains("could not bind") => {
                    last_err = e;
                }
                Err(e) => panic!("starting PostgreSQL failed: {e}"),
            }
        }
        panic!("starting PostgreSQL failed: {last_err}");
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The cluster's directory (data in `data/`, socket in `sock/`, log in `postgres.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Unix socket directory (usable as `host=` for the superuser).
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// The server log so far (for assertion messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn write_settings(&self) {
        let path = self.data_dir().join("kiosk_test.conf");
        fs::write(
            &path,
            format!(
                "listen_addresses = '127.0.0.1'\n\
                 port = {port}\n\
                 unix_socket_directories = '{sock}'\n\
                 max_connections = 100\n\
                 shared_buffers = 16MB\n\
                 fsync = off\n\
                 synchronous_commit = off\n\
                 full_page_writes = off\n\
                 wal_level = minimal\n\
                 min_wal_size = 2MB\n\
                 max_wal_size = 64MB\n\
                 max_wal_senders = 0\n\
                 password_encryption = 'scram-sha-256'\n\
                 logging_collector = off\n\
                 log_min_messages = warning\n\
                 log_connections = off\n\
                 dynamic_shared_memory_type = posix\n\
                 timezone = 'UTC'\n",
                port = self.port,
                sock = self.socket_dir().display()
            ),
        )
        .expect("write kiosk_test.conf");
        chown_to_postgres(&path);
    }

    fn try_start(&self) -> Result<(), String> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if *running {
            return Ok(());
        }
        // pg_ctl -l appends; make sure the postgres user can write the log.
        let log = self.log_path();
        if !log.exists() {
            fs::write(&log, "").map_err(|e| e.to_string())?;
            chown_to_postgres(&log);
        }
        let log_len_before = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let out = server_cmd(&self.bindir.join("pg_ctl"), self.dir.path())
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "30", "start"])
            .output()
            .map_err(|e| format!("spawn pg_ctl: {e}"))?;
        if out.status.success() {
            *running = true;
            Ok(())
        } else {
            let full = fs::read_to_string(&log).unwrap_or_default();
            let new_part = full.get(log_len_before as usize..).unwrap_or(&full);
            // A failed start may leave nothing running; make sure of it.
            let _ = server_cmd(&self.bindir.join("pg_ctl"), self.dir.path())
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            Err(format!(
                "pg_ctl start: {}\nserver log:\n{new_part}",
                output_text(&out)
            ))
        }
    }

    /// Start the server again (same port, same data). No-op when running.
    pub fn start(&self) {
        if let Err(e) = self.try_start() {
            panic!("restarting PostgreSQL on port {} failed: {e}", self.port);
        }
    }

    fn stop_mode(&self, mode: &str) -> Result<(), String> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if !*running {
            return Ok(());
        }
        let out = server_cmd(&self.bindir.join("pg_ctl"), self.dir.path())
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", mode, "-w", "-t", "30", "stop"])
            .output()
            .map_err(|e| format!("spawn pg_ctl: {e}"))?;
        if out.status.success() {
            *running = false;
            Ok(())
        } else {
            Err(format!("pg_ctl stop: {}", output_text(&out)))
        }
    }

    /// `pg_ctl stop -m fast` (waits until the server is gone; the port then refuses).
    pub fn stop(&self) {
        if let Err(e) = self.stop_mode("fast") {
            panic!("stopping PostgreSQL failed: {e}");
        }
    }

    /// Stop then start again (same port, same data).
    pub fn restart(&self) {
        self.stop();
        self.start();
    }

    pub fn is_running(&self) -> bool {
        *self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `postgresql://kiosk:kiosk-test-pw@127.0.0.1:{port}/kiosk`
    pub fn url(&self) -> String {
        self.url_with_port(self.port)
    }

    /// Same credentials and database, another port (e.g. a [`super::proxy::Proxy`]).
    pub fn url_with_port(&self, port: u16) -> String {
        format!("postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}")
    }

    /// Right user, wrong password: connecting must fail with an authentication error.
    pub fn url_wrong_password(&self) -> String {
        format!(
            "postgresql://{USER}:not-the-password@127.0.0.1:{}/{DATABASE}",
            self.port
        )
    }

    /// A connected client (NoTls) as `kiosk`; the connection task is spawned on the
    /// current tokio runtime.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.url()));
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }

    fn psql_bin(&self) -> PathBuf {
        let p = self.bindir.join("psql");
        if p.is_file() {
            p
        } else {
            PathBuf::from("psql")
        }
    }

    fn psql_output(&self, sql: &str) -> Output {
        Command::new(self.psql_bin())
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url())
            .arg("-c")
            .arg(sql)
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .expect("spawn psql")
    }

    fn psql_admin_output(&self, sql: &str) -> Output {
        self.psql_admin_output_in(DATABASE, sql)
    }

    fn psql_admin_output_in(&self, db: &str, sql: &str) -> Output {
        Command::new(self.psql_bin())
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-h"])
            .arg(self.socket_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-d", db, "-c", sql])
            .env_remove("PGPASSWORD")
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .expect("spawn psql")
    }

    /// `psql -At -c sql` as `kiosk` on database `kiosk` over TCP; returns trimmed stdout
    /// (rows on lines, columns separated by `|`). Panics on any error.
    pub fn psql(&self, sql: &str) -> String {
        match self.try_psql(sql) {
            Ok(s) => s,
            Err(e) => panic!("psql {sql:?} failed: {e}"),
        }
    }

    /// Like [`psql`](Self::psql) but returns the error text instead of panicking.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let out = self.psql_output(sql);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
        } else {
            Err(output_text(&out))
        }
    }

    /// `psql -At -c sql` as superuser `postgres` on database `kiosk` over the unix
    /// socket (e.g. `SELECT pg_terminate_backend(...)`). Panics on error.
    pub fn psql_admin(&self, sql: &str) -> String {
        let out = self.psql_admin_output(sql);
        assert!(
            out.status.success(),
            "psql (admin) {sql:?} failed: {}",
            output_text(&out)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// Wait until `kiosk` can run a query over TCP (after `start()`; it already waits).
    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            match self.try_psql("SELECT 1") {
                Ok(_) => return,
                Err(e) if Instant::now() >= deadline => panic!("PostgreSQL not ready: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Default for PgCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // immediate: the data is thrown away anyway. Never panic in drop.
        if let Err(e) = self.stop_mode("immediate") {
            eprintln!("PgCluster drop: {e}");
        }
        // TempDir removes the directory when it drops after this.
    }
}
