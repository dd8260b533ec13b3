//! The capture path: validate, store durably, record, schedule the sync — then answer.
//!
//! Order matters for the power-cut promise: file (fsynced, renamed, directory fsynced) →
//! catalog row (WAL fsynced at commit) → outbox job (flushed) → 201. A crash before the
//! row leaves a file without row, which start-up removes (it was never acknowledged); a
//! crash after the row but before the job is repaired by the start-up rebuild of jobs from
//! unsynced rows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::api::error::{ApiError, ApiResult};
use crate::app::App;
use crate::catalog::{self, CaptureRow, NewCapture};
use crate::ids;
use crate::outbox::JobKind;
use crate::storage::image::{self, Format};

/// What the client sent, before validation.
#[derive(Debug, Default, Clone)]
pub struct CaptureMeta {
    pub id: Option<String>,
    pub background_id: Option<String>,
    pub taken_at: Option<String>,
}

/// The answer for a stored capture.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CaptureAnswer {
    pub id: String,
    /// `/uploads/{id}.jpg`
    pub url: String,
    /// `/api/download/{id}`
    pub download_url: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
    pub sha256: String,
}

impl From<&CaptureRow> for CaptureAnswer {
    fn from(r: &CaptureRow) -> Self {
        CaptureAnswer {
            id: r.id.clone(),
            url: format!("/uploads/{}.jpg", r.id),
            download_url: format!("/api/download/{}", r.id),
            created_at: catalog::format_ms(r.created_ms),
            bytes: r.bytes,
            width: r.width,
            height: r.height,
            sha256: r.sha256.clone(),
        }
    }
}

/// Per-id locks so two requests for the same client id never race on its file.
#[derive(Debug, Default)]
pub struct IdLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl IdLocks {
    async fn lock(&self, id: &str) -> IdGuard<'_> {
        let m = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(id.to_string()).or_default().clone()
        };
        let guard = m.clone().lock_owned().await;
        IdGuard {
            locks: self,
            id: id.to_string(),
            _guard: guard,
            mutex: m,
        }
    }
}

struct IdGuard<'a> {
    locks: &'a IdLocks,
    id: String,
    _guard: tokio::sync::OwnedMutexGuard<()>,
    mutex: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for IdGuard<'_> {
    fn drop(&mut self) {
        let mut map = self.locks.0.lock().unwrap_or_else(|p| p.into_inner());
        // Two references: the map's and ours. Anyone else waiting holds a third.
        if Arc::strong_count(&self.mutex) <= 2 {
            map.remove(&self.id);
        }
    }
}

/// Decodes base64 or a `data:image/...;base64,` URL, refusing early what cannot fit.
pub fn decode_image_field(s: &str, max_bytes: u64) -> ApiResult<Vec<u8>> {
    let payload = match s.strip_prefix("data:") {
        Some(rest) => {
            let (meta, data) = rest.split_once(',').ok_or_else(|| {
                ApiError::bad_request("invalid_base64", "the data: URL has no ',' before its data")
            })?;
            if !meta.ends_with(";base64") {
                return Err(ApiError::bad_request(
                    "invalid_base64",
                    "the data: URL is not base64-encoded (expected ';base64,')",
                ));
            }
            data
        }
        None => s,
    };
    if payload.is_empty() {
        return Err(ApiError::bad_request(
            "missing_image",
            "the image field is empty",
        ));
    }
    // The body limit already bounds `payload`; the decoded size is checked below.
    let cfg = base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
    // Fast path: plain standard base64, one pass. Only when that fails are line breaks
    // removed and the URL-safe alphabet tried.
    let standard = base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, cfg);
    if let Ok(bytes) = standard.decode(payload.as_bytes()) {
        if bytes.len() as u64 > max_bytes {
            return Err(ApiError::too_large(max_bytes));
        }
        return Ok(bytes);
    }
    let cleaned: std::borrow::Cow<'_, str> = if payload.bytes().any(|b| b.is_ascii_whitespace()) {
        payload
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<String>()
            .into()
    } else {
        payload.into()
    };
    if cleaned.is_empty() {
        return Err(ApiError::bad_request(
            "missing_image",
            "the image field is empty",
        ));
    }
    if (cleaned.len() as u64 / 4) * 3 > max_bytes + 3 {
        return Err(ApiError::too_large(max_bytes));
    }
    let url_safe = cleaned.contains(['-', '_']);
    let engine = if url_safe {
        base64::engine::GeneralPurpose::new(&base64::alphabet::URL_SAFE, cfg)
    } else {
        standard
    };
    let bytes = engine.decode(cleaned.as_bytes()).map_err(|e| {
        ApiError::bad_request(
            "invalid_base64",
            format!("the image is not valid base64: {e}"),
        )
    })?;
    if bytes.len() as u64 > max_bytes {
        return Err(ApiError::too_large(max_bytes));
    }
    Ok(bytes)
}

