//! Capture thumbnails for the staff console: JPEGs whose longest side is at most
//! [`MAX_SIDE`], kept in `$KIOSK_DATA_DIR/thumbnails/{id}.jpg`.
//!
//! They are made off the capture's critical path: the capture path only [`schedule`]s
//! one once its `201` is decided, and the [`ThumbnailWorker`] makes it on a blocking
//! thread. One that is missing (a full queue, a crash, a capture from before thumbnails)
//! is made when first asked for, then kept. A thumbnail goes with its capture (admin
//! delete, retention, erasure); one left by a crash between the two is removed by the
//! worker's first round.
//!
//! Making one reads the photo at 1/8 scale from its DC coefficients alone
//! ([`super::jpeg_dc`]): the blocks' means, a box-filtered eighth of the photo, without
//! the IDCT or the colour conversion of every pixel. That image is the thumbnail when its
//! longest side is at least [`MIN_DC_SIDE`] (photos from 1,920 px: a 2048×1536 one gives
//! 256×192), shrunk to fit [`MAX_SIDE`] when larger. A smaller photo, or one the DC reader
//! leaves out (progressive, RGB, CMYK, a damaged scan), is decoded fully by `image` and
//! shrunk. Captures are always JPEG (PNG is converted at capture time).
//!
//! [`schedule`]: Thumbnails::schedule

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::Uploads;
use crate::catalog::Catalog;
use crate::workers::{Next, Worker};

/// Longest side of a thumbnail, in pixels.
pub const MAX_SIDE: u32 = 320;
/// The 1/8-scale image is the thumbnail from this longest side up; a smaller one would
/// look soft in the gallery's tiles, and its photo is small enough to decode fully.
pub const MIN_DC_SIDE: u32 = 240;
/// JPEG quality of thumbnails.
pub const QUALITY: u8 = 80;
/// Ids waiting for the worker at most; beyond, a thumbnail is made when first asked for.
const QUEUE_MAX: usize = 256;
/// The newest captures whose missing thumbnails the worker makes at start (the first
/// gallery pages); older ones are made when asked for.
const BACKFILL: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error("the capture's file is missing")]
    SourceMissing,
    #[error("cannot decode the capture: {0}")]
    Decode(String),
    #[error("cannot encode the thumbnail: {0}")]
    Encode(String),
    #[error("file system error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("thumbnail task failed: {0}")]
    Task(String),
}

impl ThumbnailError {
    fn io(path: &Path, source: io::Error) -> Self {
        ThumbnailError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The thumbnails directory and the queue of ids to make.
#[derive(Debug, Clone)]
pub struct Thumbnails {
    dir: PathBuf,
    queue: Arc<Mutex<VecDeque<String>>>,
    notify: Arc<Notify>,
}

impl Thumbnails {
    /// Opens (creates) the directory.
    pub fn open(dir: &Path) -> Result<Thumbnails, super::StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| super::StorageError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        Ok(Thumbnails {
            dir: dir.to_path_buf(),
            queue: Arc::default(),
            notify: Arc::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path_for(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.jpg"))
    }

    /// Asks the worker for a thumbnail of `id` (dropped when the queue is full: it will be
    /// made when asked for).
    pub fn schedule(&self, id: &str) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() < QUEUE_MAX {
            q.push_back(id.to_string());
            drop(q);
            self.notify.notify_one();
        }
    }

    fn take(&self, max: usize) -> Vec<String> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let n = q.len().min(max);
        q.drain(..n).collect()
    }

    fn queued(&self) -> usize {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Removes a thumbnail (missing is fine). No directory fsync: one that comes back
    /// after a power cut is an orphan the worker removes at start.
    pub fn remove(&self, id: &str) {
        let p = self.path_for(id);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(capture_id = %id, "cannot remove the thumbnail: {e}"),
        }
    }

    /// The stored thumbnail of `id`, if there is a whole one.
    pub fn read(&self, id: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path_for(id))
            .ok()
            .filter(|b| !b.is_empty())
    }

    /// Makes (blocking) the thumbnail of the capture file `source` and keeps it as `id`.
    pub fn make(&self, source: &Path, id: &str) -> Result<Vec<u8>, ThumbnailError> {
        let data = match std::fs::read(source) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ThumbnailError::SourceMissing)
            }
            Err(e) => return Err(ThumbnailError::io(source, e)),
        };
        let jpeg = make_jpeg(&data, MAX_SIDE)?;
        self.store(id, &jpeg)?;
        Ok(jpeg)
    }

    /// Temp file, data fsynced, renamed: a power cut leaves the old state or a whole
    /// thumbnail, never a torn one that would be served for good. (The directory is not
    /// fsynced: a lost rename only means making it again.)
    fn store(&self, id: &str, jpeg: &[u8]) -> Result<(), ThumbnailError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!(".{id}.{}.{seq}.tmp", std::process::id()));
        let dest = self.path_for(id);
        let write = || -> io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(jpeg)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &dest)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            ThumbnailError::io(&dest, e)
        })
    }

    /// Ids of the stored thumbnails (and leftover temp files, as `None`).
    fn list(&self) -> Vec<(PathBuf, Option<String>)> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.flatten()
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let id = name
                    .strip_suffix(".jpg")
                    .filter(|s| !s.starts_with('.'))
                    .map(str::to_string);
                (e.path(), id)
            })
            .collect()
    }
}

