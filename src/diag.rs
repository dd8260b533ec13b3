//! `selfie-kiosk diag --out DIR`: the technicians' bundle (e.g. onto a USB stick).
//!
//! Writes `DIR/selfie-kiosk-diag-<kiosk_id>-<YYYYmmddTHHMMSSZ>.tar.gz` and a human-readable
//! `DIR/summary.txt`. The tarball holds `health.json`, `config.json` (effective
//! configuration, every secret removed), `outbox.json`, `catalog.json` (counts and the
//! last captures' ids and dates, never a phone number), `disk.txt`, `versions.txt`,
//! `logs.txt` and a copy of `summary.txt`.
//!
//! With the daemon running, the data comes from `GET /admin/diag` on `KIOSK_LISTEN` (the
//! daemon holds the sled outbox lock and has the recent-log buffer). Without it, what can
//! be read safely offline: the catalog opened read-only, disk figures, and the outbox
//! through a *copy* of its directory (sled would otherwise write to it, possibly as another
//! user); a locked outbox is reported, not fatal.
//!
//! Secrets: every text that goes into the bundle is scrubbed of the configured secret
//! values (admin key, secret key, OVH credentials, database and storage passwords and
//! URLs), log lines holding one are dropped, and phone-number-looking tokens are masked.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::app::App;
use crate::config::Config;
use crate::health;

/// Captures listed by id in `catalog.json`.
const LAST_CAPTURES: usize = 20;
/// Outbox jobs listed one by one.
const JOBS_LISTED: usize = 200;
/// Log lines taken from journald.
const JOURNAL_LINES: &str = "2000";

// ---------------------------------------------------------------------------------------
// Scrubbing.

/// Secret values a bundle must never contain (those at least 3 characters long: shorter
/// "secrets" would blank out everything and protect nothing).
#[derive(Debug, Clone, Default)]
pub struct Secrets(Vec<String>);

impl Secrets {
    /// From the configuration, plus the generated key files in the data directory.
    pub fn from_config(config: &Config) -> Secrets {
        let mut v: Vec<String> = Vec::new();
        for s in [&config.admin_api_key, &config.secret_key]
            .into_iter()
            .flatten()
        {
            v.push(s.expose().to_string());
        }
        for f in ["admin_api_key", "secret_key"] {
            if let Ok(s) = std::fs::read_to_string(config.data_dir.join(f)) {
                v.push(s.trim().to_string());
            }
        }
        if let Some(url) = &config.remote_database_url {
            let url = url.expose();
            v.push(url.to_string());
            if let Ok(pg) = url.parse::<tokio_postgres::Config>() {
                if let Some(pw) = pg.get_password() {
                    v.push(String::from_utf8_lossy(pw).into_owned());
                }
            }
            // The password as written in the URL (possibly percent-encoded).
            if let Some(rest) = url.split_once("://").map(|(_, r)| r) {
                if let Some((creds, _)) = rest.rsplit_once('@') {
                    if let Some((_, pw)) = creds.split_once(':') {
                        v.push(pw.to_string());
                    }
                }
            }
        }
        match &config.remote_storage {
            Some(crate::config::RemoteStorage::WebDav {
                password: Some(pw), ..
            }) => v.push(pw.expose().to_string()),
            Some(crate::config::RemoteStorage::S3(s3)) => {
                v.push(s3.access_key.clone());
                v.push(s3.secret_key.expose().to_string());
            }
            _ => {}
        }
        if let Some(ovh) = &config.ovh {
            v.push(ovh.app_key.clone());
            v.push(ovh.app_secret.expose().to_string());
            v.push(ovh.consumer_key.expose().to_string());
        }
        Secrets::new(v)
    }

    /// A running daemon's secrets (its keys may have been generated into files).
    pub fn from_app(app: &App) -> Secrets {
        let mut s = Secrets::from_config(&app.config);
        s.0.push(app.admin_api_key.expose().to_string());
        s.0.push(app.secret_key.expose().to_string());
        Secrets::new(s.0)
    }

    fn new(mut v: Vec<String>) -> Secrets {
        v.retain(|s| s.chars().count() >= 3);
        // Longest first, so a URL is replaced whole before the password inside it.
        v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        v.dedup();
        Secrets(v)
    }

    pub fn contained_in(&self, text: &str) -> bool {
        self.0.iter().any(|s| text.contains(s.as_str()))
    }

    /// `text` with every secret replaced and phone numbers masked.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.0 {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "<redacted>");
            }
        }
        mask_phones(&out)
    }

    /// Log lines without those holding a secret (dropped whole: a line that leaked one may
    /// hold more of it than the exact value), phone numbers masked.
    pub fn scrub_lines(&self, lines: &[String]) -> Vec<String> {
        lines
            .iter()
            .filter(|l| !self.contained_in(l))
            .map(|l| mask_phones(l))
            .collect()
    }

    /// Every string (and key) of a JSON value scrubbed.
    pub fn scrub_json(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.scrub(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.scrub_json(x)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| (self.scrub(k), self.scrub_json(x)))
                    .collect::<Map<String, Value>>(),
            ),
            other => other.clone(),
        }
    }
}

