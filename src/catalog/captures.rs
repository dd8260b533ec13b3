//! Capture rows.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::CatalogError;

/// What "synced" means on this kiosk: the one definition the status route, the admin
/// list, stats and export, `/health`, `diag` and cleanup all read.
///
/// With a remote, a capture is synced once every configured remote has it (`synced_ms`
/// set), and the others are the sync backlog. With none there is nothing to sync to:
/// every capture counts as synced and there is no backlog ("no remote configured"), while
/// its row keeps `synced_ms` unset so that a remote configured later still gets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncScope {
    /// No remote database nor remote storage configured.
    Standalone,
    /// At least one remote configured.
    Remotes,
}

impl SyncScope {
    /// What the answers say instead of a backlog on a standalone kiosk.
    pub const STANDALONE_LABEL: &'static str = "no remote configured";

    pub fn from_remotes(any_configured: bool) -> SyncScope {
        if any_configured {
            SyncScope::Remotes
        } else {
            SyncScope::Standalone
        }
    }

    pub fn has_remotes(self) -> bool {
        self == SyncScope::Remotes
    }

    /// Whether a capture with this sync time counts as synced.
    pub fn is_synced(self, synced_ms: Option<i64>) -> bool {
        synced_ms.is_some() || self == SyncScope::Standalone
    }

    /// Of `unmarked` captures with no sync time, how many wait for a sync.
    pub fn backlog(self, unmarked: i64) -> i64 {
        match self {
            SyncScope::Standalone => 0,
            SyncScope::Remotes => unmarked,
        }
    }

    /// Of `total` captures of which `marked` have a sync time, how many count as synced.
    pub fn synced_count(self, total: i64, marked: i64) -> i64 {
        total - self.backlog(total - marked)
    }

    /// What to show beside the figures: [`Self::STANDALONE_LABEL`] on a standalone kiosk,
    /// nothing when there are remotes (the backlog says it all).
    pub fn label(self) -> Option<&'static str> {
        match self {
            SyncScope::Standalone => Some(Self::STANDALONE_LABEL),
            SyncScope::Remotes => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureRow {
    pub seq: i64,
    pub id: String,
    pub created_ms: i64,
    pub taken_at: Option<String>,
    pub background_id: Option<String>,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
    pub sha256: String,
    pub source_sha256: String,
    pub source_format: String,
    pub file_missing: bool,
    pub remote_file_ms: Option<i64>,
    pub remote_db_ms: Option<i64>,
    pub synced_ms: Option<i64>,
    /// The event it belongs to (issue 20), decided when it was stored.
    pub event_id: Option<String>,
    /// The name of its public files (`{token}.jpg`, `{token}.html`): 128 random bits made
    /// at insert, never a client-chosen id.
    pub public_token: String,
    /// Uploaded as `{id}.jpg` before public tokens existed: that remote file is deleted
    /// with the capture too.
    pub legacy_remote: bool,
}

/// What a new capture brings; `seq` and the sync fields are the catalog's.
#[derive(Debug, Clone)]
pub struct NewCapture {
    pub id: String,
    pub created_ms: i64,
    pub taken_at: Option<String>,
    pub background_id: Option<String>,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
    pub sha256: String,
    pub source_sha256: String,
    pub source_format: String,
}

const COLUMNS: &str = "seq, id, created_ms, taken_at, background_id, bytes, width, height, \
    sha256, source_sha256, source_format, file_missing, remote_file_ms, remote_db_ms, synced_ms, \
    event_id, public_token, legacy_remote";

fn from_row(r: &Row<'_>) -> rusqlite::Result<CaptureRow> {
    Ok(CaptureRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        created_ms: r.get(2)?,
        taken_at: r.get(3)?,
        background_id: r.get(4)?,
        bytes: r.get(5)?,
        width: r.get(6)?,
        height: r.get(7)?,
        sha256: r.get(8)?,
        source_sha256: r.get(9)?,
        source_format: r.get(10)?,
        file_missing: r.get::<_, i64>(11)? != 0,
        remote_file_ms: r.get(12)?,
        remote_db_ms: r.get(13)?,
        synced_ms: r.get(14)?,
        event_id: r.get(15)?,
        public_token: r.get(16)?,
        legacy_remote: r.get::<_, i64>(17)? != 0,
    })
}

/// Inserts a capture row with a fresh public token (made here, so every way a row is
/// written gets one).
pub fn insert_capture(conn: &Connection, c: &NewCapture) -> Result<CaptureRow, CatalogError> {
    let public_token = crate::ids::new_id();
    conn.execute(
        "INSERT INTO captures (id, created_ms, taken_at, background_id, bytes, width, height,
            sha256, source_sha256, source_format, public_token)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            c.id,
            c.created_ms,
            c.taken_at,
            c.background_id,
            c.bytes,
            c.width,
            c.height,
            c.sha256,
            c.source_sha256,
            c.source_format,
            public_token
        ],
    )?;
    Ok(CaptureRow {
        seq: conn.last_insert_rowid(),
        id: c.id.clone(),
        created_ms: c.created_ms,
        taken_at: c.taken_at.clone(),
        background_id: c.background_id.clone(),
        bytes: c.bytes,
        width: c.width,
        height: c.height,
        sha256: c.sha256.clone(),
        source_sha256: c.source_sha256.clone(),
        source_format: c.source_format.clone(),
        file_missing: false,
        remote_file_ms: None,
        remote_db_ms: None,
        synced_ms: None,
        event_id: None,
        public_token,
        legacy_remote: false,
    })
}

