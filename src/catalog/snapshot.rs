//! Read-only figures for the technicians' bundle (`diag`): the schema version, the span of
//! the captures, the last captures by id and date. Never a phone number.

use rusqlite::Connection;

use super::CatalogError;

/// The applied migration (`PRAGMA user_version`).
pub fn schema_version(conn: &Connection) -> Result<i64, CatalogError> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Captures whose file is missing, and the dates the captures span (Unix milliseconds;
/// `None` when there is no capture, or none synced).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureSpan {
    pub file_missing: i64,
    pub oldest_ms: Option<i64>,
    pub newest_ms: Option<i64>,
    pub last_synced_ms: Option<i64>,
}

pub fn capture_span(conn: &Connection) -> Result<CaptureSpan, CatalogError> {
    Ok(conn.query_row(
        "SELECT COALESCE(SUM(file_missing != 0), 0), MIN(created_ms), MAX(created_ms),
                MAX(synced_ms)
         FROM captures",
        [],
        |r| {
            Ok(CaptureSpan {
                file_missing: r.get(0)?,
                oldest_ms: r.get(1)?,
                newest_ms: r.get(2)?,
                last_synced_ms: r.get(3)?,
            })
        },
    )?)
}

pub fn count_backgrounds(conn: &Connection) -> Result<i64, CatalogError> {
    Ok(conn.query_row("SELECT COUNT(*) FROM backgrounds", [], |r| r.get(0))?)
}

/// One of the last captures, as the bundle lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentCapture {
    pub id: String,
    pub created_ms: i64,
    pub synced_ms: Option<i64>,
    pub bytes: i64,
    pub file_missing: bool,
}

/// The `n` most recent captures, newest first.
pub fn recent_captures(conn: &Connection, n: usize) -> Result<Vec<RecentCapture>, CatalogError> {
    let mut st = conn.prepare_cached(
        "SELECT id, created_ms, synced_ms, bytes, file_missing FROM captures
         ORDER BY seq DESC LIMIT ?1",
    )?;
    let rows = st.query_map([i64::try_from(n).unwrap_or(i64::MAX)], |r| {
        Ok(RecentCapture {
            id: r.get(0)?,
            created_ms: r.get(1)?,
            synced_ms: r.get(2)?,
            bytes: r.get(3)?,
            file_missing: r.get::<_, i64>(4)? != 0,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
