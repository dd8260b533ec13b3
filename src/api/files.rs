//! `GET /api/download/{id}` and `GET /uploads/{id}.jpg`: the stored JPEG, streamed, with a
//! strong ETag (its sha256) and conditional GET.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio_util::io::ReaderStream;

use super::error::{ApiError, ApiResult};
use crate::app::SharedApp;
use crate::catalog;
use crate::ids;

/// `GET /api/download/{id}`
#[utoipa::path(
    get,
    path = "/api/download/{id}",
    tag = "files",
    summary = "A capture's JPEG, as an attachment",
    params(
        ("id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer"),
    ),
    responses(
        (status = 200, description = "The JPEG", content_type = "image/jpeg",
            headers(("ETag" = String, description = "The quoted sha256"), ("Cache-Control" = String), ("Content-Disposition" = String))),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 400, description = "`invalid_id`"),
        (status = 404, description = "`not_found`: no such capture, or its file is missing"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
pub async fn download(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve_capture(&app, &id, &headers, true).await
}

/// `GET /uploads/{id}.jpg`
#[utoipa::path(
    get,
    path = "/uploads/{file}",
    tag = "files",
    summary = "A capture's JPEG (the `url` of a capture)",
    params(
        ("file" = String, Path, description = "`{id}.jpg`", pattern = "^[A-Za-z0-9_-]{1,64}\\.jpg$"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer"),
    ),
    responses(
        (status = 200, description = "The JPEG", content_type = "image/jpeg",
            headers(("ETag" = String, description = "The quoted sha256"), ("Cache-Control" = String))),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 400, description = "`invalid_id`"),
        (status = 404, description = "`not_found`: not `{id}.jpg`, no such capture, or its file is missing"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
pub async fn uploads(
    State(app): State<SharedApp>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = file
        .strip_suffix(".jpg")
        .ok_or_else(|| ApiError::not_found("no such file"))?;
    serve_capture(&app, id, &headers, false).await
}

pub(crate) async fn serve_capture(
    app: &SharedApp,
    id: &str,
    headers: &HeaderMap,
    attachment: bool,
) -> ApiResult<Response> {
    if !ids::is_valid_id(id) {
        return Err(ApiError::bad_request(
            "invalid_id",
            "not a valid capture id",
        ));
    }
    let lookup = id.to_string();
    let row = app
        .catalog
        .read(move |c| catalog::get_capture(c, &lookup))
        .await?
        .ok_or_else(|| ApiError::not_found("no capture with this id"))?;
    let etag = format!("\"{}\"", row.sha256);
    let path = app.uploads.path_for(&row.id);
    let mut r = serve_jpeg(&path, &etag, "private, max-age=3600", headers).await?;
    if attachment && r.status() == StatusCode::OK {
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}.jpg\"", row.id)) {
            r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(r)
}

/// Streams a JPEG with its strong ETag and `cache` as Cache-Control; 304 when the client
/// has it already (`If-None-Match`). Captures and backgrounds are served through here.
pub(crate) async fn serve_jpeg(
    path: &std::path::Path,
    etag: &str,
    cache: &'static str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let cache = HeaderValue::from_static(cache);
    let etag_value =
        HeaderValue::from_str(etag).map_err(|_| ApiError::internal("unprintable ETag"))?;
    if if_none_match(headers, etag) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        r.headers_mut().insert(header::ETAG, etag_value);
        r.headers_mut().insert(header::CACHE_CONTROL, cache);
        return Ok(r);
    }
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::error!(path = %path.display(), "file is missing on disk");
            return Err(ApiError::not_found("the file is missing on disk"));
        }
        Err(e) => return Err(ApiError::internal(format!("cannot open the file: {e}"))),
    };
    let len = file
        .metadata()
        .await
        .map_err(|e| ApiError::internal(format!("cannot stat the file: {e}")))?
        .len();
    let mut r = Response::new(Body::from_stream(ReaderStream::with_capacity(
        file,
        64 * 1024,
    )));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CACHE_CONTROL, cache);
    h.insert(header::ETAG, etag_value);
    Ok(r)
}

/// Does `If-None-Match` name `etag` (or `*`)? The weak comparison RFC 9110 prescribes for
/// this header: `W/"x"` matches `"x"` and the other way round; a list (`"a", W/"b"`), in
/// one header or several, matches when any member does. Every conditional GET of the
/// daemon (photos, backgrounds, thumbnails, console assets) asks here.
pub(crate) fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let ours = opaque(etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(opaque)
        .any(|t| t == "*" || t == ours)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn inm(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn if_none_match_compares_weakly_and_reads_lists() {
        let tag = "\"abc\"";
        assert!(if_none_match(&inm(&["\"abc\""]), tag));
        assert!(if_none_match(&inm(&["W/\"abc\""]), tag));
        assert!(if_none_match(&inm(&["\"a\", W/\"abc\""]), tag));
        assert!(if_none_match(&inm(&["\"a\"", "W/\"abc\""]), tag));
        assert!(if_none_match(&inm(&["*"]), tag));
        assert!(if_none_match(&inm(&["\"abc\""]), "W/\"abc\""));
        assert!(!if_none_match(&inm(&["\"abcd\", W/\"ab\""]), tag));
        assert!(!if_none_match(&HeaderMap::new(), tag));
    }
}