/// Masks tokens that look like phone numbers: `+` and 8 to 15 digits, or a French national
/// number (`0[1-9]` and 8 more digits), not glued to other letters or digits.
pub fn mask_phones(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let boundary = |j: usize| -> bool {
        j == 0 || !chars.get(j - 1).is_some_and(|c| c.is_ascii_alphanumeric())
    };
    while i < chars.len() {
        let c = chars[i];
        if (c == '+' || c == '0') && boundary(i) {
            let start = if c == '+' { i + 1 } else { i };
            let mut j = start;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            let n = j - start;
            let glued = chars.get(j).is_some_and(|c| c.is_ascii_alphanumeric());
            let phone = !glued
                && if c == '+' {
                    (8..=15).contains(&n)
                } else {
                    n == 10 && chars.get(i + 1).is_some_and(|d| ('1'..='9').contains(d))
                };
            if phone {
                out.push_str("<phone>");
                i = j;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------
// Pieces shared by the daemon route and the offline path.

/// Catalog figures and the last captures (ids and dates only; no phone number is read).
pub fn catalog_summary(conn: &rusqlite::Connection) -> Value {
    let one = |sql: &str| -> Value {
        conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
            .map(|v| json!(v))
            .unwrap_or_else(|e| json!({"error": e.to_string()}))
    };
    let mut sms_by_status = Map::new();
    let sms = conn
        .prepare("SELECT status, COUNT(*) FROM sms GROUP BY status ORDER BY status")
        .and_then(|mut st| {
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            rows.collect::<Result<Vec<_>, _>>()
        });
    let sms = match sms {
        Ok(rows) => {
            for (s, n) in rows {
                sms_by_status.insert(s, json!(n));
            }
            Value::Object(sms_by_status)
        }
        Err(e) => json!({"error": e.to_string()}),
    };
    let last = conn
        .prepare(&format!(
            "SELECT id, created_ms, synced_ms, bytes, file_missing FROM captures
             ORDER BY seq DESC LIMIT {LAST_CAPTURES}"
        ))
        .and_then(|mut st| {
            let rows = st.query_map([], |r| {
                Ok(json!({
                    "id": r.get::<_, String>(0)?,
                    "created_at": crate::catalog::format_ms(r.get(1)?),
                    "synced_at": r.get::<_, Option<i64>>(2)?.map(crate::catalog::format_ms),
                    "bytes": r.get::<_, i64>(3)?,
                    "file_missing": r.get::<_, i64>(4)? != 0,
                }))
            })?;
            rows.collect::<Result<Vec<_>, _>>()
        })
        .map(Value::Array)
        .unwrap_or_else(|e| json!({"error": e.to_string()}));
    let ms_to_date = |v: Value| -> Value {
        v.as_i64()
            .map(|m| json!(crate::catalog::format_ms(m)))
            .unwrap_or(v)
    };
    json!({
        "schema_version": one("PRAGMA user_version"),
        "captures": one("SELECT COUNT(*) FROM captures"),
        "unsynced": one("SELECT COUNT(*) FROM captures WHERE synced_ms IS NULL"),
        "file_missing": one("SELECT COUNT(*) FROM captures WHERE file_missing != 0"),
        "oldest_capture": ms_to_date(one("SELECT MIN(created_ms) FROM captures")),
        "newest_capture": ms_to_date(one("SELECT MAX(created_ms) FROM captures")),
        "last_synced": ms_to_date(one("SELECT MAX(synced_ms) FROM captures")),
        "backgrounds": one("SELECT COUNT(*) FROM backgrounds"),
        "sms_by_status": sms,
        "last_captures": last,
    })
}

/// Outbox figures and the first jobs (kinds, targets — capture or SMS ids — and errors).
pub fn outbox_summary(
    stats: &crate::outbox::OutboxStats,
    jobs: &[crate::outbox::Job],
    now_ms: i64,
) -> Value {
    let mut jobs: Vec<&crate::outbox::Job> = jobs.iter().collect();
    jobs.sort_by_key(|j| j.next_at_ms);
    let listed: Vec<Value> = jobs
        .iter()
        .take(JOBS_LISTED)
        .map(|j| {
            json!({
                "kind": j.kind.as_str(),
                "target": j.target,
                "attempts": j.attempts,
                "created_at": crate::catalog::format_ms(j.created_ms),
                "next_at": crate::catalog::format_ms(j.next_at_ms),
                "leased": j.leased,
                "last_error": j.last_error,
            })
        })
        .collect();
    let check = health::outbox_check(stats, now_ms);
    json!({
        "status": check.status,
        "summary": check.details,
        "jobs_listed": listed.len(),
        "jobs": listed,
    })
}

/// The effective configuration, secrets replaced by whether they are set.
pub fn safe_config(config: &Config, settings: Option<&crate::settings::RuntimeSettings>) -> Value {
    let set = |b: bool, unset: &str| -> Value {
        if b {
            json!("set (hidden)")
        } else {
            json!(unset)
        }
    };
    let remote_db = config.remote_database_url.as_ref().map(|u| {
        match u.expose().parse::<tokio_postgres::Config>() {
            Ok(pg) => json!({
                "hosts": pg.get_hosts().iter().map(|h| match h {
                    tokio_postgres::config::Host::Tcp(s) => s.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                }).collect::<Vec<_>>(),
                "ports": pg.get_ports(),
                "dbname": pg.get_dbname(),
                "user": pg.get_user(),
                "password": if pg.get_password().is_some() { "set (hidden)" } else { "unset" },
                "sslmode": format!("{:?}", pg.get_ssl_mode()).to_lowercase(),
            }),
            Err(_) => json!("set (unparsable, hidden)"),
        }
    });
    let remote_storage = config.remote_storage.as_ref().map(|r| match r {
        crate::config::RemoteStorage::WebDav {
            base,
            user,
            password,
        } => json!({
            "kind": "webdav",
            "url": base,
            "user": user.as_ref().map(|_| "set"),
            "password": password.as_ref().map(|_| "set (hidden)"),
        }),
        crate::config::RemoteStorage::S3(_) => json!({
            "kind": "s3",
            "url": r.display_url(),
            "access_key": "set (hidden)",
            "secret_key": "set (hidden)",
        }),
    });
    let ovh = config.ovh.as_ref().map(|o| {
        json!({
            "OVH_ENDPOINT": o.endpoint,
            "OVH_APP_KEY": "set (hidden)",
            "OVH_APP_SECRET": "set (hidden)",
            "OVH_CONSUMER_KEY": "set (hidden)",
            "SMS_SERVICE_NAME": o.service_name,
            "SMS_SENDER": o.sender,
        })
    });
    json!({
        "KIOSK_LISTEN": config.listen.to_string(),
        "HEALTH_LISTEN": config.health_listen.map(|a| a.to_string()),
        "KIOSK_DATA_DIR": config.data_dir.display().to_string(),
        "UPLOADS_DIR": config.uploads_dir.display().to_string(),
        "KIOSK_ID": config.kiosk_id,
        "ADMIN_API_KEY": set(config.admin_api_key.is_some(), "generated file $KIOSK_DATA_DIR/admin_api_key (hidden)"),
        "SECRET_KEY": set(config.secret_key.is_some(), "generated file $KIOSK_DATA_DIR/secret_key (hidden)"),
        "REMOTE_DATABASE_URL": remote_db,
        "REMOTE_STORAGE_URL": remote_storage,
        "PUBLIC_BASE_URL": config.public_base_url,
        "sms": ovh.unwrap_or_else(|| json!("not configured")),
        "sms_configured": config.sms_configured(),
        "RETENTION_DAYS": config.retention_days,
        "REDIS_URL": if config.redis_url_set { "set (ignored)" } else { "unset" },
        "MAX_CAPTURE_BYTES": config.max_capture_bytes,
        "KIOSK_DISK_RESERVE": config.disk_reserve_bytes,
        "KIOSK_CORS_ORIGINS": config.cors_origins,
        "KIOSK_LOG": config.log_filter,
        "KIOSK_HEARTBEAT_SECS": crate::heartbeat::interval().as_secs(),
        "runtime_settings": settings,
    })
}

/// What `GET /admin/diag` answers: everything the CLI cannot read while the daemon runs.
pub async fn daemon_snapshot(app: &App) -> Value {
    let secrets = Secrets::from_app(app);
    let report = health::report(app).await;
    let ob = app.outbox.clone();
    let now = app.clock.now_ms();
    let outbox = tokio::task::spawn_blocking(move || -> Result<Value, String> {
        let stats = ob.stats().map_err(|e| e.to_string())?;
        let jobs = ob.list().map_err(|e| e.to_string())?;
        Ok(outbox_summary(&stats, &jobs, now))
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()))
    .unwrap_or_else(|e| json!({"error": e}));
    let catalog = app
        .catalog
        .read(|c| Ok(catalog_summary(c)))
        .await
        .unwrap_or_else(|e| json!({"error": e.to_string()}));
    let settings = app.settings.get();
    let v = json!({
        "daemon": {
            "pid": std::process::id(),
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": app.started.elapsed().as_secs(),
        },
        "health": report,
        "outbox": outbox,
        "catalog": catalog,
        "config": safe_config(&app.config, Some(&settings)),
        "logs": secrets.scrub_lines(&crate::logging::recent_logs()),
    });
    secrets.scrub_json(&v)
}

// ---------------------------------------------------------------------------------------
// The command.

/// Where the data came from.
#[derive(Debug, Clone)]
enum Source {
    /// Everything from `GET /admin/diag`.
    Daemon {
        url: String,
    },
    /// The daemon answers `/health` but `/admin/diag` failed (e.g. no admin key here):
    /// its health report, the rest read offline.
    HealthOnly {
        url: String,
        why: String,
    },
    Offline {
        why: String,
    },
}

struct Collected {
    source: Source,
    health: Value,
    outbox: Value,
    catalog: Value,
    config: Value,
    daemon_logs: Option<Vec<String>>,
    notes: Vec<String>,
}

/// The `diag` command. Exit 0 when the bundle is written (whatever the kiosk's state),
/// 1 when it could not be.
pub fn cli(config: &Config, out: &Path) -> ExitCode {
    crate::install_crypto();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("selfie-kiosk diag: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, out)) {
        Ok((bundle, summary, status)) => {
            println!("diagnostics bundle: {}", bundle.display());
            println!("summary:            {}", summary.display());
            println!("kiosk status:       {status}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("selfie-kiosk diag: {e}");
            ExitCode::FAILURE
        }
    }
}

fn admin_key(config: &Config) -> Option<String> {
    if let Some(k) = &config.admin_api_key {
        return Some(k.expose().to_string());
    }
    std::fs::read_to_string(config.data_dir.join("admin_api_key"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn daemon_url(config: &Config) -> String {
    let mut addr = config.listen;
    // A wildcard listener is reached through loopback.
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    format!("http://{addr}")
}

fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(15))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())
}

/// The public `GET /health` (no key needed; 503 still carries the report).
async fn public_health(config: &Config) -> Result<Value, String> {
    http_client()?
        .get(format!("{}/health", daemon_url(config)))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json::<Value>()
        .await
        .map_err(|e| e.to_string())
}

async fn from_daemon(config: &Config) -> Result<Value, String> {
    let url = format!("{}/admin/diag", daemon_url(config));
    let key = admin_key(config).ok_or_else(|| {
        "no admin key (ADMIN_API_KEY unset and $KIOSK_DATA_DIR/admin_api_key unreadable)"
            .to_string()
    })?;
    let resp = http_client()?
        .get(&url)
        .header("x-api-key", key)
        .send()
        .await
        .map_err(|e| {
            if e.is_connect() {
                format!("no daemon answering on {}", config.listen)
            } else {
                format!("the daemon on {} did not answer: {e}", config.listen)
            }
        })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!(
            "the daemon on {} answered {status} to GET /admin/diag{}",
            config.listen,
            if status.as_u16() == 401 {
                " (the admin key differs: run diag with the daemon's configuration)"
            } else {
                ""
            }
        ));
    }
    resp.json::<Value>()
        .await
        .map_err(|e| format!("unreadable answer from the daemon: {e}"))
}

/// Opens the catalog read-only without creating anything next to it: `immutable` when
/// there is no WAL to read (a clean shutdown), plain read-only otherwise.
fn open_catalog_readonly(path: &Path) -> Result<rusqlite::Connection, String> {
    use rusqlite::OpenFlags;
    if !path.exists() {
        return Err(format!("{} does not exist", path.display()));
    }
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let wal_has_data = std::fs::metadata(&wal)
        .map(|m| m.len() > 0)
        .unwrap_or(false);
    let abs = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
    let mut uri = String::from("file:");
    for b in abs.to_string_lossy().bytes() {
        match b {
            b'?' | b'#' | b'%' => uri.push_str(&format!("%{b:02X}")),
            _ => uri.push(b as char),
        }
    }
    uri.push_str(if wal_has_data {
        "?mode=ro"
    } else {
        "?mode=ro&immutable=1"
    });
    let conn = rusqlite::Connection::open_with_flags(
        &uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(conn)
}

/// Whether another process holds sled's lock on the outbox (the daemon, running or hung).
fn outbox_locked(dir: &Path) -> Result<bool, String> {
    let db = dir.join("db");
    let f = std::fs::File::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockShared) {
        Ok(()) => Ok(false),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(true),
        Err(e) => Err(format!("{}: {e}", db.display())),
    }
    // The lock (if taken) goes with `f`.
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target)?;
        }
    }
    Ok(())
}

