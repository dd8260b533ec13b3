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

use parse::{parse_addr, parse_http_base, parse_origin, parse_ovh, parse_remote_storage};
pub use parse::{parse_retention_days, parse_size};
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
}

/// Where a variable's value comes from: the process environment plus the `.env` file.
pub type Vars = HashMap<String, String>;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8000";
pub const DEFAULT_MAX_CAPTURE_BYTES: u64 = 25 * 1024 * 1024;
pub const DEFAULT_DISK_RESERVE_BYTES: u64 = 64 * 1024 * 1024;
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

impl Config {
    /// Reads the process environment, after loading `env_file` (or `./.env` when it
    /// exists). Variables already in the environment win over the file, as with systemd's
    /// `EnvironmentFile=` plus `Environment=`.
    pub fn load(env_file: Option<&Path>) -> Result<Config, ConfigError> {
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
        Config::from_vars(&vars)
    }

    /// Builds and validates a configuration from a map of variables (tests use this).
    pub fn from_vars(vars: &Vars) -> Result<Config, ConfigError> {
        let get = |name: &str| -> Option<String> {
            vars.get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let listen = parse_addr(
            "KIOSK_LISTEN",
            &get("KIOSK_LISTEN").unwrap_or(DEFAULT_LISTEN.into()),
        )?;
        let health_listen = get("HEALTH_LISTEN")
            .map(|v| parse_addr("HEALTH_LISTEN", &v))
            .transpose()?;
        let data_dir = PathBuf::from(get("KIOSK_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let uploads_dir = get("UPLOADS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("uploads"));
        let kiosk_id = match get("KIOSK_ID") {
            Some(id) => id,
            None => host_name(),
        };
        if kiosk_id.is_empty()
            || kiosk_id.len() > 64
            || !kiosk_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(ConfigError::new(
                "KIOSK_ID",
                format!("'{kiosk_id}' is not a valid kiosk id (1-64 characters: letters, digits, '-', '_', '.')"),
            ));
        }

        let admin_api_key = get("ADMIN_API_KEY").map(Secret::new);
        if let Some(k) = &admin_api_key {
            if k.expose().len() < 16 {
                return Err(ConfigError::new(
                    "ADMIN_API_KEY",
                    "too short (at least 16 characters); unset it to have one generated",
                ));
            }
        }
        let secret_key = get("SECRET_KEY").map(Secret::new);
        if let Some(k) = &secret_key {
            if k.expose().len() < 16 {
                return Err(ConfigError::new(
                    "SECRET_KEY",
                    "too short (at least 16 characters); unset it to have one generated",
                ));
            }
        }

        let remote_database_url = get("REMOTE_DATABASE_URL")
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
            .transpose()?;
        let remote_storage = get("REMOTE_STORAGE_URL")
            .map(|v| parse_remote_storage(&v, &get))
            .transpose()?;
        let public_base_url = get("PUBLIC_BASE_URL")
            .map(|v| parse_http_base("PUBLIC_BASE_URL", &v).map(|(base, _, _)| base))
            .transpose()?;

        let ovh = parse_ovh(&get)?;

        let retention_days = match get("RETENTION_DAYS") {
            None => DEFAULT_RETENTION_DAYS,
            Some(v) => {
                parse_retention_days(&v).map_err(|m| ConfigError::new("RETENTION_DAYS", m))?
            }
        };
        let max_capture_bytes = match get("MAX_CAPTURE_BYTES") {
            None => DEFAULT_MAX_CAPTURE_BYTES,
            Some(v) => {
                let n = parse_size(&v).map_err(|m| ConfigError::new("MAX_CAPTURE_BYTES", m))?;
                if !(1024..=512 * 1024 * 1024).contains(&n) {
                    return Err(ConfigError::new(
                        "MAX_CAPTURE_BYTES",
                        format!("{n} bytes is out of range (1 KiB to 512 MiB)"),
                    ));
                }
                n
            }
        };
        let disk_reserve_bytes = match get("KIOSK_DISK_RESERVE") {
            None => DEFAULT_DISK_RESERVE_BYTES,
            Some(v) => parse_size(&v).map_err(|m| ConfigError::new("KIOSK_DISK_RESERVE", m))?,
        };
        let cors_origins = match get("KIOSK_CORS_ORIGINS") {
            None => Vec::new(),
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|o| parse_origin(o).map_err(|m| ConfigError::new("KIOSK_CORS_ORIGINS", m)))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let ovh_timeout_secs = match get("OVH_TIMEOUT_SECS") {
            None => 15,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (1..=300).contains(&n) => n,
                _ => {
                    return Err(ConfigError::new(
                        "OVH_TIMEOUT_SECS",
                        format!("'{v}' is not a number of seconds between 1 and 300"),
                    ))
                }
            },
        };
        let log_filter = get("KIOSK_LOG")
            .or_else(|| get("RUST_LOG"))
            .unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log_filter)
            .map_err(|e| ConfigError::new("KIOSK_LOG", format!("invalid log filter: {e}")))?;

        Ok(Config {
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
            retention_days,
            redis_url_set: get("REDIS_URL").is_some(),
            max_capture_bytes,
            disk_reserve_bytes,
            cors_origins,
            log_filter,
            ovh_timeout_secs,
        })
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

