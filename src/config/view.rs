//! The one view of the configuration shown to people: `GET /admin/config` serializes it,
//! `check-config` prints it, `diag` writes it as `config.json`. Secrets appear only as
//! "set"/"unset", and this file alone decides what each setting shows.

use serde::Serialize;
use utoipa::ToSchema;

use super::{Config, RemoteStorage};
use crate::settings::RuntimeSettings;

/// Whose admin and secret keys the view describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// The configuration as written: a key it does not give is unset (the daemon
    /// generates it at first start).
    AsConfigured,
    /// A running daemon's: both keys exist, given or generated.
    Running,
}

/// `"set"` or `"unset"`: all that is ever said about a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Set,
    Unset,
}

impl Presence {
    fn of(set: bool) -> Presence {
        if set {
            Presence::Set
        } else {
            Presence::Unset
        }
    }

    pub fn is_set(self) -> bool {
        self == Presence::Set
    }
}

/// The effective configuration (the shape of `GET`/`PUT /admin/config`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConfigView {
    /// What `PUT /admin/config` may change.
    pub settings: RuntimeSettings,
    /// From the environment; secrets only as "set"/"unset".
    pub read_only: ConfigFacts,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConfigFacts {
    pub kiosk_id: String,
    pub version: String,
    pub listen: String,
    pub health_listen: Option<String>,
    pub data_dir: String,
    pub uploads_dir: String,
    pub max_capture_bytes: u64,
    pub cors_origins: Vec<String>,
    /// Seconds between heartbeats to the remote database (`KIOSK_HEARTBEAT_SECS`).
    pub heartbeat_secs: u64,
    pub remote_database: RemoteDatabaseFacts,
    pub remote_storage: RemoteStorageFacts,
    pub public_base_url: Option<String>,
    pub sms: SmsFacts,
    pub secrets: SecretFacts,
    /// `ADMIN_LISTEN`: the staff's listener, when there is one.
    pub admin_listen: Option<String>,
    /// The zone local days and hours are in (`KIOSK_TZ`, else the system's, else `UTC`).
    pub kiosk_tz: String,
}

/// Where the remote database is, from `REMOTE_DATABASE_URL` without its password.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct RemoteDatabaseFacts {
    pub configured: bool,
    pub hosts: Vec<String>,
    pub ports: Vec<u16>,
    pub dbname: Option<String>,
    pub user: Option<String>,
    /// `disable`, `prefer` or `require`.
    pub sslmode: Option<String>,
}

