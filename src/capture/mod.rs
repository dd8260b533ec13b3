//! The capture path: validate, store durably, record, schedule the sync — then answer.
//!
//! Order matters for the power-cut promise: file (fsynced, renamed, directory fsynced) →
//! catalog row (WAL fsynced at commit) → outbox job (flushed) → 201. A crash before the
//! row leaves a file without row, which start-up removes (it was never acknowledged); a
//! crash after the row but before the job is repaired by the start-up rebuild of jobs from
//! unsynced rows.

use base64::Engine;
use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::catalog::{self, CaptureRow, NewCapture};
use crate::ids;
use crate::outbox::JobKind;
use crate::storage::image::{self, Format};
use crate::storage::{IncomingFile, Uploads};

mod error;
mod json_field;
mod stream;
pub use error::CaptureError;
pub use stream::StreamingUpload;

/// Largest buffer reserved up front from a declared length: a client may announce a size
/// it never sends.
pub const PREALLOCATE_MAX: u64 = 32 * 1024 * 1024;

type Result<T, E = CaptureError> = std::result::Result<T, E>;

/// What the client sent, before validation.
#[derive(Debug, Default, Clone)]
pub struct CaptureMeta {
    pub id: Option<String>,
    pub background_id: Option<String>,
    pub taken_at: Option<String>,
    /// The event the app says the capture belongs to (issue 20); must exist.
    pub event_id: Option<String>,
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
    /// The guest's link, the share page `PUBLIC_BASE_URL` + `{token}.html` (null without
    /// a public base).
    pub share_url: Option<String>,
    /// `share_url` works now: what it links to is in remote storage.
    pub link_ready: bool,
}

impl CaptureAnswer {
    /// The answer for `r`, with its share link as `app` gives it.
    pub fn new(app: &App, r: &CaptureRow) -> Self {
        let (share_url, link_ready) = crate::share::fields(app, r);
        CaptureAnswer {
            share_url,
            link_ready,
            ..CaptureAnswer::from(r)
        }
    }
}

impl From<&CaptureRow> for CaptureAnswer {
    fn from(r: &CaptureRow) -> Self {
        CaptureAnswer {
            share_url: None,
            link_ready: false,
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

/// Decodes base64 or a `data:image/...;base64,` URL, refusing early what cannot fit.
/// The bytes go to `out` (cleared first): a buffer sized by the caller, possibly on
/// another thread (see `post_capture`).
pub fn decode_image_field(s: &str, max_bytes: u64, mut out: Vec<u8>) -> Result<Vec<u8>> {
    out.clear();
    let payload = match s.strip_prefix("data:") {
        Some(rest) => {
            let (meta, data) = rest
                .split_once(',')
                .ok_or(CaptureError::DataUrlWithoutComma)?;
            if !meta.ends_with(";base64") {
                return Err(CaptureError::DataUrlNotBase64);
            }
            data
        }
        None => s,
    };
    if payload.is_empty() {
        return Err(CaptureError::EmptyImage);
    }
    // The body limit already bounds `payload`; the decoded size is checked below.
    let cfg = base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
    // Fast path: plain standard base64 (padded or not), one SIMD pass; as strict as the
    // general decoder (canonical trailing bits). Only when that fails are line breaks
    // removed and the URL-safe alphabet tried.
    let simd = if payload.len() % 4 == 0 {
        base64_simd::STANDARD
    } else {
        base64_simd::STANDARD_NO_PAD
    };
    if simd.decode_append(payload.as_bytes(), &mut out).is_ok() {
        if out.len() as u64 > max_bytes {
            return Err(CaptureError::TooLarge { limit: max_bytes });
        }
        return Ok(out);
    }
    out.clear();
    let standard = base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, cfg);
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
        return Err(CaptureError::EmptyImage);
    }
    if (cleaned.len() as u64 / 4) * 3 > max_bytes + 3 {
        return Err(CaptureError::TooLarge { limit: max_bytes });
    }
    let url_safe = cleaned.contains(['-', '_']);
    let engine = if url_safe {
        base64::engine::GeneralPurpose::new(&base64::alphabet::URL_SAFE, cfg)
    } else {
        standard
    };
    engine
        .decode_vec(cleaned.as_bytes(), &mut out)
        .map_err(CaptureError::InvalidBase64)?;
    if out.len() as u64 > max_bytes {
        return Err(CaptureError::TooLarge { limit: max_bytes });
    }
    Ok(out)
}

pub fn validate_meta(meta: &CaptureMeta) -> Result<()> {
    if meta.id.as_deref().is_some_and(|id| !ids::is_valid_id(id)) {
        return Err(CaptureError::InvalidId);
    }
    if meta
        .background_id
        .as_deref()
        .is_some_and(|b| !ids::is_valid_id(b))
    {
        return Err(CaptureError::InvalidBackgroundId);
    }
    if let Some(t) = &meta.taken_at {
        if time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_err() {
            return Err(CaptureError::InvalidTakenAt);
        }
    }
    Ok(())
}

/// A capture names an existing background or none: an unknown id would be counted in the
/// statistics under no name. (A background deleted later keeps its captures, and they keep
/// its id.) Raw bodies are checked before they are read as well, see `api::capture`.
pub async fn check_background(app: &App, background_id: Option<&str>) -> Result<()> {
    let Some(id) = background_id else {
        return Ok(());
    };
    let lookup = id.to_string();
    let known = app
        .catalog
        .read(move |c| catalog::get_background(c, &lookup))
        .await?
        .is_some();
    if known {
        Ok(())
    } else {
        Err(CaptureError::UnknownBackground { id: id.to_string() })
    }
}

/// Whether a capture was stored by this request or by an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Stored now.
    Created,
    /// The id already held these very bytes: a retried request, answered the same way.
    Repeated,
}