pub fn get_capture(conn: &Connection, id: &str) -> Result<Option<CaptureRow>, CatalogError> {
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM captures WHERE id = ?1"))?;
    Ok(st.query_row([id], from_row).optional()?)
}

pub fn get_captures(conn: &Connection, ids: &[String]) -> Result<Vec<CaptureRow>, CatalogError> {
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM captures WHERE id = ?1"))?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(row) = st.query_row([id], from_row).optional()? {
            out.push(row);
        }
    }
    Ok(out)
}

/// Every capture id, in insertion order (start-up reconciliation).
pub fn all_capture_ids(conn: &Connection) -> Result<Vec<(String, bool)>, CatalogError> {
    let mut st = conn.prepare_cached("SELECT id, file_missing FROM captures ORDER BY seq")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? != 0)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub fn set_file_missing(conn: &Connection, id: &str, missing: bool) -> Result<(), CatalogError> {
    conn.execute(
        "UPDATE captures SET file_missing = ?2 WHERE id = ?1",
        params![id, missing as i64],
    )?;
    Ok(())
}

/// Captures not yet synced, oldest first.
pub fn unsynced_captures(conn: &Connection) -> Result<Vec<CaptureRow>, CatalogError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM captures WHERE synced_ms IS NULL ORDER BY seq"
    ))?;
    let rows = st.query_map([], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// (captures, captures with no sync time): see [`SyncScope::backlog`] for what the
/// second means.
pub fn count_captures(conn: &Connection) -> Result<(i64, i64), CatalogError> {
    Ok(conn.query_row(
        "SELECT COUNT(*), COUNT(*) - COUNT(synced_ms) FROM captures",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

pub fn mark_remote_file(conn: &Connection, id: &str, at_ms: i64) -> Result<(), CatalogError> {
    conn.execute(
        "UPDATE captures SET remote_file_ms = ?2 WHERE id = ?1 AND remote_file_ms IS NULL",
        params![id, at_ms],
    )?;
    Ok(())
}

pub fn mark_remote_db(conn: &Connection, ids: &[String], at_ms: i64) -> Result<(), CatalogError> {
    let mut st = conn.prepare_cached(
        "UPDATE captures SET remote_db_ms = ?2 WHERE id = ?1 AND remote_db_ms IS NULL",
    )?;
    for id in ids {
        st.execute(params![id, at_ms])?;
    }
    Ok(())
}

pub fn mark_synced(conn: &Connection, id: &str, at_ms: i64) -> Result<(), CatalogError> {
    conn.execute(
        "UPDATE captures SET synced_ms = ?2 WHERE id = ?1 AND synced_ms IS NULL",
        params![id, at_ms],
    )?;
    Ok(())
}

/// What a capture's remote files are called, for the deletion of its remote copies:
/// (id, public token, whether a legacy `{id}.jpg` exists too). Unknown ids are left out.
pub fn remote_names(
    conn: &Connection,
    ids: &[String],
) -> Result<Vec<(String, String, bool)>, CatalogError> {
    Ok(get_captures(conn, ids)?
        .into_iter()
        .map(|r| (r.id, r.public_token, r.legacy_remote))
        .collect())
}

pub fn delete_capture_row(conn: &Connection, id: &str) -> Result<bool, CatalogError> {
    Ok(conn.execute("DELETE FROM captures WHERE id = ?1", [id])? > 0)
}

/// Marks open SMS requests of a capture as cancelled and forgets their clear numbers.
pub fn cancel_sms_for_capture(
    conn: &Connection,
    capture_id: &str,
    reason: &str,
) -> Result<usize, CatalogError> {
    // A failed request keeps its number for a retry; with its capture gone there is none.
    conn.execute(
        "UPDATE sms SET phone = NULL WHERE capture_id = ?1 AND status = 'failed'",
        params![capture_id],
    )?;
    Ok(conn.execute(
        "UPDATE sms SET status = 'cancelled', phone = NULL, last_error = ?2
         WHERE capture_id = ?1 AND status NOT IN ('sent', 'failed', 'expired', 'cancelled')",
        params![capture_id, reason],
    )?)
}

/// Ties a just-inserted capture to its event: `explicit` (the one the app named) or else
/// the one open at `created_ms` (see [`super::event_open_at`]). Returns the event.
pub fn assign_capture_event(
    conn: &Connection,
    id: &str,
    explicit: Option<String>,
    created_ms: i64,
    suspect: bool,
) -> Result<Option<String>, CatalogError> {
    let event = match explicit {
        Some(e) => Some(e),
        None => super::event_open_at(conn, created_ms, suspect)?,
    };
    if let Some(e) = &event {
        conn.execute(
            "UPDATE captures SET event_id = ?2 WHERE id = ?1",
            params![id, e],
        )?;
    }
    Ok(event)
}

/// Flags a capture as taken while the wall clock was not sane, with what is needed to
/// recompute its time later.
pub fn mark_clock_suspect(
    conn: &Connection,
    id: &str,
    boot_id: &str,
    mono_ms: i64,
) -> Result<(), CatalogError> {
    conn.execute(
        "UPDATE captures SET clock_suspect = 1, boot_id = ?2, mono_ms = ?3 WHERE id = ?1",
        params![id, boot_id, mono_ms],
    )?;
    Ok(())
}

/// A capture with a suspect time: (id, boot id, monotonic ms at capture).
pub type ClockSuspect = (String, Option<String>, Option<i64>);

/// Captures with a suspect time.
pub fn clock_suspects(conn: &Connection) -> Result<Vec<ClockSuspect>, CatalogError> {
    let mut st =
        conn.prepare_cached("SELECT id, boot_id, mono_ms FROM captures WHERE clock_suspect = 1")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Sets a capture's corrected creation time and clears the flag.
pub fn fix_capture_time(conn: &Connection, id: &str, created_ms: i64) -> Result<(), CatalogError> {
    conn.execute(
        "UPDATE captures SET created_ms = ?2, clock_suspect = 0 WHERE id = ?1",
        params![id, created_ms],
    )?;
    Ok(())
}

/// Up to `limit` captures created before `cutoff_ms` (trusted times only), oldest first:
/// (id, whether it counts as synced in `scope`).
pub fn expired_captures(
    conn: &Connection,
    scope: SyncScope,
    cutoff_ms: i64,
    limit: usize,
) -> Result<Vec<(String, bool)>, CatalogError> {
    let mut st = conn.prepare_cached(
        "SELECT id, synced_ms FROM captures
         WHERE created_ms < ?1 AND clock_suspect = 0 ORDER BY created_ms LIMIT ?2",
    )?;
    let rows = st.query_map(params![cutoff_ms, limit as i64], |r| {
        Ok((r.get(0)?, scope.is_synced(r.get(1)?)))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Deletes capture rows and their SMS rows; returns (captures, sms) removed.
pub fn delete_captures_and_sms(
    tx: &Connection,
    ids: &[String],
) -> Result<(usize, usize), CatalogError> {
    let mut caps = 0;
    let mut sms = 0;
    {
        let mut del_sms = tx.prepare_cached("DELETE FROM sms WHERE capture_id = ?1")?;
        let mut del_cap = tx.prepare_cached("DELETE FROM captures WHERE id = ?1")?;
        for id in ids {
            sms += del_sms.execute([id])?;
            caps += del_cap.execute([id])?;
        }
    }
    Ok((caps, sms))
}

pub fn schedule_last_run(conn: &Connection, task: &str) -> Result<Option<i64>, CatalogError> {
    Ok(conn
        .query_row(
            "SELECT last_run_ms FROM schedule WHERE task = ?1",
            [task],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn set_schedule_last_run(
    conn: &Connection,
    task: &str,
    at_ms: i64,
    result: &str,
) -> Result<(), CatalogError> {
    conn.execute(
        "INSERT INTO schedule (task, last_run_ms, last_result) VALUES (?1, ?2, ?3)
         ON CONFLICT(task) DO UPDATE SET last_run_ms = excluded.last_run_ms, last_result = excluded.last_result",
        params![task, at_ms, result],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::SyncScope;

    #[test]
    fn standalone_counts_everything_synced_and_no_backlog() {
        let s = SyncScope::from_remotes(false);
        assert_eq!(s, SyncScope::Standalone);
        assert!(s.is_synced(None) && s.is_synced(Some(1)));
        assert_eq!((s.backlog(7), s.synced_count(10, 3)), (0, 10));
        assert_eq!(s.label(), Some("no remote configured"));
    }

    #[test]
    fn with_remotes_synced_means_marked() {
        let s = SyncScope::from_remotes(true);
        assert!(s.has_remotes());
        assert!(!s.is_synced(None) && s.is_synced(Some(1)));
        assert_eq!((s.backlog(7), s.synced_count(10, 3)), (7, 3));
        assert_eq!(s.label(), None);
    }
}
