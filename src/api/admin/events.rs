//! `GET`/`POST /admin/events`, `GET`/`PATCH /admin/events/{id}` (issue 20): staff open,
//! close, rename and reopen events; the rules are [`crate::events`]'.

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::parse_bool;
use crate::api::error::ApiResult;
use crate::api::{json_response, query, read_body};
use crate::app::SharedApp;
use crate::events::{self, EventAnswer, EventError, EventPatch};

/// Largest request body.
const BODY_LIMIT: usize = 16 * 1024;

/// `POST /admin/events` body.
#[derive(Debug, Deserialize, ToSchema)]
struct NewEvent {
    /// 1-100 characters.
    #[schema(required = true, nullable = false, example = "Mariage Dupont")]
    name: Option<String>,
    /// RFC 3339 or `"now"`; absent: now.
    #[schema(format = DateTime)]
    starts_at: Option<String>,
    /// RFC 3339 or `"now"`; absent: open until closed.
    #[schema(format = DateTime)]
    ends_at: Option<String>,
}

/// `PATCH /admin/events/{id}` body: only the fields present change.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // the schema only: the body is read as a JSON object
struct EventChange {
    name: Option<String>,
    /// RFC 3339 or `"now"`.
    #[schema(format = DateTime)]
    starts_at: Option<String>,
    /// RFC 3339 or `"now"` closes the event; `null` reopens it.
    #[schema(format = DateTime)]
    ends_at: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    open: Option<String>,
}

/// What `GET /admin/events` answers.
#[derive(Debug, Serialize, ToSchema)]
struct EventList {
    /// The latest start first.
    items: Vec<EventAnswer>,
}

/// A JSON object body, or `invalid_json`.
async fn body_object(req: Request) -> ApiResult<serde_json::Map<String, Value>> {
    let (_, body) = read_body(req, BODY_LIMIT as u64).await?;
    match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(EventError::InvalidBody.into()),
    }
}

/// `GET /admin/events`
#[utoipa::path(
    get,
    path = "/admin/events",
    tag = "admin",
    summary = "List events, the latest start first",
    params(("open" = Option<bool>, Query, description = "Only the events open now (`true`) or not (`false`)")),
    responses(
        (status = 200, description = "Every event", body = EventList),
        (status = 400, description = "`invalid_query`, `invalid_open`"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
pub(super) async fn list_events(State(app): State<SharedApp>, uri: Uri) -> ApiResult<Response> {
    let q: ListQuery = query(&uri)?;
    let open = parse_bool(q.open.as_deref(), "invalid_open", "open")?;
    let now = app.clock.now_ms();
    let items = events::list(&app, open)
        .await?
        .iter()
        .map(|e| EventAnswer::of(e, now))
        .collect();
    Ok(json_response(StatusCode::OK, &EventList { items }))
}

/// `POST /admin/events`
#[utoipa::path(
    post,
    path = "/admin/events",
    tag = "admin",
    summary = "Open (or schedule) an event",
    description = "Events may not overlap: close the open one before opening the next.",
    request_body(content = NewEvent, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = EventAnswer),
        (status = 400, description = "`invalid_json`, `invalid_name`, `invalid_starts_at`, `invalid_ends_at`, `invalid_event_range`, `body_read_error`"),
        (status = 409, description = "`event_overlap`"),
        (status = 413, description = "`payload_too_large`"),
        (status = 503, description = "`catalog_unavailable`, `outbox_unavailable`"),
    )
)]
pub(super) async fn post_event(State(app): State<SharedApp>, req: Request) -> ApiResult<Response> {
    let m = body_object(req).await?;
    let new: NewEvent =
        serde_json::from_value(Value::Object(m)).map_err(|_| EventError::InvalidBody)?;
    let name = new.name.ok_or(EventError::InvalidName)?;
    let (starts, ends) = (new.starts_at.as_deref(), new.ends_at.as_deref());
    let row = events::create(&app, &name, starts, ends).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &EventAnswer::of(&row, app.clock.now_ms()),
    ))
}

/// `GET /admin/events/{id}`
#[utoipa::path(
    get,
    path = "/admin/events/{id}",
    tag = "admin",
    summary = "One event",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The event", body = EventAnswer),
        (status = 404, description = "`unknown_event`"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
pub(super) async fn get_event(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let row = events::get(&app, &id).await?;
    Ok(json_response(
        StatusCode::OK,
        &EventAnswer::of(&row, app.clock.now_ms()),
    ))
}

/// `PATCH /admin/events/{id}`
#[utoipa::path(
    patch,
    path = "/admin/events/{id}",
    tag = "admin",
    summary = "Rename, move, close or reopen an event",
    description = "`ends_at` closes the event (`\"now\"` for now), `ends_at: null` reopens it. \
                   Captures keep the event they were stored with.",
    params(("id" = String, Path)),
    request_body(content = EventChange, content_type = "application/json"),
    responses(
        (status = 200, description = "The event as changed", body = EventAnswer),
        (status = 400, description = "`invalid_json`, `invalid_name`, `invalid_starts_at`, `invalid_ends_at`, `invalid_event_range`, `body_read_error`"),
        (status = 404, description = "`unknown_event`"),
        (status = 409, description = "`event_overlap`"),
        (status = 413, description = "`payload_too_large`"),
        (status = 503, description = "`catalog_unavailable`, `outbox_unavailable`"),
    )
)]
pub(super) async fn patch_event(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    // Unknown first: a bad body for an event that does not exist is still a 404.
    events::get(&app, &id).await?;
    let m = body_object(req).await?;
    let patch = EventPatch {
        name: match m.get("name") {
            Some(Value::String(s)) => Some(s.clone()),
            None => None,
            Some(_) => return Err(EventError::InvalidName.into()),
        },
        starts_at: match m.get("starts_at") {
            Some(Value::String(s)) => Some(s.clone()),
            None => None,
            Some(_) => return Err(EventError::InvalidTime { field: "starts_at" }.into()),
        },
        ends_at: match m.get("ends_at") {
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(Value::Null) => Some(None),
            None => None,
            Some(_) => return Err(EventError::InvalidTime { field: "ends_at" }.into()),
        },
    };
    let row = events::update(&app, &id, patch).await?;
    Ok(json_response(
        StatusCode::OK,
        &EventAnswer::of(&row, app.clock.now_ms()),
    ))
}
