//! Events (issue 20): staff open and close named spans ("Mariage Dupont", "Salon du
//! 12 juin"); a capture taken while one is open belongs to it, or to the event the app
//! names. Events reach the remote database through the outbox (`event_sync` jobs), like
//! captures.
//!
//! Decisions: two events may not overlap in time (an open-ended event lasts forever), so
//! "the event open at capture time" is never ambiguous: to start the next event, close
//! the current one first. A start defaults to now; `"now"` is accepted for either bound
//! (the kiosk's clock, not the console's, decides). A capture's event is written when it
//! is stored and kept: editing an event later does not move captures in or out of it.

use std::sync::Arc;

use serde::Serialize;

use crate::app::App;
use crate::catalog::{self, CatalogError, EventRow};
use crate::jobs::outcome::{Outcome, Report, Wait};
use crate::outbox::{Job, JobKind, OutboxError};

/// Longest event name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the name must be 1-{MAX_NAME_CHARS} characters, not only spaces, without control characters")]
    InvalidName,
    #[error("{field} must be an RFC 3339 date-time (e.g. 2026-06-12T14:00:00+02:00) or \"now\"")]
    InvalidTime { field: &'static str },
    #[error("ends_at must be after starts_at")]
    EndBeforeStart,
    #[error("this span overlaps the event {other} ('{name}'): close it first or pick other times")]
    Overlap { other: String, name: String },
    /// The event named in the path does not exist.
    #[error("no event with this id")]
    NotFound,
    /// An event named in a filter or a body does not exist.
    #[error("no event with this event_id (see GET /admin/events)")]
    Unknown,
    #[error("the body must be a JSON object with name, starts_at, ends_at")]
    InvalidBody,
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// An event as the admin API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct EventAnswer {
    pub id: String,
    pub name: String,
    #[schema(format = DateTime)]
    pub starts_at: String,
    /// `null`: open-ended (open until closed).
    #[schema(format = DateTime)]
    pub ends_at: Option<String>,
    /// Open now (started, not ended).
    pub open: bool,
    /// Captures that belong to it.
    pub captures: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Its latest change is in the remote database (always `false` without one).
    pub synced: bool,
}

impl EventAnswer {
    pub fn of(e: &EventRow, now_ms: i64) -> EventAnswer {
        EventAnswer {
            id: e.id.clone(),
            name: e.name.clone(),
            starts_at: catalog::format_ms(e.starts_ms),
            ends_at: e.ends_ms.map(catalog::format_ms),
            open: e.is_open_at(now_ms),
            captures: e.captures,
            created_at: catalog::format_ms(e.created_ms),
            updated_at: catalog::format_ms(e.updated_ms),
            synced: e.synced_ms.is_some(),
        }
    }
}

/// What a PATCH changes: `None` leaves a field as it is; `ends_at: Some(None)` reopens.
#[derive(Debug, Default, Clone)]
pub struct EventPatch {
    pub name: Option<String>,
    pub starts_at: Option<String>,
    pub ends_at: Option<Option<String>>,
}

/// A trimmed, checked name.
pub fn check_name(raw: &str) -> Result<String, EventError> {
    let name = raw.trim();
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(EventError::InvalidName);
    }
    Ok(name.to_string())
}

/// An RFC 3339 time or `"now"`, in Unix milliseconds.
pub fn parse_time(v: &str, field: &'static str, now_ms: i64) -> Result<i64, EventError> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| EventError::InvalidTime { field })
}

/// The first event of `others` (not `id`) that `[starts, ends)` would overlap.
fn overlap<'a>(
    others: &'a [EventRow],
    id: &str,
    starts_ms: i64,
    ends_ms: Option<i64>,
) -> Option<&'a EventRow> {
    others
        .iter()
        .find(|o| o.id != id && o.overlaps(starts_ms, ends_ms))
}

/// Checks a span against the others and writes `row` (new or changed) in one transaction.
async fn store(app: &App, row: EventRow, new: bool) -> Result<EventRow, EventError> {
    if row.ends_ms.is_some_and(|e| e <= row.starts_ms) {
        return Err(EventError::EndBeforeStart);
    }
    let stored = app
        .catalog
        .write(move |tx| {
            let all = catalog::list_events(tx)?;
            if let Some(o) = overlap(&all, &row.id, row.starts_ms, row.ends_ms) {
                return Ok(Err(EventError::Overlap {
                    other: o.id.clone(),
                    name: o.name.clone(),
                }));
            }
            if new {
                catalog::insert_event(tx, &row)?;
            } else {
                catalog::update_event(tx, &row)?;
            }
            Ok(catalog::get_event(tx, &row.id)?.ok_or(EventError::NotFound))
        })
        .await??;
    queue_sync(app, &stored.id).await?;
    Ok(stored)
}

/// Queues the copy of an event to the remote database, when there is one.
async fn queue_sync(app: &App, id: &str) -> Result<(), EventError> {
    if app.remotes.db.is_some() {
        let now = app.clock.now_ms();
        app.outbox
            .push_durable(JobKind::EventSync, id, now, now)
            .await?;
    }
    Ok(())
}