/// Outbox figures read offline from a copy of its directory.
fn outbox_offline(data_dir: &Path, now_ms: i64) -> Result<Value, String> {
    let dir = data_dir.join("outbox");
    if !dir.exists() {
        return Ok(json!({"status": "ok", "summary": {"pending": 0}, "message": "no outbox yet"}));
    }
    if outbox_locked(&dir)? {
        return Err("the outbox is locked by a running process (the daemon): its jobs can only be read through the daemon's GET /admin/diag".into());
    }
    let tmp = std::env::temp_dir().join(format!(
        "selfie-kiosk-diag-outbox-{}-{}",
        std::process::id(),
        crate::catalog::now_ms()
    ));
    let res = (|| {
        copy_dir(&dir, &tmp).map_err(|e| format!("copying the outbox: {e}"))?;
        let ob = crate::outbox::Outbox::open(&tmp).map_err(|e| format!("outbox: {e}"))?;
        let stats = ob.stats().map_err(|e| format!("outbox: {e}"))?;
        let jobs = ob.list().map_err(|e| format!("outbox: {e}"))?;
        Ok(outbox_summary(&stats, &jobs, now_ms))
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    res
}

fn offline(config: &Config, why: String) -> Collected {
    let now = crate::catalog::now_ms();
    let mut notes = vec![format!("daemon: {why}")];
    let cat_path = health::catalog_path(&config.data_dir);
    let (catalog, local_db, settings) = match open_catalog_readonly(&cat_path) {
        Ok(conn) => {
            let summary = catalog_summary(&conn);
            let stored = crate::catalog::all_settings(&conn).unwrap_or_default();
            let settings = crate::settings::overlay(
                crate::settings::RuntimeSettings::from_config(config),
                &stored,
            );
            let check = json!({"status": "ok", "captures": summary["captures"], "unsynced": summary["unsynced"]});
            (summary, check, Some(settings))
        }
        Err(e) => {
            notes.push(format!("catalog: {e}"));
            (
                json!({"error": e}),
                json!({"status": "down", "error": e}),
                None,
            )
        }
    };
    let reserve = settings
        .as_ref()
        .map(|s| s.kiosk_disk_reserve)
        .unwrap_or(config.disk_reserve_bytes);
    let disk = health::disk_check(&config.uploads_dir, reserve);
    let outbox = match outbox_offline(&config.data_dir, now) {
        Ok(v) => v,
        Err(e) => {
            notes.push(format!("outbox: {e}"));
            json!({"status": "unknown", "error": e})
        }
    };
    let clock = health::clock(now);
    let mut checks = Map::new();
    checks.insert("local_db".into(), local_db);
    checks.insert(
        "disk".into(),
        serde_json::to_value(&disk).unwrap_or(Value::Null),
    );
    let mut ob_check = outbox["summary"].clone();
    if let Value::Object(o) = &mut ob_check {
        o.insert("status".into(), outbox["status"].clone());
    } else {
        ob_check = json!({"status": "unknown", "error": outbox["error"]});
    }
    checks.insert("outbox".into(), ob_check);
    checks.insert(
        "clock".into(),
        serde_json::to_value(&clock).unwrap_or(Value::Null),
    );
    let health = json!({
        // Nothing takes captures while the daemon is not running.
        "status": "down",
        "daemon_running": false,
        "daemon": why,
        "version": env!("CARGO_PKG_VERSION"),
        "kiosk_id": config.kiosk_id,
        "generated_at": crate::catalog::format_ms(now),
        "checks": checks,
    });
    Collected {
        source: Source::Offline { why },
        health,
        outbox,
        catalog,
        config: safe_config(config, settings.as_ref()),
        daemon_logs: None,
        notes,
    }
}

/// journald's last lines for the unit, when there is a journal we may read.
fn journal_lines() -> Option<Vec<String>> {
    let mut child = std::process::Command::new("journalctl")
        .args([
            "-u",
            "selfie-kiosk",
            "-n",
            JOURNAL_LINES,
            "--no-pager",
            "-q",
            "-o",
            "short-iso",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    let text = reader.join().ok()?;
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("-- "))
        .map(str::to_string)
        .collect();
    (!lines.is_empty()).then_some(lines)
}

fn read_text(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn versions_txt(daemon: &Value) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "selfie-kiosk (this binary): {}\n",
        env!("CARGO_PKG_VERSION")
    ));
    if let Some(v) = daemon["version"].as_str() {
        s.push_str(&format!("selfie-kiosk (running daemon): {v}\n"));
    }
    s.push_str(&format!(
        "architecture: {} ({})\n",
        std::env::consts::ARCH,
        std::env::consts::OS
    ));
    s.push_str(&format!(
        "kernel: {}\n",
        read_text("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into())
    ));
    if let Some(v) = read_text("/proc/version") {
        s.push_str(&format!("kernel build: {v}\n"));
    }
    if let Some(up) = read_text("/proc/uptime") {
        if let Some(secs) = up.split_whitespace().next() {
            s.push_str(&format!("system uptime: {secs} s\n"));
        }
    }
    s.push_str("\n/etc/os-release:\n");
    s.push_str(
        &read_text("/etc/os-release")
            .or_else(|| read_text("/usr/lib/os-release"))
            .unwrap_or_else(|| "(not found)".into()),
    );
    s.push('\n');
    s
}

fn dir_usage(dir: &Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => {
                    files += 1;
                    bytes += m.len();
                }
                Err(_) => {}
            }
        }
    }
    (files, bytes)
}

