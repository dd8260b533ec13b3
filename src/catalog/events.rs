//! Event rows: a named time span (a wedding, a fair day) that captures taken during it
//! belong to, and the queries that tie captures, SMS and erasure to an event.
//!
//! An event is open at `t` when `starts_ms <= t` and it has no end or `t < ends_ms`.
//! `updated_ms` moves at every change and `synced_ms` says which change reached the
//! remote database (`NULL`: none yet, or a newer one waits), so the outbox can be
//! rebuilt from here.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::CatalogError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub id: String,
    pub name: String,
    pub starts_ms: i64,
    /// `None`: open-ended (open until closed).
    pub ends_ms: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub synced_ms: Option<i64>,
    /// Captures that belong to it.
    pub captures: i64,
}

impl EventRow {
    /// Whether the event is open at `t`.
    pub fn is_open_at(&self, t: i64) -> bool {
        self.starts_ms <= t && self.ends_ms.is_none_or(|e| t < e)
    }

    /// Whether `[starts, ends)` (no end: forever) meets this event's span.
    pub fn overlaps(&self, starts_ms: i64, ends_ms: Option<i64>) -> bool {
        let (a_end, b_end) = (
            self.ends_ms.unwrap_or(i64::MAX),
            ends_ms.unwrap_or(i64::MAX),
        );
        self.starts_ms < b_end && starts_ms < a_end
    }
}

const SELECT: &str = "SELECT e.id, e.name, e.starts_ms, e.ends_ms, e.created_ms, e.updated_ms,
        e.synced_ms, (SELECT COUNT(*) FROM captures c WHERE c.event_id = e.id)
    FROM events e";

fn from_row(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get(0)?,
        name: r.get(1)?,
        starts_ms: r.get(2)?,
        ends_ms: r.get(3)?,
        created_ms: r.get(4)?,
        updated_ms: r.get(5)?,
        synced_ms: r.get(6)?,
        captures: r.get(7)?,
    })
}

pub fn insert_event(conn: &Connection, e: &EventRow) -> Result<(), CatalogError> {
    conn.execute(
        "INSERT INTO events (id, name, starts_ms, ends_ms, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            e.id,
            e.name,
            e.starts_ms,
            e.ends_ms,
            e.created_ms,
            e.updated_ms
        ],
    )?;
    Ok(())
}

/// Writes an event's name and span; the change waits for its sync (`synced_ms` cleared).
pub fn update_event(conn: &Connection, e: &EventRow) -> Result<(), CatalogError> {
    conn.execute(
        "UPDATE events SET name = ?2, starts_ms = ?3, ends_ms = ?4, updated_ms = ?5,
            synced_ms = NULL WHERE id = ?1",
        params![e.id, e.name, e.starts_ms, e.ends_ms, e.updated_ms],
    )?;
    Ok(())
}

pub fn get_event(conn: &Connection, id: &str) -> Result<Option<EventRow>, CatalogError> {
    let mut st = conn.prepare_cached(&format!("{SELECT} WHERE e.id = ?1"))?;
    Ok(st.query_row([id], from_row).optional()?)
}

/// The names of the events among `ids` that exist (a share page shows its event's name).
pub fn event_names(
    conn: &Connection,
    ids: &[String],
) -> Result<std::collections::HashMap<String, String>, CatalogError> {
    let mut st = conn.prepare_cached("SELECT name FROM events WHERE id = ?1")?;
    let mut out = std::collections::HashMap::new();
    for id in ids {
        if let Some(name) = st.query_row([id], |r| r.get(0)).optional()? {
            out.insert(id.clone(), name);
        }
    }
    Ok(out)
}

pub fn event_exists(conn: &Connection, id: &str) -> Result<bool, CatalogError> {
    let mut st = conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM events WHERE id = ?1)")?;
    Ok(st.query_row([id], |r| r.get(0))?)
}

