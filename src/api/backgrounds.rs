//! Backgrounds ("fonds"): pictures the admin uploads and the touchscreen app offers.
//!
//! Admin: `POST /admin/backgrounds` (a raw `image/jpeg`/`image/png` body with `?name=` and
//! optional `position=`, or `multipart/form-data` with a `file` field plus `name` and
//! `position` fields), `GET /admin/backgrounds`, `PATCH`/`DELETE /admin/backgrounds/{id}`.
//! Public: `GET /api/backgrounds`, `GET /api/backgrounds/{id}` (the JPEG) and
//! `GET /api/backgrounds/{id}/thumbnail`.
//!
//! An upload is checked like a capture (same size limit, same error codes); the files and
//! their rows are [`crate::storage::backgrounds`]' job.

use std::path::Path;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::routing::{route, Mode, Routes};
use super::{json_response, read_body};
use crate::app::{App, SharedApp};
use crate::catalog::{self, BackgroundRow};
use crate::ids;
use crate::storage::backgrounds::BackgroundInfo;

/// Longest background name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Room for the multipart framing and the text fields around the file.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;
pub fn public_routes<M: Mode<SharedApp>>() -> Routes<SharedApp, M> {
    Routes::new()
        .with(route!(public_list))
        .with(route!(get_image))
        .with(route!(get_thumbnail))
}

pub fn admin_routes<M: Mode<SharedApp>>() -> Routes<SharedApp, M> {
    Routes::new()
        .with(
            // The body is read with our own limit (MAX_CAPTURE_BYTES), before the
            // multipart parser sees it; axum's 2 MB default must not apply.
            route!(admin_list, upload).map(|m| m.layer(DefaultBodyLimit::disable())),
        )
        .with(route!(patch_background, delete_background))
}

/// A background as the app sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicBackground {
    pub id: String,
    pub name: String,
    /// Display order (smaller first).
    pub position: i64,
    pub width: i64,
    pub height: i64,
    /// `/api/backgrounds/{id}`
    pub url: String,
    /// `/api/backgrounds/{id}/thumbnail`
    pub thumbnail_url: String,
}

impl From<&BackgroundRow> for PublicBackground {
    fn from(r: &BackgroundRow) -> Self {
        PublicBackground {
            id: r.id.clone(),
            name: r.name.clone(),
            position: r.position,
            width: r.width,
            height: r.height,
            url: format!("/api/backgrounds/{}", r.id),
            thumbnail_url: format!("/api/backgrounds/{}/thumbnail", r.id),
        }
    }
}

/// A background as the admin sees it: the public fields plus size, hash and date.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminBackground {
    #[serde(flatten)]
    pub public: PublicBackground,
    pub bytes: i64,
    pub sha256: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&BackgroundRow> for AdminBackground {
    fn from(r: &BackgroundRow) -> Self {
        AdminBackground {
            public: PublicBackground::from(r),
            bytes: r.bytes,
            sha256: r.sha256.clone(),
            created_at: catalog::format_ms(r.created_ms),
        }
    }
}

async fn rows(app: &App) -> ApiResult<Vec<BackgroundRow>> {
    Ok(app.catalog.read(catalog::list_backgrounds).await?)
}

/// `GET /api/backgrounds`
#[utoipa::path(
    get,
    path = "/api/backgrounds",
    tag = "backgrounds",
    summary = "The backgrounds to offer",
    responses(
        (status = 200, description = "In display order", body = Vec<PublicBackground>),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
async fn public_list(State(app): State<SharedApp>) -> ApiResult<Response> {
    let list: Vec<PublicBackground> = rows(&app).await?.iter().map(Into::into).collect();
    Ok(json_response(StatusCode::OK, &list))
}

/// `GET /admin/backgrounds`
#[utoipa::path(
    get,
    path = "/admin/backgrounds",
    tag = "admin",
    summary = "The backgrounds, with size, hash and date",
    responses(
        (status = 200, description = "In display order", body = Vec<AdminBackground>),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
async fn admin_list(State(app): State<SharedApp>) -> ApiResult<Response> {
    let list: Vec<AdminBackground> = rows(&app).await?.iter().map(Into::into).collect();
    Ok(json_response(StatusCode::OK, &list))
}

fn check_id(id: &str) -> ApiResult<()> {
    if ids::is_valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_id",
            "not a valid background id",
        ))
    }
}

async fn find(app: &App, id: &str) -> ApiResult<BackgroundRow> {
    check_id(id)?;
    let lookup = id.to_string();
    app.catalog
        .read(move |c| catalog::get_background(c, &lookup))
        .await?
        .ok_or_else(|| ApiError::not_found("no background with this id"))
}