/// Stores one capture. Returns whether it is new, and the answer.
pub async fn ingest(
    app: &App,
    source: impl Into<Bytes>,
    meta: CaptureMeta,
) -> Result<(Ingested, CaptureAnswer)> {
    let upload = Upload {
        source: source.into(),
        file: None,
        digest: None,
    };
    ingest_upload(app, upload, meta).await
}

/// A capture body as received: its bytes, and what was done while it streamed in.
pub struct Upload {
    pub source: Bytes,
    /// `source` already written (not yet fsynced) as the capture's file: a JPEG streamed
    /// to disk as it arrived. Its id is the capture's.
    pub file: Option<IncomingFile>,
    /// The SHA-256 of `source`, being computed by the thread that produced it. Absent,
    /// the capture path computes it on another thread while the file is written.
    pub digest: Option<PendingDigest>,
}

/// A SHA-256 being computed on another thread.
pub type PendingDigest = std::sync::mpsc::Receiver<[u8; 32]>;

/// Runs `f` on the blocking pool and returns its bytes as an [`Upload`] as soon as they
/// exist; the same thread then hashes them (while the capture path writes the file).
/// `f`'s errors may be wider than the capture's (e.g. a body that is not valid JSON).
pub async fn produce_then_hash<T, E>(
    f: impl FnOnce() -> Result<(Vec<u8>, T), E> + Send + 'static,
) -> Result<(Upload, T), E>
where
    T: Send + 'static,
    E: From<CaptureError> + Send + 'static,
{
    let (out_tx, out_rx) = tokio::sync::oneshot::channel();
    let (digest_tx, digest_rx) = std::sync::mpsc::sync_channel(1);
    tokio::task::spawn_blocking(move || match f() {
        Ok((bytes, extra)) => {
            let source = Bytes::from(bytes);
            let _ = out_tx.send(Ok((source.clone(), extra)));
            let _ = digest_tx.send(Sha256::digest(&source).into());
        }
        Err(e) => {
            let _ = out_tx.send(Err(e));
        }
    });
    let (source, extra) = out_rx
        .await
        .map_err(|_| CaptureError::task("the decoding task failed"))??;
    let upload = Upload {
        source,
        file: None,
        digest: Some(digest_rx),
    };
    Ok((upload, extra))
}