fn disk_txt(config: &Config, health: &Value) -> String {
    let h = crate::fleet::human_bytes;
    let mut s = String::new();
    for (name, dir) in [
        ("data directory", &config.data_dir),
        ("uploads directory", &config.uploads_dir),
    ] {
        s.push_str(&format!("{name}: {}\n", dir.display()));
        match (
            crate::storage::free_bytes(dir),
            crate::storage::total_bytes(dir),
        ) {
            (Ok(free), Ok(total)) => {
                let pct = if total > 0 {
                    free as f64 * 100.0 / total as f64
                } else {
                    0.0
                };
                s.push_str(&format!(
                    "  file system: {} free of {} ({pct:.1} % free)\n",
                    h(free),
                    h(total)
                ));
            }
            (Err(e), _) | (_, Err(e)) => s.push_str(&format!("  file system: {e}\n")),
        }
    }
    let d = &health["checks"]["disk"];
    if let Some(r) = d["reserve_bytes"].as_u64() {
        s.push_str(&format!(
            "reserve (KIOSK_DISK_RESERVE): {} — check status: {}\n",
            h(r),
            d["status"].as_str().unwrap_or("?")
        ));
    }
    s.push('\n');
    let cat = health::catalog_path(&config.data_dir);
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", cat.display()));
        if let Ok(m) = std::fs::metadata(&p) {
            s.push_str(&format!("{}: {} bytes\n", p.display(), m.len()));
        }
    }
    let (files, bytes) = dir_usage(&config.data_dir.join("outbox"));
    s.push_str(&format!("outbox directory: {files} files, {}\n", h(bytes)));
    let (files, bytes) = dir_usage(&config.uploads_dir);
    s.push_str(&format!("uploads: {files} files, {}\n", h(bytes)));
    s
}

