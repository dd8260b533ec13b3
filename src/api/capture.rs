//! `POST /api/capture`, `POST /api/capture-batch`, `GET /api/captures/status`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorDetail};
use super::openapi::EXAMPLE_JPEG_BASE64;
use super::{declared_length, json_response, media_type, query, read_body, read_body_chunks};
use crate::app::{App, SharedApp};
use crate::capture::{self, CaptureAnswer, CaptureMeta, Ingested};
use crate::catalog;
use crate::ids;

/// Extra room for the JSON around a base64 image.
const JSON_OVERHEAD: u64 = 64 * 1024;
/// Most ids in one status query.
pub const MAX_STATUS_IDS: usize = 500;
/// Most items in one batch.
pub const MAX_BATCH_ITEMS: usize = 100;

/// One capture as JSON.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CaptureJson<'a> {
    /// The JPEG or PNG image: base64 (standard or URL-safe alphabet, padding optional) or
    /// a `data:image/…;base64,` URL. Missing: 400 `missing_image`.
    // Borrowed from the body when it has no JSON escapes (the usual case): a photo's
    // megabytes are not copied once more.
    #[serde(borrow)]
    #[schema(required = true, nullable = false, value_type = String, example = json!(EXAMPLE_JPEG_BASE64))]
    pub image: Option<Cow<'a, str>>,
    /// A client-chosen id; absent: the daemon makes one (32 lowercase hex characters).
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub id: Option<String>,
    /// The background the photo was composed with.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub background_id: Option<String>,
    /// When the photo was taken, RFC 3339.
    #[schema(format = DateTime)]
    pub taken_at: Option<String>,
    /// The event the capture belongs to (`GET /admin/events`); absent: the event open
    /// now, if any. Unknown: 400 `unknown_event`, nothing stored.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub event_id: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct CaptureQuery {
    pub id: Option<String>,
    pub background_id: Option<String>,
    pub taken_at: Option<String>,
    pub event_id: Option<String>,
}

fn json_limit(max: u64) -> u64 {
    max.div_ceil(3) * 4 + JSON_OVERHEAD
}

fn parse_json<'de, T: Deserialize<'de>>(body: &'de [u8]) -> ApiResult<T> {
    super::json_object(body)
}

/// `out`: where the image is decoded (see [`capture::decode_image_field`]).
fn item_from_json(j: CaptureJson<'_>, max: u64, out: Vec<u8>) -> ApiResult<(Vec<u8>, CaptureMeta)> {
    let meta = CaptureMeta {
        id: j.id,
        background_id: j.background_id,
        taken_at: j.taken_at,
        event_id: j.event_id,
    };
    capture::validate_meta(&meta)?;
    let image = j
        .image
        .ok_or_else(|| ApiError::bad_request("missing_image", "the body has no \"image\" field"))?;
    let bytes = capture::decode_image_field(&image, max, out)?;
    Ok((bytes, meta))
}

/// The fields of a capture body whose image was decoded as it arrived: `doc` is the body
/// with the base64 cut out, `kept` what its image string must then hold.
fn meta_of_cut_doc(doc: &[u8], kept: &str) -> Option<CaptureMeta> {
    let j: CaptureJson = parse_json(doc).ok()?;
    (j.image.as_deref() == Some(kept)).then_some(CaptureMeta {
        id: j.id,
        background_id: j.background_id,
        taken_at: j.taken_at,
        event_id: j.event_id,
    })
}