/// `GET /api/backgrounds/{id}`
#[utoipa::path(
    get,
    path = "/api/backgrounds/{id}",
    tag = "backgrounds",
    summary = "A background's JPEG",
    params(
        ("id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer"),
    ),
    responses(
        (status = 200, description = "The JPEG", content_type = "image/jpeg",
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 400, description = "`invalid_id`"),
        (status = 404, description = "`not_found`"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
async fn get_image(
    State(app): State<SharedApp>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let row = find(&app, &id).await?;
    let etag = format!("\"{}\"", row.sha256);
    serve_jpeg(&app.backgrounds.image_path(&row.id), &etag, &headers).await
}

/// `GET /api/backgrounds/{id}/thumbnail`
#[utoipa::path(
    get,
    path = "/api/backgrounds/{id}/thumbnail",
    tag = "backgrounds",
    summary = "A background's thumbnail (JPEG, at most 320 px wide)",
    params(
        ("id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer"),
    ),
    responses(
        (status = 200, description = "The JPEG", content_type = "image/jpeg",
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 400, description = "`invalid_id`"),
        (status = 404, description = "`not_found`"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
async fn get_thumbnail(
    State(app): State<SharedApp>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let row = find(&app, &id).await?;
    let etag = format!("\"{}-thumb\"", row.sha256);
    serve_jpeg(&app.backgrounds.thumb_path(&row.id), &etag, &headers).await
}

/// Backgrounds: the content behind an id never changes, so an hour of public caching is
/// safe.
async fn serve_jpeg(path: &Path, etag: &str, headers: &HeaderMap) -> ApiResult<Response> {
    super::files::serve_jpeg(path, etag, "public, max-age=3600", headers).await
}

/// A name the app can show: trimmed, 1-100 characters, no control characters.
fn check_name(name: Option<&str>) -> ApiResult<String> {
    let name = name.map(str::trim).unwrap_or("");
    if name.is_empty() {
        return Err(ApiError::bad_request(
            "missing_name",
            "a background needs a name (?name=… or a multipart \"name\" field)",
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_name",
            format!(
                "the name must be at most {MAX_NAME_CHARS} characters, without control characters"
            ),
        ));
    }
    Ok(name.to_string())
}

const MAX_POSITION: i64 = 1_000_000;

fn check_position(p: i64) -> ApiResult<i64> {
    if (-MAX_POSITION..=MAX_POSITION).contains(&p) {
        Ok(p)
    } else {
        Err(invalid_position())
    }
}

fn invalid_position() -> ApiError {
    ApiError::bad_request(
        "invalid_position",
        format!("position must be a whole number between -{MAX_POSITION} and {MAX_POSITION}"),
    )
}

fn parse_position(s: Option<&str>) -> ApiResult<Option<i64>> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .map_err(|_| invalid_position())
            .and_then(check_position)
            .map(Some),
    }
}

#[derive(Debug, Default, Deserialize)]
struct UploadQuery {
    name: Option<String>,
    position: Option<String>,
}

/// The multipart form of `POST /admin/backgrounds`.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: the form is read field by field
struct UploadForm {
    /// The JPEG or PNG image.
    #[schema(value_type = String, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
    /// 1-100 characters, no control characters (or `?name=`).
    name: Option<String>,
    /// Display order, -1000000 to 1000000 (or `?position=`).
    position: Option<String>,
}

/// `POST /admin/backgrounds`
#[utoipa::path(
    post,
    path = "/admin/backgrounds",
    tag = "admin",
    summary = "Upload a background",
    description = "A raw `image/jpeg`/`image/png` body with `?name=` (and `position=`), or \
                   `multipart/form-data` with a `file` field plus `name` and `position`. \
                   Checked like a capture; PNG is converted to JPEG.",
    params(
        ("name" = Option<String>, Query, description = "Required with a raw body"),
        ("position" = Option<String>, Query, description = "A whole number, -1000000 to 1000000"),
    ),
    request_body(content(
        (UploadForm = "multipart/form-data"),
        ("image/jpeg"),
        ("image/png"),
        ("application/octet-stream"),
    )),
    responses(
        (status = 201, description = "Stored", body = AdminBackground),
        (status = 400, description = "`missing_name`, `invalid_name`, `invalid_position`, `missing_file`, `invalid_multipart`, `invalid_query`, `body_read_error`"),
        (status = 413, description = "`payload_too_large`, `image_too_large`"),
        (status = 415, description = "`unsupported_media_type`, `unsupported_image`"),
        (status = 422, description = "`invalid_image`"),
        (status = 503, description = "`catalog_unavailable`, `storage_error`"),
        (status = 507, description = "`insufficient_storage`"),
    )
)]
async fn upload(State(app): State<SharedApp>, req: Request) -> ApiResult<Response> {
    let max = app.config.max_capture_bytes;
    let query: UploadQuery = super::query(req.uri())?;
    let ct = super::media_type(req.headers());
    let (source, name, position) = match ct.as_str() {
        "image/jpeg" | "image/jpg" | "image/png" | "application/octet-stream" => {
            // Cheap checks first: no need to read 25 MB to say the name is missing.
            let name = check_name(query.name.as_deref())?;
            let position = parse_position(query.position.as_deref())?;
            let (_, body) = read_body(req, max).await?;
            (body.to_vec(), name, position)
        }
        "multipart/form-data" => {
            let form = read_multipart(req, max).await?;
            let name = check_name(form.name.as_deref().or(query.name.as_deref()))?;
            let position = parse_position(form.position.as_deref().or(query.position.as_deref()))?;
            let file = form.file.ok_or_else(|| {
                ApiError::bad_request("missing_file", "the form has no \"file\" field")
            })?;
            (file, name, position)
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type '{other}' is not accepted (use image/jpeg, image/png or multipart/form-data)"),
            ))
        }
    };
    if source.is_empty() {
        return Err(ApiError::bad_request("missing_file", "the image is empty"));
    }
    let info = BackgroundInfo {
        name,
        position,
        created_ms: app.clock.now_ms(),
    };
    let row = app
        .backgrounds
        .add(source, info, app.disk_reserve_bytes())
        .await?;
    tracing::info!(background_id = %row.id, name = %row.name, "background added");
    Ok(json_response(
        StatusCode::CREATED,
        &AdminBackground::from(&row),
    ))
}