/// A figure for humans: `?` when unknown, strings without quotes.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "?".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn status_line(v: &Value) -> String {
    v["status"].as_str().unwrap_or("unknown").to_uppercase()
}

fn summary_txt(c: &Collected, kiosk: &str, when: &str, bundle_name: &str) -> String {
    let h = &c.health;
    let checks = &h["checks"];
    let mut s = String::new();
    s.push_str(&format!(
        "selfie-kiosk diagnostics — kiosk {kiosk} — {when}\n"
    ));
    s.push_str(&format!("bundle: {bundle_name}\n\n"));
    s.push_str(&format!("STATUS: {}\n", status_line(h)));
    match &c.source {
        Source::Daemon { url } => s.push_str(&format!(
            "daemon: running (answered on {url}), version {}, up {} s\n",
            h["version"].as_str().unwrap_or("?"),
            h["uptime_s"].as_u64().unwrap_or(0)
        )),
        Source::HealthOnly { url, why } => s.push_str(&format!(
            "daemon: running (answered /health on {url}), but its full data was not available: {why}\n"
        )),
        Source::Offline { why } => s.push_str(&format!("daemon: NOT ANSWERING — {why}\n")),
    }
    s.push_str(&format!(
        "this tool: selfie-kiosk {}\n\n",
        env!("CARGO_PKG_VERSION")
    ));

    let d = &checks["disk"];
    if let Some(free) = d["free_bytes"].as_u64() {
        s.push_str(&format!(
            "disk: {} — {} free ({} %), reserve {}\n",
            d["status"].as_str().unwrap_or("?"),
            crate::fleet::human_bytes(free),
            show(&d["free_percent"]),
            crate::fleet::human_bytes(d["reserve_bytes"].as_u64().unwrap_or(0))
        ));
    } else {
        s.push_str(&format!(
            "disk: {} — {}\n",
            show(&d["status"]),
            show(&d["error"])
        ));
    }
    let db = &checks["local_db"];
    s.push_str(&format!(
        "catalog: {} — {} captures, {} not yet synced{}\n",
        db["status"].as_str().unwrap_or("?"),
        show(&c.catalog["captures"]),
        show(&c.catalog["unsynced"]),
        db["error"]
            .as_str()
            .map(|e| format!(" — error: {e}"))
            .unwrap_or_default()
    ));
    let ob = &checks["outbox"];
    s.push_str(&format!(
        "backlog (outbox): {} pending, {} dead, oldest pending {}{}\n",
        show(&ob["pending"]),
        show(&ob["dead"]),
        ob["oldest_pending_age_s"]
            .as_u64()
            .map(|a| format!("{} ago", crate::fleet::human_age(a as f64)))
            .unwrap_or_else(|| "-".into()),
        ob["error"]
            .as_str()
            .map(|e| format!(" — {e}"))
            .unwrap_or_default()
    ));
    s.push_str(&format!(
        "last capture synced: {}\n",
        c.catalog["last_synced"].as_str().unwrap_or("never")
    ));
    for (name, key) in [
        ("remote database", "remote_db"),
        ("remote storage", "remote_storage"),
    ] {
        let r = &checks[key];
        if r.is_null() {
            continue;
        }
        if r["configured"] == false {
            s.push_str(&format!("{name}: not configured\n"));
            continue;
        }
        s.push_str(&format!(
            "{name}: {} — reachable: {}, last success: {}, last error: {}\n",
            r["status"].as_str().unwrap_or("?"),
            show(&r["reachable"]),
            r["last_success"].as_str().unwrap_or("never"),
            match (r["last_error"].as_str(), r["last_error_at"].as_str()) {
                (Some(e), Some(at)) => format!("{e} (at {at})"),
                (Some(e), None) => e.to_string(),
                _ => "none".into(),
            }
        ));
    }
    let sms = &checks["sms"];
    if !sms.is_null() {
        if sms["configured"] == false {
            s.push_str("sms: not configured\n");
        } else {
            s.push_str(&format!(
                "sms: {} — credits left: {}\n",
                sms["status"].as_str().unwrap_or("?"),
                show(&sms["credits_left"])
            ));
        }
    }
    let clock = &checks["clock"];
    s.push_str(&format!(
        "clock: {} ({})\n",
        clock["state"].as_str().unwrap_or("?"),
        clock["system_time"].as_str().unwrap_or("?")
    ));
    if !c.notes.is_empty() {
        s.push_str("\nnotes:\n");
        for n in &c.notes {
            s.push_str(&format!("  - {n}\n"));
        }
    }
    s.push_str("\nWHAT TO DO\n");
    let todo = advice(c);
    if todo.is_empty() {
        s.push_str("  - nothing: the kiosk is healthy.\n");
    }
    for t in todo {
        s.push_str(&format!("  - {t}\n"));
    }
    s
}

