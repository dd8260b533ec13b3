//! Run-time settings: what an operator may change without a restart (through
//! `PUT /admin/config`), stored in the catalog's `settings` table under the lower-case form
//! of their variable's name. Start-up takes the configuration's values and overlays what
//! the catalog holds; every change is validated key by key.

use std::sync::RwLock;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::catalog::{self, Catalog, CatalogError};
use crate::config::Config;

/// The default SMS text (French: the kiosks run in France). `{link}` is replaced by the
/// photo's public URL.
pub const DEFAULT_SMS_TEMPLATE: &str = "Votre photo est prête ! Téléchargez-la ici : {link}";

/// Minutes of inactivity before the staff console signs out, unless changed.
pub const DEFAULT_CONSOLE_IDLE_MINUTES: u32 = 15;

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RuntimeSettings {
    /// GDPR retention, local and remote.
    pub retention_days: u32,
    /// Hour of the day (0-23, the kiosk's local time: `KIOSK_TZ`) of the daily cleanup.
    pub cleanup_hour: u32,
    /// Whether the sync worker uploads (off: captures queue up locally).
    pub sync_enabled: bool,
    /// Whether `send-sms` accepts requests (the OVH settings must also be present).
    pub sms_enabled: bool,
    pub sms_template: String,
    /// Abuse limits.
    pub sms_per_phone_per_hour: u32,
    pub sms_per_capture: u32,
    pub sms_per_hour: u32,
    pub sms_per_day: u32,
    /// An SMS not sent within this many minutes of the request is dropped (a text a day
    /// late is spam).
    pub sms_expiry_minutes: u32,
    /// `/health` reports SMS as degraded below this many credits.
    pub sms_credits_low: f64,
    /// Free space kept on the uploads file system (`KIOSK_DISK_RESERVE`).
    pub kiosk_disk_reserve: u64,
    /// The log filter (`KIOSK_LOG`).
    pub kiosk_log: String,
    /// Consent (issue 20): `send-sms` refuses a request without `consent`.
    pub sms_require_consent: bool,
    /// Days of heartbeat history this kiosk keeps in the remote database.
    pub heartbeat_history_days: u32,
    // Share pages and links (issue 20).
    /// Who runs the kiosk, shown on share pages as the data controller.
    pub operator_name: String,
    /// Where guests ask about (or for the erasure of) their photo, on share pages.
    pub privacy_contact: String,
    /// The share page template (`{photo_url}` required); empty: the data directory's
    /// `share-template.html`, else the built-in French page.
    pub share_template: String,
    /// What the SMS links to: the share page (`page`) or the photo (`image`).
    pub sms_link: crate::share::SmsLink,
    /// The staff console signs out after this many minutes without a touch or a key
    /// (1-1440): the touchscreen is guest-facing. Read by the page at sign-in.
    pub console_idle_minutes: u32,
}

/// Keys accepted by `PUT /admin/config`.
pub const KEYS: &[&str] = &[
    "retention_days",
    "cleanup_hour",
    "sync_enabled",
    "sms_enabled",
    "sms_template",
    "sms_per_phone_per_hour",
    "sms_per_capture",
    "sms_per_hour",
    "sms_per_day",
    "sms_expiry_minutes",
    "sms_credits_low",
    "kiosk_disk_reserve",
    "kiosk_log",
    "sms_require_consent",
    "heartbeat_history_days",
    "operator_name",
    "privacy_contact",
    "share_template",
    "sms_link",
    "console_idle_minutes",
];

/// A rejected setting: which key, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SettingError {
    pub key: String,
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> SettingError {
    SettingError {
        key: key.to_string(),
        message: message.into(),
    }
}

