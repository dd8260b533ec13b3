//! A capture file being written: a temp file (unnamed where the file system has them)
//! fed as the body arrives, its blocks reserved ahead and its pages handed to the disk
//! as it goes, then made durable under its name by [`IncomingFile::commit`].

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::{finish_durable, StorageError, Uploads};

/// A capture file being written (see [`Uploads::begin`]).
#[derive(Debug)]
pub struct IncomingFile {
    /// `None` once committed.
    file: Option<File>,
    /// The temp file's name; `None`: an unnamed one.
    tmp: Option<PathBuf>,
    id: String,
    /// Bytes written so far, and how many of them were handed to the disk already.
    written: u64,
    kicked: u64,
    /// Disk blocks reserved ahead (see [`preallocate`]): for how many bytes, and the
    /// block size.
    reserved: Option<(u64, u64)>,
}

/// Reserves the disk blocks of a file about to receive `expected` bytes, without changing
/// its size (`FALLOC_FL_KEEP_SIZE`). Writing into blocks reserved at once costs less than
/// having ext4 reserve them page by page as the writes come (delayed allocation): on the
/// benchmark VM, writing a 1.59 MB photo in 98 KB pieces took 0.38-0.41 ms instead of
/// 0.50-0.53 ms for 0.02 ms of `fallocate`, and its fsync took no longer (python loop,
/// 150 files × 3 rounds); the capture benchmark's 1-client p50 fell by 0.17-0.44 ms
/// (base64) and 0.19-0.60 ms (raw) in four alternated runs. A capture that has begun
/// also owns its space: a disk filling up meanwhile no longer makes its writes fail
/// half-way (tests/disk_full.rs shows it on a tmpfs). Advice only: where it fails (a file
/// system without it, no room), the writes allocate as usual. Returns the bytes reserved
/// and the block size.
fn preallocate(f: &File, expected: u64) -> Option<(u64, u64)> {
    let keep = rustix::fs::FallocateFlags::KEEP_SIZE;
    if expected == 0 || rustix::fs::fallocate(f, keep, 0, expected).is_err() {
        return None;
    }
    let block = rustix::fs::fstat(f).map_or(4096, |st| st.st_blksize as u64);
    Some((expected, block.max(512)))
}

/// While a photo arrives, what is written of it is handed to the disk every this many
/// bytes: the fsync at the end then has little left to wait for.
///
/// Buffered writes with these kicks were measured against other ways on the benchmark VM
/// (timing marks in instrumented builds, 280 captures each; none kept):
/// - `O_DIRECT` (aligned writes, no page cache): writing the 1.6 MB photo took 1.0-1.3 ms
///   of waiting, one write at a time, and the capture ended 0.1-0.4 ms later;
/// - the writes done by the thread that receives the body (`block_in_place`), so that
///   they start with the first bytes: the body took twice as long to arrive, and the
///   capture ended at the same time;
/// - the fsync begun by the writer thread as soon as the body ends: it ended no sooner.
///
/// With these buffered writes, the same marks had the file durable 0.96-1.12 times a
/// paired reference write (write+fsync+rename+fsync) after the request started, in six
/// runs: what is left after the body is mostly waiting on the disk.
pub(super) const WRITEBACK_STEP: u64 = 256 * 1024;

impl IncomingFile {
    /// `file`: the temp file, named `tmp` (`None`: an unnamed one), about to receive
    /// `expected` bytes.
    pub(super) fn new(file: File, tmp: Option<PathBuf>, id: &str, expected: u64) -> Self {
        let reserved = preallocate(&file, expected);
        IncomingFile {
            file: Some(file),
            tmp,
            id: id.to_string(),
            written: 0,
            kicked: 0,
            reserved,
        }
    }

    /// Bytes written, and how many of them were handed to the disk (tests).
    #[cfg(test)]
    pub(super) fn progress(&self) -> (u64, u64) {
        (self.written, self.kicked)
    }

    /// The open temp file, until committed (tests).
    #[cfg(test)]
    pub(super) fn file(&self) -> Option<&File> {
        self.file.as_ref()
    }

    /// The capture id the file is for.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Makes the file the one of capture `id` (validated) when committed: for a body
    /// that names its capture only after the image.
    pub fn retarget(&mut self, id: &str) {
        self.id = id.to_string();
    }

