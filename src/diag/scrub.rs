//! Scrubbing: the configured secret values replaced, log lines that hold one dropped,
//! phone-number-looking tokens masked, in every text that goes into a bundle.

use serde_json::{Map, Value};

use crate::app::App;
use crate::config::Config;
use crate::net::percent;

/// Secret values a bundle must never contain (those at least 3 characters long: shorter
/// "secrets" would blank out everything and protect nothing).
#[derive(Debug, Clone, Default)]
pub struct Secrets(Vec<String>);

impl Secrets {
    /// From the configuration, plus the generated key files in the data directory.
    pub fn from_config(config: &Config) -> Secrets {
        let mut v: Vec<String> = Vec::new();
        for s in [
            &config.admin_api_key,
            &config.secret_key,
            &config.fleet_api_key,
        ]
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
            }) => {
                // As written in the URL, and as sent (percent-decoded).
                v.push(pw.expose().to_string());
                v.push(percent::decode(pw.expose()));
            }
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
        s.0.push(app.keys.admin_api_key.expose().to_string());
        s.0.push(app.keys.secret_key.expose().to_string());
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

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
            ("FLEET_API_KEY", "fleet-key-planted-0001"),
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
        let v = json!({"a": "key admin-key-planted-0001", "db-pw-planted": ["dav-pw-planted"],
            "b": "fleet-key-planted-0001"});
        let out = serde_json::to_string(&s.scrub_json(&v)).unwrap();
        assert!(!out.contains("planted"), "{out}");
        let lines = vec!["ok line".to_string(), "oops db-pw-planted".to_string()];
        assert_eq!(s.scrub_lines(&lines), vec!["ok line".to_string()]);
        let cfg =
            super::super::config_json(&c, None, crate::config::Keys::AsConfigured).to_string();
        assert!(!cfg.contains("planted"), "{cfg}");
        assert!(cfg.contains("https://vps/uploads/"), "{cfg}");
    }
}
