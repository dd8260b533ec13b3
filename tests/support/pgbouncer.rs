//! A real PgBouncer (Debian's `pgbouncer`) in front of a test [`PgCluster`], in
//! `pool_mode = transaction`: how managed PostgreSQL fleets are usually reached, and where
//! consecutive statements of one client may run on different server connections.
//!
//! Started in the foreground with the `postgres` system user's ids when the tests run as
//! root (PgBouncer refuses root), on a free loopback port, clients authenticated with SCRAM as
//! the cluster's `kiosk` role (PgBouncer logs in to PostgreSQL with the same password).
//! Drop kills it and removes its directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::pg::{self, PgCluster};

const INSTALL_HINT: &str =
    "run tools/install-test-deps.sh (apt-get install pgbouncer) to install PgBouncer";

/// Pool settings of one PgBouncer.
#[derive(Debug, Clone)]
pub struct PgBouncerOptions {
    /// Server connections per (database, user) pool.
    pub pool_size: u32,
    pub max_client_conn: u32,
}

impl Default for PgBouncerOptions {
    fn default() -> Self {
        PgBouncerOptions {
            pool_size: 10,
            max_client_conn: 500,
        }
    }
}

pub struct PgBouncer {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

/// The `pgbouncer` binary, or a panic saying how to install it.
pub fn pgbouncer_bin() -> PathBuf {
    for p in ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    let found = Command::new("sh")
        .args(["-c", "command -v pgbouncer"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty());
    match found {
        Some(p) => PathBuf::from(p),
        None => panic!("pgbouncer not found: {INSTALL_HINT}"),
    }
}

impl PgBouncer {
    /// A PgBouncer in transaction pooling in front of `pg`, with default pool settings.
    pub fn start(pg: &PgCluster) -> PgBouncer {
        PgBouncer::start_with(pg, PgBouncerOptions::default())
    }

    pub fn start_with(pg: &PgCluster, opts: PgBouncerOptions) -> PgBouncer {
        let dir = tempfile::Builder::new()
            .prefix("kiosk-test-pgbouncer-")
            .tempdir_in(pg::scratch_base())
            .expect("pgbouncer temp dir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        fs::write(
            dir.path().join("userlist.txt"),
            format!("\"{}\" \"{}\"\n", pg::USER, pg::PASSWORD),
        )
        .expect("write userlist");
        let mut last = String::new();
        for _ in 0..5 {
            let port = pg::free_port();
            write_ini(dir.path(), pg.port(), port, &opts);
            chown_tree_to_postgres(dir.path());
            let mut child = command(dir.path()).spawn().unwrap_or_else(|e| {
                panic!(
                    "spawn pgbouncer ({}): {e}: {INSTALL_HINT}",
                    pgbouncer_bin().display()
                )
            });
            match wait_listening(&mut child, port, dir.path()) {
                Ok(()) => {
                    return PgBouncer {
                        dir,
                        port,
                        child: Some(child),
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = e;
                }
            }
        }
        panic!("PgBouncer did not start: {last}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's `kiosk` URL, through PgBouncer.
    pub fn url(&self) -> String {
        format!(
            "postgresql://{}:{}@127.0.0.1:{}/{}",
            pg::USER,
            pg::PASSWORD,
            self.port,
            pg::DATABASE
        )
    }

    /// PgBouncer's log so far (for assertion messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }

    /// The pid of the PgBouncer process (for CPU accounting in benchmarks).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn write_ini(dir: &Path, pg_port: u16, port: u16, opts: &PgBouncerOptions) {
    let ini = format!(
        "[databases]\n\
         {db} = host=127.0.0.1 port={pg_port} dbname={db}\n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir =\n\
         auth_type = scram-sha-256\n\
         auth_file = {dir}/userlist.txt\n\
         pool_mode = transaction\n\
         default_pool_size = {pool}\n\
         max_client_conn = {maxc}\n\
         logfile = {dir}/pgbouncer.log\n\
         log_connections = 0\n\
         log_disconnections = 0\n\
         server_tls_sslmode = disable\n",
        db = pg::DATABASE,
        dir = dir.display(),
        pool = opts.pool_size,
        maxc = opts.max_client_conn,
    );
    fs::write(dir.join("pgbouncer.ini"), ini).expect("write pgbouncer.ini");
}

fn chown_tree_to_postgres(dir: &Path) {
    if pg::running_as_root() {
        let out = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .output()
            .expect("spawn chown");
        assert!(
            out.status.success(),
            "chown {} to postgres: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// PgBouncer itself (not a `runuser` wrapper, so that killing the child kills it), with
/// the `postgres` user's ids when we are root.
fn command(dir: &Path) -> Command {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = Command::new(pgbouncer_bin());
    if pg::running_as_root() {
        cmd.uid(postgres_id("-u")).gid(postgres_id("-g"));
    }
    cmd.arg(dir.join("pgbouncer.ini"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn postgres_id(flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .expect("run `id`");
    assert!(
        out.status.success(),
        "running as root needs the `postgres` system user to run pgbouncer: {INSTALL_HINT}"
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("numeric id")
}

fn wait_listening(child: &mut Child, port: u16, dir: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "pgbouncer exited with {status}; log:\n{}",
                fs::read_to_string(dir.join("pgbouncer.log")).unwrap_or_default()
            ));
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "pgbouncer not listening on {port} after 15 s; log:\n{}",
                fs::read_to_string(dir.join("pgbouncer.log")).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
