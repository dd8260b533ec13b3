//! `GET /api/captures/{id}/share`, `GET /api/captures/{id}/qr.svg` and
//! `GET /api/captures/{id}/qr.png`: what the touchscreen app shows a guest, a link to the
//! share page and its QR code.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::{json_response, query};
use crate::app::{App, SharedApp};
use crate::catalog::{self, CaptureRow};
use crate::share::{self, qr};

/// What `GET /api/captures/{id}/share` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShareAnswer {
    /// The share page, `PUBLIC_BASE_URL` + `{token}.html` (null without a public base).
    pub share_url: Option<String>,
    /// The photo, `PUBLIC_BASE_URL` + `{token}.jpg` (null without a public base).
    pub image_url: Option<String>,
    /// The linked files are in remote storage: the link works now.
    pub link_ready: bool,
    /// When retention removes the photo and its page.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

async fn capture(app: &App, id: &str) -> ApiResult<CaptureRow> {
    if !crate::ids::is_valid_id(id) {
        return Err(ApiError::bad_request(
            "invalid_id",
            "not a valid capture id",
        ));
    }
    let lookup = id.to_string();
    app.catalog
        .read(move |c| catalog::get_capture(c, &lookup))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "capture_not_found",
                "no capture with this id",
            )
        })
}

/// The page link to encode, or 409 `no_public_url`.
async fn page_url(app: &App, id: &str) -> ApiResult<String> {
    let row = capture(app, id).await?;
    share::links(app.config.public_base_url.as_deref(), &row.public_token)
        .map(|l| l.page_url)
        .ok_or_else(|| share::ShareError::NoPublicUrl.into())
}

/// `GET /api/captures/{id}/share`
#[utoipa::path(
    get,
    path = "/api/captures/{id}/share",
    tag = "captures",
    summary = "The guest's links to a capture",
    description = "The share page and photo URLs (named by the capture's public token, never \
                   its id), whether they work yet, and when the photo is removed.",
    params(("id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The links", body = ShareAnswer),
        (status = 400, description = "`invalid_id`"),
        (status = 404, description = "`capture_not_found`"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
pub async fn get_share(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let row = capture(&app, &id).await?;
    let links = share::links(app.config.public_base_url.as_deref(), &row.public_token);
    let (_, link_ready) = share::fields(&app, &row);
    let expires = share::expires_ms(&row, app.settings.get().retention_days);
    let answer = ShareAnswer {
        share_url: links.as_ref().map(|l| l.page_url.clone()),
        image_url: links.map(|l| l.image_url),
        link_ready,
        expires_at: catalog::format_ms(expires),
    };
    Ok(json_response(StatusCode::OK, &answer))
}

fn image(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    let mut r = Response::new(body.into());
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // A capture's link never changes; it goes with the capture.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    r.into_response()
}

/// `GET /api/captures/{id}/qr.svg`
#[utoipa::path(
    get,
    path = "/api/captures/{id}/qr.svg",
    tag = "captures",
    summary = "The QR code of a capture's share page, as SVG",
    params(("id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The QR code", content_type = "image/svg+xml"),
        (status = 400, description = "`invalid_id`"),
        (status = 404, description = "`capture_not_found`"),
        (status = 409, description = "`no_public_url`: PUBLIC_BASE_URL is not set, there is no link to encode"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
pub async fn get_qr_svg(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let url = page_url(&app, &id).await?;
    Ok(image("image/svg+xml", qr::svg(&url)?))
}

#[derive(Debug, Default, Deserialize)]
pub struct QrQuery {
    pub size: Option<String>,
}

/// `GET /api/captures/{id}/qr.png`
#[utoipa::path(
    get,
    path = "/api/captures/{id}/qr.png",
    tag = "captures",
    summary = "The QR code of a capture's share page, as PNG",
    params(
        ("id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$"),
        ("size" = Option<u32>, Query, minimum = 64, maximum = 2048,
            description = "Width in pixels (at most; whole pixels per module), default 512"),
    ),
    responses(
        (status = 200, description = "The QR code", content_type = "image/png"),
        (status = 400, description = "`invalid_id`, `invalid_size` (not a number from 64 to 2048), `invalid_query`"),
        (status = 404, description = "`capture_not_found`"),
        (status = 409, description = "`no_public_url`: PUBLIC_BASE_URL is not set, there is no link to encode"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
pub async fn get_qr_png(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let q: QrQuery = query(req.uri())?;
    let size = match q.size.as_deref() {
        None => qr::DEFAULT_PNG_SIZE,
        Some(s) => s
            .trim()
            .parse::<u32>()
            .map_err(|_| qr::QrError::InvalidSize)
            .and_then(qr::check_size)?,
    };
    let url = page_url(&app, &id).await?;
    // Encoding a 2048 px PNG is CPU work: off the async workers.
    let png = tokio::task::spawn_blocking(move || qr::png(&url, size))
        .await
        .map_err(|e| ApiError::internal(format!("QR task failed: {e}")))??;
    Ok(image("image/png", png))
}