/// The size that fits `(w, h)` into a `max`×`max` box (never enlarged, at least 1×1).
pub fn fit(w: u32, h: u32, max: u32) -> (u32, u32) {
    fit_box(w, h, max, max)
}

/// The size that fits `(w, h)` into a `max_w`×`max_h` box, the aspect kept (never
/// enlarged, at least 1×1).
pub fn fit_box(w: u32, h: u32, max_w: u32, max_h: u32) -> (u32, u32) {
    if w <= max_w && h <= max_h {
        return (w.max(1), h.max(1));
    }
    let (w64, h64) = (u64::from(w.max(1)), u64::from(h.max(1)));
    let (mw, mh) = (u64::from(max_w), u64::from(max_h));
    // Width-bound when w/h >= max_w/max_h.
    if w64 * mh >= h64 * mw {
        (max_w, ((h64 * mw + w64 / 2) / w64).clamp(1, mh) as u32)
    } else {
        (((w64 * mh + h64 / 2) / h64).clamp(1, mw) as u32, max_h)
    }
}

/// `img` shrunk (area-averaged) to fit a `max_w`×`max_h` box; as it is when it fits.
/// The one shrink of the daemon (capture thumbnails, backgrounds' thumbnails).
pub fn shrink(img: image::RgbImage, max_w: u32, max_h: u32) -> image::RgbImage {
    let (tw, th) = fit_box(img.width(), img.height(), max_w, max_h);
    if (img.width(), img.height()) == (tw, th) {
        img
    } else {
        image::imageops::thumbnail(&img, tw, th)
    }
}

/// A JPEG thumbnail of the JPEG `data`, its longest side at most `max_side`.
pub fn make_jpeg(data: &[u8], max_side: u32) -> Result<Vec<u8>, ThumbnailError> {
    let img = match super::jpeg_dc::decode(data) {
        Ok(small) if small.width.max(small.height) >= MIN_DC_SIDE.min(max_side) => {
            image::RgbImage::from_raw(small.width, small.height, small.rgb)
                .ok_or_else(|| ThumbnailError::Decode("decoded size does not match".into()))?
        }
        // Too small an eighth, or a file the DC reader leaves out: the full decoder
        // (which also tells a damaged file from a format it does not know).
        _ => image::load_from_memory_with_format(data, image::ImageFormat::Jpeg)
            .map_err(|e| ThumbnailError::Decode(e.to_string()))?
            .to_rgb8(),
    };
    let img = shrink(img, max_side, max_side);
    let (tw, th) = (img.width(), img.height());
    let mut out = Vec::with_capacity((tw * th / 4) as usize);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY)
        .encode(img.as_raw(), tw, th, image::ExtendedColorType::Rgb8)
        .map_err(|e| ThumbnailError::Encode(e.to_string()))?;
    Ok(out)
}

/// The worker's name in `/health`.
pub const THUMBNAILS: &str = "thumbnails";
/// Thumbnails made per round (then it yields and goes again).
const PER_ROUND: usize = 8;

/// Makes the thumbnails the capture path scheduled; at start, removes orphans and makes
/// the missing ones of the newest captures.
pub struct ThumbnailWorker {
    thumbs: Thumbnails,
    uploads: Uploads,
    catalog: Catalog,
    started: bool,
    made: u64,
    failed: u64,
}

impl ThumbnailWorker {
    pub fn new(thumbs: Thumbnails, uploads: Uploads, catalog: Catalog) -> Self {
        ThumbnailWorker {
            thumbs,
            uploads,
            catalog,
            started: false,
            made: 0,
            failed: 0,
        }
    }