pub fn validate_meta(meta: &CaptureMeta) -> ApiResult<()> {
    if let Some(id) = &meta.id {
        if !ids::is_valid_id(id) {
            return Err(ApiError::bad_request(
                "invalid_id",
                "the id must be 1-64 characters among A-Z a-z 0-9 _ -",
            ));
        }
    }
    if let Some(b) = &meta.background_id {
        if !ids::is_valid_id(b) {
            return Err(ApiError::bad_request(
                "invalid_background_id",
                "the background_id must be 1-64 characters among A-Z a-z 0-9 _ -",
            ));
        }
    }
    if let Some(t) = &meta.taken_at {
        if time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_err() {
            return Err(ApiError::bad_request(
                "invalid_taken_at",
                "taken_at must be an RFC 3339 date-time, e.g. 2026-06-01T14:03:00Z",
            ));
        }
    }
    Ok(())
}

struct Prepared {
    jpeg: Vec<u8>,
    width: u32,
    height: u32,
    sha256: String,
    source_sha256: String,
    format: Format,
}

fn prepare(source: Vec<u8>) -> ApiResult<Prepared> {
    let format = image::sniff(&source).ok_or(image::ImageError::NotAnImage)?;
    let source_sha256 = hex::encode(Sha256::digest(&source));
    match format {
        Format::Jpeg => {
            let (width, height) = image::jpeg_dimensions(&source)?;
            Ok(Prepared {
                sha256: source_sha256.clone(),
                source_sha256,
                jpeg: source,
                width,
                height,
                format,
            })
        }
        Format::Png => {
            let (jpeg, width, height) = image::png_to_jpeg(&source)?;
            Ok(Prepared {
                sha256: hex::encode(Sha256::digest(&jpeg)),
                source_sha256,
                jpeg,
                width,
                height,
                format,
            })
        }
    }
}

