//! What can be read with the daemon stopped, without disturbing it: the catalog opened
//! read-only, the outbox through a copy of its directory (a locked one is reported), disk
//! figures, and the journal.

use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use percent_encoding::{percent_encode, AsciiSet, CONTROLS};
use serde_json::{json, Map, Value};

use super::collect::{catalog_summary, outbox_summary};
use super::{config_json, Collected, Source, JOURNAL_LINES};
use crate::clock::Clock;
use crate::config::Config;
use crate::health;

/// What an SQLite `file:` URI must encode in a path: the characters that end it or start
/// an escape, controls, and every non-ASCII byte (the crate always encodes those).
const SQLITE_URI_PATH: &AsciiSet = &CONTROLS.add(b'?').add(b'#').add(b'%');

/// Opens the catalog read-only without creating anything next to it: `immutable` when
/// there is no WAL to read (a clean shutdown), plain read-only otherwise.
fn open_catalog_readonly(path: &Path) -> Result<rusqlite::Connection, String> {
    use rusqlite::OpenFlags;
    if !path.exists() {
        return Err(format!("{} does not exist", path.display()));
    }
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let wal_has_data = std::fs::metadata(&wal)
        .map(|m| m.len() > 0)
        .unwrap_or(false);
    let abs = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
    let mut uri = format!(
        "file:{}",
        percent_encode(abs.as_os_str().as_bytes(), SQLITE_URI_PATH)
    );
    uri.push_str(if wal_has_data {
        "?mode=ro"
    } else {
        "?mode=ro&immutable=1"
    });
    let conn = rusqlite::Connection::open_with_flags(
        &uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(conn)
}

/// Whether another process holds sled's lock on the outbox (the daemon, running or hung).
fn outbox_locked(dir: &Path) -> Result<bool, String> {
    let db = dir.join("db");
    let f = std::fs::File::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockShared) {
        Ok(()) => Ok(false),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(true),
        Err(e) => Err(format!("{}: {e}", db.display())),
    }
    // The lock (if taken) goes with `f`.
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target)?;
        }
    }
    Ok(())
}

/// Outbox figures read offline from a copy of its directory.
fn outbox_offline(data_dir: &Path, now_ms: i64) -> Result<Value, String> {
    let dir = data_dir.join("outbox");
    if !dir.exists() {
        return Ok(json!({"status": "ok", "summary": {"pending": 0}, "message": "no outbox yet"}));
    }
    if outbox_locked(&dir)? {
        return Err("the outbox is locked by a running process (the daemon): its jobs can only be read through the daemon's GET /admin/diag".into());
    }
    let tmp = std::env::temp_dir().join(format!(
        "selfie-kiosk-diag-outbox-{}-{}",
        std::process::id(),
        now_ms
    ));
    let res = (|| {
        copy_dir(&dir, &tmp).map_err(|e| format!("copying the outbox: {e}"))?;
        let ob = crate::outbox::Outbox::open(&tmp).map_err(|e| format!("outbox: {e}"))?;
        let stats = ob.stats().map_err(|e| format!("outbox: {e}"))?;
        let jobs = ob.list().map_err(|e| format!("outbox: {e}"))?;
        Ok(outbox_summary(&stats, &jobs, now_ms))
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    res
}

/// Everything read offline; `now_ms` dates the figures (and ages the outbox's jobs).
pub(super) fn offline(config: &Config, why: String, now_ms: i64) -> Collected {
    let now = now_ms;
    let mut notes = vec![format!("daemon: {why}")];
    let cat_path = health::catalog_path(&config.data_dir);
    let (catalog, local_db, settings) = match open_catalog_readonly(&cat_path) {
        Ok(conn) => {
            let summary = catalog_summary(&conn, config.sync_scope());
            let stored = crate::catalog::all_settings(&conn).unwrap_or_default();
            let settings = crate::settings::overlay(
                crate::settings::RuntimeSettings::from_config(config),
                &stored,
            );
            let mut check = json!({"status": "ok"});
            if let Value::Object(o) = &mut check {
                for k in ["captures", "unsynced", "sync"] {
                    if let Some(v) = summary.get(k) {
                        o.insert(k.into(), v.clone());
                    }
                }
            }
            (summary, check, Some(settings))
        }
        Err(e) => {
            notes.push(format!("catalog: {e}"));
            (
                json!({"error": e}),
                json!({"status": "down", "error": e}),
                None,
            )
        }
    };
    let reserve = settings
        .as_ref()
        .map(|s| s.kiosk_disk_reserve)
        .unwrap_or(config.disk_reserve_bytes);
    let disk = health::disk_check(&config.uploads_dir, reserve);
    let outbox = match outbox_offline(&config.data_dir, now) {
        Ok(v) => v,
        Err(e) => {
            notes.push(format!("outbox: {e}"));
            json!({"status": "unknown", "error": e})
        }
    };
    let clock = health::clock(now);
    let mut checks = Map::new();
    checks.insert("local_db".into(), local_db);
    checks.insert(
        "disk".into(),
        serde_json::to_value(&disk).unwrap_or(Value::Null),
    );
    let mut ob_check = outbox["summary"].clone();
    if let Value::Object(o) = &mut ob_check {
        o.insert("status".into(), outbox["status"].clone());
    } else {
        ob_check = json!({"status": "unknown", "error": outbox["error"]});
    }
    checks.insert("outbox".into(), ob_check);
    checks.insert(
        "clock".into(),
        serde_json::to_value(&clock).unwrap_or(Value::Null),
    );
    let health = json!({
        // Nothing takes captures while the daemon is not running.
        "status": "down",
        "daemon_running": false,
        "daemon": why,
        "version": env!("CARGO_PKG_VERSION"),
        "kiosk_id": config.kiosk_id,
        "generated_at": crate::catalog::format_ms(now),
        "checks": checks,
    });
    Collected {
        source: Source::Offline { why },
        health,
        outbox,
        catalog,
        config: config_json(config, settings.as_ref(), crate::config::Keys::AsConfigured),
        daemon_logs: None,
        notes,
    }
}

/// journald's last lines for the unit, when there is a journal we may read.
pub(super) fn journal_lines(clock: &dyn Clock) -> Option<Vec<String>> {
    let mut child = std::process::Command::new("journalctl")
        .args([
            "-u",
            "selfie-kiosk",
            "-n",
            JOURNAL_LINES,
            "--no-pager",
            "-q",
            "-o",
            "short-iso",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let deadline = clock.monotonic_ms() + 20_000;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if clock.monotonic_ms() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    let text = reader.join().ok()?;
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("-- "))
        .map(str::to_string)
        .collect();
    (!lines.is_empty()).then_some(lines)
}
