//! `POST /api/capture`, `POST /api/capture-batch`, `GET /api/captures/status`.

use std::collections::BTreeMap;

use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::{json_response, read_body};
use crate::app::SharedApp;
use crate::capture::{self, CaptureMeta};
use crate::catalog;
use crate::ids;

/// Extra room for the JSON around a base64 image.
const JSON_OVERHEAD: u64 = 64 * 1024;
/// Most ids in one status query.
pub const MAX_STATUS_IDS: usize = 500;
/// Most items in one batch.
pub const MAX_BATCH_ITEMS: usize = 100;

#[derive(Debug, Deserialize)]
pub struct CaptureJson {
    pub image: Option<String>,
    pub id: Option<String>,
    pub background_id: Option<String>,
    pub taken_at: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct CaptureQuery {
    pub id: Option<String>,
    pub background_id: Option<String>,
    pub taken_at: Option<String>,
}

fn json_limit(max: u64) -> u64 {
    max.div_ceil(3) * 4 + JSON_OVERHEAD
}

fn content_type(parts: &http::request::Parts) -> String {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("the body is not valid JSON for this route: {e}"),
        )
    })
}

fn item_from_json(j: CaptureJson, max: u64) -> ApiResult<(Vec<u8>, CaptureMeta)> {
    let meta = CaptureMeta {
        id: j.id,
        background_id: j.background_id,
        taken_at: j.taken_at,
    };
    capture::validate_meta(&meta)?;
    let image = j
        .image
        .ok_or_else(|| ApiError::bad_request("missing_image", "the body has no \"image\" field"))?;
    let bytes = capture::decode_image_field(&image, max)?;
    Ok((bytes, meta))
}

pub async fn post_capture(State(app): State<SharedApp>, req: Request) -> ApiResult<Response> {
    let max = app.config.max_capture_bytes;
    let query = req.uri().query().unwrap_or("").to_string();
    let ct = content_type_of(&req);
    let (bytes, meta) = match ct.as_str() {
        "image/jpeg" | "image/jpg" | "image/png" | "application/octet-stream" => {
            let q: CaptureQuery = serde_urlencoded_query(&query)?;
            let meta = CaptureMeta {
                id: q.id,
                background_id: q.background_id,
                taken_at: q.taken_at,
            };
            capture::validate_meta(&meta)?;
            let (_, body) = read_body(req, max).await?;
            (body.to_vec(), meta)
        }
        "application/json" | "" => {
            let (_, body) = read_body(req, json_limit(max)).await?;
            let j: CaptureJson = parse_json(&body)?;
            drop(body);
            item_from_json(j, max)?
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type {other} is not accepted (use application/json, image/jpeg or image/png)"),
            ))
        }
    };
    let (status, answer) = capture::ingest(&app, bytes, meta).await?;
    Ok(json_response(status, &answer))
}

fn content_type_of(req: &Request) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn serde_urlencoded_query<T: serde::de::DeserializeOwned + Default>(q: &str) -> ApiResult<T> {
    if q.is_empty() {
        return Ok(T::default());
    }
    let Query(v) =
        Query::<T>::try_from_uri(&format!("/?{q}").parse().map_err(|_| {
            ApiError::bad_request("invalid_query", "the query string is malformed")
        })?)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    Ok(v)
}

#[derive(Debug, Deserialize)]
pub struct BatchJson {
    pub captures: Vec<serde_json::Value>,
}

pub async fn post_batch(State(app): State<SharedApp>, req: Request) -> ApiResult<Response> {
    let max = app.config.max_capture_bytes;
    let limit = json_limit(max).max(64 * 1024 * 1024);
    let (parts, body) = read_body(req, limit).await?;
    let ct = content_type(&parts);
    if !(ct.is_empty() || ct == "application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the batch body must be application/json",
        ));
    }
    let batch: BatchJson = parse_json(&body)?;
    drop(body);
    if batch.captures.len() > MAX_BATCH_ITEMS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_items",
            format!("a batch holds at most {MAX_BATCH_ITEMS} captures"),
        ));
    }
    let mut results = Vec::with_capacity(batch.captures.len());
    for (index, value) in batch.captures.into_iter().enumerate() {
        let outcome = async {
            let j: CaptureJson = serde_json::from_value(value).map_err(|e| {
                ApiError::bad_request("invalid_json", format!("item is not a capture object: {e}"))
            })?;
            let (bytes, meta) = item_from_json(j, max)?;
            capture::ingest(&app, bytes, meta).await
        }
        .await;
        results.push(match outcome {
            Ok((status, answer)) => serde_json::json!({
                "index": index, "status": status.as_u16(), "id": answer.id, "capture": answer,
            }),
            Err(e) => serde_json::json!({
                "index": index, "status": e.status.as_u16(), "error": e.to_json(),
            }),
        });
    }
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "results": results }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    pub ids: Option<String>,
}

pub async fn get_status(
    State(app): State<SharedApp>,
    Query(q): Query<StatusQuery>,
) -> ApiResult<Response> {
    let raw = q.ids.unwrap_or_default();
    let wanted: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if wanted.is_empty() {
        return Err(ApiError::bad_request("missing_ids", "give ids=a,b,c"));
    }
    if wanted.len() > MAX_STATUS_IDS {
        return Err(ApiError::bad_request(
            "too_many_ids",
            format!("at most {MAX_STATUS_IDS} ids per query"),
        ));
    }
    if let Some(bad) = wanted.iter().find(|id| !ids::is_valid_id(id)) {
        let shown: String = bad.chars().filter(|c| !c.is_control()).take(70).collect();
        return Err(ApiError::bad_request(
            "invalid_id",
            format!("'{shown}' is not a valid id"),
        ));
    }
    let lookup = wanted.clone();
    let rows = app
        .catalog
        .read(move |c| catalog::get_captures(c, &lookup))
        .await?;
    let mut out = BTreeMap::new();
    for id in wanted {
        let row = rows.iter().find(|r| r.id == id);
        out.insert(
            id,
            serde_json::json!({
                "exists": row.is_some(),
                "is_synced": row.is_some_and(|r| r.synced_ms.is_some()),
            }),
        );
    }
    Ok(json_response(StatusCode::OK, &out))
}
