//! The JSON error answer: `{"error": {"code": "snake_case", "message": "…"}}`, and the
//! one place where the domain's errors become HTTP statuses and codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::capture::CaptureError;
use crate::catalog::CatalogError;
use crate::cleanup::CleanupError;
use crate::export::ExportError;
use crate::outbox::OutboxError;
use crate::storage::backgrounds::BackgroundError;
use crate::storage::image::ImageError;
use crate::storage::thumbnails::ThumbnailError;
use crate::storage::StorageError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The body of every error answer (the `ErrorBody` schema of `/openapi.json`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

/// Some errors add fields next to `code` and `message` (e.g. `key` for `invalid_setting`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable, machine-readable, `snake_case`.
    #[schema(example = "not_found")]
    pub code: &'a str,
    /// For people; may change.
    pub message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }
    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body is larger than the limit of {}",
                approx_size(limit)
            ),
        )
    }
    /// A raw capture body over `MAX_CAPTURE_BYTES` (`max`), said as the operator wrote it.
    pub fn capture_too_large(max: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the image is larger than the limit of {} (MAX_CAPTURE_BYTES)",
                crate::config::format_size(max)
            ),
        )
    }
    /// A JSON capture body over its limit, which follows from `MAX_CAPTURE_BYTES` (`max`):
    /// the operator's figure first, then what it means once base64-encoded.
    pub fn json_capture_too_large(max: u64, json_limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the body is larger than the limit: a {} image (MAX_CAPTURE_BYTES), {} as \
                 base64 JSON; a raw body (Content-Type: image/jpeg) carries the same image in \
                 a quarter less",
                crate::config::format_size(max),
                approx_size(json_limit)
            ),
        )
    }
    /// 405: the route exists, not with this method (axum adds the `Allow` header).
    pub fn method_not_allowed(method: &http::Method) -> Self {
        // A custom method can be long: it is echoed only in part.
        let shown: String = method.as_str().chars().take(20).collect();
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "this route does not answer {shown}: the Allow header lists the methods it does"
            ),
        )
    }
    /// The body as JSON (batch items embed it).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"code": self.code, "message": self.message})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, "{}", self.message);
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "catalog_unavailable",
            format!("the local catalog failed: {e}"),
        )
    }
}

impl From<OutboxError> for ApiError {
    fn from(e: OutboxError) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "outbox_unavailable",
            format!("the local job queue failed: {e}"),
        )
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Full { .. } => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "insufficient_storage",
                "the kiosk's disk is full: the capture was not stored (free space or wait for cleanup)",
            ),
            StorageError::Io { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_error",
                format!("could not store the file: {e}"),
            ),
        }
    }
}

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::NotAnImage => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_image",
                "the data is not a JPEG or PNG image",
            ),
            ImageError::TooManyPixels { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "image_too_large",
                e.to_string(),
            ),
            _ => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_image",
                e.to_string(),
            ),
        }
    }
}

impl From<CaptureError> for ApiError {
    fn from(e: CaptureError) -> Self {
        let bad_request = |code| ApiError::bad_request(code, e.to_string());
        match e {
            CaptureError::InvalidId => bad_request("invalid_id"),
            CaptureError::InvalidBackgroundId => bad_request("invalid_background_id"),
            CaptureError::UnknownBackground { .. } => bad_request("unknown_background"),
            CaptureError::InvalidTakenAt => bad_request("invalid_taken_at"),
            CaptureError::UnknownEvent => bad_request("unknown_event"),
            CaptureError::DataUrlWithoutComma
            | CaptureError::DataUrlNotBase64
            | CaptureError::InvalidBase64(_) => bad_request("invalid_base64"),
            CaptureError::EmptyImage => bad_request("missing_image"),
            CaptureError::TooLarge { limit } => ApiError::capture_too_large(limit),
            CaptureError::IdConflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, "id_conflict", e.to_string())
            }
            CaptureError::Image(e) => e.into(),
            CaptureError::Storage(e) => e.into(),
            CaptureError::Catalog(e) => e.into(),
            CaptureError::Outbox(e) => e.into(),
            CaptureError::Task(_) => ApiError::internal(e.to_string()),
        }
    }
}

impl From<CleanupError> for ApiError {
    fn from(e: CleanupError) -> Self {
        match e {
            CleanupError::InvalidPhone(_) => ApiError::bad_request("invalid_phone", e.to_string()),
            CleanupError::Catalog(e) => e.into(),
            CleanupError::Outbox(e) => e.into(),
            CleanupError::Storage(e) => e.into(),
            CleanupError::Task(_) => ApiError::internal(e.to_string()),
        }
    }
}

