//! Local files: durable writes of capture images, free-space checks, image validation.
//!
//! A capture file is written to a temp file in `uploads/.incoming/`, fsynced, given its
//! name `uploads/{id}.jpg` and the directory fsynced: after `store` returns, the file
//! survives a power cut, and a crash before that leaves at most a temp file, which
//! start-up removes.
//!
//! The temp file is an unnamed one (`O_TMPFILE`) where the file system has them: it
//! vanishes by itself if the process dies, and it is linked to its name once durable.
//! One is created ahead of time ([`Uploads::prepare_spare`]), so that a capture does not
//! wait for the file system to allocate an inode when its first bytes arrive (0.04 ms on
//! the benchmark VM, up to 0.4 ms when many files had just been deleted; timestamps in an
//! instrumented build). Elsewhere a named temp file is used and renamed.

pub mod backgrounds;
pub mod image;
mod locks;

pub use backgrounds::Backgrounds;
pub use locks::IdGuard;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("not enough free disk space ({free} bytes free, {reserve} bytes kept in reserve)")]
    Full { free: u64, reserve: u64 },
    #[error("file system error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl StorageError {
    fn io(path: &Path, source: io::Error) -> Self {
        if source.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error()) {
            return StorageError::Full {
                free: 0,
                reserve: 0,
            };
        }
        StorageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The uploads directory.
#[derive(Debug, Clone)]
pub struct Uploads {
    dir: PathBuf,
    incoming: PathBuf,
    /// Unnamed temp files work in `incoming` (cleared on the first failure).
    unnamed: Arc<AtomicBool>,
    /// An unnamed temp file made ahead for the next capture.
    spare: Arc<Mutex<Option<File>>>,
    /// Held by whoever writes or removes a capture's file and row.
    locks: Arc<locks::IdLocks>,
}

impl Uploads {
    /// Creates the directories (0750) when missing.
    pub fn open(dir: &Path) -> Result<Uploads, StorageError> {
        let incoming = dir.join(".incoming");
        for d in [dir, incoming.as_path()] {
            fs::create_dir_all(d).map_err(|e| StorageError::io(d, e))?;
        }
        Ok(Uploads {
            dir: dir.to_path_buf(),
            incoming,
            unnamed: Arc::new(AtomicBool::new(true)),
            spare: Arc::default(),
            locks: Arc::default(),
        })
    }

