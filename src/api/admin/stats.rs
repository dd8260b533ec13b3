//! `GET /admin/stats`: every figure is an SQL aggregate; no row is loaded. Days and hours
//! are the kiosk's local ones (`KIOSK_TZ`, [`crate::localtime`]): a day across a DST
//! change has 23 or 25 hour buckets, each labelled with the offset in force.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::error::{ApiError, ApiResult};
use crate::app::SharedApp;
use crate::catalog::{self, Bucket};

/// Local days in `per_day`, hours in `per_hour`.
const DAYS: usize = 30;
const HOURS: usize = 48;

/// What `GET /admin/stats` answers.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Stats {
    #[schema(format = DateTime)]
    generated_at: String,
    /// The zone days and hours are in (`KIOSK_TZ`, else the system's, else `UTC`), for
    /// labelling charts.
    tz: String,
    /// All captures. With no remote configured every capture counts as synced,
    /// `pending_sync` is 0 and `sync` says "no remote configured".
    captures: catalog::CaptureTotals,
    /// Today (local) so far.
    today: StatsDay,
    sms: StatsSms,
    /// The last 30 local days, oldest first, zero where nothing happened.
    per_day: Vec<StatsDay>,
    /// The last 48 hours, oldest first, in local time (one bucket per real hour: across a
    /// DST change an hour label is skipped or repeated with the other offset).
    per_hour: Vec<StatsHour>,
    /// Most used first.
    per_background: Vec<catalog::BackgroundCount>,
    outbox: StatsOutbox,
    /// The event the figures are narrowed to (`?event_id=`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<crate::events::EventAnswer>,
}

/// `GET /admin/stats` query.
#[derive(Debug, Default, serde::Deserialize)]
struct StatsQuery {
    event_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct StatsSms {
    total: i64,
    sent: i64,
    failed: i64,
    pending: i64,
    expired: i64,
    cancelled: i64,
    /// Every internal status with its count.
    by_status: BTreeMap<String, i64>,
}

#[derive(Debug, Serialize, ToSchema)]
struct StatsDay {
    /// `YYYY-MM-DD`, local.
    date: String,
    captures: i64,
    synced: i64,
    sms_sent: i64,
}

impl StatsDay {
    fn of(date: String, b: Bucket) -> StatsDay {
        StatsDay {
            date,
            captures: b.captures,
            synced: b.synced,
            sms_sent: b.sms_sent,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct StatsHour {
    /// Local start of the hour with its offset: `YYYY-MM-DDTHH:00:00+01:00` (`Z` in UTC).
    #[schema(format = DateTime)]
    hour: String,
    /// The hour on the kiosk's clock (0-23), for chart labels: a page need not know the
    /// zone (a POSIX rule is no name a browser knows).
    local_hour: u8,
    captures: i64,
    synced: i64,
    sms_sent: i64,
}

#[derive(Debug, Serialize, ToSchema)]
struct StatsOutbox {
    pending: usize,
    leased: usize,
    dead: usize,
    oldest_created_at: Option<String>,
    /// Pending jobs per kind.
    by_kind: BTreeMap<String, usize>,
}

/// `GET /admin/stats`: every figure is an SQL aggregate; no row is loaded.
#[utoipa::path(
    get,
    path = "/admin/stats",
    tag = "admin",
    summary = "Statistics",
    params(("event_id" = Option<String>, Query, description = "Only this event's captures and their SMS")),
    responses(
        (status = 200, description = "Totals, per day, per hour, SMS, backgrounds, outbox", body = Stats),
        (status = 400, description = "`invalid_query`, `unknown_event`"),
        (status = 503, description = "`catalog_unavailable`, `outbox_unavailable`"),
    )
)]
pub(super) async fn get_stats(
    State(app): State<SharedApp>,
    uri: axum::http::Uri,
) -> ApiResult<Json<Stats>> {
    let now = app.clock.now_ms();
    let tz = app.config.kiosk_tz.clone();
    let day_bounds = tz.last_days(now, DAYS);
    let hour_bounds = tz.last_hours(now, HOURS);
    let today = day_bounds[DAYS - 1];
    let tomorrow = day_bounds[DAYS];
    let scope = app.sync_scope();
    // `?event_id=`: every capture and SMS figure narrowed to that event (issue 20).
    let q: StatsQuery = crate::api::query(&uri)?;
    let event = match q
        .event_id
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        Some(id) => Some(crate::events::require(&app, id).await?),
        None => None,
    };
    let ev = event.as_ref().map(|e| e.id.clone());
    let (totals, today_totals, days, hours, sms, per_background) = app
        .catalog
        .read(move |c| {
            let ev = ev.as_deref();
            Ok((
                catalog::capture_totals_in(c, scope, i64::MIN, i64::MAX, ev)?,
                catalog::capture_totals_in(c, scope, today, tomorrow, ev)?,
                catalog::buckets_between_in(c, scope, &day_bounds, ev)?,
                catalog::buckets_between_in(c, scope, &hour_bounds, ev)?,
                catalog::sms_by_status_in(c, ev)?,
                catalog::captures_per_background_in(c, ev)?,
            ))
        })
        .await?;
    let outbox = {
        let outbox = app.outbox.clone();
        tokio::task::spawn_blocking(move || outbox.stats())
            .await
            .map_err(|e| ApiError::internal(format!("outbox task failed: {e}")))??
    };
    let sms_count = |s: &str| sms.get(s).copied().unwrap_or(0);
    let sms_today = days.last().map_or(0, |b| b.sms_sent);
    let stats = Stats {
        generated_at: catalog::format_ms(now),
        tz: tz.name().to_string(),
        captures: totals,
        today: StatsDay {
            date: tz.date_label(today),
            captures: today_totals.total,
            synced: today_totals.synced,
            sms_sent: sms_today,
        },
        sms: StatsSms {
            total: sms.values().sum::<i64>(),
            sent: sms_count("sent"),
            failed: sms_count("failed"),
            pending: sms_count("waiting_for_sync") + sms_count("queued") + sms_count("sending"),
            expired: sms_count("expired"),
            cancelled: sms_count("cancelled"),
            by_status: sms,
        },
        per_day: days
            .iter()
            .map(|b| StatsDay::of(tz.date_label(b.start_ms), *b))
            .collect(),
        per_hour: hours
            .iter()
            .map(|b| StatsHour {
                hour: tz.rfc3339(b.start_ms),
                local_hour: tz.local_hour(b.start_ms),
                captures: b.captures,
                synced: b.synced,
                sms_sent: b.sms_sent,
            })
            .collect(),
        per_background,
        outbox: StatsOutbox {
            pending: outbox.pending,
            leased: outbox.leased,
            dead: outbox.dead,
            oldest_created_at: outbox.oldest_created_ms.map(catalog::format_ms),
            by_kind: outbox.by_kind,
        },
        event: event.map(|e| crate::events::EventAnswer::of(&e, now)),
    };
    Ok(Json(stats))
}
