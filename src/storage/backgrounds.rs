//! Background files: `$KIOSK_DATA_DIR/backgrounds/{id}.jpg` plus `{id}.thumb.jpg` (at
//! most [`THUMBNAIL_WIDTH`] px wide), both written durably before the catalog row is
//! inserted.
//!
//! An upload is checked like a capture and converted to JPEG when it is a PNG. A crash
//! between the files and the row leaves files without a row; [`Backgrounds::reconcile`]
//! removes them (before every upload, and at start-up). Mutations are serialized by one
//! lock: they are rare, and it keeps the reconciliation from racing an upload.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::image::{self as img, Format, ImageError};
use super::StorageError;
use crate::catalog::{self, BackgroundRow, Catalog, CatalogError, NewBackground};
use crate::ids;

/// Widest thumbnail, in pixels.
pub const THUMBNAIL_WIDTH: u32 = 320;
/// Tallest thumbnail (very tall pictures are bounded too).
pub const THUMBNAIL_MAX_HEIGHT: u32 = 1280;
pub const THUMBNAIL_QUALITY: u8 = 80;
/// Temp files older than this in `.incoming` belong to no running upload.
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum BackgroundError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A blocking thread (image work, file writes) died.
    #[error("{0}")]
    Task(String),
}

/// What a new background is, besides its picture.
#[derive(Debug, Clone)]
pub struct BackgroundInfo {
    pub name: String,
    pub position: Option<i64>,
    pub created_ms: i64,
}

/// The backgrounds' files and the rows that own them.
#[derive(Debug, Clone)]
pub struct Backgrounds {
    dir: PathBuf,
    catalog: Catalog,
    /// Serializes uploads, deletions and [`Backgrounds::reconcile`].
    mutations: Arc<tokio::sync::Mutex<()>>,
}

impl Backgrounds {
    /// `dir`: the directory of background files (created by the first upload).
    pub fn new(dir: PathBuf, catalog: Catalog) -> Backgrounds {
        Backgrounds {
            dir,
            catalog,
            mutations: Arc::default(),
        }
    }

    /// The directory of background files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A background's JPEG. `id` must already be validated.
    pub fn image_path(&self, id: &str) -> PathBuf {
        image_path(&self.dir, id)
    }

    /// A background's thumbnail. `id` must already be validated.
    pub fn thumb_path(&self, id: &str) -> PathBuf {
        thumb_path(&self.dir, id)
    }

    /// Validates `source` (JPEG or PNG), stores it and its thumbnail durably with at
    /// least `reserve` bytes left free, then inserts its row. On failure nothing stays.
    pub async fn add(
        &self,
        source: Vec<u8>,
        info: BackgroundInfo,
        reserve: u64,
    ) -> Result<BackgroundRow, BackgroundError> {
        let processed = tokio::task::spawn_blocking(move || process(source))
            .await
            .map_err(|e| BackgroundError::Task(format!("image task failed: {e}")))??;

        let _lock = self.mutations.lock().await;
        self.reconcile_locked().await;
        let id = ids::new_id();
        let new = NewBackground {
            id: id.clone(),
            name: info.name,
            position: info.position,
            bytes: processed.jpeg.len() as i64,
            width: processed.width as i64,
            height: processed.height as i64,
            sha256: processed.sha256.clone(),
            created_ms: info.created_ms,
        };
        {
            let (d, id) = (self.dir.clone(), id.clone());
            tokio::task::spawn_blocking(move || store_files(&d, &id, &processed, reserve))
                .await
                .map_err(|e| BackgroundError::Task(format!("storage task failed: {e}")))??;
        }
        match self
            .catalog
            .write(move |c| catalog::insert_background(c, &new))
            .await
        {
            Ok(row) => Ok(row),
            Err(e) => {
                let d = self.dir.clone();
                let _ = tokio::task::spawn_blocking(move || remove_files(&d, &id)).await;
                Err(e.into())
            }
        }
    }

    /// Deletes a background: the row first (the app stops offering it), then the files.
    /// `false`: there was no such background.
    pub async fn delete(&self, id: &str) -> Result<bool, BackgroundError> {
        let _lock = self.mutations.lock().await;
        let lookup = id.to_string();
        let removed = self
            .catalog
            .write(move |c| catalog::delete_background_row(c, &lookup))
            .await?;
        if !removed {
            return Ok(false);
        }
        let (d, file_id) = (self.dir.clone(), id.to_string());
        tokio::task::spawn_blocking(move || remove_files(&d, &file_id))
            .await
            .map_err(|e| BackgroundError::Task(format!("storage task failed: {e}")))??;
        Ok(true)
    }

