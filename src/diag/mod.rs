//! `selfie-kiosk diag --out DIR`: the technicians' bundle (e.g. onto a USB stick).
//!
//! Writes `DIR/selfie-kiosk-diag-<kiosk_id>-<YYYYmmddTHHMMSSZ>.tar.gz` and a human-readable
//! `DIR/summary.txt`. The tarball holds `health.json`, `config.json` (effective
//! configuration, every secret removed), `outbox.json`, `catalog.json` (counts and the
//! last captures' ids and dates, never a phone number), `disk.txt`, `versions.txt`,
//! `logs.txt` and a copy of `summary.txt`.
//!
//! With the daemon running, the data comes from `GET /admin/diag` on `KIOSK_LISTEN` (the
//! daemon holds the sled outbox lock and has the recent-log buffer). Without it, what can
//! be read safely offline: the catalog opened read-only, disk figures, and the outbox
//! through a *copy* of its directory (sled would otherwise write to it, possibly as another
//! user); a locked outbox is reported, not fatal.
//!
//! Secrets: every text that goes into the bundle is scrubbed of the configured secret
//! values (admin key, secret key, OVH credentials, database and storage passwords and
//! URLs), log lines holding one are dropped, and phone-number-looking tokens are masked.
//!
//! Seams: `scrub` (secrets and phone numbers out), `collect` (the daemon's snapshot and
//! the HTTP client that fetches it), `offline` (reading the stores without the daemon),
//! `render` (the texts) and `bundle` (the archive and its durable write); this file runs
//! them in order. `config.json` is [`crate::config::view`], the view `check-config` and
//! `GET /admin/config` show.

mod bundle;
mod collect;
mod offline;
mod render;
mod scrub;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::Value;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Keys};
use crate::net;

pub use collect::{catalog_summary, daemon_snapshot, outbox_summary};
pub use scrub::{mask_phones, Secrets};

/// Captures listed by id in `catalog.json`.
const LAST_CAPTURES: usize = 20;
/// Outbox jobs listed one by one.
const JOBS_LISTED: usize = 200;
/// Log lines taken from journald.
const JOURNAL_LINES: &str = "2000";

/// `config.json`: the configuration view (secrets only as "set"/"unset"), with the live
/// run-time `settings` when known; `keys` says whether a daemon runs with them.
fn config_json(
    config: &Config,
    settings: Option<&crate::settings::RuntimeSettings>,
    keys: Keys,
) -> Value {
    serde_json::to_value(crate::config::view(config, settings, keys))
        .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}))
}

/// Where the data came from.
#[derive(Debug, Clone)]
enum Source {
    /// Everything from `GET /admin/diag`.
    Daemon {
        url: String,
    },
    /// The daemon answers `/health` but `/admin/diag` failed (e.g. no admin key here):
    /// its health report, the rest read offline.
    HealthOnly {
        url: String,
        why: String,
    },
    Offline {
        why: String,
    },
}

struct Collected {
    source: Source,
    health: Value,
    outbox: Value,
    catalog: Value,
    config: Value,
    daemon_logs: Option<Vec<String>>,
    notes: Vec<String>,
}