    /// Orphans (and temp files) out; the newest captures without one queued.
    async fn sweep(&self) -> Result<(), String> {
        let stored = {
            let t = self.thumbs.clone();
            tokio::task::spawn_blocking(move || t.list())
                .await
                .map_err(|e| e.to_string())?
        };
        let ids: Vec<String> = stored.iter().filter_map(|(_, id)| id.clone()).collect();
        let known = self
            .catalog
            .read(move |c| {
                let mut known = std::collections::HashSet::new();
                for id in ids {
                    if crate::catalog::capture_exists(c, &id)? {
                        known.insert(id);
                    }
                }
                Ok(known)
            })
            .await
            .map_err(|e| e.to_string())?;
        for (path, id) in &stored {
            if id.as_ref().is_none_or(|id| !known.contains(id)) {
                let _ = std::fs::remove_file(path);
            }
        }
        let newest = self
            .catalog
            .read(|c| crate::catalog::capture_ids_before(c, i64::MAX, BACKFILL))
            .await
            .map_err(|e| e.to_string())?;
        for (_, id) in newest {
            if !known.contains(&id) {
                self.thumbs.schedule(&id);
            }
        }
        Ok(())
    }
}

impl Worker for ThumbnailWorker {
    fn name(&self) -> &'static str {
        THUMBNAILS
    }

    async fn work(&mut self) -> Result<Next, String> {
        if !self.started {
            self.started = true;
            self.sweep().await?;
        }
        for id in self.thumbs.take(PER_ROUND) {
            // Under the id's lock, so that a deletion does not race the new file in.
            let _guard = self.uploads.lock_id(&id).await;
            let (thumbs, source) = (self.thumbs.clone(), self.uploads.path_for(&id));
            let made = tokio::task::spawn_blocking(move || {
                if thumbs.read(&id).is_some() {
                    return Ok(false);
                }
                thumbs.make(&source, &id).map(|_| true)
            })
            .await
            .map_err(|e| e.to_string())?;
            match made {
                Ok(true) => self.made += 1,
                Ok(false) | Err(ThumbnailError::SourceMissing) => {}
                Err(e) => {
                    self.failed += 1;
                    tracing::warn!("thumbnail not made: {e}");
                }
            }
        }
        Ok(if self.thumbs.queued() > 0 {
            Next::Busy
        } else {
            Next::Idle(Duration::from_secs(3600))
        })
    }

    fn waker(&self) -> Option<Arc<Notify>> {
        Some(self.thumbs.notify.clone())
    }

    fn details(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "made": self.made,
            "failed": self.failed,
            "queued": self.thumbs.queued(),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn photo(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        out
    }

    fn dims(jpeg: &[u8]) -> (u32, u32) {
        let img = image::load_from_memory(jpeg).unwrap();
        (img.width(), img.height())
    }

    #[test]
    fn fit_keeps_the_aspect_and_never_enlarges() {
        assert_eq!(fit(2048, 1536, 320), (320, 240));
        assert_eq!(fit(1536, 2048, 320), (240, 320));
        assert_eq!(fit(200, 100, 320), (200, 100));
        assert_eq!(fit(10_000, 1, 320), (320, 1));
        assert_eq!(fit_box(1920, 1080, 320, 1280), (320, 180));
        assert_eq!(fit_box(100, 5000, 320, 1280), (26, 1280));
        assert_eq!(fit_box(300, 200, 320, 1280), (300, 200));
    }

    #[test]
    fn thumbnails_fit_in_the_box() {
        for (w, h, want) in [
            // The eighth (256×192) as it is; a larger eighth shrunk to fit.
            (2048, 1536, (256, 192)),
            (4000, 3000, (320, 240)),
            (1000, 3000, (107, 320)),
            (300, 200, (300, 200)),
            (641, 480, (320, 240)),
        ] {
            let t = make_jpeg(&photo(w, h), MAX_SIDE).unwrap();
            assert_eq!(dims(&t), want, "{w}x{h}");
        }
    }

    #[test]
    fn a_grey_photo_makes_a_thumbnail() {
        let img = image::GrayImage::from_fn(800, 600, |x, _| image::Luma([(x % 256) as u8]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode(img.as_raw(), 800, 600, image::ExtendedColorType::L8)
            .unwrap();
        assert_eq!(dims(&make_jpeg(&jpeg, MAX_SIDE).unwrap()), (320, 240));
    }

    #[test]
    fn not_a_jpeg_is_a_decode_error() {
        assert!(matches!(
            make_jpeg(b"not a jpeg", MAX_SIDE),
            Err(ThumbnailError::Decode(_))
        ));
    }

    #[test]
    fn make_stores_and_remove_removes() {
        let dir = tempfile::tempdir().unwrap();
        let t = Thumbnails::open(&dir.path().join("thumbnails")).unwrap();
        let src = dir.path().join("a.jpg");
        std::fs::write(&src, photo(1024, 768)).unwrap();
        let made = t.make(&src, "a").unwrap();
        assert_eq!(t.read("a").unwrap(), made);
        assert!(matches!(
            t.make(&dir.path().join("none.jpg"), "b"),
            Err(ThumbnailError::SourceMissing)
        ));
        t.remove("a");
        assert!(t.read("a").is_none());
        // Nothing but thumbnails is left in the directory (no temp file).
        assert!(t.list().is_empty());
    }
}