    pub fn sms_configured(&self) -> bool {
        self.ovh.is_some() && self.public_base_url.is_some()
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
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.uploads_dir, PathBuf::from("./data/uploads"));
        assert_eq!(c.retention_days, 30);
        assert!(c.ovh.is_none() && c.remote_storage.is_none());
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (k, v) in [
            ("KIOSK_LISTEN", "nowhere"),
            ("RETENTION_DAYS", "0"),
            ("RETENTION_DAYS", "abc"),
            ("MAX_CAPTURE_BYTES", "12XB"),
            ("MAX_CAPTURE_BYTES", "10"),
            ("REMOTE_DATABASE_URL", "mysql://x"),
            ("REMOTE_STORAGE_URL", "ftp://x/"),
            ("PUBLIC_BASE_URL", "vps/uploads"),
            ("KIOSK_CORS_ORIGINS", "http://a/b"),
            ("KIOSK_ID", "bad id"),
            ("KIOSK_LOG", "[[["),
        ] {
            let e = Config::from_vars(&vars(&[(k, v)])).unwrap_err();
            assert!(e.to_string().starts_with(k), "{k}={v}: {e}");
        }
        // A partial OVH configuration names the first missing variable.
        let e = Config::from_vars(&vars(&[("OVH_APP_KEY", "only-one")])).unwrap_err();
        assert!(e.to_string().starts_with("OVH_APP_SECRET: is unset"), "{e}");
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let c = Config::from_vars(&vars(&[
            ("REMOTE_DATABASE_URL", "postgresql://u:hunter2pw@db/x"),
            ("REMOTE_STORAGE_URL", "https://kiosk:davpass99@vps/uploads"),
            ("ADMIN_API_KEY", "admin-key-0123456789"),
        ]))
        .unwrap();
        let dbg = format!("{c:?}");
        for s in ["hunter2pw", "davpass99", "admin-key-0123456789"] {
            assert!(!dbg.contains(s), "{s} leaked in {dbg}");
        }
        assert_eq!(
            c.remote_storage.unwrap().display_url(),
            "https://vps/uploads/"
        );
        let e =
            Config::from_vars(&vars(&[("REMOTE_DATABASE_URL", "pg://u:hunter2pw@x")])).unwrap_err();
        assert!(!e.to_string().contains("hunter2pw"));
    }

    #[test]
    fn s3_storage() {
        let c = Config::from_vars(&vars(&[
            (
                "REMOTE_STORAGE_URL",
                "s3://kiosk-photos/captures?endpoint=https://s3.fr-par.scw.cloud&region=fr-par",
            ),
            ("AWS_ACCESS_KEY_ID", "SCWEXAMPLEKEY0000000"),
            ("AWS_SECRET_ACCESS_KEY", "s3-secret/With+Slash99"),
        ]))
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3-secret/With+Slash99"), "secret in {dbg}");
        let Some(RemoteStorage::S3(s3)) = &c.remote_storage else {
            panic!("not S3: {dbg}");
        };
        assert_eq!(s3.bucket, "kiosk-photos");
        assert_eq!(s3.prefix, "captures");
        assert!(s3.path_style);
        assert_eq!(
            c.remote_storage.as_ref().unwrap().display_url(),
            "s3://kiosk-photos/captures?endpoint=https://s3.fr-par.scw.cloud&region=fr-par&path_style=true"
        );

        // Credentials in the URL; no Debug, display or error shows them.
        let c = Config::from_vars(&vars(&[(
            "REMOTE_STORAGE_URL",
            "s3://AKIAURLKEY00000:url-secret-42@bucket-1",
        )]))
        .unwrap();
        let r = c.remote_storage.unwrap();
        assert!(!format!("{r:?}").contains("url-secret-42"));
        assert!(!r.display_url().contains("url-secret-42"));
        assert_eq!(
            r.display_url(),
            "s3://bucket-1?endpoint=https://s3.us-east-1.amazonaws.com&region=us-east-1&path_style=false"
        );

        // No credentials at all.
        let e = Config::from_vars(&vars(&[("REMOTE_STORAGE_URL", "s3://bucket-1/p")])).unwrap_err();
        assert!(e.to_string().starts_with("REMOTE_STORAGE_URL: "), "{e}");
        assert!(e.to_string().contains("AWS_ACCESS_KEY_ID"), "{e}");
        // Bad values never echo the secret.
        for url in [
            "s3://AKIAX:url-secret-42@b",
            "s3://AKIAX:url-secret-42@bucket-1?bogus=1",
            "s3://AKIAX:url-secret-42@bucket-1?endpoint=ftp://h",
        ] {
            let e = Config::from_vars(&vars(&[("REMOTE_STORAGE_URL", url)])).unwrap_err();
            assert!(e.to_string().starts_with("REMOTE_STORAGE_URL: "), "{e}");
            assert!(!e.to_string().contains("url-secret-42"), "{e}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("25MB").unwrap(), 25 * 1024 * 1024);
        assert_eq!(parse_size("512 k").unwrap(), 512 * 1024);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }
}
