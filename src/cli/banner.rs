//! The start banner of `serve`: a few lines a person can act on — where the API and the
//! console are, where the admin key is and how to send it, which parts are on, and for each
//! part that is off, why (the variables to set). Built from the configuration alone, as a
//! plain function, so a test reads it without a daemon; [`show`] prints it.
//!
//! On stderr it is plain text (no colour: it is often a file or a pipe). Under journald it is
//! one event whose fields (`api_url`, `admin_key`, `sync`, `sms`, …) stay searchable.

use std::net::SocketAddr;

use crate::config::{self, Config, Keys};
use crate::settings::RuntimeSettings;

/// Where the daemon listens, as bound (a port 0 already replaced by the real one).
#[derive(Debug, Clone, Copy)]
pub struct Listeners {
    pub api: SocketAddr,
    pub health: Option<SocketAddr>,
    /// `ADMIN_LISTEN`, when the configuration has it (the staff listener on the LAN).
    pub admin: Option<SocketAddr>,
}

/// One part of the daemon: its name, and what it says (on, or off and why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: &'static str,
    pub on: bool,
    pub text: String,
}

/// The banner's content.
#[derive(Debug, Clone)]
pub struct Banner {
    pub title: String,
    pub api_url: String,
    pub console_url: String,
    /// Where the admin key comes from (a file path, or the variable).
    pub admin_key: String,
    /// The command that sends it.
    pub admin_key_usage: String,
    pub parts: Vec<Part>,
}

fn absolute(p: &std::path::Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// A URL for `addr`; a wildcard address is reached through loopback on this machine.
fn url(addr: SocketAddr, path: &str) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    format!("http://{host}:{}{path}", addr.port())
}

/// The banner for `config` with run-time `settings`, listening on `at`.
pub fn banner(config: &Config, settings: &RuntimeSettings, at: Listeners) -> Banner {
    let view = config::view(config, Some(settings), Keys::AsConfigured);
    let facts = &view.read_only;
    let api_url = url(at.api, "/");
    let (admin_key, admin_key_usage) = if config.admin_api_key.is_some() {
        (
            "from ADMIN_API_KEY".to_string(),
            format!(
                "curl -H \"X-API-Key: $ADMIN_API_KEY\" {}",
                url(at.api, "/admin/stats")
            ),
        )
    } else {
        // Absolute, so the command works from any directory.
        let path = absolute(&config.admin_key_path());
        (
            format!("in {path}"),
            format!(
                "curl -H \"X-API-Key: $(cat {path})\" {}",
                url(at.api, "/admin/stats")
            ),
        )
    };

    let mut parts = Vec::new();
    let mut targets = Vec::new();
    let db = &facts.remote_database;
    if db.configured {
        let at = match (db.hosts.first(), db.dbname.as_deref()) {
            (Some(h), Some(d)) => format!("{h}/{d}"),
            (Some(h), None) => h.clone(),
            _ => "configured".into(),
        };
        targets.push(format!("remote database {at}"));
    }
    if let Some(u) = &facts.remote_storage.url {
        targets.push(format!("remote files {u}"));
    }
    parts.push(if targets.is_empty() {
        Part {
            name: "Sync",
            on: false,
            text:
                "off — REMOTE_DATABASE_URL and REMOTE_STORAGE_URL unset (photos stay on this kiosk)"
                    .into(),
        }
    } else if !settings.sync_enabled {
        Part {
            name: "Sync",
            on: false,
            text: format!(
                "off — sync_enabled is false in /admin/config (targets: {})",
                targets.join(", ")
            ),
        }
    } else {
        Part {
            name: "Sync",
            on: true,
            text: format!("on — {}", targets.join(", ")),
        }
    });

    parts.push(sms_part(config, settings));
    parts.push(match at.health {
        Some(h) => Part {
            name: "Health",
            on: true,
            text: format!("on — {} (HEALTH_LISTEN)", url(h, "/health")),
        },
        None => Part {
            name: "Health",
            on: false,
            text: format!(
                "{} only; HEALTH_LISTEN unset (no second listener for remote staff)",
                url(at.api, "/health")
            ),
        },
    });
    // ADMIN_LISTEN: filled in by `show`'s caller once the configuration carries it.
    parts.push(match at.admin {
        Some(a) => Part {
            name: "Admin LAN",
            on: true,
            text: format!("on — {} (ADMIN_LISTEN)", url(a, "/console/")),
        },
        None => Part {
            name: "Admin LAN",
            on: false,
            text: "off — ADMIN_LISTEN unset (console and /admin only on the API address)".into(),
        },
    });

    Banner {
        title: format!(
            "selfie-kiosk {} ready — kiosk {}, data in {}",
            env!("CARGO_PKG_VERSION"),
            config.kiosk_id,
            absolute(&config.data_dir)
        ),
        console_url: url(at.api, "/console/"),
        api_url,
        admin_key,
        admin_key_usage,
        parts,
    }
}

fn sms_part(config: &Config, settings: &RuntimeSettings) -> Part {
    let off = |why: String| Part {
        name: "SMS",
        on: false,
        text: format!("off — {why}"),
    };
    match (&config.ovh, &config.public_base_url) {
        (None, _) => off(
            "OVH_APP_KEY, OVH_APP_SECRET, OVH_CONSUMER_KEY, SMS_SERVICE_NAME, SMS_SENDER unset"
                .into(),
        ),
        (Some(_), None) => off("PUBLIC_BASE_URL unset (the link the text carries)".into()),
        (Some(_), Some(_)) if !settings.sms_enabled => {
            off("sms_enabled is false in /admin/config".into())
        }
        (Some(o), Some(base)) => Part {
            name: "SMS",
            on: true,
            text: format!(
                "on — OVH {} as {}, links under {base}",
                o.service_name, o.sender
            ),
        },
    }
}