    pub fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        f.write_all(data)
            .map_err(|e| StorageError::io(&self.incoming_label(), e))?;
        self.written += data.len() as u64;
        if self.written - self.kicked >= WRITEBACK_STEP {
            self.start_writeback();
        }
        Ok(())
    }

    /// Hands what is written and not handed yet to the disk, without waiting: the body
    /// is complete, or another step of it is written.
    pub fn start_writeback(&mut self) {
        let (Some(f), Some(len)) = (
            &self.file,
            std::num::NonZeroU64::new(self.written - self.kicked),
        ) else {
            return;
        };
        // DONTNEED on dirty pages starts their writeback without waiting for it
        // (mm/fadvise.c, WB_SYNC_NONE), and drops them once they are clean. Advice only:
        // the fsync in `commit` is what makes the data durable.
        let _ = rustix::fs::fadvise(f, self.kicked, Some(len), rustix::fs::Advice::DontNeed);
        self.kicked = self.written;
    }

    /// fsync → name it `{id}.jpg` → fsync the directory: from here the file survives a
    /// power cut.
    pub fn commit(mut self, uploads: &Uploads) -> Result<PathBuf, StorageError> {
        let dest = uploads.path_for(&self.id);
        let Some(f) = self.file.take() else {
            return Ok(dest);
        };
        let reserved_past_the_end = self
            .reserved
            .is_some_and(|(bytes, block)| bytes.div_ceil(block) > self.written.div_ceil(block));
        if reserved_past_the_end {
            // Fewer bytes came than were reserved (a JSON body's image is a little
            // shorter than its base64 suggests): let the blocks past the end go. A
            // truncation to the same size does that on ext4 (see ext4_setattr).
            f.set_len(self.written)
                .map_err(|e| StorageError::io(&self.incoming_label(), e))?;
        }
        f.sync_all()
            .map_err(|e| StorageError::io(&self.incoming_label(), e))?;
        let tmp = match self.tmp.take() {
            Some(tmp) => tmp,
            None => match link_unnamed(&f, &dest, || uploads.temp_path(&self.id))? {
                None => return finish_durable(f, &dest),
                Some(tmp) => tmp,
            },
        };
        if let Err(e) = fs::rename(&tmp, &dest) {
            // Left for `drop` to remove.
            self.tmp = Some(tmp);
            return Err(StorageError::io(&dest, e));
        }
        finish_durable(f, &dest)
    }

    /// The path to name in an error about the temp file.
    fn incoming_label(&self) -> PathBuf {
        self.tmp
            .clone()
            .unwrap_or_else(|| PathBuf::from("(unnamed temp file)"))
    }
}

/// Links the synced unnamed temp file `f` to `dest`. If a file has that name already
/// (left by a crash between the rename and the row), links it to a named temp file
/// (`tmp()`) instead and returns that, to be renamed over `dest` as a named one would be.
fn link_unnamed(
    f: &File,
    dest: &Path,
    tmp: impl FnOnce() -> PathBuf,
) -> Result<Option<PathBuf>, StorageError> {
    // The descriptor's /proc link names the unnamed file (linkat with AT_EMPTY_PATH
    // would need CAP_DAC_READ_SEARCH).
    let link = format!("/proc/self/fd/{}", f.as_raw_fd());
    let follow = rustix::fs::AtFlags::SYMLINK_FOLLOW;
    let cwd = rustix::fs::CWD;
    match rustix::fs::linkat(cwd, &link, cwd, dest, follow) {
        Ok(()) => Ok(None),
        Err(rustix::io::Errno::EXIST) => {
            let tmp = tmp();
            rustix::fs::linkat(cwd, &link, cwd, &tmp, follow)
                .map_err(|e| StorageError::io(&tmp, e.into()))?;
            Ok(Some(tmp))
        }
        Err(e) => Err(StorageError::io(dest, e.into())),
    }
}

impl Drop for IncomingFile {
    fn drop(&mut self) {
        // Not committed (or the commit failed before the rename): nothing half-written
        // stays behind. An unnamed temp file vanishes when closed.
        if let Some(tmp) = &self.tmp {
            let _ = fs::remove_file(tmp);
        }
    }
}