/// Every event, the latest start first.
pub fn list_events(conn: &Connection) -> Result<Vec<EventRow>, CatalogError> {
    let mut st = conn.prepare_cached(&format!("{SELECT} ORDER BY e.starts_ms DESC, e.seq DESC"))?;
    let rows = st.query_map([], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Events whose latest change has not reached the remote database.
pub fn unsynced_event_ids(conn: &Connection) -> Result<Vec<String>, CatalogError> {
    let mut st =
        conn.prepare_cached("SELECT id FROM events WHERE synced_ms IS NULL ORDER BY seq")?;
    let rows = st.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Marks the change made at `updated_ms` synced; false when a newer change came since
/// (it needs its own sync).
pub fn mark_event_synced(
    conn: &Connection,
    id: &str,
    updated_ms: i64,
    at_ms: i64,
) -> Result<bool, CatalogError> {
    Ok(conn.execute(
        "UPDATE events SET synced_ms = ?3 WHERE id = ?1 AND updated_ms = ?2",
        params![id, updated_ms, at_ms],
    )? > 0)
}

/// The event a capture created at `created_ms` belongs to: the one open then. With a
/// wall clock not set yet (`suspect`), the time says nothing: the open-ended event, if any.
pub fn event_open_at(
    conn: &Connection,
    created_ms: i64,
    suspect: bool,
) -> Result<Option<String>, CatalogError> {
    let mut st = conn.prepare_cached(
        "SELECT id FROM events
         WHERE (?2 AND ends_ms IS NULL)
            OR (NOT ?2 AND starts_ms <= ?1 AND (ends_ms IS NULL OR ?1 < ends_ms))
         ORDER BY starts_ms DESC, seq DESC LIMIT 1",
    )?;
    Ok(st
        .query_row(params![created_ms, suspect], |r| r.get(0))
        .optional()?)
}

/// The captures sent to a number (by its HMAC) that belong to `event_id`.
pub fn captures_for_phone_in_event(
    conn: &Connection,
    phone_hmac: &str,
    event_id: &str,
) -> Result<Vec<String>, CatalogError> {
    let mut st = conn.prepare_cached(
        "SELECT DISTINCT s.capture_id FROM sms s JOIN captures c ON c.id = s.capture_id
         WHERE s.phone_hmac = ?1 AND c.event_id = ?2",
    )?;
    let rows = st.query_map(params![phone_hmac, event_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The consent text id a guest agreed to when asking for this SMS.
pub fn set_sms_consent(conn: &Connection, sms_id: &str, consent: &str) -> Result<(), CatalogError> {
    conn.execute(
        "UPDATE sms SET consent = ?2 WHERE id = ?1",
        params![sms_id, consent],
    )?;
    Ok(())
}

pub fn sms_consent(conn: &Connection, sms_id: &str) -> Result<Option<String>, CatalogError> {
    Ok(conn
        .query_row("SELECT consent FROM sms WHERE id = ?1", [sms_id], |r| {
            r.get(0)
        })
        .optional()?
        .flatten())
}

#[cfg(test)]
mod tests {
    use super::EventRow;

    fn event(starts_ms: i64, ends_ms: Option<i64>) -> EventRow {
        EventRow {
            id: "e".into(),
            name: "n".into(),
            starts_ms,
            ends_ms,
            created_ms: 0,
            updated_ms: 0,
            synced_ms: None,
            captures: 0,
        }
    }

    #[test]
    fn open_is_start_inclusive_end_exclusive() {
        let e = event(10, Some(20));
        assert!(!e.is_open_at(9) && e.is_open_at(10) && e.is_open_at(19) && !e.is_open_at(20));
        assert!(event(10, None).is_open_at(i64::MAX - 1));
    }

    #[test]
    fn spans_that_touch_do_not_overlap() {
        let e = event(10, Some(20));
        assert!(!e.overlaps(20, None) && !e.overlaps(0, Some(10)));
        assert!(e.overlaps(19, Some(30)) && e.overlaps(0, Some(11)) && e.overlaps(0, None));
        assert!(event(10, None).overlaps(1_000, Some(2_000)));
        assert!(!event(10, None).overlaps(0, Some(10)));
    }
}