    /// Removes background files that have no row (a crash between the files and the row)
    /// and stale temp files. Never fails: problems are logged.
    pub async fn reconcile(&self) {
        let _lock = self.mutations.lock().await;
        self.reconcile_locked().await;
    }

    async fn reconcile_locked(&self) {
        if !self.dir.exists() {
            return;
        }
        let known = match self.catalog.read(catalog::all_background_ids).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!("background files not reconciled: {e}");
                return;
            }
        };
        let d = self.dir.clone();
        let _ = tokio::task::spawn_blocking(move || sweep(&d, &known)).await;
    }
}

fn image_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.jpg"))
}

fn thumb_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.thumb.jpg"))
}

/// A validated background: the JPEG to keep and its thumbnail.
struct Processed {
    jpeg: Vec<u8>,
    thumb: Vec<u8>,
    width: u32,
    height: u32,
    sha256: String,
}

fn process(source: Vec<u8>) -> Result<Processed, ImageError> {
    let (jpeg, width, height) = match img::sniff(&source).ok_or(ImageError::NotAnImage)? {
        Format::Jpeg => {
            let (w, h) = img::jpeg_dimensions(&source)?;
            (source, w, h)
        }
        Format::Png => img::png_to_jpeg(&source)?,
    };
    let thumb = thumbnail(&jpeg)?;
    let sha256 = hex::encode(Sha256::digest(&jpeg));
    Ok(Processed {
        jpeg,
        thumb,
        width,
        height,
        sha256,
    })
}

/// Decodes the JPEG (which also proves its pixel data is sound, beyond the header checks)
/// and encodes a thumbnail at most [`THUMBNAIL_WIDTH`] wide.
fn thumbnail(jpeg: &[u8]) -> Result<Vec<u8>, ImageError> {
    let mut reader = image::ImageReader::with_format(Cursor::new(jpeg), image::ImageFormat::Jpeg);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(img::MAX_PIXELS * 4);
    reader.limits(limits);
    let decoded = reader
        .decode()
        .map_err(|_| ImageError::BadJpeg("its image data cannot be decoded"))?;
    let rgb = super::thumbnails::shrink(decoded.into_rgb8(), THUMBNAIL_WIDTH, THUMBNAIL_MAX_HEIGHT);
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, THUMBNAIL_QUALITY);
    rgb.write_with_encoder(enc)
        .map_err(|_| ImageError::BadJpeg("cannot make a thumbnail"))?;
    Ok(out)
}

fn io_error(path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes both files durably (image first, thumbnail second); on failure neither stays.
fn store_files(dir: &Path, id: &str, p: &Processed, reserve: u64) -> Result<(), StorageError> {
    let incoming = dir.join(".incoming");
    std::fs::create_dir_all(&incoming).map_err(|e| io_error(&incoming, e))?;
    let need = (p.jpeg.len() + p.thumb.len()) as u64;
    super::check_room(super::space(dir)?, need, reserve)?;
    let result = (|| {
        let tmp = incoming.join(format!("{id}.jpg.tmp"));
        super::write_durable(&tmp, &image_path(dir, id), &p.jpeg)?;
        let tmp = incoming.join(format!("{id}.thumb.tmp"));
        super::write_durable(&tmp, &thumb_path(dir, id), &p.thumb)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(incoming.join(format!("{id}.jpg.tmp")));
        let _ = std::fs::remove_file(incoming.join(format!("{id}.thumb.tmp")));
        let _ = remove_files(dir, id);
    }
    result
}

/// Removes a background's files (missing ones are fine) and fsyncs the directory.
fn remove_files(dir: &Path, id: &str) -> Result<(), StorageError> {
    for p in [image_path(dir, id), thumb_path(dir, id)] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&p, e)),
        }
    }
    super::sync_dir(dir).map_err(|e| io_error(dir, e))
}

fn sweep(dir: &Path, known: &[String]) {
    let known: std::collections::HashSet<&str> = known.iter().map(String::as_str).collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut removed = 0usize;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let id = name
            .strip_suffix(".thumb.jpg")
            .or_else(|| name.strip_suffix(".jpg"));
        if let Some(id) = id {
            if !known.contains(id) && std::fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir.join(".incoming")) {
        for e in entries.flatten() {
            let stale = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_TMP);
            if stale && std::fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
    }
    if removed > 0 {
        let _ = super::sync_dir(dir);
        tracing::warn!(
            removed,
            "removed background files left without a catalog row by an interrupted upload"
        );
    }
}
