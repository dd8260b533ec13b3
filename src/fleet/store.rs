//! What the fleet page reads: every kiosk from the `kiosk_status` view (with its captures
//! of today from `kiosk_captures`), and one kiosk's heartbeat history, through one
//! connection that is made again when it breaks. Read-only: no migration runs, so the
//! read-only role of the README is enough.
//!
//! "Today" is the day in the database's `TimeZone` setting (`date_trunc('day', now())`),
//! so the VPS's administrator sets it once for every viewer. Ages and staleness are the
//! server's (`now()`), like `selfie-kiosk fleet`.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use super::FleetError;
use crate::config::Config;
use crate::net;

/// Most points a history answer holds; longer histories are folded into this many.
pub const MAX_POINTS: usize = 720;
/// Days of history a detail answer covers by default, and at most.
pub const DEFAULT_DAYS: u32 = 7;
pub const MAX_DAYS: u32 = 31;

/// One kiosk as the fleet page shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KioskStatus {
    pub kiosk_id: String,
    /// The last heartbeat (UTC, RFC 3339).
    pub last_seen: String,
    /// Seconds since then, on the database server's clock.
    pub age_s: f64,
    /// The status the kiosk last reported: `ok`, `degraded` or `down`.
    pub status: String,
    /// Not seen for three of its heartbeat intervals.
    pub stale: bool,
    /// The one word to show: `stale` when stale, else `status`.
    pub state: String,
    pub version: Option<String>,
    /// Outbox jobs waiting.
    pub backlog: Option<i64>,
    pub oldest_pending_s: Option<i64>,
    pub disk_free_bytes: Option<i64>,
    pub sms_credits: Option<i64>,
    /// Captures the kiosk created today that reached the database.
    pub captures_today: i64,
}

/// One point of a kiosk's history (a heartbeat, or several folded together: then the
/// largest backlog, the least free disk and the worst status of them, at the last one's
/// time).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HistoryPoint {
    pub seen_at: String,
    pub status: String,
    pub backlog: Option<i64>,
    pub disk_free_bytes: Option<i64>,
}