/// Stores one capture. Returns the status (201 new, 200 repeated) and the answer.
pub async fn ingest(
    app: &App,
    source: Vec<u8>,
    meta: CaptureMeta,
) -> ApiResult<(StatusCode, CaptureAnswer)> {
    validate_meta(&meta)?;
    let prepared = tokio::task::spawn_blocking(move || prepare(source))
        .await
        .map_err(|e| ApiError::internal(format!("image task failed: {e}")))??;

    let client_id = meta.id.is_some();
    let id = meta.id.clone().unwrap_or_else(ids::new_id);
    let _guard = app.id_locks.lock(&id).await;

    if client_id {
        let lookup = id.clone();
        if let Some(row) = app
            .catalog
            .read(move |c| catalog::get_capture(c, &lookup))
            .await?
        {
            if row.source_sha256 == prepared.source_sha256 {
                return Ok((StatusCode::OK, CaptureAnswer::from(&row)));
            }
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "id_conflict",
                format!("a different capture with id {id} already exists"),
            ));
        }
    }

    let created_ms = app.clock.now_ms();
    let uploads = app.uploads.clone();
    let reserve = app.disk_reserve_bytes();
    let Prepared {
        jpeg,
        width,
        height,
        sha256,
        source_sha256,
        format,
    } = prepared;
    let bytes = jpeg.len() as i64;
    let file_id = id.clone();
    tokio::task::spawn_blocking(move || uploads.store(&file_id, &jpeg, reserve))
        .await
        .map_err(|e| ApiError::internal(format!("storage task failed: {e}")))??;

    let new = NewCapture {
        id: id.clone(),
        created_ms,
        taken_at: meta.taken_at,
        background_id: meta.background_id,
        bytes,
        width: width as i64,
        height: height as i64,
        sha256,
        source_sha256,
        source_format: format.as_str().to_string(),
    };
    // A wall clock before the build date is not set yet (no RTC, no NTP so far): keep
    // what lets the real time be recomputed later.
    let suspect = (!crate::clock::is_sane(created_ms))
        .then(|| (app.clock.boot_id(), app.clock.monotonic_ms()));
    let row = match app
        .catalog
        .write(move |c| {
            let tx = c.transaction()?;
            let row = catalog::insert_capture(&tx, &new)?;
            if let Some((boot, mono)) = &suspect {
                catalog::mark_clock_suspect(&tx, &row.id, boot, *mono)?;
            }
            tx.commit()?;
            Ok(row)
        })
        .await
    {
        Ok(row) => row,
        Err(e) => {
            // Not acknowledged: the file must not outlive the failed insert.
            let _ = app.uploads.remove(&id);
            return Err(e.into());
        }
    };
    // The row is the truth from here: a failed push is repaired at the next start. With no
    // remote configured there is nothing to do: the row stays unsynced (so a remote
    // configured later gets it) and counts as synced for the status route meanwhile.
    if !app.has_remotes() {
        tracing::info!(capture_id = %row.id, bytes = row.bytes, "capture stored");
        return Ok((StatusCode::CREATED, CaptureAnswer::from(&row)));
    }
    if let Err(e) = app
        .outbox
        .push_durable(JobKind::Sync, &row.id, created_ms, created_ms)
        .await
    {
        tracing::error!(capture_id = %row.id, "could not queue the sync job (rebuilt at next start): {e}");
    }
    tracing::info!(capture_id = %row.id, bytes = row.bytes, "capture stored");
    Ok((StatusCode::CREATED, CaptureAnswer::from(&row)))
}

/// What deleting one capture did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DeleteReceipt {
    pub id: String,
    /// The local file and row were removed.
    pub local_removed: bool,
    /// A job to delete the remote copies was queued (remotes configured).
    pub remote_pending: bool,
    /// SMS requests for this capture that were still open and are now cancelled.
    pub sms_cancelled: usize,
}

/// Deletes a capture now: row (with its open SMS requests) and file locally, and queues
/// the deletion of its remote copies. Idempotent: deleting an unknown id removes nothing.
/// Used by `DELETE /admin/captures/{id}`, retention cleanup and GDPR erasure.
pub async fn delete_capture(app: &App, id: &str) -> ApiResult<DeleteReceipt> {
    let _guard = app.id_locks.lock(id).await;
    let lookup = id.to_string();
    let (removed, sms_cancelled) = app
        .catalog
        .write(move |c| {
            let tx = c.transaction()?;
            let cancelled = catalog::cancel_sms_for_capture(&tx, &lookup, "capture deleted")?;
            let removed = catalog::delete_capture_row(&tx, &lookup)?;
            tx.commit()?;
            Ok((removed, cancelled))
        })
        .await?;
    let uploads = app.uploads.clone();
    let file_id = id.to_string();
    let file_removed = tokio::task::spawn_blocking(move || uploads.remove(&file_id))
        .await
        .map_err(|e| ApiError::internal(format!("storage task failed: {e}")))??;
    let now = app.clock.now_ms();
    app.outbox.cancel(JobKind::Sync, id)?;
    let remote = app.remote_files.is_some() || app.remote_db.is_some();
    if remote && (removed || file_removed) {
        app.outbox
            .push_durable(JobKind::RemoteDelete, id, now, now)
            .await?;
    } else {
        app.outbox.flush().await?;
    }
    if removed {
        tracing::info!(capture_id = %id, "capture deleted");
    }
    Ok(DeleteReceipt {
        id: id.to_string(),
        local_removed: removed || file_removed,
        remote_pending: remote && (removed || file_removed),
        sms_cancelled,
    })
}
