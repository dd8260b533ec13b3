//! What can go wrong on the capture path, said in the capture's terms (the API maps each
//! case to its status and code in `api::error`).

use crate::catalog::CatalogError;
use crate::outbox::OutboxError;
use crate::storage::image::ImageError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("the id must be 1-64 characters among A-Z a-z 0-9 _ -")]
    InvalidId,
    #[error("the background_id must be 1-64 characters among A-Z a-z 0-9 _ -")]
    InvalidBackgroundId,
    /// Well-formed, but no background has this id (an admin uploads them first).
    #[error("no background has the id {id}: upload it first (POST /admin/backgrounds) or leave background_id out; GET /api/backgrounds lists them")]
    UnknownBackground { id: String },
    #[error("taken_at must be an RFC 3339 date-time, e.g. 2026-06-01T14:03:00Z")]
    InvalidTakenAt,
    /// The app named an event this kiosk does not have (issue 20).
    #[error("no event with this event_id (see GET /admin/events)")]
    UnknownEvent,
    #[error("the data: URL has no ',' before its data")]
    DataUrlWithoutComma,
    #[error("the data: URL is not base64-encoded (expected ';base64,')")]
    DataUrlNotBase64,
    #[error("the image is not valid base64: {0}")]
    InvalidBase64(#[source] base64::DecodeError),
    #[error("the image field is empty")]
    EmptyImage,
    /// The decoded image is over the capture size limit.
    #[error("the image is larger than the limit of {} (MAX_CAPTURE_BYTES)", crate::config::format_size(*limit))]
    TooLarge { limit: u64 },
    /// The client's id already names a capture with other bytes.
    #[error("a different capture with id {id} already exists")]
    IdConflict { id: String },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// A helper thread (decoding, hashing, storing) died: a bug, not the client's fault.
    #[error("{0}")]
    Task(String),
}

impl CaptureError {
    pub(crate) fn task(what: impl Into<String>) -> Self {
        CaptureError::Task(what.into())
    }
}