impl RuntimeSettings {
    pub fn from_config(c: &Config) -> RuntimeSettings {
        RuntimeSettings {
            retention_days: c.retention_days,
            cleanup_hour: 3,
            sync_enabled: true,
            sms_enabled: true,
            sms_template: DEFAULT_SMS_TEMPLATE.to_string(),
            sms_per_phone_per_hour: 3,
            sms_per_capture: 3,
            sms_per_hour: 100,
            sms_per_day: 500,
            sms_expiry_minutes: 240,
            sms_credits_low: 50.0,
            kiosk_disk_reserve: c.disk_reserve_bytes,
            kiosk_log: c.log_filter.clone(),
            sms_require_consent: false,
            heartbeat_history_days: 30,
            operator_name: String::new(),
            privacy_contact: String::new(),
            share_template: String::new(),
            sms_link: crate::share::SmsLink::Page,
            console_idle_minutes: DEFAULT_CONSOLE_IDLE_MINUTES,
        }
    }

    /// Sets one key from a JSON value, validated.
    pub fn set(&mut self, key: &str, v: &Value) -> Result<(), SettingError> {
        let uint = |min: u64, max: u64| -> Result<u64, SettingError> {
            let n = match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(|| err(key, "must be a whole number"))?;
            if n < min || n > max {
                return Err(err(key, format!("must be between {min} and {max}")));
            }
            Ok(n)
        };
        let boolean = || -> Result<bool, SettingError> {
            match v {
                Value::Bool(b) => Ok(*b),
                Value::String(s) if s == "true" => Ok(true),
                Value::String(s) if s == "false" => Ok(false),
                _ => Err(err(key, "must be true or false")),
            }
        };
        match key {
            "retention_days" => self.retention_days = uint(1, 3650)? as u32,
            "cleanup_hour" => self.cleanup_hour = uint(0, 23)? as u32,
            "sync_enabled" => self.sync_enabled = boolean()?,
            "sms_enabled" => self.sms_enabled = boolean()?,
            "sms_template" => {
                let s = v.as_str().ok_or_else(|| err(key, "must be a string"))?;
                check_template(s).map_err(|m| err(key, m))?;
                self.sms_template = s.to_string();
            }
            "sms_per_phone_per_hour" => self.sms_per_phone_per_hour = uint(0, 100)? as u32,
            "sms_per_capture" => self.sms_per_capture = uint(0, 100)? as u32,
            "sms_per_hour" => self.sms_per_hour = uint(0, 100_000)? as u32,
            "sms_per_day" => self.sms_per_day = uint(0, 1_000_000)? as u32,
            "sms_expiry_minutes" => self.sms_expiry_minutes = uint(1, 7 * 24 * 60)? as u32,
            "sms_credits_low" => {
                let n = v
                    .as_f64()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .ok_or_else(|| err(key, "must be a number ≥ 0"))?;
                self.sms_credits_low = n;
            }
            "kiosk_disk_reserve" => {
                let n = match v {
                    Value::Number(n) => n.as_u64().ok_or_else(|| err(key, "must be a size"))?,
                    Value::String(s) => crate::config::parse_size(s).map_err(|m| err(key, m))?,
                    _ => return Err(err(key, "must be a size (e.g. 64MB)")),
                };
                // More than 1 TiB kept free is a typo, and it would refuse every capture.
                if n > 1 << 40 {
                    return Err(err(key, "must be at most 1 TiB"));
                }
                self.kiosk_disk_reserve = n;
            }
            "kiosk_log" => {
                let s = v.as_str().ok_or_else(|| err(key, "must be a string"))?;
                tracing_subscriber::EnvFilter::try_new(s)
                    .map_err(|e| err(key, format!("invalid log filter: {e}")))?;
                self.kiosk_log = s.to_string();
            }
            "sms_require_consent" => self.sms_require_consent = boolean()?,
            "heartbeat_history_days" => self.heartbeat_history_days = uint(1, 3650)? as u32,
            // Share pages and links (issue 20).
            "operator_name" | "privacy_contact" => {
                let s = v.as_str().ok_or_else(|| err(key, "must be a string"))?;
                if s.chars().count() > 200 || s.chars().any(char::is_control) {
                    return Err(err(key, "must be one line of at most 200 characters"));
                }
                let s = s.trim().to_string();
                match key {
                    "operator_name" => self.operator_name = s,
                    _ => self.privacy_contact = s,
                }
            }
            "share_template" => {
                let s = v.as_str().ok_or_else(|| err(key, "must be a string"))?;
                if !s.is_empty() {
                    crate::share::check_template(s).map_err(|e| err(key, e.to_string()))?;
                }
                self.share_template = s.to_string();
            }
            "sms_link" => {
                self.sms_link = v
                    .as_str()
                    .and_then(crate::share::SmsLink::parse)
                    .ok_or_else(|| err(key, "must be \"page\" or \"image\""))?;
            }
            "console_idle_minutes" => self.console_idle_minutes = uint(1, 1440)? as u32,
            _ => return Err(err(key, "unknown setting")),
        }
        Ok(())
    }

    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }
}

