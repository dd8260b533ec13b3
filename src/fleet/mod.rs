//! `selfie-kiosk fleet`: every kiosk's last heartbeat, from the shared remote database;
//! `fleet serve` ([`serve`]) runs the fleet page on the VPS, reading through [`store`].
//!
//! Reads `kiosk_heartbeats` (see [`crate::heartbeat`]) with a plain connection: no
//! migrations run, so a read-only database role is enough. Ages are computed by the
//! server (`now() - seen_at`, both on its clock), so a kiosk or a laptop with a wrong clock
//! does not make kiosks look fresh or stale.

use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::net;

pub mod serve;
pub mod store;

/// Default `--stale-after`: three missed beats at the default interval.
pub const DEFAULT_STALE_AFTER_S: u64 = 180;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("REMOTE_DATABASE_URL is not set: `fleet` reads the heartbeats from the shared remote database (set it in the environment or the env file)")]
    NotConfigured,
    #[error("REMOTE_DATABASE_URL is not a valid postgresql:// URL")]
    BadUrl,
    #[error("cannot reach the remote database: {0}")]
    Unavailable(String),
    #[error("FLEET_API_KEY is not set: `fleet serve` shows the fleet only to holders of that key (set it in the environment or the env file, at least 16 characters)")]
    NoKey,
    #[error("FLEET_API_KEY is too short (at least 16 characters)")]
    ShortKey,
    #[error("no kiosk with this id has sent a heartbeat")]
    UnknownKiosk,
}

/// One kiosk as `fleet` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct KioskRow {
    pub kiosk_id: String,
    pub seen_at: String,
    pub age_s: f64,
    pub stale: bool,
    /// `stale`, or the status the kiosk last reported.
    pub status: String,
    pub reported_status: String,
    pub version: String,
    pub backlog: Option<u64>,
    pub oldest_pending_age_s: Option<u64>,
    pub dead_jobs: Option<u64>,
    pub disk_free_bytes: Option<u64>,
    pub disk_free_percent: Option<f64>,
    pub sms_configured: Option<bool>,
    pub sms_credits: Option<f64>,
    pub remote_storage_reachable: Option<bool>,
    /// The whole last report.
    pub report: Value,
}

impl KioskRow {
    fn from_report(
        kiosk_id: String,
        seen_at: String,
        age_s: f64,
        status: String,
        version: String,
        report: Value,
        stale_after_s: u64,
    ) -> KioskRow {
        let c = &report["checks"];
        let stale = age_s > stale_after_s as f64;
        KioskRow {
            stale,
            status: if stale {
                "stale".to_string()
            } else {
                status.clone()
            },
            reported_status: status,
            kiosk_id,
            seen_at,
            age_s: (age_s * 10.0).round() / 10.0,
            version,
            backlog: c["outbox"]["pending"].as_u64(),
            oldest_pending_age_s: c["outbox"]["oldest_pending_age_s"].as_u64(),
            dead_jobs: c["outbox"]["dead"].as_u64(),
            disk_free_bytes: c["disk"]["free_bytes"].as_u64(),
            disk_free_percent: c["disk"]["free_percent"].as_f64(),
            sms_configured: c["sms"]["configured"].as_bool(),
            sms_credits: c["sms"]["credits_left"].as_f64(),
            remote_storage_reachable: c["remote_storage"]["reachable"].as_bool(),
            report,
        }
    }
}

/// The `fleet` command: prints the table (or `--json`), returns the exit code (the table
/// in [`crate::cli`]). With `check`, a kiosk stale or down makes it
/// [`crate::cli::UNHEALTHY`], for cron and monitoring.
pub fn cli(config: &Config, json: bool, stale_after_s: u64, check: bool) -> ExitCode {
    use crate::cli::{exit, FAILURE, UNAVAILABLE, UNHEALTHY, USAGE};
    let loaded = match net::block_on(load(config, stale_after_s)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("selfie-kiosk fleet: cannot start the runtime: {e}");
            return exit(FAILURE);
        }
    };
    match loaded {
        Ok(rows) => {
            if json {
                let list: Vec<&KioskRow> = rows.iter().collect();
                match serde_json::to_string_pretty(&list) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("selfie-kiosk fleet: {e}");
                        return exit(FAILURE);
                    }
                }
            } else {
                print!("{}", table(&rows, stale_after_s));
            }
            let unhealthy = unhealthy(&rows);
            if check && !unhealthy.is_empty() {
                eprintln!(
                    "selfie-kiosk fleet --check: {} kiosk(s) stale or down: {}",
                    unhealthy.len(),
                    unhealthy.join(", ")
                );
                return exit(UNHEALTHY);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("selfie-kiosk fleet: {e}");
            exit(match e {
                FleetError::Unavailable(_) => UNAVAILABLE,
                _ => USAGE,
            })
        }
    }
}

async fn connect(config: &Config) -> Result<tokio_postgres::Client, FleetError> {
    let url = config
        .remote_database_url
        .as_ref()
        .ok_or(FleetError::NotConfigured)?;
    let pg = net::pg::config(url.expose(), "selfie-kiosk fleet", Duration::from_secs(10))
        .map_err(|_| FleetError::BadUrl)?;
    net::pg::connect(&pg, Duration::from_secs(15))
        .await
        .map_err(|e| FleetError::Unavailable(e.to_string()))
}

