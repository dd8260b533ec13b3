//! The one view of the configuration shown to people: `GET /admin/config` serializes it,
//! `check-config` prints it. Secrets appear only as "set"/"unset".

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
    pub remote_database: RemoteDatabaseFacts,
    pub remote_storage: RemoteStorageFacts,
    pub public_base_url: Option<String>,
    pub sms: SmsFacts,
    pub secrets: SecretFacts,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RemoteDatabaseFacts {
    pub configured: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RemoteStorageFacts {
    pub configured: bool,
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
    pub remote_storage_password: Presence,
    pub ovh_app_key: Presence,
    pub ovh_app_secret: Presence,
    pub ovh_consumer_key: Presence,
}

/// The view of `config`, with the live run-time `settings` (`None`: those the
/// configuration starts from).
pub fn view(config: &Config, settings: Option<&RuntimeSettings>, keys: Keys) -> ConfigView {
    let c = config;
    let storage = c.remote_storage.as_ref();
    let storage_password = matches!(
        storage,
        Some(RemoteStorage::WebDav {
            password: Some(_),
            ..
        })
    );
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
            remote_database: RemoteDatabaseFacts {
                configured: c.remote_database_url.is_some(),
            },
            remote_storage: RemoteStorageFacts {
                configured: storage.is_some(),
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
                remote_storage_password: Presence::of(storage_password),
                ovh_app_key: Presence::of(ovh.is_some()),
                ovh_app_secret: Presence::of(ovh.is_some()),
                ovh_consumer_key: Presence::of(ovh.is_some()),
            },
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
}
