//! Aggregates for `/admin/stats` and the Excel export: every figure is one SQL aggregate
//! (`COUNT`/`SUM` … `GROUP BY`), so their cost does not grow with memory, only with the
//! index scans SQLite does.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::{CatalogError, SyncScope};

pub const DAY_MS: i64 = 86_400_000;
pub const HOUR_MS: i64 = 3_600_000;

/// The SMS statuses a request goes through; the first three are "pending".
pub const SMS_STATUSES: &[&str] = &[
    "waiting_for_sync",
    "queued",
    "sending",
    "sent",
    "failed",
    "expired",
    "cancelled",
];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CaptureTotals {
    pub total: i64,
    /// Synced as [`SyncScope`] defines it: all of them when no remote is configured.
    pub synced: i64,
    /// Waiting for a sync: 0 when no remote is configured.
    pub pending_sync: i64,
    /// `"no remote configured"` when there is none (nothing to sync to); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
    pub file_missing: i64,
    pub bytes: i64,
}

/// Totals over captures created in `[from_ms, to_ms)`.
pub fn capture_totals(
    conn: &Connection,
    scope: SyncScope,
    from_ms: i64,
    to_ms: i64,
) -> Result<CaptureTotals, CatalogError> {
    capture_totals_in(conn, scope, from_ms, to_ms, None)
}

/// [`capture_totals`] of one event's captures (`None`: all).
pub fn capture_totals_in(
    conn: &Connection,
    scope: SyncScope,
    from_ms: i64,
    to_ms: i64,
    event: Option<&str>,
) -> Result<CaptureTotals, CatalogError> {
    let mut st = conn.prepare_cached(
        "SELECT COUNT(*), COUNT(synced_ms), COALESCE(SUM(file_missing), 0),
                COALESCE(SUM(bytes), 0)
         FROM captures WHERE created_ms >= ?1 AND created_ms < ?2
            AND (?3 IS NULL OR event_id = ?3)",
    )?;
    Ok(st.query_row(params![from_ms, to_ms, event], |r| {
        let total: i64 = r.get(0)?;
        let synced = scope.synced_count(total, r.get(1)?);
        Ok(CaptureTotals {
            total,
            synced,
            pending_sync: total - synced,
            sync: scope.label().map(str::to_string),
            file_missing: r.get(2)?,
            bytes: r.get(3)?,
        })
    })?)
}

/// One time bucket (a UTC day or hour) of captures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Start of the bucket, Unix milliseconds.
    pub start_ms: i64,
    pub captures: i64,
    /// Synced as [`SyncScope`] defines it.
    pub synced: i64,
    /// SMS sent within the bucket (by send time).
    pub sms_sent: i64,
}

/// Captures (and how many of them are synced) and SMS sent, per `bucket_ms`-wide bucket
/// of `[from_ms, to_ms)`, only the buckets that have something, in time order.
pub fn buckets(
    conn: &Connection,
    scope: SyncScope,
    from_ms: i64,
    to_ms: i64,
    bucket_ms: i64,
) -> Result<Vec<Bucket>, CatalogError> {
    buckets_in(conn, scope, from_ms, to_ms, bucket_ms, None)
}

/// [`buckets`] of one event's captures and their SMS (`None`: all).
pub fn buckets_in(
    conn: &Connection,
    scope: SyncScope,
    from_ms: i64,
    to_ms: i64,
    bucket_ms: i64,
    event: Option<&str>,
) -> Result<Vec<Bucket>, CatalogError> {
    let bucket_ms = bucket_ms.max(1);
    let mut out: std::collections::BTreeMap<i64, Bucket> = Default::default();
    let mut st = conn.prepare_cached(
        "SELECT created_ms / ?3 AS b, COUNT(*), COUNT(synced_ms)
         FROM captures WHERE created_ms >= ?1 AND created_ms < ?2
            AND (?4 IS NULL OR event_id = ?4)
         GROUP BY b",
    )?;
    let rows = st.query_map(params![from_ms, to_ms, bucket_ms, event], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (b, n, synced) = row?;
        let e = out.entry(b).or_default();
        e.captures = n;
        e.synced = scope.synced_count(n, synced);
    }
    let mut st = conn.prepare_cached(
        "SELECT sent_ms / ?3 AS b, COUNT(*)
         FROM sms WHERE status = 'sent' AND sent_ms >= ?1 AND sent_ms < ?2
            AND (?4 IS NULL OR capture_id IN (SELECT id FROM captures WHERE event_id = ?4))
         GROUP BY b",
    )?;
    let rows = st.query_map(params![from_ms, to_ms, bucket_ms, event], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (b, n) = row?;
        out.entry(b).or_default().sms_sent = n;
    }
    Ok(out
        .into_iter()
        .map(|(b, mut v)| {
            v.start_ms = b * bucket_ms;
            v
        })
        .collect())
}

/// SMS requests per status (every known status present, zero when none).
pub fn sms_by_status(
    conn: &Connection,
) -> Result<std::collections::BTreeMap<String, i64>, CatalogError> {
    sms_by_status_in(conn, None)
}

/// [`sms_by_status`] of one event's captures (`None`: all).
pub fn sms_by_status_in(
    conn: &Connection,
    event: Option<&str>,
) -> Result<std::collections::BTreeMap<String, i64>, CatalogError> {
    let mut out: std::collections::BTreeMap<String, i64> =
        SMS_STATUSES.iter().map(|s| (s.to_string(), 0)).collect();
    let mut st = conn.prepare_cached(
        "SELECT status, COUNT(*) FROM sms
         WHERE ?1 IS NULL OR capture_id IN (SELECT id FROM captures WHERE event_id = ?1)
         GROUP BY status",
    )?;
    let rows = st.query_map([event], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (s, n) = row?;
        out.insert(s, n);
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BackgroundCount {
    /// `None`: captures taken without a background.
    pub background_id: Option<String>,
    /// `None`: no background, or one deleted since.
    pub name: Option<String>,
    pub captures: i64,
}

/// Captures per background, most used first.
pub fn captures_per_background(conn: &Connection) -> Result<Vec<BackgroundCount>, CatalogError> {
    captures_per_background_in(conn, None)
}

/// [`captures_per_background`] of one event's captures (`None`: all).
pub fn captures_per_background_in(
    conn: &Connection,
    event: Option<&str>,
) -> Result<Vec<BackgroundCount>, CatalogError> {
    let mut st = conn.prepare_cached(
        "SELECT c.background_id, b.name, c.n
         FROM (SELECT background_id, COUNT(*) AS n FROM captures
               WHERE ?1 IS NULL OR event_id = ?1 GROUP BY background_id) c
         LEFT JOIN backgrounds b ON b.id = c.background_id
         ORDER BY c.n DESC, c.background_id",
    )?;
    let rows = st.query_map([event], |r| {
        Ok(BackgroundCount {
            background_id: r.get(0)?,
            name: r.get(1)?,
            captures: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