/// [`ingest`] for an [`Upload`] that may already be written.
pub async fn ingest_upload(
    app: &App,
    upload: Upload,
    meta: CaptureMeta,
) -> Result<(Ingested, CaptureAnswer)> {
    validate_meta(&meta)?;
    check_background(app, meta.background_id.as_deref()).await?;
    let format = image::sniff(&upload.source).ok_or(image::ImageError::NotAnImage)?;
    // An event the app names must exist: refused before anything is stored.
    if let Some(event) = meta.event_id.clone() {
        let known = ids::is_valid_id(&event)
            && app
                .catalog
                .read(move |c| catalog::event_exists(c, &event))
                .await?;
        if !known {
            return Err(CaptureError::UnknownEvent);
        }
    }

    let client_id = meta.id.is_some();
    let id = match (&upload.file, &meta.id) {
        (Some(f), _) => f.id().to_string(),
        (None, Some(id)) => id.clone(),
        (None, None) => ids::new_id(),
    };
    let _guard = app.uploads.lock_id(&id).await;

    // Hashed on another thread while the file is written and fsynced.
    let digest_rx = match upload.digest {
        Some(pending) => pending,
        None => {
            let (digest_tx, digest_rx) = std::sync::mpsc::sync_channel(1);
            let bytes = upload.source.clone();
            tokio::task::spawn_blocking(move || {
                let _ = digest_tx.send(Sha256::digest(&bytes).into());
            });
            digest_rx
        }
    };
    let created_ms = app.clock.now_ms();
    // A wall clock before the build date is not set yet (no RTC, no NTP so far): keep
    // what lets the real time be recomputed later.
    let suspect = (!crate::clock::is_sane(created_ms))
        .then(|| (app.clock.boot_id(), app.clock.monotonic_ms()));
    let conflict_id = id.clone();
    let job = StoreJob {
        catalog: app.catalog.clone(),
        uploads: app.uploads.clone(),
        reserve: app.disk_reserve_bytes(),
        id,
        client_id,
        source: upload.source,
        file: upload.file,
        format,
        digest: digest_rx,
        created_ms,
        suspect,
        meta,
    };
    // While this one is made durable (mostly waiting on the disk), the next capture's
    // temp file is made ready.
    let uploads = app.uploads.clone();
    tokio::task::spawn_blocking(move || uploads.prepare_spare());
    let stored = tokio::task::spawn_blocking(move || job.run())
        .await
        .map_err(|e| CaptureError::task(format!("storage task failed: {e}")))??;
    let row = match stored {
        Stored::Again(row) => return Ok((Ingested::Repeated, CaptureAnswer::new(app, &row))),
        Stored::Conflict => return Err(CaptureError::IdConflict { id: conflict_id }),
        Stored::New(row) => row,
    };
    // The console's thumbnail, made off this path by its worker.
    app.thumbnails.schedule(&row.id);
    // The row is the truth from here: a failed push is repaired at the next start. With no
    // remote configured there is nothing to do: the row stays unsynced (so a remote
    // configured later gets it) and counts as synced for the status route meanwhile.
    if app.has_remotes() {
        if let Err(e) = app
            .outbox
            .push_durable(JobKind::Sync, &row.id, created_ms, created_ms)
            .await
        {
            tracing::error!(capture_id = %row.id, "could not queue the sync job (rebuilt at next start): {e}");
        }
    }
    tracing::info!(capture_id = %row.id, bytes = row.bytes, "capture stored");
    Ok((Ingested::Created, CaptureAnswer::new(app, &row)))
}

enum Stored {
    /// Stored now.
    New(CaptureRow),
    /// This id already holds these bytes (a retried request).
    Again(CaptureRow),
    /// This id already holds other bytes: nothing was stored.
    Conflict,
}