/// `POST /api/capture`
#[utoipa::path(
    post,
    path = "/api/capture",
    tag = "captures",
    summary = "Store one capture",
    description = "A JSON body, or the raw image (`image/jpeg`, `image/png`, \
                   `application/octet-stream`) with `id`, `background_id`, `taken_at` as query \
                   parameters. Without `Content-Type`, a body that starts like a JPEG or PNG is \
                   taken as the raw image, one that starts with `{` as JSON. \
                   PNG is converted to JPEG. A 201 means the photo is on disk for good. \
                   The same id with the same bytes again answers 200 with the same answer.",
    params(
        ("id" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "Raw bodies only: the client-chosen id"),
        ("background_id" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "Raw bodies only"),
        ("taken_at" = Option<String>, Query, format = DateTime, description = "Raw bodies only: RFC 3339"),
        ("event_id" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "Raw bodies only: the event (absent: the one open now)"),
    ),
    request_body(content(
        (CaptureJson = "application/json"),
        ("image/jpeg"),
        ("image/png"),
        ("application/octet-stream"),
    )),
    responses(
        (status = 201, description = "Stored", body = CaptureAnswer),
        (status = 200, description = "Already stored with this id and these bytes (a retried request)", body = CaptureAnswer),
        (status = 400, description = "`invalid_json`, `invalid_base64`, `missing_image` (also an empty raw body), `invalid_id`, `invalid_background_id`, `unknown_background` (no background has this id), `invalid_taken_at`, `invalid_query`, `body_read_error`, `unknown_event`"),
        (status = 409, description = "`id_conflict`: this id is taken by other bytes"),
        (status = 413, description = "`payload_too_large`, `image_too_large`"),
        (status = 415, description = "`unsupported_image` (not a JPEG or PNG), `unsupported_media_type` (another Content-Type, or none and a body that is neither an image nor JSON)"),
        (status = 422, description = "`invalid_image`: truncated or corrupt"),
        (status = 503, description = "`catalog_unavailable`, `outbox_unavailable`, `storage_error`"),
        (status = 507, description = "`insufficient_storage`: the disk is full"),
    )
)]
pub async fn post_capture(State(app): State<SharedApp>, req: Request) -> ApiResult<Response> {
    let started = crate::clock::Stopwatch::start();
    let answer = store_capture(app.clone(), req).await;
    app.metrics.capture(super::metrics::capture_result(&answer));
    app.metrics.capture_duration(started.elapsed());
    answer
}

async fn store_capture(app: SharedApp, req: Request) -> ApiResult<Response> {
    let max = app.config.max_capture_bytes;
    let ct = media_type(req.headers());
    let (upload, meta) = match ct.as_str() {
        "image/jpeg" | "image/jpg" | "image/png" | "application/octet-stream" => {
            raw_upload(&app, req, max).await?
        }
        "application/json" => json_upload(&app, req, max).await?,
        // No Content-Type: what the body starts with says what it is (curl --data-binary
        // and many HTTP libraries send a photo without one).
        "" => match sniff_untyped(req).await? {
            (req, Untyped::Image) => raw_upload(&app, req, max).await?,
            (req, Untyped::Json) => json_upload(&app, req, max).await?,
            (_, Untyped::Empty) => return Err(missing_raw_image()),
            (_, Untyped::Other) => {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "the body has no Content-Type and is neither a JPEG or PNG image nor a JSON \
                     object: send Content-Type: image/jpeg (or image/png) with the photo, or \
                     application/json with {\"image\": \"<base64>\"}",
                ))
            }
        },
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type {other} is not accepted (use application/json, image/jpeg or image/png)"),
            ))
        }
    };
    let (ingested, answer) = capture::ingest_upload(&app, upload, meta).await?;
    Ok(json_response(status_of(ingested), &answer))
}

fn missing_raw_image() -> ApiError {
    ApiError::bad_request(
        "missing_image",
        "the body is empty: send the photo's bytes (Content-Type: image/jpeg or image/png)",
    )
}

/// A raw image body, its fields from the query string.
async fn raw_upload(
    app: &App,
    req: Request,
    max: u64,
) -> ApiResult<(capture::Upload, CaptureMeta)> {
    let q: CaptureQuery = query(req.uri())?;
    let meta = CaptureMeta {
        id: q.id,
        background_id: q.background_id,
        taken_at: q.taken_at,
        event_id: q.event_id,
    };
    capture::validate_meta(&meta)?;
    // Before the body is read: an unknown background refuses it whole.
    capture::check_background(app, meta.background_id.as_deref()).await?;
    let too_large = |e: ApiError| {
        if e.code == "payload_too_large" {
            ApiError::capture_too_large(max)
        } else {
            e
        }
    };
    // A declared length: the body goes to disk as it arrives.
    let upload = match declared_length(&req) {
        Some(0) => return Err(missing_raw_image()),
        Some(len) if len <= max => {
            let id = meta.id.clone().unwrap_or_else(ids::new_id);
            let mut streaming = capture::StreamingUpload::start(app, &id, len);
            read_body_chunks(req, max, |chunk| streaming.feed(chunk))
                .await
                .map_err(too_large)?;
            streaming.finish().await?.0
        }
        _ => {
            let (_, body) = read_body(req, max).await.map_err(too_large)?;
            if body.is_empty() {
                return Err(missing_raw_image());
            }
            capture::Upload {
                source: body,
                file: None,
                digest: None,
            }
        }
    };
    Ok((upload, meta))
}

