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

/// One time bucket (a day or an hour, local or UTC) of captures.
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

/// Captures and SMS sent per bucket of variable width (local days of 23 or 25 hours,
/// local hours): `bounds` are the `n + 1` increasing bucket edges; the answer has `n`
/// buckets, empty ones included, each starting at its lower edge.
///
/// Still one SQL aggregate each: rows are grouped by the largest slot that divides every
/// edge (an hour in Paris, a day in UTC, 15 minutes in Kathmandu), so each slot falls in
/// exactly one bucket, and the slots are summed into their buckets here.
pub fn buckets_between(
    conn: &Connection,
    scope: SyncScope,
    bounds: &[i64],
) -> Result<Vec<Bucket>, CatalogError> {
    buckets_between_in(conn, scope, bounds, None)
}

/// [`buckets_between`] of one event's captures and their SMS (`None`: all).
pub fn buckets_between_in(
    conn: &Connection,
    scope: SyncScope,
    bounds: &[i64],
    event: Option<&str>,
) -> Result<Vec<Bucket>, CatalogError> {
    let (Some(&first), Some(&last)) = (bounds.first(), bounds.last()) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Bucket> = bounds
        .windows(2)
        .map(|w| Bucket {
            start_ms: w[0],
            ..Bucket::default()
        })
        .collect();
    if out.is_empty() {
        return Ok(out);
    }
    // At most a day (`gcd` with it still divides every edge), so no group is ever wider.
    let slot = gcd(bounds.iter().fold(0i64, |g, b| gcd(g, *b)), DAY_MS).max(1);
    for s in buckets_in(conn, scope, first, last, slot, event)? {
        // The bucket whose lower edge is the last one at or before the slot's start.
        let i = bounds.partition_point(|b| *b <= s.start_ms);
        if let Some(b) = i.checked_sub(1).and_then(|i| out.get_mut(i)) {
            b.captures += s.captures;
            b.synced += s.synced;
            b.sms_sent += s.sms_sent;
        }
    }
    Ok(out)
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.min(i64::MAX as u64) as i64
}

/// The earliest and latest instants a capture was taken or an SMS sent in
/// `[from_ms, to_ms)`, `None` when there is neither (the span the export's days cover);
/// with `event`, only that event's captures and their SMS.
pub fn activity_span(
    conn: &Connection,
    from_ms: i64,
    to_ms: i64,
    event: Option<&str>,
) -> Result<Option<(i64, i64)>, CatalogError> {
    let mut st = conn.prepare_cached(
        "SELECT MIN(lo), MAX(hi) FROM (
           SELECT MIN(created_ms) AS lo, MAX(created_ms) AS hi FROM captures
            WHERE created_ms >= ?1 AND created_ms < ?2 AND (?3 IS NULL OR event_id = ?3)
           UNION ALL
           SELECT MIN(sent_ms), MAX(sent_ms) FROM sms
            WHERE status = 'sent' AND sent_ms >= ?1 AND sent_ms < ?2
              AND (?3 IS NULL OR capture_id IN (SELECT id FROM captures WHERE event_id = ?3)))",
    )?;
    let (lo, hi): (Option<i64>, Option<i64>) = st
        .query_row(params![from_ms, to_ms, event], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    Ok(lo.zip(hi))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::{insert_capture, Catalog, NewCapture};
    use super::*;
    use crate::localtime::LocalTz;

    fn at(id: &str, created_ms: i64) -> NewCapture {
        NewCapture {
            id: id.to_string(),
            created_ms,
            taken_at: None,
            background_id: None,
            bytes: 10,
            width: 2,
            height: 2,
            sha256: "ab".repeat(32),
            source_sha256: "ab".repeat(32),
            source_format: "jpeg".to_string(),
        }
    }

    /// Paris, the autumn change of 2026 (01:00 UTC on 25 October): captures at 02:30
    /// local before and after it land in the two "02:00" buckets, the 25-hour day holds
    /// them all, and the day before ends at its local midnight (22:00 UTC).
    #[test]
    fn local_buckets_around_the_autumn_change() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(&dir.path().join("catalog.sqlite3")).unwrap();
        let change = 1_792_890_000_000; // 2026-10-25T01:00:00Z
        let rows = [
            ("eve", change - 3 * HOUR_MS - 1), // 23:59:59.999+02:00 on the 24th
            ("midnight", change - 3 * HOUR_MS), // 00:00+02:00 on the 25th
            ("first-0230", change - HOUR_MS / 2), // 02:30+02:00
            ("second-0230", change + HOUR_MS / 2), // 02:30+01:00
            ("late", change + 21 * HOUR_MS + HOUR_MS / 2), // 22:30+01:00
        ];
        cat.write_blocking(|tx| {
            for (id, ms) in rows {
                insert_capture(tx, &at(id, ms))?;
            }
            Ok(())
        })
        .unwrap();
        let paris = LocalTz::from_posix_rule("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let scope = SyncScope::from_remotes(false);
        let days = paris.days_between(change - 4 * HOUR_MS, change + 21 * HOUR_MS + 50 * 60_000);
        let per_day = cat
            .read_blocking(|c| buckets_between(c, scope, &days))
            .unwrap();
        let counts: Vec<(String, i64)> = per_day
            .iter()
            .map(|b| (paris.date_label(b.start_ms), b.captures))
            .collect();
        assert_eq!(
            counts,
            vec![("2026-10-24".to_string(), 1), ("2026-10-25".to_string(), 4)]
        );
        let hours = paris.last_hours(change + 2 * HOUR_MS, 6);
        let per_hour = cat
            .read_blocking(|c| buckets_between(c, scope, &hours))
            .unwrap();
        let counts: Vec<(String, i64)> = per_hour
            .iter()
            .map(|b| (paris.rfc3339(b.start_ms), b.captures))
            .collect();
        assert_eq!(
            counts,
            vec![
                ("2026-10-25T00:00:00+02:00".to_string(), 1),
                ("2026-10-25T01:00:00+02:00".to_string(), 0),
                ("2026-10-25T02:00:00+02:00".to_string(), 1),
                ("2026-10-25T02:00:00+01:00".to_string(), 1),
                ("2026-10-25T03:00:00+01:00".to_string(), 0),
                ("2026-10-25T04:00:00+01:00".to_string(), 0),
            ]
        );
        // Quarter-hour edges (a +05:45 zone) are grouped finer, still exactly.
        let nepal = LocalTz::from_posix_rule("NPT-5:45").unwrap();
        let b = nepal.days_between(change - 4 * HOUR_MS, change + 22 * HOUR_MS);
        let n: i64 = cat
            .read_blocking(|c| buckets_between(c, scope, &b))
            .unwrap()
            .iter()
            .map(|b| b.captures)
            .sum();
        assert_eq!(n, 5);
    }
}