impl Banner {
    /// The plain-text lines, as printed on stderr.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![
            self.title.clone(),
            format!(
                "  {:<10} {}  (staff console: {})",
                "API:", self.api_url, self.console_url
            ),
            format!("  {:<10} {}", "Admin key:", self.admin_key),
            format!("  {:<10} {}", "", self.admin_key_usage),
        ];
        for p in &self.parts {
            out.push(format!("  {:<10} {}", format!("{}:", p.name), p.text));
        }
        out.push(format!(
            "  {:<10} `selfie-kiosk check-config` shows every setting; README.md lists the variables",
            "More:"
        ));
        out
    }
}

/// Prints the banner: plain lines on stderr, or one structured event under journald.
pub fn show(config: &Config, settings: &RuntimeSettings, at: Listeners) {
    let b = banner(config, settings, at);
    let part = |name: &str| {
        b.parts
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.text.clone())
            .unwrap_or_default()
    };
    if crate::logging::to_journald() {
        tracing::info!(
            api_url = %b.api_url,
            console_url = %b.console_url,
            admin_key = %b.admin_key,
            sync = %part("Sync"),
            sms = %part("SMS"),
            health = %part("Health"),
            admin_listen = %part("Admin LAN"),
            "{}",
            b.title
        );
        return;
    }
    // One write, so the lines stay together next to the log.
    let mut text = b.lines().join("\n");
    text.push('\n');
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), text.as_bytes());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Config {
        let mut v = config::Vars::new();
        v.insert("KIOSK_DATA_DIR".into(), "/var/lib/selfie-kiosk".into());
        v.insert("KIOSK_ID".into(), "k1".into());
        for (k, val) in vars {
            v.insert(k.to_string(), val.to_string());
        }
        Config::from_vars(&v).unwrap()
    }

    fn at(port: u16) -> Listeners {
        Listeners {
            api: SocketAddr::from(([127, 0, 0, 1], port)),
            health: None,
            admin: None,
        }
    }

    #[test]
    fn defaults_say_what_is_off_and_why() {
        let c = config(&[]);
        let s = RuntimeSettings::from_config(&c);
        let text = banner(&c, &s, at(8000)).lines().join("\n");
        assert!(text.contains("http://127.0.0.1:8000/ "), "{text}");
        assert!(text.contains("http://127.0.0.1:8000/console/"), "{text}");
        assert!(
            text.contains("X-API-Key: $(cat /var/lib/selfie-kiosk/admin_api_key)"),
            "{text}"
        );
        assert!(
            text.contains("Sync:      off — REMOTE_DATABASE_URL"),
            "{text}"
        );
        assert!(text.contains("SMS:       off — OVH_APP_KEY"), "{text}");
        assert!(text.contains("HEALTH_LISTEN unset"), "{text}");
        assert!(text.contains("ADMIN_LISTEN unset"), "{text}");
        assert!(!text.contains('\x1b'), "{text}");
    }

    #[test]
    fn configured_parts_are_on_and_secrets_stay_out() {
        let c = config(&[
            ("ADMIN_API_KEY", "a-very-secret-admin-key"),
            (
                "REMOTE_DATABASE_URL",
                "postgresql://kiosk:pa55word@db.example.com/fleet",
            ),
            (
                "REMOTE_STORAGE_URL",
                "https://dav:davpass@vps.example.com/uploads/",
            ),
            ("PUBLIC_BASE_URL", "https://vps.example.com/uploads/"),
            ("OVH_APP_KEY", "appkey0123456789"),
            ("OVH_APP_SECRET", "appsecret0123456789"),
            ("OVH_CONSUMER_KEY", "consumer0123456789"),
            ("SMS_SERVICE_NAME", "sms-ab12345-1"),
            ("SMS_SENDER", "SelfieBox"),
        ]);
        let s = RuntimeSettings::from_config(&c);
        let mut l = at(8000);
        l.api = SocketAddr::from(([0, 0, 0, 0], 8000));
        l.health = Some(SocketAddr::from(([0, 0, 0, 0], 8001)));
        let text = banner(&c, &s, l).lines().join("\n");
        assert!(text.contains("$ADMIN_API_KEY"), "{text}");
        assert!(text.contains("Sync:      on — remote database db.example.com/fleet, remote files https://vps.example.com/uploads/"), "{text}");
        assert!(
            text.contains("SMS:       on — OVH sms-ab12345-1 as SelfieBox"),
            "{text}"
        );
        assert!(
            text.contains("on — http://127.0.0.1:8001/health (HEALTH_LISTEN)"),
            "{text}"
        );
        for secret in [
            "a-very-secret",
            "pa55word",
            "davpass",
            "appsecret",
            "consumer0",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let mut off = s.clone();
        off.sms_enabled = false;
        off.sync_enabled = false;
        let text = banner(&c, &off, l).lines().join("\n");
        assert!(
            text.contains("SMS:       off — sms_enabled is false"),
            "{text}"
        );
        assert!(
            text.contains("Sync:      off — sync_enabled is false"),
            "{text}"
        );
    }
}
