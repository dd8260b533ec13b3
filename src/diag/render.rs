//! The texts a technician reads first: `summary.txt` (status, figures, what to do),
//! `versions.txt` and `disk.txt`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Collected, Source};
use crate::config::Config;
use crate::fleet::{human_age, human_bytes};
use crate::health;

fn read_text(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

pub(super) fn versions_txt(daemon: &Value) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "selfie-kiosk (this binary): {}\n",
        env!("CARGO_PKG_VERSION")
    ));
    if let Some(v) = daemon["version"].as_str() {
        s.push_str(&format!("selfie-kiosk (running daemon): {v}\n"));
    }
    s.push_str(&format!(
        "architecture: {} ({})\n",
        std::env::consts::ARCH,
        std::env::consts::OS
    ));
    s.push_str(&format!(
        "kernel: {}\n",
        read_text("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into())
    ));
    if let Some(v) = read_text("/proc/version") {
        s.push_str(&format!("kernel build: {v}\n"));
    }
    if let Some(up) = read_text("/proc/uptime") {
        if let Some(secs) = up.split_whitespace().next() {
            s.push_str(&format!("system uptime: {secs} s\n"));
        }
    }
    s.push_str("\n/etc/os-release:\n");
    s.push_str(
        &read_text("/etc/os-release")
            .or_else(|| read_text("/usr/lib/os-release"))
            .unwrap_or_else(|| "(not found)".into()),
    );
    s.push('\n');
    s
}

fn dir_usage(dir: &Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => {
                    files += 1;
                    bytes += m.len();
                }
                Err(_) => {}
            }
        }
    }
    (files, bytes)
}

pub(super) fn disk_txt(config: &Config, health: &Value) -> String {
    let h = human_bytes;
    let mut s = String::new();
    for (name, dir) in [
        ("data directory", &config.data_dir),
        ("uploads directory", &config.uploads_dir),
    ] {
        s.push_str(&format!("{name}: {}\n", dir.display()));
        match crate::storage::space(dir) {
            Ok(Some(space)) => s.push_str(&format!(
                "  file system: {} free of {} ({:.1} % free)\n",
                h(space.free),
                h(space.total),
                space.free_percent()
            )),
            Ok(None) => s.push_str("  file system: reports no size (free space unknown)\n"),
            Err(e) => s.push_str(&format!("  file system: {e}\n")),
        }
    }
    let d = &health["checks"]["disk"];
    if let Some(r) = d["reserve_bytes"].as_u64() {
        s.push_str(&format!(
            "reserve (KIOSK_DISK_RESERVE): {} — check status: {}\n",
            h(r),
            d["status"].as_str().unwrap_or("?")
        ));
    }
    s.push('\n');
    let cat = health::catalog_path(&config.data_dir);
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", cat.display()));
        if let Ok(m) = std::fs::metadata(&p) {
            s.push_str(&format!("{}: {} bytes\n", p.display(), m.len()));
        }
    }
    let (files, bytes) = dir_usage(&config.data_dir.join("outbox"));
    s.push_str(&format!("outbox directory: {files} files, {}\n", h(bytes)));
    let (files, bytes) = dir_usage(&config.uploads_dir);
    s.push_str(&format!("uploads: {files} files, {}\n", h(bytes)));
    s
}

/// A figure for humans: `?` when unknown, strings without quotes.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "?".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn status_line(v: &Value) -> String {
    v["status"].as_str().unwrap_or("unknown").to_uppercase()
}