    /// Waits until no other request works on capture `id` (its file and its row), and
    /// holds it until the guard is dropped.
    pub async fn lock_id(&self, id: &str) -> IdGuard<'_> {
        self.locks.lock(id).await
    }

    /// Creates the unnamed temp file the next capture will use, unless one is ready
    /// (or the file system has none). Meant for a moment when no capture waits on it.
    pub fn prepare_spare(&self) {
        if !self.unnamed.load(Ordering::Relaxed) || self.lock_spare().is_some() {
            return;
        }
        if let Some(f) = self.create_unnamed() {
            // Another thread may have been quicker: then this one is closed (and gone).
            self.lock_spare().get_or_insert(f);
        }
    }

    fn lock_spare(&self) -> std::sync::MutexGuard<'_, Option<File>> {
        // A panic while holding it cannot leave a half-made state: it is an Option.
        self.spare.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new unnamed temp file in `.incoming/` (mode 0640), or `None` if the file system
    /// has none (remembered: named temp files are used from then on).
    fn create_unnamed(&self) -> Option<File> {
        if !self.unnamed.load(Ordering::Relaxed) {
            return None;
        }
        use rustix::fs::{Mode, OFlags};
        match rustix::fs::openat(
            rustix::fs::CWD,
            &self.incoming,
            OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o640),
        ) {
            Ok(fd) => Some(File::from(fd)),
            Err(e) => {
                tracing::info!(
                    "unnamed temp files unavailable in {} ({e}): named ones are used",
                    self.incoming.display()
                );
                self.unnamed.store(false, Ordering::Relaxed);
                None
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a capture's file. `id` must already be validated.
    pub fn path_for(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.jpg"))
    }

    /// Free bytes for unprivileged users on the uploads file system.
    pub fn free_bytes(&self) -> Result<u64, StorageError> {
        free_bytes(&self.dir)
    }

    /// Writes `data` as `{id}.jpg` durably. Checks first that `data` fits above `reserve`.
    pub fn store(&self, id: &str, data: &[u8], reserve: u64) -> Result<PathBuf, StorageError> {
        let mut file = self.begin(id, data.len() as u64, reserve)?;
        file.write(data)?;
        file.commit(self)
    }

    /// Starts `{id}.jpg` as a temp file in `.incoming/`, after checking that `expected`
    /// bytes fit above `reserve`. Write it, then [`IncomingFile::commit`] it; dropped
    /// uncommitted, the temp file is removed.
    pub fn begin(
        &self,
        id: &str,
        expected: u64,
        reserve: u64,
    ) -> Result<IncomingFile, StorageError> {
        let free = self.free_bytes()?;
        if free < reserve.saturating_add(expected) {
            return Err(StorageError::Full { free, reserve });
        }
        let spare = self.lock_spare().take();
        let (file, tmp) = match spare.or_else(|| self.create_unnamed()) {
            Some(f) => (f, None),
            None => {
                let tmp = self.temp_path(id);
                (create_private(&tmp)?, Some(tmp))
            }
        };
        let reserved = preallocate(&file, expected);
        Ok(IncomingFile {
            file: Some(file),
            tmp,
            id: id.to_string(),
            written: 0,
            kicked: 0,
            reserved,
        })
    }

    /// A temp file name in `.incoming/`, unique per write: two requests for one id may
    /// both be streaming (the id lock is taken once the body is in).
    fn temp_path(&self, id: &str) -> PathBuf {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        self.incoming
            .join(format!("{id}.{}.{seq}.tmp", std::process::id()))
    }

    /// Removes a capture file (missing is fine) and fsyncs the directory.
    pub fn remove(&self, id: &str) -> Result<bool, StorageError> {
        let p = self.path_for(id);
        match fs::remove_file(&p) {
            Ok(()) => {
                sync_dir(&self.dir).map_err(|e| StorageError::io(&self.dir, e))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StorageError::io(&p, e)),
        }
    }

    /// Deletes leftovers of interrupted writes (start-up only).
    pub fn clear_incoming(&self) -> Result<usize, StorageError> {
        let mut n = 0;
        let rd = fs::read_dir(&self.incoming).map_err(|e| StorageError::io(&self.incoming, e))?;
        for entry in rd.flatten() {
            if fs::remove_file(entry.path()).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// The capture ids that have a `{id}.jpg` file.
    pub fn list_ids(&self) -> Result<Vec<String>, StorageError> {
        let rd = fs::read_dir(&self.dir).map_err(|e| StorageError::io(&self.dir, e))?;
        let mut ids = Vec::new();
        for entry in rd.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name.strip_suffix(".jpg") {
                if crate::ids::is_valid_id(id) {
                    ids.push(id.to_string());
                }
            }
        }
        Ok(ids)
    }
}

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
const WRITEBACK_STEP: u64 = 256 * 1024;

impl IncomingFile {
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

/// Lets the kernel drop a synced file's cached pages, on another blocking thread when
/// there is a runtime: nobody needs to wait for it. A photo is read back rarely (one
/// upload, a download or two), and a kiosk keeps thousands of them: cached, they would
/// push the catalog and the program out of a small board's memory. (It also keeps virtual
/// machines fast: on the benchmark VM, tools/bench-capture.sh's last scenario, raw with 4
/// clients after ~1,000 captures kept, went from 252-266 to 385-415 captures/s with it.)
/// Advice only.
fn drop_cache_later(f: File) {
    let drop_cache = move || {
        let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
    };
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => drop(rt.spawn_blocking(drop_cache)),
        Err(_) => drop_cache(),
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

/// temp file → write → fsync → rename → fsync directory.
pub fn write_durable(tmp: &Path, dest: &Path, data: &[u8]) -> Result<(), StorageError> {
    let mut f = create_private(tmp)?;
    f.write_all(data).map_err(|e| StorageError::io(tmp, e))?;
    sync_and_rename(f, tmp, dest)
}

/// A new temp file, readable by the daemon's group only.
fn create_private(tmp: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(tmp)
        .map_err(|e| StorageError::io(tmp, e))
}

/// fsync the written temp file, rename it to `dest`, then [`finish_durable`].
fn sync_and_rename(f: File, tmp: &Path, dest: &Path) -> Result<(), StorageError> {
    f.sync_all().map_err(|e| StorageError::io(tmp, e))?;
    fs::rename(tmp, dest).map_err(|e| StorageError::io(dest, e))?;
    finish_durable(f, dest).map(|_| ())
}

/// `dest` has its name: fsync its directory (from here it survives a power cut), then let
/// its cached pages go.
fn finish_durable(f: File, dest: &Path) -> Result<PathBuf, StorageError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    sync_dir(parent).map_err(|e| StorageError::io(parent, e))?;
    drop_cache_later(f);
    Ok(dest.to_path_buf())
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub fn free_bytes(dir: &Path) -> Result<u64, StorageError> {
    let st = rustix::fs::statvfs(dir).map_err(|e| StorageError::io(dir, e.into()))?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Total bytes of the file system holding `dir`.
pub fn total_bytes(dir: &Path) -> Result<u64, StorageError> {
    let st = rustix::fs::statvfs(dir).map_err(|e| StorageError::io(dir, e.into()))?;
    Ok(st.f_blocks.saturating_mul(st.f_frsize))
}

/// Writes a small secret file (0600) durably, unless it exists; returns its content.
pub fn ensure_secret_file(path: &Path) -> Result<(String, bool), StorageError> {
    match fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => return Ok((s.trim().to_string(), false)),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(StorageError::io(path, e)),
    }
    let value = crate::ids::random_hex(32);
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| StorageError::io(&tmp, e))?;
    f.write_all(value.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| StorageError::io(&tmp, e))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
        .map_err(|e| StorageError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| StorageError::io(path, e))?;
    if let Some(parent) = path.parent() {
        let _ = sync_dir(parent);
    }
    Ok((value, true))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn incoming_names(u: &Uploads) -> Vec<String> {
        fs::read_dir(&u.incoming)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// The uploads directory with unnamed temp files (`true`) or named ones.
    fn uploads(dir: &Path, unnamed: bool) -> Uploads {
        let u = Uploads::open(&dir.join("uploads")).unwrap();
        u.unnamed.store(unnamed, Ordering::Relaxed);
        u
    }

    /// Files (and temp files) written in pieces, committed, dropped, refused; `visible`:
    /// how many names a temp file shows in `.incoming/` while written.
    fn commit_or_vanish(u: &Uploads, visible: usize) {
        // Written in pieces, committed: the whole file under its name (mode 0640), no
        // temp left.
        let mut f = u.begin("one", 6, 0).unwrap();
        f.write(b"abc").unwrap();
        f.write(b"def").unwrap();
        assert_eq!(incoming_names(u).len(), visible);
        let path = f.commit(u).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"abcdef");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert!(incoming_names(u).is_empty());

        // Two writes for one id at once get their own temp files; dropped, both vanish.
        let mut a = u.begin("two", 3, 0).unwrap();
        let b = u.begin("two", 3, 0).unwrap();
        a.write(b"xyz").unwrap();
        assert_eq!(incoming_names(u).len(), 2 * visible);
        drop((a, b));
        assert!(incoming_names(u).is_empty());
        assert!(!u.path_for("two").exists());

        // A file already under the name (a crash between the rename and the row) is
        // replaced, as a rename would.
        fs::write(u.path_for("four"), b"stale bytes").unwrap();
        let mut f = u.begin("four", 5, 0).unwrap();
        f.write(b"fresh").unwrap();
        f.commit(u).unwrap();
        assert_eq!(fs::read(u.path_for("four")).unwrap(), b"fresh");
        assert!(incoming_names(u).is_empty());

        // A write bigger than a writeback step, handed to the disk as it goes: whole.
        let big: Vec<u8> = (0..3 * WRITEBACK_STEP as usize / 2 + 7)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut f = u.begin("five", big.len() as u64, 0).unwrap();
        for piece in big.chunks(100_000) {
            f.write(piece).unwrap();
        }
        assert!(f.kicked > 0 && f.kicked < f.written);
        assert_eq!(fs::read(f.commit(u).unwrap()).unwrap(), big);

        // Room reserved for more bytes than came (a JSON body's estimate): the file holds
        // what came, and the blocks reserved past it are let go.
        let mut f = u.begin("six", 1 << 20, 0).unwrap();
        f.write(b"short").unwrap();
        let reserved = f.file.as_ref().unwrap().metadata().unwrap().blocks() * 512;
        assert!(reserved >= 1 << 20, "{reserved} bytes reserved");
        let path = f.commit(u).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"short");
        let kept = fs::metadata(&path).unwrap().blocks() * 512;
        assert!(kept <= 4096, "{kept} bytes still reserved");

        // Not enough room above the reserve: refused before anything exists.
        assert!(matches!(
            u.begin("three", 10, u64::MAX / 2),
            Err(StorageError::Full { .. })
        ));
        assert!(incoming_names(u).is_empty());
    }

    #[test]
    fn unnamed_temp_files_commit_or_vanish() {
        let dir = tempfile::tempdir().unwrap();
        let u = uploads(dir.path(), true);
        commit_or_vanish(&u, 0);
        // This machine's file system has them (ext4, tmpfs and the like all do): the
        // test above did use them.
        assert!(u.unnamed.load(Ordering::Relaxed));
    }

    #[test]
    fn named_temp_files_commit_or_vanish() {
        let dir = tempfile::tempdir().unwrap();
        commit_or_vanish(&uploads(dir.path(), false), 1);
    }

    #[test]
    fn a_spare_temp_file_is_used_once() {
        let dir = tempfile::tempdir().unwrap();
        let u = uploads(dir.path(), true);
        u.prepare_spare();
        let spare_ino = {
            let spare = u.lock_spare();
            spare.as_ref().unwrap().metadata().unwrap().ino()
        };
        // Ready again: nothing made twice.
        u.prepare_spare();
        let spare_ino_again = u.lock_spare().as_ref().unwrap().metadata().unwrap().ino();
        assert_eq!(spare_ino_again, spare_ino);

        // The next capture takes it; the one after gets a file of its own.
        let mut a = u.begin("a", 1, 0).unwrap();
        assert!(u.lock_spare().is_none());
        let mut b = u.begin("b", 1, 0).unwrap();
        a.write(b"A").unwrap();
        b.write(b"B").unwrap();
        let (pa, pb) = (a.commit(&u).unwrap(), b.commit(&u).unwrap());
        assert_eq!(fs::metadata(&pa).unwrap().ino(), spare_ino);
        assert_eq!(
            (fs::read(pa).unwrap(), fs::read(pb).unwrap()),
            (b"A".to_vec(), b"B".to_vec())
        );

        // Named temp files only: no spare is made.
        let named = uploads(&dir.path().join("other"), false);
        named.prepare_spare();
        assert!(named.lock_spare().is_none());
    }
}