#[derive(Default)]
struct Form {
    file: Option<Vec<u8>>,
    name: Option<String>,
    position: Option<String>,
}

fn invalid_multipart(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(
        "invalid_multipart",
        format!("the multipart/form-data body is malformed: {e}"),
    )
}

async fn read_multipart(req: Request, max: u64) -> ApiResult<Form> {
    // The whole body is bounded first (413 before anything is parsed), then parsed.
    let (parts, body) = read_body(req, max + MULTIPART_OVERHEAD).await?;
    let req = Request::from_parts(parts, Body::from(body));
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|e| invalid_multipart(e.body_text()))?;
    let mut form = Form::default();
    while let Some(field) = mp.next_field().await.map_err(invalid_multipart)? {
        match field.name().unwrap_or("") {
            "file" => {
                if form.file.is_some() {
                    return Err(ApiError::bad_request(
                        "invalid_multipart",
                        "the form has more than one \"file\" field",
                    ));
                }
                let data = field.bytes().await.map_err(invalid_multipart)?;
                if data.len() as u64 > max {
                    return Err(ApiError::too_large(max));
                }
                form.file = Some(data.to_vec());
            }
            "name" => form.name = Some(field.text().await.map_err(invalid_multipart)?),
            "position" => form.position = Some(field.text().await.map_err(invalid_multipart)?),
            _ => {}
        }
    }
    Ok(form)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    /// 1-100 characters, no control characters.
    name: Option<String>,
    /// -1000000 to 1000000.
    position: Option<i64>,
}

/// `PATCH /admin/backgrounds/{id}`: `{"name"?, "position"?}`.
#[utoipa::path(
    patch,
    path = "/admin/backgrounds/{id}",
    tag = "admin",
    summary = "Rename or reorder a background",
    params(("id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$")),
    request_body(content = PatchBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The background now", body = AdminBackground),
        (status = 400, description = "`invalid_json`, `invalid_id`, `invalid_name`, `invalid_position`, `body_read_error`"),
        (status = 404, description = "`not_found`"),
        (status = 413, description = "`payload_too_large`"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
async fn patch_background(
    State(app): State<SharedApp>,
    UrlPath(id): UrlPath<String>,
    req: Request,
) -> ApiResult<Response> {
    check_id(&id)?;
    let (_, body) = read_body(req, 64 * 1024).await?;
    let patch: PatchBody = super::json_object::<PatchBody>(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!(
                "expected {{\"name\"?: string, \"position\"?: integer}}: {}",
                e.message
            ),
        )
    })?;
    let name = patch.name.map(|n| check_name(Some(&n))).transpose()?;
    let position = patch.position.map(check_position).transpose()?;
    let row = app
        .catalog
        .write(move |c| catalog::update_background(c, &id, name.as_deref(), position))
        .await?
        .ok_or_else(|| ApiError::not_found("no background with this id"))?;
    Ok(json_response(StatusCode::OK, &AdminBackground::from(&row)))
}

/// What `DELETE /admin/backgrounds/{id}` answers.
#[derive(Debug, Serialize, ToSchema)]
struct DeletedBackground {
    id: String,
    /// Always `true`.
    deleted: bool,
}

/// `DELETE /admin/backgrounds/{id}`: the row first (the app stops offering it), then the
/// files. Captures keep their `background_id`.
#[utoipa::path(
    delete,
    path = "/admin/backgrounds/{id}",
    tag = "admin",
    summary = "Delete a background",
    description = "Captures made with it keep their `background_id`.",
    params(("id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "Deleted", body = DeletedBackground),
        (status = 400, description = "`invalid_id`"),
        (status = 404, description = "`not_found`"),
        (status = 503, description = "`catalog_unavailable`, `storage_error`"),
    )
)]
async fn delete_background(
    State(app): State<SharedApp>,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Response> {
    check_id(&id)?;
    if !app.backgrounds.delete(&id).await? {
        return Err(ApiError::not_found("no background with this id"));
    }
    tracing::info!(background_id = %id, "background deleted");
    Ok(json_response(
        StatusCode::OK,
        &DeletedBackground { id, deleted: true },
    ))
}