pub(super) fn summary_txt(c: &Collected, kiosk: &str, when: &str, bundle_name: &str) -> String {
    let h = &c.health;
    let checks = &h["checks"];
    let mut s = String::new();
    s.push_str(&format!(
        "selfie-kiosk diagnostics — kiosk {kiosk} — {when}\n"
    ));
    s.push_str(&format!("bundle: {bundle_name}\n\n"));
    s.push_str(&format!("STATUS: {}\n", status_line(h)));
    match &c.source {
        Source::Daemon { url } => s.push_str(&format!(
            "daemon: running (answered on {url}), version {}, up {} s\n",
            h["version"].as_str().unwrap_or("?"),
            h["uptime_s"].as_u64().unwrap_or(0)
        )),
        Source::HealthOnly { url, why } => s.push_str(&format!(
            "daemon: running (answered /health on {url}), but its full data was not available: {why}\n"
        )),
        Source::Offline { why } => s.push_str(&format!("daemon: NOT ANSWERING — {why}\n")),
    }
    s.push_str(&format!(
        "this tool: selfie-kiosk {}\n\n",
        env!("CARGO_PKG_VERSION")
    ));

    let d = &checks["disk"];
    if let Some(free) = d["free_bytes"].as_u64() {
        s.push_str(&format!(
            "disk: {} — {} free ({} %), reserve {}\n",
            d["status"].as_str().unwrap_or("?"),
            human_bytes(free),
            show(&d["free_percent"]),
            human_bytes(d["reserve_bytes"].as_u64().unwrap_or(0))
        ));
    } else {
        s.push_str(&format!(
            "disk: {} — {}\n",
            show(&d["status"]),
            show(&d["error"])
        ));
    }
    let db = &checks["local_db"];
    // A kiosk with no remote has no backlog: it says so instead of "N not yet synced".
    let standalone = c.catalog["sync"].as_str();
    s.push_str(&format!(
        "catalog: {} — {} captures, {}{}\n",
        db["status"].as_str().unwrap_or("?"),
        show(&c.catalog["captures"]),
        match standalone {
            Some(label) => label.to_string(),
            None => format!("{} not yet synced", show(&c.catalog["unsynced"])),
        },
        db["error"]
            .as_str()
            .map(|e| format!(" — error: {e}"))
            .unwrap_or_default()
    ));
    if let Some(workers) = checks["workers"]["workers"].as_object() {
        let failed: Vec<&str> = workers
            .iter()
            .filter(|(_, w)| w["state"] == "failed")
            .map(|(name, _)| name.as_str())
            .collect();
        s.push_str(&format!(
            "workers: {} ({}){}\n",
            show(&checks["workers"]["status"]),
            workers
                .iter()
                .map(|(name, w)| format!("{name} {}", w["state"].as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", "),
            if failed.is_empty() {
                String::new()
            } else {
                format!(" — FAILING: {}", failed.join(", "))
            }
        ));
    }
    let ob = &checks["outbox"];
    s.push_str(&format!(
        "backlog (outbox): {} pending, {} dead, oldest pending {}{}\n",
        show(&ob["pending"]),
        show(&ob["dead"]),
        ob["oldest_pending_age_s"]
            .as_u64()
            .map(|a| format!("{} ago", human_age(a as f64)))
            .unwrap_or_else(|| "-".into()),
        ob["error"]
            .as_str()
            .map(|e| format!(" — {e}"))
            .unwrap_or_default()
    ));
    if standalone.is_none() {
        s.push_str(&format!(
            "last capture synced: {}\n",
            c.catalog["last_synced"].as_str().unwrap_or("never")
        ));
    }
    for (name, key) in [
        ("remote database", "remote_db"),
        ("remote storage", "remote_storage"),
    ] {
        let r = &checks[key];
        if r.is_null() {
            continue;
        }
        if r["configured"] == false {
            s.push_str(&format!("{name}: not configured\n"));
            continue;
        }
        s.push_str(&format!(
            "{name}: {} — reachable: {}, last success: {}, last error: {}\n",
            r["status"].as_str().unwrap_or("?"),
            show(&r["reachable"]),
            r["last_success"].as_str().unwrap_or("never"),
            match (r["last_error"].as_str(), r["last_error_at"].as_str()) {
                (Some(e), Some(at)) => format!("{e} (at {at})"),
                (Some(e), None) => e.to_string(),
                _ => "none".into(),
            }
        ));
    }
    let sms = &checks["sms"];
    if !sms.is_null() {
        if sms["configured"] == false {
            s.push_str("sms: not configured\n");
        } else {
            s.push_str(&format!(
                "sms: {} — credits left: {}\n",
                sms["status"].as_str().unwrap_or("?"),
                show(&sms["credits_left"])
            ));
        }
    }
    let clock = &checks["clock"];
    s.push_str(&format!(
        "clock: {} ({})\n",
        clock["state"].as_str().unwrap_or("?"),
        clock["system_time"].as_str().unwrap_or("?")
    ));
    if !c.notes.is_empty() {
        s.push_str("\nnotes:\n");
        for n in &c.notes {
            s.push_str(&format!("  - {n}\n"));
        }
    }
    s.push_str("\nWHAT TO DO\n");
    let todo = advice(c);
    if todo.is_empty() {
        s.push_str("  - nothing: the kiosk is healthy.\n");
    }
    for t in todo {
        s.push_str(&format!("  - {t}\n"));
    }
    s
}

fn advice(c: &Collected) -> Vec<String> {
    let checks = &c.health["checks"];
    let mut out = Vec::new();
    if let Source::HealthOnly { .. } = c.source {
        out.push("For the complete bundle run diag with the daemon's configuration: the same env file, and ADMIN_API_KEY or read access to $KIOSK_DATA_DIR/admin_api_key (run it as the selfie-kiosk user).".to_string());
    }
    if let Source::Offline { .. } = c.source {
        out.push("The daemon is not answering: `systemctl status selfie-kiosk` and `journalctl -u selfie-kiosk -n 100`; restart it with `systemctl restart selfie-kiosk`. A configuration error shows as exit code 64: check it with `selfie-kiosk check-config`.".to_string());
    }
    match checks["disk"]["status"].as_str() {
        Some("down") => out.push("The disk is below the reserve: captures are refused. Free space on the data partition (old files, logs), or lower RETENTION_DAYS so the daily cleanup removes more.".into()),
        Some("degraded") => out.push("Free disk space is low (under twice the reserve): free space soon.".into()),
        _ => {}
    }
    if checks["local_db"]["status"] == "down" {
        out.push("The catalog cannot be read: the storage may be failing. Stop the daemon, copy the data directory elsewhere, and replace the SD card/eMMC if errors persist; send this bundle to support.".into());
    }
    for (name, key, var) in [
        ("remote database", "remote_db", "REMOTE_DATABASE_URL"),
        ("remote storage", "remote_storage", "REMOTE_STORAGE_URL"),
    ] {
        if checks[key]["status"] == "degraded" {
            out.push(format!("The {name} is failing ({}): check the network (cable, Wi-Fi, 4G), that the VPS is up, and {var}. Captures are kept and will sync when it answers.",
                checks[key]["last_error"].as_str().unwrap_or("no detail")));
        }
    }
    if checks["outbox"]["dead"].as_u64().unwrap_or(0) > 0 {
        out.push(
            "Some jobs gave up (dead letters, see outbox.json): read their last_error.".into(),
        );
    }
    if checks["outbox"]["oldest_pending_age_s"]
        .as_u64()
        .unwrap_or(0)
        > 3600
    {
        out.push("Captures have waited more than an hour to sync: see the remote checks above; `POST /admin/sync` retries at once.".into());
    }
    if checks["sms"]["status"] == "degraded" {
        out.push("SMS credits are low or exhausted: buy credits in the OVH manager.".into());
    }
    if checks["clock"]["state"] == "unsynchronized" {
        out.push("The system clock is wrong (before this software's build date): check NTP (`timedatectl`) and the network; on boards without an RTC the time comes only from the network.".into());
    }
    out
}