impl From<crate::events::EventError> for ApiError {
    fn from(e: crate::events::EventError) -> Self {
        use crate::events::EventError;
        let message = e.to_string();
        let (status, code) = match e {
            EventError::Catalog(e) => return e.into(),
            EventError::Outbox(e) => return e.into(),
            EventError::InvalidName => (StatusCode::BAD_REQUEST, "invalid_name"),
            EventError::InvalidTime { field: "ends_at" } => {
                (StatusCode::BAD_REQUEST, "invalid_ends_at")
            }
            EventError::InvalidTime { .. } => (StatusCode::BAD_REQUEST, "invalid_starts_at"),
            EventError::EndBeforeStart => (StatusCode::BAD_REQUEST, "invalid_event_range"),
            EventError::InvalidBody => (StatusCode::BAD_REQUEST, "invalid_json"),
            EventError::Overlap { .. } => (StatusCode::CONFLICT, "event_overlap"),
            EventError::NotFound => (StatusCode::NOT_FOUND, "unknown_event"),
            EventError::Unknown => (StatusCode::BAD_REQUEST, "unknown_event"),
        };
        ApiError::new(status, code, message)
    }
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::Busy => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "export_busy", e.to_string())
            }
            ExportError::Catalog(c) => c.into(),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<BackgroundError> for ApiError {
    fn from(e: BackgroundError) -> Self {
        match e {
            BackgroundError::Image(e) => e.into(),
            BackgroundError::Storage(e) => e.into(),
            BackgroundError::Catalog(e) => e.into(),
            BackgroundError::Task(_) => ApiError::internal(e.to_string()),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A size as people write it: exact (`25MB`) when it is a whole number of units, else
/// rounded (`about 34MB`), never a bare count of bytes past a kilobyte.
pub fn approx_size(n: u64) -> String {
    let exact = crate::config::format_size(n);
    // `format_size` falls back to bare bytes (`35018072B`) when no unit divides exactly.
    let bare_bytes = exact
        .strip_suffix('B')
        .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()));
    if n < 1024 || !bare_bytes {
        return exact;
    }
    const MB: u64 = 1 << 20;
    if n >= 10 * MB {
        format!("about {}MB", (n + MB / 2) / MB)
    } else if n >= MB {
        // One decimal below 10MB: "about 1MB" for 1.4MB would mislead.
        let tenths = (n * 10 + MB / 2) / MB;
        format!("about {}.{}MB", tenths / 10, tenths % 10)
    } else {
        format!("about {}KB", (n + 512) / 1024)
    }
}

impl From<crate::sms::SmsError> for ApiError {
    fn from(e: crate::sms::SmsError) -> Self {
        use crate::sms::{Limit, SmsError};
        let message = e.to_string();
        let (status, code) = match e {
            SmsError::Catalog(e) => return e.into(),
            SmsError::Outbox(e) => return e.into(),
            SmsError::NotConfigured => (StatusCode::SERVICE_UNAVAILABLE, "sms_not_configured"),
            SmsError::InvalidCaptureId | SmsError::InvalidSmsId => {
                (StatusCode::BAD_REQUEST, "invalid_id")
            }
            SmsError::InvalidPhone(_) => (StatusCode::BAD_REQUEST, "invalid_phone"),
            SmsError::PremiumNumber(_) => (StatusCode::BAD_REQUEST, "premium_number"),
            SmsError::CaptureNotFound => (StatusCode::NOT_FOUND, "capture_not_found"),
            SmsError::InvalidConsent => (StatusCode::BAD_REQUEST, "invalid_consent"),
            SmsError::ConsentRequired => (StatusCode::BAD_REQUEST, "consent_required"),
            SmsError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            SmsError::AlreadySent => (StatusCode::CONFLICT, "already_sent"),
            SmsError::NotFailed(_) => (StatusCode::CONFLICT, "not_failed"),
            SmsError::NumberForgotten => (StatusCode::CONFLICT, "number_forgotten"),
            SmsError::PhoneMismatch => (StatusCode::UNPROCESSABLE_ENTITY, "phone_mismatch"),
            SmsError::RateLimited { which, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                match which {
                    Limit::PerPhone => "rate_limited_phone",
                    Limit::PerCapture => "rate_limited_capture",
                    Limit::Hourly => "rate_limited_hourly",
                    Limit::Daily => "rate_limited_daily",
                },
            ),
        };
        ApiError::new(status, code, message)
    }
}

// Share links and QR codes (issue 20).
impl From<crate::share::ShareError> for ApiError {
    fn from(e: crate::share::ShareError) -> Self {
        match e {
            crate::share::ShareError::NoPublicUrl => {
                ApiError::new(StatusCode::CONFLICT, "no_public_url", e.to_string())
            }
        }
    }
}

impl From<crate::share::qr::QrError> for ApiError {
    fn from(e: crate::share::qr::QrError) -> Self {
        use crate::share::qr::QrError;
        match e {
            QrError::InvalidSize => ApiError::bad_request("invalid_size", e.to_string()),
            QrError::Encode(_) | QrError::Png(_) => ApiError::internal(e.to_string()),
        }
    }
}

impl From<ThumbnailError> for ApiError {
    fn from(e: ThumbnailError) -> Self {
        match e {
            ThumbnailError::SourceMissing => ApiError::not_found("the capture's file is missing"),
            ThumbnailError::Decode(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_image",
                e.to_string(),
            ),
            ThumbnailError::Io { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_error",
                e.to_string(),
            ),
            ThumbnailError::Encode(_) | ThumbnailError::Task(_) => {
                ApiError::internal(e.to_string())
            }
        }
    }
}

impl From<crate::fleet::FleetError> for ApiError {
    fn from(e: crate::fleet::FleetError) -> Self {
        use crate::fleet::FleetError;
        match e {
            FleetError::UnknownKiosk => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_kiosk", e.to_string())
            }
            FleetError::Unavailable(_) | FleetError::NotConfigured | FleetError::BadUrl => {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "remote_db_unavailable",
                    "the fleet database does not answer; try again shortly",
                )
            }
            FleetError::NoKey | FleetError::ShortKey => ApiError::internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::approx_size;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(approx_size(25 << 20), "25MB");
        assert_eq!(approx_size(64 << 10), "64KB");
        assert_eq!(approx_size(35_018_072), "about 33MB");
        assert_eq!(approx_size(1500), "about 1KB");
        assert_eq!(approx_size(1_463_640), "about 1.4MB");
        assert_eq!(approx_size(100), "100B");
    }
}
