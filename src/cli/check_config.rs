//! `selfie-kiosk check-config`: every problem at once (stderr, one line each, naming the
//! variable), then every setting as the daemon would use it (stdout): secrets only as
//! set/unset, sizes in the units people write, where the key files are.

use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;

use crate::config::{self, format_size, Config, ConfigError, Keys, Presence};

/// Prints the problems and the settings; exit 64 when there is any problem.
pub fn check_config(c: &Config, errors: &[ConfigError]) -> ExitCode {
    for e in errors {
        eprintln!("selfie-kiosk: configuration error: {e}");
    }
    let bad: HashSet<&str> = errors.iter().map(|e| e.var.as_str()).collect();
    if errors.is_empty() {
        println!("configuration OK");
    } else {
        println!(
            "configuration has {} problem(s), listed on stderr; the daemon will not start. \
             Settings it would use (a bad value shows its default):",
            errors.len()
        );
    }
    for (var, value) in lines(c) {
        let mark = if bad.contains(var) {
            "  <- INVALID"
        } else {
            ""
        };
        println!("  {var:<22}{value}{mark}");
    }
    if let Some(w) = &c.kiosk_tz_warning {
        println!("warning: {w}");
    }
    if c.redis_url_set {
        println!("warning: REDIS_URL is set but ignored: selfie-kiosk needs no Redis (its queue is built in); remove it");
    }
    if errors.is_empty() {
        super::exit(super::OK)
    } else {
        super::exit(super::USAGE)
    }
}

fn key_file(given: Presence, path: &Path) -> String {
    if given.is_set() {
        return "set (from the environment or the env file)".into();
    }
    if path.exists() {
        format!("unset: read from {} (exists)", path.display())
    } else {
        format!(
            "unset: generated at first start into {} (does not exist yet)",
            path.display()
        )
    }
}

fn or_unset(v: Option<&str>, unset: &str) -> String {
    v.map_or_else(|| format!("unset: {unset}"), str::to_string)
}

/// `(variable, what it is set to)`, in README order.
fn lines(c: &Config) -> Vec<(&'static str, String)> {
    let view = config::view(c, None, Keys::AsConfigured);
    let f = &view.read_only;
    let s = &view.settings;
    let db = &f.remote_database;
    let remote_db = if db.configured {
        let at = if db.hosts.is_empty() {
            "set (host not shown)".to_string()
        } else {
            format!(
                "set: {}@{}:{}/{} (sslmode {}; password not shown)",
                db.user.as_deref().unwrap_or("?"),
                db.hosts.join(","),
                db.ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                db.dbname.as_deref().unwrap_or("?"),
                db.sslmode.as_deref().unwrap_or("prefer"),
            )
        };
        at
    } else {
        "unset: no remote metadata".into()
    };
    let ovh_set = |p: Presence| if p.is_set() { "set" } else { "unset" };
    let sms_off = "SMS disabled";
    vec![
        ("KIOSK_LISTEN", f.listen.clone()),
        (
            "HEALTH_LISTEN",
            or_unset(f.health_listen.as_deref(), "no second listener"),
        ),
        ("KIOSK_DATA_DIR", f.data_dir.clone()),
        ("UPLOADS_DIR", f.uploads_dir.clone()),
        ("KIOSK_ID", f.kiosk_id.clone()),
        (
            "ADMIN_API_KEY",
            key_file(f.secrets.admin_api_key, &c.admin_key_path()),
        ),
        (
            "SECRET_KEY",
            key_file(f.secrets.secret_key, &c.secret_key_path()),
        ),
        ("REMOTE_DATABASE_URL", remote_db),
        (
            "REMOTE_STORAGE_URL",
            or_unset(f.remote_storage.url.as_deref(), "no remote files"),
        ),
        (
            "PUBLIC_BASE_URL",
            or_unset(f.public_base_url.as_deref(), sms_off),
        ),
        (
            "OVH_ENDPOINT",
            c.ovh
                .as_ref()
                .map_or_else(|| "ovh-eu (default)".into(), |o| o.endpoint.clone()),
        ),
        ("OVH_APP_KEY", ovh_set(f.secrets.ovh_app_key).into()),
        ("OVH_APP_SECRET", ovh_set(f.secrets.ovh_app_secret).into()),
        (
            "OVH_CONSUMER_KEY",
            ovh_set(f.secrets.ovh_consumer_key).into(),
        ),
        (
            "SMS_SERVICE_NAME",
            or_unset(f.sms.service_name.as_deref(), sms_off),
        ),
        ("SMS_SENDER", or_unset(f.sms.sender.as_deref(), sms_off)),
        (
            "SMS",
            if f.sms.configured {
                "configured".to_string()
            } else if c.ovh.is_some() {
                "not configured: PUBLIC_BASE_URL is unset (the link in the text)".to_string()
            } else {
                "not configured (set the OVH_* and SMS_* variables and PUBLIC_BASE_URL)".to_string()
            },
        ),
        ("OVH_TIMEOUT_SECS", c.ovh_timeout_secs.to_string()),
        ("RETENTION_DAYS", s.retention_days.to_string()),
        ("MAX_CAPTURE_BYTES", format_size(f.max_capture_bytes)),
        ("KIOSK_DISK_RESERVE", format_size(s.kiosk_disk_reserve)),
        (
            "KIOSK_CORS_ORIGINS",
            if f.cors_origins.is_empty() {
                "unset: same origin only".to_string()
            } else {
                f.cors_origins.join(",")
            },
        ),
        ("KIOSK_LOG", s.kiosk_log.clone()),
        ("KIOSK_HEARTBEAT_SECS", f.heartbeat_secs.to_string()),
        (
            "ADMIN_LISTEN",
            or_unset(f.admin_listen.as_deref(), "no staff listener"),
        ),
        ("KIOSK_TZ", f.kiosk_tz.clone()),
    ]
}
