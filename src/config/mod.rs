//! Configuration: environment variables (and a `.env` file) into one typed, validated
//! [`Config`], read once at start.
//!
//! Every bad value stops start-up with one line naming the variable and what is wrong
//! (`main` maps [`ConfigError`] to exit code 64). Secrets are wrapped in [`Secret`], whose
//! `Debug` and `Display` never show the value, and no error message ever echoes them.
//!
//! Settings an operator may change at run time (retention, SMS template, limits…) start from
//! the values here and are then overridden by what `/admin/config` stored in the catalog.

mod parse;
mod view;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use parse::{format_size, parse_retention_days, parse_size};
use parse::{
    parse_addr, parse_http_base, parse_origin, parse_ovh, parse_remote_storage, parse_secs,
};
pub use view::{view, ConfigFacts, ConfigView, Keys, Presence};

/// A secret value: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A configuration problem, named after its variable. Its text never includes a secret.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(var: &str, message: impl Into<String>) -> Self {
        ConfigError {
            var: var.to_string(),
            message: message.into(),
        }
    }
}

/// Where synced image files go.
#[derive(Clone, PartialEq, Eq)]
pub enum RemoteStorage {
    /// WebDAV base URL ending in `/` (nginx `dav_methods PUT DELETE`, Apache mod_dav).
    /// Credentials, if any, are taken out of the URL and kept apart.
    WebDav {
        base: String,
        user: Option<String>,
        password: Option<Secret>,
    },
    /// S3-compatible object storage (`s3://bucket/prefix`); the secret key is kept in a
    /// [`Secret`].
    S3(crate::sync::s3::S3Config),
}

impl fmt::Debug for RemoteStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteStorage::WebDav { base, user, .. } => f
                .debug_struct("WebDav")
                .field("base", base)
                .field("user", &user.as_ref().map(|_| "<set>"))
                .finish(),
            RemoteStorage::S3(c) => f.debug_tuple("S3").field(c).finish(),
        }
    }
}

impl RemoteStorage {
    /// The URL without credentials, safe to show (for S3: `s3://bucket/prefix` with the
    /// endpoint and region).
    pub fn display_url(&self) -> std::borrow::Cow<'_, str> {
        match self {
            RemoteStorage::WebDav { base, .. } => std::borrow::Cow::Borrowed(base),
            RemoteStorage::S3(c) => std::borrow::Cow::Owned(c.display_url()),
        }
    }
}

/// OVH SMS settings; present only when every credential is set.
#[derive(Clone, Debug)]
pub struct OvhConfig {
    pub endpoint: String,
    pub app_key: String,
    pub app_secret: Secret,
    pub consumer_key: Secret,
    pub service_name: String,
    pub sender: String,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub health_listen: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub uploads_dir: PathBuf,
    pub kiosk_id: String,
    /// `None`: generated on first start into `$KIOSK_DATA_DIR/admin_api_key`.
    pub admin_api_key: Option<Secret>,
    /// `None`: generated on first start into `$KIOSK_DATA_DIR/secret_key`.
    pub secret_key: Option<Secret>,
    pub remote_database_url: Option<Secret>,
    pub remote_storage: Option<RemoteStorage>,
    pub public_base_url: Option<String>,
    pub ovh: Option<OvhConfig>,
    pub retention_days: u32,
    pub redis_url_set: bool,
    pub max_capture_bytes: u64,
    pub disk_reserve_bytes: u64,
    pub cors_origins: Vec<String>,
    pub log_filter: String,
    /// Timeout of one OVH API call (`OVH_TIMEOUT_SECS`).
    pub ovh_timeout_secs: u64,
    /// Time between heartbeats to the remote database (`KIOSK_HEARTBEAT_SECS`).
    pub heartbeat_interval: std::time::Duration,
    /// The key of the fleet page (`FLEET_API_KEY`); `fleet serve` refuses to start without.
    pub fleet_api_key: Option<Secret>,
    /// `ADMIN_LISTEN`: the staff's listener (console, `/admin/*`, `/health`, `/metrics`;
    /// never the guest routes).
    pub admin_listen: Option<SocketAddr>,
    /// `KIOSK_TZ` (else the system's zone, else UTC): local days and hours.
    pub kiosk_tz: crate::localtime::LocalTz,
    /// Why the zone wanted could not be loaded (then `kiosk_tz` is UTC): logged at start,
    /// printed by `check-config`.
    pub kiosk_tz_warning: Option<String>,
}

