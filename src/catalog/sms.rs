//! SMS rows.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::CatalogError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsRow {
    pub id: String,
    pub capture_id: String,
    /// The clear E.164 number: only while the SMS may still be sent.
    pub phone: Option<String>,
    pub phone_hmac: String,
    pub phone_masked: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub tag: String,
    pub ovh_ids: Option<String>,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub attempt_started_ms: Option<i64>,
    pub sent_ms: Option<i64>,
}

const COLUMNS: &str = "id, capture_id, phone, phone_hmac, phone_masked, status, attempts, \
    last_error, tag, ovh_ids, created_ms, expires_ms, attempt_started_ms, sent_ms";

fn from_row(r: &Row<'_>) -> rusqlite::Result<SmsRow> {
    Ok(SmsRow {
        id: r.get(0)?,
        capture_id: r.get(1)?,
        phone: r.get(2)?,
        phone_hmac: r.get(3)?,
        phone_masked: r.get(4)?,
        status: r.get(5)?,
        attempts: r.get(6)?,
        last_error: r.get(7)?,
        tag: r.get(8)?,
        ovh_ids: r.get(9)?,
        created_ms: r.get(10)?,
        expires_ms: r.get(11)?,
        attempt_started_ms: r.get(12)?,
        sent_ms: r.get(13)?,
    })
}

/// Statuses after which nothing more happens.
pub const SMS_FINAL: &[&str] = &["sent", "failed", "expired", "cancelled"];

pub fn insert_sms(conn: &Connection, s: &SmsRow) -> Result<(), CatalogError> {
    conn.execute(
        &format!("INSERT INTO sms ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"),
        params![
            s.id,
            s.capture_id,
            s.phone,
            s.phone_hmac,
            s.phone_masked,
            s.status,
            s.attempts,
            s.last_error,
            s.tag,
            s.ovh_ids,
            s.created_ms,
            s.expires_ms,
            s.attempt_started_ms,
            s.sent_ms
        ],
    )?;
    Ok(())
}

pub fn get_sms(conn: &Connection, id: &str) -> Result<Option<SmsRow>, CatalogError> {
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM sms WHERE id = ?1"))?;
    Ok(st.query_row([id], from_row).optional()?)
}

/// An open or sent request for this capture and number (a retried HTTP request).
pub fn find_sms_for(
    conn: &Connection,
    capture_id: &str,
    phone_hmac: &str,
) -> Result<Option<SmsRow>, CatalogError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sms WHERE capture_id = ?1 AND phone_hmac = ?2
         AND status NOT IN ('failed', 'expired', 'cancelled') ORDER BY seq DESC LIMIT 1"
    ))?;
    Ok(st
        .query_row(params![capture_id, phone_hmac], from_row)
        .optional()?)
}

/// Counts for the abuse limits: (this number in the last hour, this capture ever,
/// everyone in the last hour, everyone in the last day). Cancelled requests don't count.
pub fn sms_counts(
    conn: &Connection,
    phone_hmac: &str,
    capture_id: &str,
    now_ms: i64,
) -> Result<(i64, i64, i64, i64), CatalogError> {
    let hour = now_ms - 3_600_000;
    let day = now_ms - 86_400_000;
    Ok(conn.query_row(
        "SELECT
            COALESCE(SUM(CASE WHEN phone_hmac = ?1 AND created_ms > ?3 THEN 1 ELSE 0 END), 0),
            COALESCE(SUM(CASE WHEN capture_id = ?2 THEN 1 ELSE 0 END), 0),
            COALESCE(SUM(CASE WHEN created_ms > ?3 THEN 1 ELSE 0 END), 0),
            COALESCE(SUM(CASE WHEN created_ms > ?4 THEN 1 ELSE 0 END), 0)
         FROM sms WHERE status != 'cancelled' AND (created_ms > ?4 OR capture_id = ?2)",
        params![phone_hmac, capture_id, hour, day],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?)
}

pub fn set_sms_status(
    conn: &Connection,
    id: &str,
    status: &str,
    error: Option<&str>,
) -> Result<(), CatalogError> {
    // Every final state forgets the number at once, a failed one too (a staff retry then
    // takes the guest's number typed again): no guest's number outlives its last attempt
    // (tests/secrets.rs holds the kiosk to it).
    let forget = SMS_FINAL.contains(&status);
    conn.execute(
        "UPDATE sms SET status = ?2, last_error = COALESCE(?3, last_error),
            phone = CASE WHEN ?4 THEN NULL ELSE phone END
         WHERE id = ?1",
        params![id, status, error, forget],
    )?;
    Ok(())
}

/// Records that an attempt is starting (before the OVH call): a crash from here on is
/// resolved by looking the tag up at OVH before any resend.
pub fn start_sms_attempt(conn: &Connection, id: &str, now_ms: i64) -> Result<(), CatalogError> {
    conn.execute(
        "UPDATE sms SET status = 'sending', attempts = attempts + 1, attempt_started_ms = ?2 WHERE id = ?1",
        params![id, now_ms],
    )?;
    Ok(())
}

/// The previous attempt is known not to have reached OVH.
pub fn clear_sms_attempt(
    conn: &Connection,
    id: &str,
    status: &str,
    error: &str,
) -> Result<(), CatalogError> {
    conn.execute(
        "UPDATE sms SET status = ?2, last_error = ?3, attempt_started_ms = NULL WHERE id = ?1",
        params![id, status, error],
    )?;
    Ok(())
}

pub fn mark_sms_sent(
    conn: &Connection,
    id: &str,
    now_ms: i64,
    ovh_ids: &str,
) -> Result<(), CatalogError> {
    conn.execute(
        "UPDATE sms SET status = 'sent', sent_ms = ?2, ovh_ids = ?3, phone = NULL, last_error = NULL WHERE id = ?1",
        params![id, now_ms, ovh_ids],
    )?;
    Ok(())
}

/// SMS requests not final (start-up rebuild of their jobs).
pub fn open_sms(conn: &Connection) -> Result<Vec<SmsRow>, CatalogError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sms WHERE status NOT IN ('sent', 'failed', 'expired', 'cancelled') ORDER BY seq"
    ))?;
    let rows = st.query_map([], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Capture ids that were sent to a number (by HMAC) — GDPR erasure.
pub fn captures_for_phone(
    conn: &Connection,
    phone_hmac: &str,
) -> Result<Vec<String>, CatalogError> {
    let mut st =
        conn.prepare_cached("SELECT DISTINCT capture_id FROM sms WHERE phone_hmac = ?1")?;
    let rows = st.query_map([phone_hmac], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

// ---------------------------------------------------------------------------------------
// The staff console: listing and retry.

/// Filters of `GET /admin/sms`. Times are Unix milliseconds on `created_ms`, `to_ms`
/// exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsFilter {
    pub status: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    pub capture_id: Option<String>,
}

/// An SMS row with its keyset position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsListItem {
    pub seq: i64,
    pub row: SmsRow,
}

/// Up to `limit` SMS requests with `seq < before_seq`, newest first.
pub fn list_sms_page(
    conn: &Connection,
    f: &SmsFilter,
    before_seq: i64,
    limit: usize,
) -> Result<Vec<SmsListItem>, CatalogError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT seq, {COLUMNS} FROM sms WHERE seq < :cursor
            AND created_ms >= :from AND created_ms < :to
            AND (:status IS NULL OR status = :status)
            AND (:capture IS NULL OR capture_id = :capture)
         ORDER BY seq DESC LIMIT :limit"
    ))?;
    let rows = st.query_map(
        rusqlite::named_params! {
            ":cursor": before_seq,
            ":from": f.from_ms,
            ":to": f.to_ms,
            ":status": f.status,
            ":capture": f.capture_id,
            ":limit": limit as i64,
        },
        |r| {
            let seq = r.get(0)?;
            // The other columns, shifted by one.
            let row = SmsRow {
                id: r.get(1)?,
                capture_id: r.get(2)?,
                phone: r.get(3)?,
                phone_hmac: r.get(4)?,
                phone_masked: r.get(5)?,
                status: r.get(6)?,
                attempts: r.get(7)?,
                last_error: r.get(8)?,
                tag: r.get(9)?,
                ovh_ids: r.get(10)?,
                created_ms: r.get(11)?,
                expires_ms: r.get(12)?,
                attempt_started_ms: r.get(13)?,
                sent_ms: r.get(14)?,
            };
            Ok(SmsListItem { seq, row })
        },
    )?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Every SMS request of a capture, oldest first.