fn advice(c: &Collected) -> Vec<String> {
    let checks = &c.health["checks"];
    let mut out = Vec::new();
    if let Source::HealthOnly { .. } = c.source {
        out.push("For the complete bundle run diag with the daemon's configuration: the same env file, and ADMIN_API_KEY or read access to $KIOSK_DATA_DIR/admin_api_key (run it as the selfie-kiosk user).".to_string());
    }
    if let Source::Offline { .. } = c.source {
        out.push("The daemon is not answering: `systemctl status selfie-kiosk` and `journalctl -u selfie-kiosk -n 100`; restart it with `systemctl restart selfie-kiosk`. A configuration error shows as exit code 64: check it with `selfie-kiosk check-config`.".to_string());
    }
    match checks["disk"]["status"].as_str() {
        Some("down") => out.push("The disk is below the reserve: captures are refused. Free space on the data partition (old files, logs), or lower RETENTION_DAYS so the daily cleanup removes more.".into()),
        Some("degraded") => out.push("Free disk space is low (under twice the reserve): free space soon.".into()),
        _ => {}
    }
    if checks["local_db"]["status"] == "down" {
        out.push("The catalog cannot be read: the storage may be failing. Stop the daemon, copy the data directory elsewhere, and replace the SD card/eMMC if errors persist; send this bundle to support.".into());
    }
    for (name, key, var) in [
        ("remote database", "remote_db", "REMOTE_DATABASE_URL"),
        ("remote storage", "remote_storage", "REMOTE_STORAGE_URL"),
    ] {
        if checks[key]["status"] == "degraded" {
            out.push(format!("The {name} is failing ({}): check the network (cable, Wi-Fi, 4G), that the VPS is up, and {var}. Captures are kept and will sync when it answers.",
                checks[key]["last_error"].as_str().unwrap_or("no detail")));
        }
    }
    if checks["outbox"]["dead"].as_u64().unwrap_or(0) > 0 {
        out.push(
            "Some jobs gave up (dead letters, see outbox.json): read their last_error.".into(),
        );
    }
    if checks["outbox"]["oldest_pending_age_s"]
        .as_u64()
        .unwrap_or(0)
        > 3600
    {
        out.push("Captures have waited more than an hour to sync: see the remote checks above; `POST /admin/sync` retries at once.".into());
    }
    if checks["sms"]["status"] == "degraded" {
        out.push("SMS credits are low or exhausted: buy credits in the OVH manager.".into());
    }
    if checks["clock"]["state"] == "unsynchronized" {
        out.push("The system clock is wrong (before this software's build date): check NTP (`timedatectl`) and the network; on boards without an RTC the time comes only from the network.".into());
    }
    out
}

