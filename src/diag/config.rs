//! The effective configuration as the bundle shows it: every secret replaced by whether it
//! is set.

use serde_json::{json, Value};

use crate::config::Config;

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