/// A template must contain `{link}` and fit in 3 SMS segments with a typical link.
pub fn check_template(t: &str) -> Result<(), String> {
    if !t.contains("{link}") {
        return Err("must contain {link}".into());
    }
    let sample = t.replace(
        "{link}",
        "https://vps.example.com/uploads/0123456789abcdef0123456789abcdef.jpg",
    );
    let segments = sms_segments(&sample);
    if segments > 3 {
        return Err(format!(
            "too long: {segments} SMS segments with a typical link (at most 3)"
        ));
    }
    Ok(())
}

/// GSM 03.38 basic characters (plus the extension table, which counts double).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXT: &str = "^{}\\[~]|€";

/// Number of SMS segments for `text`: GSM-7 (160 / 153 per part) when every character is
/// in the GSM alphabet, else UCS-2 (70 / 67).
pub fn sms_segments(text: &str) -> usize {
    let mut septets = 0usize;
    let mut gsm = true;
    for c in text.chars() {
        if GSM_BASIC.contains(c) {
            septets += 1;
        } else if GSM_EXT.contains(c) {
            septets += 2;
        } else {
            gsm = false;
            break;
        }
    }
    if gsm {
        if septets <= 160 {
            1
        } else {
            septets.div_ceil(153)
        }
    } else {
        let units: usize = text.chars().map(|c| c.len_utf16()).sum();
        if units <= 70 {
            1
        } else {
            units.div_ceil(67)
        }
    }
}

/// The live settings, shared by every route and worker.
#[derive(Debug)]
pub struct Settings {
    live: RwLock<RuntimeSettings>,
    /// Serializes changes (each one a read-modify-write of the live settings).
    writes: tokio::sync::Mutex<()>,
}

/// A change made by [`Settings::change`].
#[derive(Debug, Clone)]
pub struct Change {
    pub old: RuntimeSettings,
    pub new: RuntimeSettings,
}