fn write_durable(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("partial");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // USB sticks get pulled right after: make the rename itself durable.
        let _ = crate::storage::sync_dir(dir);
    }
    Ok(())
}

fn tar_gz(files: &[(&str, Vec<u8>)], prefix: &str, mtime: u64) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, format!("{prefix}/{name}"), data.as_slice())?;
    }
    tar.into_inner()?.finish()
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s.into_bytes()
}

/// Collects, writes the bundle and the summary; returns their paths and the kiosk status.
async fn run(config: &Config, out: &Path) -> Result<(PathBuf, PathBuf, String), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let secrets = Secrets::from_config(config);
    let collected = match from_daemon(config).await {
        Ok(v) => {
            let mut notes = Vec::new();
            if v["outbox"]["error"].is_string() {
                notes.push(format!("outbox: {}", v["outbox"]["error"]));
            }
            Collected {
                source: Source::Daemon {
                    url: config.listen.to_string(),
                },
                health: v["health"].clone(),
                outbox: v["outbox"].clone(),
                catalog: v["catalog"].clone(),
                config: v["config"].clone(),
                daemon_logs: v["logs"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|l| l.as_str().map(str::to_string))
                        .collect()
                }),
                notes,
            }
        }
        Err(why) => {
            let answering = public_health(config).await.ok();
            let cfg = config.clone();
            let offline_why = why.clone();
            let mut c = tokio::task::spawn_blocking(move || offline(&cfg, offline_why))
                .await
                .map_err(|e| e.to_string())?;
            if let Some(h) = answering {
                c.notes.retain(|n| !n.starts_with("daemon:"));
                c.notes.push(format!(
                    "health.json is the daemon's public /health; GET /admin/diag: {why}"
                ));
                c.health = h;
                c.source = Source::HealthOnly {
                    url: config.listen.to_string(),
                    why,
                };
            }
            c
        }
    };

    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .map_err(|e| e.to_string())?;
    let when = crate::catalog::format_ms(crate::catalog::now_ms());
    let base = format!("selfie-kiosk-diag-{}-{stamp}", config.kiosk_id);
    let bundle_name = format!("{base}.tar.gz");

    let journal = tokio::task::spawn_blocking(journal_lines)
        .await
        .ok()
        .flatten();
    let logs = match (journal, &collected.daemon_logs) {
        (Some(lines), _) => format!(
            "# journald: journalctl -u selfie-kiosk -n {JOURNAL_LINES}\n{}\n",
            secrets.scrub_lines(&lines).join("\n")
        ),
        (None, Some(lines)) => format!(
            "# no journal available: the daemon's recent-log buffer (last {} lines)\n{}\n",
            lines.len(),
            secrets.scrub_lines(lines).join("\n")
        ),
        (None, None) => "# no logs: no journal available and the daemon is not answering (its in-memory log buffer went with it)\n".to_string(),
    };

    let summary = secrets.scrub(&summary_txt(
        &collected,
        &config.kiosk_id,
        &when,
        &bundle_name,
    ));
    let daemon_info = match &collected.source {
        Source::Daemon { .. } | Source::HealthOnly { .. } => collected.health.clone(),
        Source::Offline { .. } => Value::Null,
    };
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("summary.txt", summary.clone().into_bytes()),
        (
            "health.json",
            pretty(&secrets.scrub_json(&collected.health)),
        ),
        (
            "config.json",
            pretty(&secrets.scrub_json(&collected.config)),
        ),
        (
            "outbox.json",
            pretty(&secrets.scrub_json(&collected.outbox)),
        ),
        (
            "catalog.json",
            pretty(&secrets.scrub_json(&collected.catalog)),
        ),
        (
            "disk.txt",
            secrets
                .scrub(&disk_txt(config, &collected.health))
                .into_bytes(),
        ),
        (
            "versions.txt",
            secrets.scrub(&versions_txt(&daemon_info)).into_bytes(),
        ),
        ("logs.txt", logs.into_bytes()),
    ];
    let mtime = now.unix_timestamp().max(0) as u64;
    let data = tar_gz(&files, &base, mtime).map_err(|e| format!("building the archive: {e}"))?;
    let bundle = out.join(&bundle_name);
    write_durable(&bundle, &data).map_err(|e| format!("writing {}: {e}", bundle.display()))?;
    let summary_path = out.join("summary.txt");
    write_durable(&summary_path, summary.as_bytes())
        .map_err(|e| format!("writing {}: {e}", summary_path.display()))?;
    let status = status_line(&collected.health);
    Ok((bundle, summary_path, status))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn phones_are_masked_ids_and_numbers_are_not() {
        assert_eq!(mask_phones("to +33612345678 now"), "to <phone> now");
        assert_eq!(mask_phones("call 0612345678."), "call <phone>.");
        assert_eq!(mask_phones("id a0612345678b"), "id a0612345678b");
        assert_eq!(
            mask_phones("\"free_bytes\": 81234567890"),
            "\"free_bytes\": 81234567890"
        );
        assert_eq!(mask_phones("2026-11-24T07:04:20Z"), "2026-11-24T07:04:20Z");
        assert_eq!(mask_phones("+12"), "+12");
    }

    #[test]
    fn secrets_are_scrubbed_everywhere() {
        let mut vars = crate::config::Vars::new();
        for (k, v) in [
            ("KIOSK_DATA_DIR", "/nonexistent-diag-test"),
            ("ADMIN_API_KEY", "admin-key-planted-0001"),
            ("REMOTE_DATABASE_URL", "postgresql://u:db-pw-planted@db/x"),
            (
                "REMOTE_STORAGE_URL",
                "https://k:dav-pw-planted@vps/uploads/",
            ),
        ] {
            vars.insert(k.into(), v.into());
        }
        let c = Config::from_vars(&vars).unwrap();
        let s = Secrets::from_config(&c);
        let v = json!({"a": "key admin-key-planted-0001", "db-pw-planted": ["dav-pw-planted"]});
        let out = serde_json::to_string(&s.scrub_json(&v)).unwrap();
        assert!(!out.contains("planted"), "{out}");
        let lines = vec!["ok line".to_string(), "oops db-pw-planted".to_string()];
        assert_eq!(s.scrub_lines(&lines), vec!["ok line".to_string()]);
        let cfg = serde_json::to_string(&safe_config(&c, None)).unwrap();
        assert!(!cfg.contains("planted"), "{cfg}");
        assert!(cfg.contains("https://vps/uploads/"), "{cfg}");
    }
}