const STATUS_SQL: &str = "SELECT s.kiosk_id,
        to_char(s.last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
        greatest(EXTRACT(EPOCH FROM (now() - s.last_seen)), 0)::float8,
        s.status, s.version, s.backlog, s.oldest_pending_s, s.disk_free_bytes,
        s.sms_credits, s.stale, coalesce(t.n, 0)
    FROM kiosk_status s
    LEFT JOIN (SELECT kiosk_id, count(*) AS n FROM kiosk_captures
               WHERE created_at >= date_trunc('day', now()) GROUP BY kiosk_id) t
        ON t.kiosk_id = s.kiosk_id";

/// The fleet database, connected on demand.
pub struct FleetDb {
    pg: tokio_postgres::Config,
    client: Mutex<Option<Arc<Client>>>,
}

impl FleetDb {
    /// From `REMOTE_DATABASE_URL`; nothing is connected yet.
    pub fn new(config: &Config) -> Result<FleetDb, FleetError> {
        let url = config
            .remote_database_url
            .as_ref()
            .ok_or(FleetError::NotConfigured)?;
        let pg = net::pg::config(url.expose(), "selfie-kiosk fleet", Duration::from_secs(10))
            .map_err(|_| FleetError::BadUrl)?;
        Ok(FleetDb {
            pg,
            client: Mutex::new(None),
        })
    }

    async fn client(&self) -> Result<Arc<Client>, FleetError> {
        let mut guard = self.client.lock().await;
        if let Some(c) = guard.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let c = Arc::new(
            net::pg::connect(&self.pg, Duration::from_secs(15))
                .await
                .map_err(|e| FleetError::Unavailable(e.to_string()))?,
        );
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Connects once (at start: a wrong URL or password is said at once, not at the first
    /// page view).
    pub async fn check(&self) -> Result<(), FleetError> {
        self.client().await.map(|_| ())
    }

    async fn query(
        &self,
        sql: &str,
        params: &[(&(dyn tokio_postgres::types::ToSql + Sync), Type)],
    ) -> Result<Vec<tokio_postgres::Row>, FleetError> {
        let client = self.client().await?;
        match tokio::time::timeout(Duration::from_secs(20), client.query_typed(sql, params)).await {
            Ok(Ok(rows)) => Ok(rows),
            // No kiosk of this version has migrated the database yet: an empty fleet.
            Ok(Err(e)) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(Vec::new()),
            Ok(Err(e)) => {
                *self.client.lock().await = None;
                Err(FleetError::Unavailable(net::pg::describe(&e)))
            }
            Err(_) => {
                *self.client.lock().await = None;
                Err(FleetError::Unavailable("the query timed out".into()))
            }
        }
    }

    /// Every kiosk, by id.
    pub async fn kiosks(&self) -> Result<Vec<KioskStatus>, FleetError> {
        let sql = format!("{STATUS_SQL} ORDER BY s.kiosk_id");
        let rows = self.query(&sql, &[]).await?;
        rows.iter().map(status_row).collect()
    }

    /// One kiosk and its history over the last `days` days (oldest first), or
    /// [`FleetError::UnknownKiosk`].
    pub async fn kiosk(
        &self,
        id: &str,
        days: u32,
    ) -> Result<(KioskStatus, Vec<HistoryPoint>), FleetError> {
        let sql = format!("{STATUS_SQL} WHERE s.kiosk_id = $1");
        let rows = self.query(&sql, &[(&id, Type::TEXT)]).await?;
        let status = match rows.first() {
            Some(r) => status_row(r)?,
            None => return Err(FleetError::UnknownKiosk),
        };
        let rows = self
            .query(
                "SELECT to_char(seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                        status, backlog, disk_free_bytes
                 FROM kiosk_heartbeat_history
                 WHERE kiosk_id = $1 AND seen_at > now() - make_interval(days => $2)
                 ORDER BY seen_at",
                &[
                    (&id, Type::TEXT),
                    (&(days.min(MAX_DAYS) as i32), Type::INT4),
                ],
            )
            .await?;
        let mut points = Vec::with_capacity(rows.len());
        for r in &rows {
            points.push(HistoryPoint {
                seen_at: r.try_get(0).map_err(bad_row)?,
                status: r.try_get(1).map_err(bad_row)?,
                backlog: r.try_get(2).map_err(bad_row)?,
                disk_free_bytes: r.try_get(3).map_err(bad_row)?,
            });
        }
        Ok((status, fold(points, MAX_POINTS)))
    }
}

fn bad_row(e: tokio_postgres::Error) -> FleetError {
    FleetError::Unavailable(format!("unexpected row: {e}"))
}

fn status_row(r: &tokio_postgres::Row) -> Result<KioskStatus, FleetError> {
    let status: String = r.try_get(3).map_err(bad_row)?;
    let stale: bool = r.try_get(9).map_err(bad_row)?;
    Ok(KioskStatus {
        kiosk_id: r.try_get(0).map_err(bad_row)?,
        last_seen: r.try_get(1).map_err(bad_row)?,
        age_s: (r.try_get::<_, f64>(2).map_err(bad_row)? * 10.0).round() / 10.0,
        state: if stale {
            "stale".to_string()
        } else {
            status.clone()
        },
        status,
        stale,
        version: r.try_get(4).map_err(bad_row)?,
        backlog: r.try_get(5).map_err(bad_row)?,
        oldest_pending_s: r.try_get(6).map_err(bad_row)?,
        disk_free_bytes: r.try_get(7).map_err(bad_row)?,
        sms_credits: r.try_get(8).map_err(bad_row)?,
        captures_today: r.try_get(10).map_err(bad_row)?,
    })
}

fn severity(status: &str) -> u8 {
    match status {
        "ok" => 0,
        "degraded" => 1,
        _ => 2,
    }
}

/// At most `max` points: consecutive runs folded into one (largest backlog, least free
/// disk, worst status, the run's last time), so a chart of weeks stays light and a spike
/// or a full disk is never folded away.
pub fn fold(points: Vec<HistoryPoint>, max: usize) -> Vec<HistoryPoint> {
    if points.len() <= max || max == 0 {
        return points;
    }
    let per = points.len().div_ceil(max);
    points
        .chunks(per)
        .filter_map(|run| {
            let last = run.last()?;
            Some(HistoryPoint {
                seen_at: last.seen_at.clone(),
                status: run
                    .iter()
                    .map(|p| p.status.as_str())
                    .max_by_key(|s| severity(s))
                    .unwrap_or("ok")
                    .to_string(),
                backlog: run.iter().filter_map(|p| p.backlog).max(),
                disk_free_bytes: run.iter().filter_map(|p| p.disk_free_bytes).min(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(i: i64, status: &str, backlog: Option<i64>, disk: Option<i64>) -> HistoryPoint {
        HistoryPoint {
            seen_at: format!("t{i}"),
            status: status.into(),
            backlog,
            disk_free_bytes: disk,
        }
    }

    #[test]
    fn short_histories_are_kept_whole() {
        let pts: Vec<_> = (0..5).map(|i| p(i, "ok", Some(i), Some(100))).collect();
        assert_eq!(fold(pts.clone(), 5), pts);
    }

    #[test]
    fn long_histories_fold_without_losing_the_extremes() {
        let mut pts: Vec<_> = (0..10).map(|i| p(i, "ok", Some(1), Some(100))).collect();
        pts[3] = p(3, "down", Some(50), Some(7));
        pts[8].backlog = None;
        let f = fold(pts, 4);
        // 10 points into runs of 3: 4 points, each at its run's last time.
        assert_eq!(f.len(), 4);
        assert_eq!(f[1], p(5, "down", Some(50), Some(7)));
        assert_eq!(f[0], p(2, "ok", Some(1), Some(100)));
        assert_eq!(f[3].seen_at, "t9");
        assert_eq!(f[2].backlog, Some(1));
    }
}