/// Where a variable's value comes from: the process environment plus the `.env` file.
pub type Vars = HashMap<String, String>;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8000";
pub const DEFAULT_MAX_CAPTURE_BYTES: u64 = 25 * 1024 * 1024;
pub const DEFAULT_DISK_RESERVE_BYTES: u64 = 64 * 1024 * 1024;
pub const DEFAULT_RETENTION_DAYS: u32 = 30;
pub const DEFAULT_OVH_TIMEOUT_SECS: u64 = 15;
pub const DEFAULT_HEARTBEAT_SECS: u64 = 60;

impl Config {
    /// Reads the process environment, after loading `env_file` (or `./.env` when it
    /// exists). Variables already in the environment win over the file, as with systemd's
    /// `EnvironmentFile=` plus `Environment=`.
    pub fn load(env_file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::from_vars(&read_vars(env_file)?)
    }

    /// Builds and validates a configuration from a map of variables (tests use this); the
    /// first problem, if any (see [`Config::check`] for all of them).
    pub fn from_vars(vars: &Vars) -> Result<Config, ConfigError> {
        let (config, mut errors) = Config::check(vars);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors.swap_remove(0))
        }
    }

    /// Reads the variables like [`Config::load`], then checks them all: the problems come
    /// back together, in the order of the variables (`check-config` prints every one).
    pub fn load_checked(env_file: Option<&Path>) -> Result<Config, Vec<ConfigError>> {
        let vars = read_vars(env_file).map_err(|e| vec![e])?;
        let (config, errors) = Config::check(&vars);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }

    /// [`Config::load_checked`] that keeps the configuration too, each bad value replaced
    /// by its default, so `check-config` can show every setting next to the problems.
    pub fn load_lenient(
        env_file: Option<&Path>,
    ) -> Result<(Config, Vec<ConfigError>), ConfigError> {
        Ok(Config::check(&read_vars(env_file)?))
    }

    /// Every problem of `vars` at once, and a configuration where each bad value is
    /// replaced by its default (usable only when there is no problem).
    pub fn check(vars: &Vars) -> (Config, Vec<ConfigError>) {
        let get = |name: &str| -> Option<String> {
            vars.get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut errs = Errors::default();
        let default_listen = SocketAddr::from(([127, 0, 0, 1], 8000));

        let listen = errs.or(
            parse_addr(
                "KIOSK_LISTEN",
                &get("KIOSK_LISTEN").unwrap_or(DEFAULT_LISTEN.into()),
            ),
            default_listen,
        );
        let health_listen = errs.or(
            get("HEALTH_LISTEN")
                .map(|v| parse_addr("HEALTH_LISTEN", &v))
                .transpose(),
            None,
        );
        let data_dir = PathBuf::from(get("KIOSK_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let uploads_dir = get("UPLOADS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("uploads"));
        let mut kiosk_id = match get("KIOSK_ID") {
            Some(id) => id,
            None => host_name(),
        };
        if kiosk_id.is_empty()
            || kiosk_id.len() > 64
            || !kiosk_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            errs.push(ConfigError::new(
                "KIOSK_ID",
                format!("'{kiosk_id}' is not a valid kiosk id (1-64 characters: letters, digits, '-', '_', '.')"),
            ));
            kiosk_id = "kiosk".into();
        }

        let mut admin_api_key = get("ADMIN_API_KEY").map(Secret::new);
        if admin_api_key
            .as_ref()
            .is_some_and(|k| k.expose().len() < 16)
        {
            errs.push(ConfigError::new(
                "ADMIN_API_KEY",
                "too short (at least 16 characters); unset it to have one generated",
            ));
            admin_api_key = None;
        }
        let mut secret_key = get("SECRET_KEY").map(Secret::new);
        if secret_key.as_ref().is_some_and(|k| k.expose().len() < 16) {
            errs.push(ConfigError::new(
                "SECRET_KEY",
                "too short (at least 16 characters); unset it to have one generated",
            ));
            secret_key = None;
        }

        let remote_database_url = errs.or(
            get("REMOTE_DATABASE_URL")
                .map(|v| {
                    if v.starts_with("postgresql://") || v.starts_with("postgres://") {
                        Ok(Secret::new(v))
                    } else {
                        Err(ConfigError::new(
                            "REMOTE_DATABASE_URL",
                            "must start with postgresql:// (value not shown: it may hold a password)",
                        ))
                    }
                })
                .transpose(),
            None,
        );
        let remote_storage = errs.or(
            get("REMOTE_STORAGE_URL")
                .map(|v| parse_remote_storage(&v, &get))
                .transpose(),
            None,
        );
        let public_base_url = errs.or(
            get("PUBLIC_BASE_URL")
                .map(|v| parse_http_base("PUBLIC_BASE_URL", &v).map(|(base, _, _)| base))
                .transpose(),
            None,
        );

        let ovh = errs.or(parse_ovh(&get), None);

        let retention_days = errs.or(
            get("RETENTION_DAYS")
                .map(|v| {
                    parse_retention_days(&v).map_err(|m| ConfigError::new("RETENTION_DAYS", m))
                })
                .transpose(),
            None,
        );
        let max_capture_bytes = errs.or(
            get("MAX_CAPTURE_BYTES")
                .map(|v| {
                    let n = parse_size(&v).map_err(|m| ConfigError::new("MAX_CAPTURE_BYTES", m))?;
                    if !(1024..=512 * 1024 * 1024).contains(&n) {
                        return Err(ConfigError::new(
                            "MAX_CAPTURE_BYTES",
                            format!("{} is out of range (1KB to 512MB)", format_size(n)),
                        ));
                    }
                    Ok(n)
                })
                .transpose(),
            None,
        );
        let disk_reserve_bytes = errs.or(
            get("KIOSK_DISK_RESERVE")
                .map(|v| parse_size(&v).map_err(|m| ConfigError::new("KIOSK_DISK_RESERVE", m)))
                .transpose(),
            None,
        );
        let cors_origins = errs.or(
            get("KIOSK_CORS_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|o| {
                            parse_origin(o).map_err(|m| ConfigError::new("KIOSK_CORS_ORIGINS", m))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose(),
            None,
        );
        let ovh_timeout_secs = errs.or(
            get("OVH_TIMEOUT_SECS")
                .map(|v| parse_secs("OVH_TIMEOUT_SECS", &v, 1..=300))
                .transpose(),
            None,
        );
        let heartbeat_secs = errs.or(
            get("KIOSK_HEARTBEAT_SECS")
                .map(|v| parse_secs("KIOSK_HEARTBEAT_SECS", &v, 1..=86_400))
                .transpose(),
            None,
        );
        let mut log_filter = get("KIOSK_LOG")
            .or_else(|| get("RUST_LOG"))
            .unwrap_or_else(|| "info".into());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_filter) {
            errs.push(ConfigError::new(
                "KIOSK_LOG",
                format!("invalid log filter: {e}"),
            ));
            log_filter = "info".into();
        }

        let admin_listen = errs.or(
            get("ADMIN_LISTEN")
                .map(|v| parse_addr("ADMIN_LISTEN", &v))
                .transpose(),
            None,
        );
        let (kiosk_tz, kiosk_tz_warning) = errs.or(
            crate::localtime::resolve(
                get("KIOSK_TZ").as_deref(),
                get("TZ").as_deref(),
                &crate::localtime::System::real(get("TZDIR").as_deref()),
            )
            .map_err(|e| ConfigError::new("KIOSK_TZ", e.to_string())),
            (crate::localtime::LocalTz::utc(), None),
        );

        let config = Config {
            listen,
            health_listen,
            data_dir,
            uploads_dir,
            kiosk_id,
            admin_api_key,
            secret_key,
            remote_database_url,
            remote_storage,
            public_base_url,
            ovh,
            retention_days: retention_days.unwrap_or(DEFAULT_RETENTION_DAYS),
            redis_url_set: get("REDIS_URL").is_some(),
            max_capture_bytes: max_capture_bytes.unwrap_or(DEFAULT_MAX_CAPTURE_BYTES),
            disk_reserve_bytes: disk_reserve_bytes.unwrap_or(DEFAULT_DISK_RESERVE_BYTES),
            cors_origins: cors_origins.unwrap_or_default(),
            log_filter,
            ovh_timeout_secs: ovh_timeout_secs.unwrap_or(DEFAULT_OVH_TIMEOUT_SECS),
            heartbeat_interval: std::time::Duration::from_secs(
                heartbeat_secs.unwrap_or(DEFAULT_HEARTBEAT_SECS),
            ),
            fleet_api_key: get("FLEET_API_KEY").map(Secret::new),
            admin_listen,
            kiosk_tz,
            kiosk_tz_warning,
        };
        (config, errs.0)
    }

    /// A configuration with every default and the given data directory (tests, benches).
    pub fn with_data_dir(dir: &Path) -> Config {
        let mut vars = Vars::new();
        vars.insert("KIOSK_DATA_DIR".into(), dir.display().to_string());
        vars.insert("KIOSK_ID".into(), "test-kiosk".into());
        match Config::from_vars(&vars) {
            Ok(c) => c,
            // The defaults are valid by construction; a test would see this at once.
            Err(e) => panic!("default configuration invalid: {e}"),
        }
    }

    /// Whether any remote is configured, i.e. what "synced" means here (start-up builds
    /// one remote handle per configured remote, so the daemon's view is the same).
    pub fn sync_scope(&self) -> crate::catalog::SyncScope {
        crate::catalog::SyncScope::from_remotes(
            self.remote_database_url.is_some() || self.remote_storage.is_some(),
        )
    }

    /// Where the admin key is kept when `ADMIN_API_KEY` is not given.
    pub fn admin_key_path(&self) -> PathBuf {
        self.data_dir.join("admin_api_key")
    }

    /// Where the HMAC key is kept when `SECRET_KEY` is not given.
    pub fn secret_key_path(&self) -> PathBuf {
        self.data_dir.join("secret_key")
    }

    pub fn sms_configured(&self) -> bool {
        self.ovh.is_some() && self.public_base_url.is_some()
    }
}