/// Opens (or schedules) an event.
pub async fn create(
    app: &App,
    name: &str,
    starts_at: Option<&str>,
    ends_at: Option<&str>,
) -> Result<EventRow, EventError> {
    let now = app.clock.now_ms();
    let name = check_name(name)?;
    let starts_ms = match starts_at {
        Some(s) => parse_time(s, "starts_at", now)?,
        None => now,
    };
    let ends_ms = ends_at.map(|s| parse_time(s, "ends_at", now)).transpose()?;
    let row = EventRow {
        id: crate::ids::new_id(),
        name,
        starts_ms,
        ends_ms,
        created_ms: now,
        updated_ms: now,
        synced_ms: None,
        captures: 0,
    };
    let row = store(app, row, true).await?;
    tracing::info!(event_id = %row.id, "event created");
    Ok(row)
}

/// Renames, moves, closes (`ends_at`) or reopens (`ends_at: null`) an event.
pub async fn update(app: &App, id: &str, patch: EventPatch) -> Result<EventRow, EventError> {
    let mut row = get(app, id).await?;
    let now = app.clock.now_ms();
    if let Some(name) = &patch.name {
        row.name = check_name(name)?;
    }
    if let Some(s) = &patch.starts_at {
        row.starts_ms = parse_time(s, "starts_at", now)?;
    }
    if let Some(e) = &patch.ends_at {
        row.ends_ms = e
            .as_deref()
            .map(|s| parse_time(s, "ends_at", now))
            .transpose()?;
    }
    // A change in the same millisecond as the last must still count as a new version
    // (the remote copy compares them).
    row.updated_ms = now.max(row.updated_ms + 1);
    let row = store(app, row, false).await?;
    tracing::info!(event_id = %row.id, "event updated");
    Ok(row)
}

/// One event (`NotFound` when unknown or malformed).
pub async fn get(app: &App, id: &str) -> Result<EventRow, EventError> {
    if !crate::ids::is_valid_id(id) {
        return Err(EventError::NotFound);
    }
    let id = id.to_string();
    app.catalog
        .read(move |c| catalog::get_event(c, &id))
        .await?
        .ok_or(EventError::NotFound)
}

/// Checks an event id given as a filter or in a body (`Unknown` when it is not one).
pub async fn require(app: &App, id: &str) -> Result<EventRow, EventError> {
    get(app, id).await.map_err(|e| match e {
        EventError::NotFound => EventError::Unknown,
        other => other,
    })
}

/// Every event, the latest start first; `open`: only those open now (or only those not).
pub async fn list(app: &App, open: Option<bool>) -> Result<Vec<EventRow>, EventError> {
    let now = app.clock.now_ms();
    let rows = app.catalog.read(catalog::list_events).await?;
    Ok(rows
        .into_iter()
        .filter(|e| open.is_none_or(|o| e.is_open_at(now) == o))
        .collect())
}

/// Retry delay when the catalog itself failed.
const LOCAL_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// The `event_sync` job: upserts the event's row in the remote database.
pub async fn sync_job(app: &Arc<App>, job: Job) -> Report {
    let Some(db) = &app.remotes.db else {
        return Report::one(job, Outcome::Done);
    };
    let id = job.target.clone();
    let row = match app.catalog.read(move |c| catalog::get_event(c, &id)).await {
        Ok(Some(r)) => r,
        Ok(None) => return Report::one(job, Outcome::Done),
        Err(e) => return Report::one(job, Outcome::retry_in(e.to_string(), LOCAL_RETRY)),
    };
    if let Err(e) = db.upsert_event(&row).await {
        let error = e.to_string();
        let until =
            app.remotes
                .circuits
                .failure(crate::sync::Remote::Db, app.clock.now_ms(), &error);
        return Report::one(
            job,
            Outcome::RetryAfter {
                error,
                after: Wait::Until(until),
            },
        );
    }
    let now = app.clock.now_ms();
    let (id, version) = (row.id.clone(), row.updated_ms);
    match app
        .catalog
        .write(move |tx| catalog::mark_event_synced(tx, &id, version, now))
        .await
    {
        Ok(true) => Report::one(job, Outcome::Done),
        // Changed while it was being copied: copy the newer version too.
        Ok(false) => Report::one(job, Outcome::HoldUntil(now)),
        Err(e) => Report::one(job, Outcome::retry_in(e.to_string(), LOCAL_RETRY)),
    }
}

/// Start-up: an `event_sync` job for every event whose latest change is not remote yet
/// (when a remote database is configured); returns how many were pushed.
pub fn rebuild_jobs(
    catalog: &catalog::Catalog,
    outbox: &crate::outbox::Outbox,
    now_ms: i64,
    remote_db: bool,
) -> Result<usize, EventError> {
    if !remote_db {
        return Ok(0);
    }
    let mut added = 0;
    for id in catalog.read_blocking(catalog::unsynced_event_ids)? {
        if outbox.get(JobKind::EventSync, &id)?.is_none() {
            outbox.push(JobKind::EventSync, &id, now_ms, now_ms)?;
            added += 1;
        }
    }
    if added > 0 {
        tracing::warn!(jobs = added, "event sync jobs rebuilt from the catalog");
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_name("  Mariage  ").unwrap(), "Mariage");
        assert!(check_name("   ").is_err());
        assert!(check_name(&"é".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(check_name(&"é".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(check_name("a\nb").is_err());
    }

    #[test]
    fn times_are_rfc3339_or_now() {
        assert_eq!(parse_time("now", "starts_at", 42).unwrap(), 42);
        assert_eq!(
            parse_time("1970-01-01T00:00:01+01:00", "starts_at", 0).unwrap(),
            1000 - 3_600_000
        );
        assert!(matches!(
            parse_time("demain", "ends_at", 0),
            Err(EventError::InvalidTime { field: "ends_at" })
        ));
    }
}