/// What a body without Content-Type turned out to be.
enum Untyped {
    Image,
    Json,
    Empty,
    Other,
}

/// Reads the first bytes of a body that has no Content-Type and gives the request back
/// whole (the bytes read are put back in front of the rest, which still streams).
async fn sniff_untyped(req: Request) -> ApiResult<(Request, Untyped)> {
    use futures_util::StreamExt;

    /// Enough for the JPEG and PNG signatures, or the `{` after some blank space.
    const WANT: usize = 16;
    let (parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let mut head = bytes::BytesMut::new();
    while head.len() < WANT {
        match stream.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(e)) => {
                return Err(ApiError::bad_request(
                    "body_read_error",
                    format!("could not read the request body: {e}"),
                ))
            }
            None => break,
        }
    }
    let head = head.freeze();
    let first = head.iter().find(|b| !b.is_ascii_whitespace());
    let kind = if head.is_empty() {
        Untyped::Empty
    } else if crate::storage::image::sniff(&head).is_some() {
        Untyped::Image
    } else if first == Some(&b'{') || first.is_none() {
        Untyped::Json
    } else {
        Untyped::Other
    };
    let rest = futures_util::stream::once(async move { Ok::<_, axum::Error>(head) }).chain(stream);
    Ok((Request::from_parts(parts, Body::from_stream(rest)), kind))
}

/// 201 for a capture stored now, 200 for a retried one.
fn status_of(ingested: Ingested) -> StatusCode {
    match ingested {
        Ingested::Created => StatusCode::CREATED,
        Ingested::Repeated => StatusCode::OK,
    }
}