pub fn sms_for_capture(conn: &Connection, capture_id: &str) -> Result<Vec<SmsRow>, CatalogError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sms WHERE capture_id = ?1 ORDER BY seq"
    ))?;
    let rows = st.query_map([capture_id], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// [`sms_counts`] without the request `except_id` (a retry is the same text again, not a
/// second one: its own row must not count against it).
pub fn sms_counts_except(
    conn: &Connection,
    phone_hmac: &str,
    capture_id: &str,
    now_ms: i64,
    except_id: &str,
) -> Result<(i64, i64, i64, i64), CatalogError> {
    let hour = now_ms - 3_600_000;
    let day = now_ms - 86_400_000;
    Ok(conn.query_row(
        "SELECT
            COALESCE(SUM(CASE WHEN phone_hmac = ?1 AND created_ms > ?3 THEN 1 ELSE 0 END), 0),
            COALESCE(SUM(CASE WHEN capture_id = ?2 THEN 1 ELSE 0 END), 0),
            COALESCE(SUM(CASE WHEN created_ms > ?3 THEN 1 ELSE 0 END), 0),
            COALESCE(SUM(CASE WHEN created_ms > ?4 THEN 1 ELSE 0 END), 0)
         FROM sms WHERE status != 'cancelled' AND id != ?5
            AND (created_ms > ?4 OR capture_id = ?2)",
        params![phone_hmac, capture_id, hour, day, except_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?)
}

/// Puts a failed request back in the queue as `status`: no attempt pending, a fresh
/// validity until `expires_ms`, and `phone` (the number staff typed again, already checked
/// against the HMAC) stored until the request is final again. The status precondition
/// (`failed`, the same HMAC, a number to send to) is checked by the update itself, in the
/// caller's transaction: of two concurrent retries, or a retry and the runner settling the
/// row, one changes it and the other sees 0 rows (returns whether it changed).
pub fn requeue_failed_sms(
    conn: &Connection,
    id: &str,
    status: &str,
    expires_ms: i64,
    phone: Option<&str>,
    phone_hmac: &str,
) -> Result<bool, CatalogError> {
    Ok(conn.execute(
        "UPDATE sms SET status = ?2, attempt_started_ms = NULL, expires_ms = ?3,
            phone = COALESCE(?4, phone)
         WHERE id = ?1 AND status = 'failed' AND phone_hmac = ?5
            AND COALESCE(?4, phone) IS NOT NULL",
        params![id, status, expires_ms, phone, phone_hmac],
    )? > 0)
}

/// Forgets the clear numbers of failed requests whose retry window (their validity) has
/// passed; returns how many.
pub fn forget_expired_failed_numbers(
    conn: &Connection,
    now_ms: i64,
) -> Result<usize, CatalogError> {
    Ok(conn.execute(
        "UPDATE sms SET phone = NULL
         WHERE status = 'failed' AND phone IS NOT NULL AND expires_ms < ?1",
        params![now_ms],
    )?)
}