/// The blocking part of a capture, in one trip to the blocking pool: validate (convert
/// PNG), answer a repeated id, make the file durable, commit the row.
struct StoreJob {
    catalog: catalog::Catalog,
    uploads: Uploads,
    reserve: u64,
    id: String,
    client_id: bool,
    source: Bytes,
    /// `source` already written to a temp file.
    file: Option<IncomingFile>,
    format: Format,
    /// The source's SHA-256, known or being computed.
    digest: PendingDigest,
    created_ms: i64,
    suspect: Option<(String, i64)>,
    meta: CaptureMeta,
}

impl StoreJob {
    fn source_sha256(&self) -> Result<String> {
        self.digest
            .recv()
            .map(hex::encode)
            .map_err(|_| CaptureError::task("the hashing task failed"))
    }

    fn run(mut self) -> Result<Stored> {
        let (jpeg, width, height) = match self.format {
            Format::Jpeg => {
                let (w, h) = image::jpeg_dimensions(&self.source)?;
                (self.source.clone(), w, h)
            }
            Format::Png => {
                let (jpeg, w, h) = image::png_to_jpeg(&self.source)?;
                (Bytes::from(jpeg), w, h)
            }
        };
        if self.client_id {
            let lookup = self.id.clone();
            if let Some(row) = self
                .catalog
                .read_blocking(|c| catalog::get_capture(c, &lookup))?
            {
                if row.source_sha256 == self.source_sha256()? {
                    return Ok(Stored::Again(row));
                }
                return Ok(Stored::Conflict);
            }
        }
        match self.file.take() {
            // Streamed as it arrived: the bytes are the JPEG just validated.
            Some(file) if self.format == Format::Jpeg => file.commit(&self.uploads)?,
            _ => self.uploads.store(&self.id, &jpeg, self.reserve)?,
        };
        let row = self.source_sha256().and_then(|source_sha256| {
            let sha256 = match self.format {
                Format::Jpeg => source_sha256.clone(),
                Format::Png => hex::encode(Sha256::digest(&jpeg)),
            };
            let new = NewCapture {
                id: self.id.clone(),
                created_ms: self.created_ms,
                taken_at: self.meta.taken_at,
                background_id: self.meta.background_id,
                bytes: jpeg.len() as i64,
                width: width as i64,
                height: height as i64,
                sha256,
                source_sha256,
                source_format: self.format.as_str().to_string(),
            };
            let event = self.meta.event_id.take();
            Ok(self
                .catalog
                .insert_capture_grouped_in(new, self.suspect, event)?)
        });
        if row.is_err() {
            // Not acknowledged: the file must not outlive the failed insert.
            let _ = self.uploads.remove(&self.id);
        }
        row.map(Stored::New)
    }
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
pub async fn delete_capture(app: &App, id: &str) -> Result<DeleteReceipt> {
    let _guard = app.uploads.lock_id(id).await;
    let lookup = id.to_string();
    let (removed, sms_cancelled, names) = app
        .catalog
        .write(move |tx| {
            // Read before the row goes: the remote deletion needs the public names.
            let names = catalog::remote_names(tx, std::slice::from_ref(&lookup))?;
            let cancelled = catalog::cancel_sms_for_capture(tx, &lookup, "capture deleted")?;
            let removed = catalog::delete_capture_row(tx, &lookup)?;
            Ok((removed, cancelled, names))
        })
        .await?;
    let (uploads, thumbnails) = (app.uploads.clone(), app.thumbnails.clone());
    let file_id = id.to_string();
    let file_removed = tokio::task::spawn_blocking(move || {
        thumbnails.remove(&file_id);
        uploads.remove(&file_id)
    })
    .await
    .map_err(|e| CaptureError::task(format!("storage task failed: {e}")))??;
    let now = app.clock.now_ms();
    app.outbox.cancel(JobKind::Sync, id)?;
    let remote = app.remotes.files.is_some() || app.remotes.db.is_some();
    if remote && (removed || file_removed) {
        let target = match names.first() {
            Some((_, token, legacy)) => crate::sync::job::delete_target(id, token, *legacy),
            None => id.to_string(),
        };
        app.outbox
            .push_durable(JobKind::RemoteDelete, &target, now, now)
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