/// The process environment on top of `env_file` (or `./.env` when it exists).
fn read_vars(env_file: Option<&Path>) -> Result<Vars, ConfigError> {
    let mut vars: Vars = HashMap::new();
    let file = match env_file {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let p = PathBuf::from(".env");
            p.exists().then_some(p)
        }
    };
    if let Some(path) = file {
        let iter = dotenvy::from_path_iter(&path).map_err(|e| {
            ConfigError::new(
                "--env-file",
                format!("cannot read {}: {}", path.display(), env_file_error(&e)),
            )
        })?;
        for item in iter {
            let (k, v) = item.map_err(|e| {
                ConfigError::new(
                    "--env-file",
                    format!("{}: {}", path.display(), env_file_error(&e)),
                )
            })?;
            vars.insert(k, v);
        }
    }
    for (k, v) in std::env::vars_os() {
        if let (Ok(k), Ok(v)) = (k.into_string(), v.into_string()) {
            vars.insert(k, v);
        }
    }
    Ok(vars)
}

/// The problems found so far; each bad value gives way to its default.
#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    fn push(&mut self, e: ConfigError) {
        self.0.push(e);
    }
    fn or<T>(&mut self, r: Result<T, ConfigError>, default: T) -> T {
        r.unwrap_or_else(|e| {
            self.0.push(e);
            default
        })
    }
}

fn env_file_error(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::LineParse(_, idx) => format!("syntax error at character {idx}"),
        dotenvy::Error::Io(io) => io.to_string(),
        _ => "unreadable".into(),
    }
}

fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let name = raw.trim();
    if name.is_empty() {
        "kiosk".into()
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests;