/// Why a change was not made (then nothing was).
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Invalid(#[from] SettingError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl Settings {
    pub fn new(s: RuntimeSettings) -> Settings {
        Settings {
            live: RwLock::new(s),
            writes: tokio::sync::Mutex::new(()),
        }
    }
    pub fn get(&self) -> RuntimeSettings {
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub fn replace(&self, s: RuntimeSettings) {
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = s;
    }

    /// Applies `changes` (keys and JSON values): every key is validated before anything
    /// is stored; then all are stored in one transaction and take effect at once.
    pub async fn change(
        &self,
        catalog: &Catalog,
        changes: &Map<String, Value>,
    ) -> Result<Change, ChangeError> {
        let _guard = self.writes.lock().await;
        let old = self.get();
        let mut new = old.clone();
        for (k, v) in changes {
            new.set(k, v)?;
        }
        // Stored normalized (e.g. "64MB" → 67108864), as JSON text, all or nothing.
        let normalized = new.to_map();
        let rows: Vec<(String, String)> = changes
            .keys()
            .filter_map(|k| normalized.get(k).map(|v| (k.clone(), v.to_string())))
            .collect();
        catalog
            .write(move |tx| {
                for (k, v) in &rows {
                    catalog::put_setting(tx, k, v)?;
                }
                Ok(())
            })
            .await?;
        self.replace(new.clone());
        Ok(Change { old, new })
    }
}

/// Overlays stored settings (JSON values by key) on the configuration's. A stored value
/// that no longer validates is skipped with a warning rather than stopping the kiosk.
pub fn overlay(base: RuntimeSettings, stored: &[(String, String)]) -> RuntimeSettings {
    let mut s = base;
    for (k, raw) in stored {
        let Ok(v) = serde_json::from_str::<Value>(raw) else {
            tracing::warn!(key = %k, "stored setting is not JSON: ignored");
            continue;
        };
        if let Err(e) = s.set(k, &v) {
            tracing::warn!("stored setting ignored: {e}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn validates_each_key() {
        let mut s =
            RuntimeSettings::from_config(&Config::with_data_dir(std::path::Path::new("/tmp")));
        assert!(s.set("retention_days", &json!(7)).is_ok());
        assert_eq!(s.retention_days, 7);
        assert_eq!(
            s.set("retention_days", &json!(0)).unwrap_err().key,
            "retention_days"
        );
        assert!(s.set("nope", &json!(1)).is_err());
        assert!(s.set("sms_template", &json!("no link")).is_err());
        assert!(s
            .set("sms_template", &json!("x".repeat(600) + "{link}"))
            .is_err());
        assert!(s.set("sms_template", &json!("Photo: {link}")).is_ok());
        assert!(s.set("kiosk_disk_reserve", &json!("10MB")).is_ok());
        assert_eq!(s.kiosk_disk_reserve, 10 * 1024 * 1024);
        assert!(s.set("sync_enabled", &json!("maybe")).is_err());
        assert_eq!(s.console_idle_minutes, DEFAULT_CONSOLE_IDLE_MINUTES);
        for bad in [json!(0), json!(1441), json!("soon"), json!(-5)] {
            let e = s.set("console_idle_minutes", &bad).unwrap_err();
            assert_eq!(e.key, "console_idle_minutes", "{bad}");
        }
        assert_eq!(s.console_idle_minutes, DEFAULT_CONSOLE_IDLE_MINUTES);
        s.set("console_idle_minutes", &json!(1440)).unwrap();
        assert_eq!(s.console_idle_minutes, 1440);
    }

    #[test]
    fn share_settings_are_checked() {
        let mut s =
            RuntimeSettings::from_config(&Config::with_data_dir(std::path::Path::new("/tmp")));
        assert_eq!(s.sms_link, crate::share::SmsLink::Page);
        s.set("sms_link", &json!("image")).unwrap();
        assert_eq!(s.sms_link, crate::share::SmsLink::Image);
        assert_eq!(
            s.set("sms_link", &json!("pdf")).unwrap_err().key,
            "sms_link"
        );
        let e = s
            .set("share_template", &json!("<p>no photo</p>"))
            .unwrap_err();
        assert!(
            e.key == "share_template" && e.message.contains("{photo_url}"),
            "{e}"
        );
        let e = s
            .set("share_template", &json!("<img src=\"{photo_url}\">{nope}"))
            .unwrap_err();
        assert!(e.message.contains("{nope}"), "{e}");
        s.set("share_template", &json!("<img src=\"{photo_url}\">"))
            .unwrap();
        s.set("share_template", &json!("")).unwrap(); // back to the default
        s.set("operator_name", &json!(" Photo & Cie ")).unwrap();
        assert_eq!(s.operator_name, "Photo & Cie");
        assert!(s.set("privacy_contact", &json!("a\nb")).is_err());
        assert!(s.set("privacy_contact", &json!(3)).is_err());
    }

    #[test]
    fn segments() {
        assert_eq!(sms_segments(&"a".repeat(160)), 1);
        assert_eq!(sms_segments(&"a".repeat(161)), 2);
        assert_eq!(sms_segments("photo 📷"), 1);
        assert_eq!(sms_segments(&"é".repeat(160)), 1);
        assert_eq!(sms_segments(&"ê".repeat(71)), 2);
        check_template(DEFAULT_SMS_TEMPLATE).unwrap();
    }
}