/// A JSON capture body: its upload and fields.
async fn json_upload(
    app: &App,
    req: Request,
    max: u64,
) -> ApiResult<(capture::Upload, CaptureMeta)> {
    let limit = json_limit(max);
    let too_large = |e: ApiError| {
        if e.code == "payload_too_large" {
            ApiError::json_capture_too_large(max, limit)
        } else {
            e
        }
    };
    match declared_length(&req) {
        // A declared length: the image is decoded and written as the body arrives (when
        // the body starts the usual way, see `capture::StreamingUpload`).
        Some(len) if len <= limit => {
            let mut streaming = capture::StreamingUpload::start_json(
                app,
                len,
                max,
                meta_of_cut_doc,
                move |body, out| item_from_json(parse_json(body)?, max, out),
            );
            read_body_chunks(req, limit, |chunk| streaming.feed(chunk))
                .await
                .map_err(too_large)?;
            let (upload, meta) = streaming.finish().await?;
            let meta = meta.ok_or_else(|| ApiError::internal("the JSON upload read no fields"))?;
            Ok((upload, meta))
        }
        // Chunked (or over the limit, refused by `read_body`): gathered, then read.
        _ => {
            let (_, body) = read_body(req, limit).await.map_err(too_large)?;
            // The image's buffer is allocated here, on a runtime worker, like a raw body's:
            // glibc keeps freed megabytes in the arena of the thread that allocated them.
            let out = Vec::with_capacity((body.len() / 4 * 3).min(max as usize));
            // Parsing and decoding megabytes is CPU work: off the async workers.
            capture::produce_then_hash(move || item_from_json(parse_json(&body)?, max, out)).await
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BatchJson {
    /// Each item is checked on its own: a bad one does not fail the others.
    #[schema(value_type = Vec<CaptureJson>, max_items = 100)]
    pub captures: Vec<serde_json::Value>,
}

/// The answer of `POST /api/capture-batch`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAnswer {
    /// One per item, in order.
    pub results: Vec<BatchItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    /// The item's position in `captures`.
    pub index: usize,
    /// The HTTP status the item would have had alone (201, 200, 400, 409, 413, …).
    pub status: u16,
    /// Stored items: the capture id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Stored items: what `POST /api/capture` answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<CaptureAnswer>,
    /// Refused items: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ErrorDetail>)]
    pub error: Option<serde_json::Value>,
}

/// `POST /api/capture-batch`
#[utoipa::path(
    post,
    path = "/api/capture-batch",
    tag = "captures",
    summary = "Store several captures",
    description = "Up to 100 captures as JSON; each gets its own result.",
    request_body(content = BatchJson, content_type = "application/json",
        example = json!({"captures": [{"image": EXAMPLE_JPEG_BASE64}]})),
    responses(
        (status = 200, description = "One result per item", body = BatchAnswer),
        (status = 400, description = "`invalid_json`, `body_read_error`"),
        (status = 413, description = "`payload_too_large`, `too_many_items`"),
        (status = 415, description = "`unsupported_media_type`: not JSON"),
    )
)]
pub async fn post_batch(State(app): State<SharedApp>, req: Request) -> ApiResult<Response> {
    let max = app.config.max_capture_bytes;
    let limit = json_limit(max).max(64 * 1024 * 1024);
    let (parts, body) = read_body(req, limit).await?;
    let ct = media_type(&parts.headers);
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
            if !value.is_object() {
                return Err(ApiError::bad_request(
                    "invalid_json",
                    "item is not a capture object",
                ));
            }
            let j = CaptureJson::deserialize(&value).map_err(|e| {
                ApiError::bad_request("invalid_json", format!("item is not a capture object: {e}"))
            })?;
            let (bytes, meta) = item_from_json(j, max, Vec::new())?;
            Ok(capture::ingest(&app, bytes, meta).await?)
        }
        .await;
        super::metrics::count_batch_item(&app, &outcome);
        results.push(match outcome {
            Ok((ingested, answer)) => BatchItem {
                index,
                status: status_of(ingested).as_u16(),
                id: Some(answer.id.clone()),
                capture: Some(answer),
                error: None,
            },
            Err(e) => BatchItem {
                index,
                status: e.status.as_u16(),
                id: None,
                capture: None,
                error: Some(e.to_json()),
            },
        });
    }
    Ok(json_response(StatusCode::OK, &BatchAnswer { results }))
}

#[derive(Debug, Default, Deserialize)]
pub struct StatusQuery {
    pub ids: Option<String>,
}

/// What `GET /api/captures/status` says of one id.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaptureStatus {
    pub exists: bool,
    /// Every configured remote has it (always, when no remote is configured).
    pub is_synced: bool,
    /// Known captures: the guest's link (null without `PUBLIC_BASE_URL`). Absent for
    /// unknown ids, which answer `exists` and `is_synced` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub share_url: Option<Option<String>>,
    /// Known captures: `share_url` works now (what it links to is in remote storage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_ready: Option<bool>,
}

/// `GET /api/captures/status`
#[utoipa::path(
    get,
    path = "/api/captures/status",
    tag = "captures",
    summary = "Whether captures exist and are synced",
    params(
        ("ids" = String, Query, description = "Comma-separated ids, at most 500", example = "a1,b2"),
    ),
    responses(
        (status = 200, description = "One entry per asked id; unknown ids are `exists: false`",
            body = BTreeMap<String, CaptureStatus>),
        (status = 400, description = "`missing_ids`, `too_many_ids`, `invalid_id`, `invalid_query`"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
pub async fn get_status(State(app): State<SharedApp>, req: Request) -> ApiResult<Response> {
    let q: StatusQuery = query(req.uri())?;
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
        let (share_url, link_ready) = match row.map(|r| crate::share::fields(&app, r)) {
            Some((url, ready)) => (Some(url), Some(ready)),
            None => (None, None),
        };
        out.insert(
            id,
            CaptureStatus {
                exists: row.is_some(),
                is_synced: row.is_some_and(|r| app.is_synced(r)),
                share_url,
                link_ready,
            },
        );
    }
    Ok(json_response(StatusCode::OK, &out))
}