impl RemoteDatabaseFacts {
    fn of(url: Option<&super::Secret>) -> RemoteDatabaseFacts {
        let Some(url) = url else {
            return RemoteDatabaseFacts::default();
        };
        let only_configured = RemoteDatabaseFacts {
            configured: true,
            ..Default::default()
        };
        // A second `@` is a password written without percent-encoding: the parser would
        // take its tail for the host name, which must not be shown.
        if url.expose().matches('@').count() > 1 {
            return only_configured;
        }
        let Ok(pg) = url.expose().parse::<tokio_postgres::Config>() else {
            // Start-up refuses it; say only that it is there.
            return only_configured;
        };
        RemoteDatabaseFacts {
            configured: true,
            hosts: pg
                .get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(s) => s.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .collect(),
            ports: pg.get_ports().to_vec(),
            dbname: pg.get_dbname().map(str::to_string),
            user: pg.get_user().map(str::to_string),
            sslmode: Some(format!("{:?}", pg.get_ssl_mode()).to_lowercase()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemoteStorageKind {
    Webdav,
    S3,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RemoteStorageFacts {
    pub configured: bool,
    pub kind: Option<RemoteStorageKind>,
    /// Without credentials.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SmsFacts {
    /// The OVH credentials and a public base URL (for the links) are set.
    pub configured: bool,
    pub endpoint: Option<String>,
    pub service_name: Option<String>,
    pub sender: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecretFacts {
    pub admin_api_key: Presence,
    pub secret_key: Presence,
    pub remote_database_url: Presence,
    /// The password inside `REMOTE_DATABASE_URL`.
    pub remote_database_password: Presence,
    /// The user of the remote storage (WebDAV user, S3 access key).
    pub remote_storage_user: Presence,
    /// The WebDAV password or the S3 secret key.
    pub remote_storage_password: Presence,
    pub ovh_app_key: Presence,
    pub ovh_app_secret: Presence,
    pub ovh_consumer_key: Presence,
    /// `REDIS_URL`: set or not, it is ignored (the queue is built in).
    pub redis_url: Presence,
}

/// The view of `config`, with the live run-time `settings` (`None`: those the
/// configuration starts from).
pub fn view(config: &Config, settings: Option<&RuntimeSettings>, keys: Keys) -> ConfigView {
    let c = config;
    let storage = c.remote_storage.as_ref();
    let (storage_kind, storage_user, storage_password) = match storage {
        None => (None, false, false),
        Some(RemoteStorage::WebDav { user, password, .. }) => (
            Some(RemoteStorageKind::Webdav),
            user.is_some(),
            password.is_some(),
        ),
        Some(RemoteStorage::S3(s3)) => (
            Some(RemoteStorageKind::S3),
            !s3.access_key.is_empty(),
            !s3.secret_key.expose().is_empty(),
        ),
    };
    let db_password = c
        .remote_database_url
        .as_ref()
        .and_then(|u| u.expose().parse::<tokio_postgres::Config>().ok())
        .is_some_and(|pg| pg.get_password().is_some());
    let ovh = c.ovh.as_ref();
    let key = |given: bool| Presence::of(given || keys == Keys::Running);
    ConfigView {
        settings: settings
            .cloned()
            .unwrap_or_else(|| RuntimeSettings::from_config(c)),
        read_only: ConfigFacts {
            kiosk_id: c.kiosk_id.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            listen: c.listen.to_string(),
            health_listen: c.health_listen.map(|a| a.to_string()),
            data_dir: c.data_dir.display().to_string(),
            uploads_dir: c.uploads_dir.display().to_string(),
            max_capture_bytes: c.max_capture_bytes,
            cors_origins: c.cors_origins.clone(),
            heartbeat_secs: c.heartbeat_interval.as_secs(),
            remote_database: RemoteDatabaseFacts::of(c.remote_database_url.as_ref()),
            remote_storage: RemoteStorageFacts {
                configured: storage.is_some(),
                kind: storage_kind,
                url: storage.map(|s| s.display_url().into_owned()),
            },
            public_base_url: c.public_base_url.clone(),
            sms: SmsFacts {
                configured: c.sms_configured(),
                endpoint: ovh.map(|o| o.endpoint.clone()),
                service_name: ovh.map(|o| o.service_name.clone()),
                sender: ovh.map(|o| o.sender.clone()),
            },
            secrets: SecretFacts {
                admin_api_key: key(c.admin_api_key.is_some()),
                secret_key: key(c.secret_key.is_some()),
                remote_database_url: Presence::of(c.remote_database_url.is_some()),
                remote_database_password: Presence::of(db_password),
                remote_storage_user: Presence::of(storage_user),
                remote_storage_password: Presence::of(storage_password),
                ovh_app_key: Presence::of(ovh.is_some()),
                ovh_app_secret: Presence::of(ovh.is_some()),
                ovh_consumer_key: Presence::of(ovh.is_some()),
                redis_url: Presence::of(c.redis_url_set),
            },
            admin_listen: c.admin_listen.map(|a| a.to_string()),
            kiosk_tz: c.kiosk_tz.name().to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn keys_are_set_in_a_running_daemon_only_when_not_given() {
        let c = Config::with_data_dir(std::path::Path::new("/tmp/x"));
        let written = view(&c, None, Keys::AsConfigured).read_only.secrets;
        assert_eq!(written.admin_api_key, Presence::Unset);
        assert_eq!(written.secret_key, Presence::Unset);
        let running = view(&c, None, Keys::Running).read_only.secrets;
        assert_eq!(running.admin_api_key, Presence::Set);
        assert_eq!(running.secret_key, Presence::Set);
        let v = serde_json::to_value(view(&c, None, Keys::Running)).unwrap();
        assert_eq!(v["read_only"]["secrets"]["ovh_app_key"], "unset");
        assert_eq!(v["read_only"]["health_listen"], serde_json::Value::Null);
        assert_eq!(v["settings"]["retention_days"], c.retention_days);
    }

    #[test]
    fn remotes_are_described_without_their_secrets() {
        let mut vars = crate::config::Vars::new();
        for (k, v) in [
            ("KIOSK_DATA_DIR", "/tmp/x"),
            (
                "REMOTE_DATABASE_URL",
                "postgresql://kiosk:db-pw-planted@db.example:5433/kiosks?sslmode=require",
            ),
            (
                "REMOTE_STORAGE_URL",
                "https://dav:dav-pw-planted@vps/uploads/",
            ),
        ] {
            vars.insert(k.into(), v.into());
        }
        let c = Config::from_vars(&vars).unwrap();
        let v = serde_json::to_value(view(&c, None, Keys::AsConfigured)).unwrap();
        assert!(!v.to_string().contains("planted"), "{v}");
        let ro = &v["read_only"];
        assert_eq!(ro["remote_database"]["hosts"][0], "db.example");
        assert_eq!(ro["remote_database"]["ports"][0], 5433);
        assert_eq!(ro["remote_database"]["dbname"], "kiosks");
        assert_eq!(ro["remote_database"]["user"], "kiosk");
        assert_eq!(ro["remote_database"]["sslmode"], "require");
        assert_eq!(ro["remote_storage"]["kind"], "webdav");
        let raw = "postgresql://kiosk:pa@ss-planted@db.example/kiosks";
        let facts = RemoteDatabaseFacts::of(Some(&crate::config::Secret::new(raw)));
        assert!(facts.configured && facts.hosts.is_empty(), "{facts:?}");
        assert_eq!(ro["remote_storage"]["url"], "https://vps/uploads/");
        for k in [
            "remote_database_url",
            "remote_database_password",
            "remote_storage_user",
            "remote_storage_password",
        ] {
            assert_eq!(ro["secrets"][k], "set", "{k}");
        }
    }
}