/// The `diag` command. Exit 0 when the bundle is written and the kiosk is not down, 2
/// ([`crate::cli::UNHEALTHY`]) when it is written and the kiosk is DOWN (the daemon not
/// answering, or its catalog or disk failing), 1 when it could not be written.
pub fn cli(config: &Config, out: &Path) -> ExitCode {
    let ran = match net::block_on(run(config, out, Arc::new(SystemClock))) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("selfie-kiosk diag: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match ran {
        Ok((bundle, summary, status)) => {
            println!("diagnostics bundle: {}", bundle.display());
            println!("summary:            {}", summary.display());
            println!("kiosk status:       {status}");
            if status == "DOWN" {
                eprintln!(
                    "selfie-kiosk diag: the kiosk is DOWN (see the summary); exit code {}",
                    crate::cli::UNHEALTHY
                );
                return crate::cli::exit(crate::cli::UNHEALTHY);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("selfie-kiosk diag: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Collects, writes the bundle and the summary; returns their paths and the kiosk status.
async fn run(
    config: &Config,
    out: &Path,
    clock: Arc<dyn Clock>,
) -> Result<(PathBuf, PathBuf, String), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let secrets = Secrets::from_config(config);
    let collected = match collect::from_daemon(config).await {
        Ok(v) => {
            let mut notes = Vec::new();
            if v["outbox"]["error"].is_string() {
                notes.push(format!("outbox: {}", v["outbox"]["error"]));
            }
            Collected {
                source: Source::Daemon {
                    url: config.listen.to_string(),
                },
                health: v["health"].clone(),
                outbox: v["outbox"].clone(),
                catalog: v["catalog"].clone(),
                config: v["config"].clone(),
                daemon_logs: v["logs"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|l| l.as_str().map(str::to_string))
                        .collect()
                }),
                notes,
            }
        }
        Err(why) => {
            let answering = collect::public_health(config).await.ok();
            let cfg = config.clone();
            let offline_why = why.clone();
            let now = clock.now_ms();
            let mut c =
                tokio::task::spawn_blocking(move || offline::offline(&cfg, offline_why, now))
                    .await
                    .map_err(|e| e.to_string())?;
            if let Some(h) = answering {
                c.notes.retain(|n| !n.starts_with("daemon:"));
                c.notes.push(format!(
                    "health.json is the daemon's public /health; GET /admin/diag: {why}"
                ));
                c.health = h;
                c.source = Source::HealthOnly {
                    url: config.listen.to_string(),
                    why,
                };
            }
            c
        }
    };

    let now_ms = clock.now_ms();
    let stamp = crate::clock::format_basic_utc(now_ms)
        .ok_or_else(|| format!("the clock ({now_ms} ms) cannot name a bundle"))?;
    let when = crate::catalog::format_ms(now_ms);
    let base = format!("selfie-kiosk-diag-{}-{stamp}", config.kiosk_id);
    let bundle_name = format!("{base}.tar.gz");

    let journal_clock = clock.clone();
    let journal =
        tokio::task::spawn_blocking(move || offline::journal_lines(journal_clock.as_ref()))
            .await
            .ok()
            .flatten();
    let logs = match (journal, &collected.daemon_logs) {
        (Some(lines), _) => format!(
            "# journald: journalctl -u selfie-kiosk -n {JOURNAL_LINES}\n{}\n",
            secrets.scrub_lines(&lines).join("\n")
        ),
        (None, Some(lines)) => format!(
            "# no journal available: the daemon's recent-log buffer (last {} lines)\n{}\n",
            lines.len(),
            secrets.scrub_lines(lines).join("\n")
        ),
        (None, None) => "# no logs: no journal available and the daemon is not answering (its in-memory log buffer went with it)\n".to_string(),
    };

    let summary = secrets.scrub(&render::summary_txt(
        &collected,
        &config.kiosk_id,
        &when,
        &bundle_name,
    ));
    let daemon_info = match &collected.source {
        Source::Daemon { .. } | Source::HealthOnly { .. } => collected.health.clone(),
        Source::Offline { .. } => Value::Null,
    };
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("summary.txt", summary.clone().into_bytes()),
        (
            "health.json",
            bundle::pretty(&secrets.scrub_json(&collected.health)),
        ),
        (
            "config.json",
            bundle::pretty(&secrets.scrub_json(&collected.config)),
        ),
        (
            "outbox.json",
            bundle::pretty(&secrets.scrub_json(&collected.outbox)),
        ),
        (
            "catalog.json",
            bundle::pretty(&secrets.scrub_json(&collected.catalog)),
        ),
        (
            "disk.txt",
            secrets
                .scrub(&render::disk_txt(config, &collected.health))
                .into_bytes(),
        ),
        (
            "versions.txt",
            secrets
                .scrub(&render::versions_txt(&daemon_info))
                .into_bytes(),
        ),
        ("logs.txt", logs.into_bytes()),
    ];
    let mtime = now_ms.div_euclid(1000).max(0) as u64;
    let data =
        bundle::tar_gz(&files, &base, mtime).map_err(|e| format!("building the archive: {e}"))?;
    let bundle = out.join(&bundle_name);
    bundle::write_durable(&bundle, &data)
        .map_err(|e| format!("writing {}: {e}", bundle.display()))?;
    let summary_path = out.join("summary.txt");
    bundle::write_durable(&summary_path, summary.as_bytes())
        .map_err(|e| format!("writing {}: {e}", summary_path.display()))?;
    let status = render::status_line(&collected.health);
    Ok((bundle, summary_path, status))
}