/// Every kiosk's last heartbeat, sorted by kiosk id.
pub async fn load(config: &Config, stale_after_s: u64) -> Result<Vec<KioskRow>, FleetError> {
    let client = connect(config).await?;
    // An unnamed statement: safe through PgBouncer's transaction pooling.
    let rows = client
        .query_typed(
            "SELECT kiosk_id,
                    to_char(seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    EXTRACT(EPOCH FROM (now() - seen_at))::float8,
                    status, version, report::text
             FROM kiosk_heartbeats ORDER BY kiosk_id",
            &[],
        )
        .await;
    let rows = match rows {
        Ok(r) => r,
        // No kiosk has migrated the database yet: an empty fleet.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
            return Ok(Vec::new())
        }
        Err(e) => return Err(FleetError::Unavailable(net::pg::describe(&e))),
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let report: String = r.get(5);
        out.push(KioskRow::from_report(
            r.get(0),
            r.get(1),
            r.get::<_, f64>(2).max(0.0),
            r.get(3),
            r.get(4),
            serde_json::from_str(&report).unwrap_or(Value::Null),
            stale_after_s,
        ));
    }
    Ok(out)
}

/// The kiosks `fleet --check` fails on, as `id (stale)` / `id (down)`: not seen for too
/// long, or reporting `down` (captures stopped). `degraded` is not among them: a kiosk
/// works offline.
pub fn unhealthy(rows: &[KioskRow]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| {
            if r.stale {
                Some(format!("{} (stale)", r.kiosk_id))
            } else if r.reported_status == "down" {
                Some(format!("{} (down)", r.kiosk_id))
            } else {
                None
            }
        })
        .collect()
}

/// "42s", "5m", "3h", "2d".
pub fn human_age(s: f64) -> String {
    let s = s.max(0.0) as u64;
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// "12.3 GiB".
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

fn table(rows: &[KioskRow], stale_after_s: u64) -> String {
    if rows.is_empty() {
        return "no kiosk has sent a heartbeat yet\n".to_string();
    }
    let header = [
        "KIOSK",
        "LAST SEEN",
        "STATUS",
        "BACKLOG",
        "DISK FREE",
        "SMS CREDITS",
        "VERSION",
    ];
    let mut lines: Vec<[String; 7]> = vec![header.map(String::from)];
    for r in rows {
        let status = if r.stale {
            format!("STALE (last: {})", r.reported_status)
        } else {
            r.reported_status.clone()
        };
        let backlog = match (r.backlog, r.oldest_pending_age_s) {
            (Some(n), Some(age)) if n > 0 => format!("{n} (oldest {})", human_age(age as f64)),
            (Some(n), _) => n.to_string(),
            _ => "-".into(),
        };
        let disk = match (r.disk_free_bytes, r.disk_free_percent) {
            (Some(b), Some(p)) => format!("{} ({p:.0}%)", human_bytes(b)),
            (Some(b), None) => human_bytes(b),
            _ => "-".into(),
        };
        let sms = match (r.sms_configured, r.sms_credits) {
            (_, Some(c)) => format!("{c}"),
            (Some(false), None) => "not configured".into(),
            _ => "-".into(),
        };
        lines.push([
            r.kiosk_id.clone(),
            format!("{} ago", human_age(r.age_s)),
            status,
            backlog,
            disk,
            sms,
            r.version.clone(),
        ]);
    }
    let mut widths = [0usize; 7];
    for l in &lines {
        for (w, c) in widths.iter_mut().zip(l.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(widths.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let stale = rows.iter().filter(|r| r.stale).count();
    out.push_str(&format!(
        "{} kiosk(s), {stale} stale (not seen for more than {stale_after_s} s)\n",
        rows.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_and_table() {
        let report = json!({"checks": {"outbox": {"pending": 4, "oldest_pending_age_s": 300},
            "disk": {"free_bytes": 5u64 << 30, "free_percent": 41.2},
            "sms": {"configured": false}}});
        let fresh = KioskRow::from_report(
            "a".into(),
            "t".into(),
            3.0,
            "ok".into(),
            "0.1.0".into(),
            report.clone(),
            180,
        );
        let old = KioskRow::from_report(
            "b".into(),
            "t".into(),
            500.0,
            "ok".into(),
            "0.1.0".into(),
            report,
            180,
        );
        assert!(!fresh.stale && old.stale);
        assert_eq!(unhealthy(&[fresh.clone(), old.clone()]), ["b (stale)"]);
        assert_eq!(old.status, "stale");
        assert_eq!(fresh.backlog, Some(4));
        let t = table(&[fresh, old], 180);
        assert!(t.contains("4 (oldest 5m)"), "{t}");
        assert!(t.contains("5.0 GiB (41%)"), "{t}");
        assert!(t.contains("STALE (last: ok)"), "{t}");
        assert!(t.contains("not configured"), "{t}");
    }

    #[test]
    fn humans() {
        assert_eq!(human_age(42.0), "42s");
        assert_eq!(human_age(600.0), "10m");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
