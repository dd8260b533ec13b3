//! Capture listings for the admin: keyset pages for `GET /admin/captures` and chunks for
//! the Excel export.
//!
//! Both walk the `seq` column (the rowid: monotonic, never reused thanks to
//! AUTOINCREMENT), never `OFFSET`: a page is `seq < cursor` newest first, a chunk is
//! `seq > after` oldest first. Captures inserted meanwhile get a larger `seq`, so they
//! never shift a page boundary; each existing capture shows up exactly once.

use rusqlite::{params, Connection, Row};

use super::{CatalogError, SyncScope};

/// Filters shared by the listing and the export. Times are Unix milliseconds, `to_ms`
/// exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureFilter {
    pub from_ms: i64,
    pub to_ms: i64,
    /// Synced or not, as `scope` defines it.
    pub synced: Option<bool>,
    pub has_sms: Option<bool>,
    /// What "synced" means on this kiosk.
    pub scope: SyncScope,
    /// Only the captures of this event (issue 20).
    pub event_id: Option<String>,
}

impl CaptureFilter {
    /// Every capture, "synced" read in `scope`.
    pub fn all(scope: SyncScope) -> Self {
        CaptureFilter {
            from_ms: i64::MIN,
            to_ms: i64::MAX,
            synced: None,
            has_sms: None,
            scope,
            event_id: None,
        }
    }
}

/// A capture as the admin sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureListItem {
    pub seq: i64,
    pub id: String,
    pub created_ms: i64,
    pub taken_at: Option<String>,
    pub background_id: Option<String>,
    /// The background's current name (`None`: none, or deleted since).
    pub background_name: Option<String>,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
    pub sha256: String,
    pub file_missing: bool,
    pub synced_ms: Option<i64>,
    /// Synced as the filter's [`SyncScope`] defines it.
    pub is_synced: bool,
    pub sms_count: i64,
    /// The event it belongs to, and that event's name.
    pub event_id: Option<String>,
    pub event_name: Option<String>,
}

const SELECT: &str = "SELECT c.seq, c.id, c.created_ms, c.taken_at, c.background_id, b.name,
        c.bytes, c.width, c.height, c.sha256, c.file_missing, c.synced_ms,
        (SELECT COUNT(*) FROM sms s WHERE s.capture_id = c.id),
        c.event_id, (SELECT e.name FROM events e WHERE e.id = c.event_id)
    FROM captures c LEFT JOIN backgrounds b ON b.id = c.background_id";

/// `:standalone` is [`SyncScope::Standalone`], where every capture counts as synced
/// ([`SyncScope::is_synced`] in SQL).
const FILTER: &str = "c.created_ms >= :from AND c.created_ms < :to
    AND (:synced IS NULL OR (c.synced_ms IS NOT NULL OR :standalone) = :synced)
    AND (:has_sms IS NULL OR EXISTS (SELECT 1 FROM sms s WHERE s.capture_id = c.id) = :has_sms)
    AND (:event IS NULL OR c.event_id = :event)";

fn from_row(r: &Row<'_>, scope: SyncScope) -> rusqlite::Result<CaptureListItem> {
    let synced_ms = r.get(11)?;
    Ok(CaptureListItem {
        seq: r.get(0)?,
        id: r.get(1)?,
        created_ms: r.get(2)?,
        taken_at: r.get(3)?,
        background_id: r.get(4)?,
        background_name: r.get(5)?,
        bytes: r.get(6)?,
        width: r.get(7)?,
        height: r.get(8)?,
        sha256: r.get(9)?,
        file_missing: r.get::<_, i64>(10)? != 0,
        synced_ms,
        is_synced: scope.is_synced(synced_ms),
        sms_count: r.get(12)?,
        event_id: r.get(13)?,
        event_name: r.get(14)?,
    })
}

/// Up to `limit` captures with `seq < before`, newest first.
pub fn list_captures_page(
    conn: &Connection,
    f: &CaptureFilter,
    before_seq: i64,
    limit: usize,
) -> Result<Vec<CaptureListItem>, CatalogError> {
    let mut st = conn.prepare_cached(&format!(
        "{SELECT} WHERE c.seq < :cursor AND {FILTER} ORDER BY c.seq DESC LIMIT :limit"
    ))?;
    let rows = st.query_map(
        rusqlite::named_params! {
            ":cursor": before_seq,
            ":from": f.from_ms,
            ":to": f.to_ms,
            ":synced": f.synced,
            ":standalone": f.scope == SyncScope::Standalone,
            ":has_sms": f.has_sms,
            ":event": f.event_id,
            ":limit": limit as i64,
        },
        |r| from_row(r, f.scope),
    )?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Up to `limit` captures with `after < seq <= upto`, oldest first (export chunks).
pub fn list_captures_chunk(
    conn: &Connection,
    f: &CaptureFilter,
    after_seq: i64,
    upto_seq: i64,
    limit: usize,
) -> Result<Vec<CaptureListItem>, CatalogError> {
    let mut st = conn.prepare_cached(&format!(
        "{SELECT} WHERE c.seq > :after AND c.seq <= :upto AND {FILTER}
         ORDER BY c.seq LIMIT :limit"
    ))?;
    let rows = st.query_map(
        rusqlite::named_params! {
            ":after": after_seq,
            ":upto": upto_seq,
            ":from": f.from_ms,
            ":to": f.to_ms,
            ":synced": f.synced,
            ":standalone": f.scope == SyncScope::Standalone,
            ":has_sms": f.has_sms,
            ":event": f.event_id,
            ":limit": limit as i64,
        },
        |r| from_row(r, f.scope),
    )?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The largest `seq` now (0 when empty): an export stops there, so what arrives while it
/// runs is not half in it.
pub fn max_capture_seq(conn: &Connection) -> Result<i64, CatalogError> {
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM captures",
        params![],
        |r| r.get(0),
    )?)
}

/// One capture as the listing shows it (`None`: no such capture).
pub fn get_capture_item(
    conn: &Connection,
    id: &str,
    scope: SyncScope,
) -> Result<Option<CaptureListItem>, CatalogError> {
    use rusqlite::OptionalExtension;
    let mut st = conn.prepare_cached(&format!("{SELECT} WHERE c.id = ?1"))?;
    Ok(st.query_row([id], |r| from_row(r, scope)).optional()?)
}

/// Capture ids from the newest down, `limit` at a time after `before_seq` (thumbnail
/// sweeps): (seq, id).
pub fn capture_ids_before(
    conn: &Connection,
    before_seq: i64,
    limit: usize,
) -> Result<Vec<(i64, String)>, CatalogError> {
    let mut st = conn
        .prepare_cached("SELECT seq, id FROM captures WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2")?;
    let rows = st.query_map(params![before_seq, limit as i64], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Whether a capture row exists.
pub fn capture_exists(conn: &Connection, id: &str) -> Result<bool, CatalogError> {
    let mut st = conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM captures WHERE id = ?1)")?;
    Ok(st.query_row([id], |r| r.get(0))?)
}
