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
mod incoming;
pub mod jpeg_dc;
mod locks;
pub mod thumbnails;

pub use backgrounds::Backgrounds;
pub use incoming::IncomingFile;
pub use locks::IdGuard;
pub use thumbnails::Thumbnails;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
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
    pub(super) fn io(path: &Path, source: io::Error) -> Self {
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

    /// Free space on the uploads file system (`None`: it reports no size).
    pub fn space(&self) -> Result<Option<Space>, StorageError> {
        space(&self.dir)
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
        check_room(self.space()?, expected, reserve)?;
        let spare = self.lock_spare().take();
        let (file, tmp) = match spare.or_else(|| self.create_unnamed()) {
            Some(f) => (f, None),
            None => {
                let tmp = self.temp_path(id);
                (create_private(&tmp)?, Some(tmp))
            }
        };
        Ok(IncomingFile::new(file, tmp, id, expected))
    }

    /// A temp file name in `.incoming/`, unique per write: two requests for one id may
    /// both be streaming (the id lock is taken once the body is in).
    pub(super) fn temp_path(&self, id: &str) -> PathBuf {
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
pub(super) fn finish_durable(f: File, dest: &Path) -> Result<PathBuf, StorageError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    sync_dir(parent).map_err(|e| StorageError::io(parent, e))?;
    drop_cache_later(f);
    Ok(dest.to_path_buf())
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

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The size of a file system, as `statvfs` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes free for unprivileged users.
    pub free: u64,
    pub total: u64,
}

impl Space {
    /// Free space in percent of the total, to one decimal.
    pub fn free_percent(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        (self.free as f64 / self.total as f64 * 1000.0).round() / 10.0
    }
}

/// The space of the file system holding `dir`. `None` when it reports no size at all
/// (zero blocks: some FUSE file systems, a tmpfs mounted with `size=0`): its free space is
/// unknown, not zero, and writes are left to fail on their own if it fills.
pub fn space(dir: &Path) -> Result<Option<Space>, StorageError> {
    let st = rustix::fs::statvfs(dir).map_err(|e| StorageError::io(dir, e.into()))?;
    Ok(space_of(st.f_blocks, st.f_bavail, st.f_frsize))
}

fn space_of(blocks: u64, available: u64, fragment: u64) -> Option<Space> {
    (blocks > 0).then(|| Space {
        free: available.saturating_mul(fragment),
        total: blocks.saturating_mul(fragment),
    })
}

/// Refuses a write of `expected` bytes that would leave less than `reserve` free. A file
/// system of unknown size is not refused: it would otherwise refuse everything.
pub fn check_room(space: Option<Space>, expected: u64, reserve: u64) -> Result<(), StorageError> {
    match space {
        Some(Space { free, .. }) if free < reserve.saturating_add(expected) => {
            Err(StorageError::Full { free, reserve })
        }
        _ => Ok(()),
    }
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
    use super::incoming::WRITEBACK_STEP;
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
        let (written, kicked) = f.progress();
        assert!(kicked > 0 && kicked < written);
        assert_eq!(fs::read(f.commit(u).unwrap()).unwrap(), big);

        // Room reserved for more bytes than came (a JSON body's estimate): the file holds
        // what came, and the blocks reserved past it are let go.
        let mut f = u.begin("six", 1 << 20, 0).unwrap();
        f.write(b"short").unwrap();
        let reserved = f.file().unwrap().metadata().unwrap().blocks() * 512;
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

    /// A file system with no blocks has an unknown size, and the room check lets writes
    /// through; a known one is checked against the reserve.
    #[test]
    fn zero_blocks_is_unknown_size_not_a_full_disk() {
        assert_eq!(space_of(0, 0, 4096), None);
        assert!(check_room(space_of(0, 0, 4096), 1 << 20, 1 << 30).is_ok());
        let small = space_of(100, 10, 4096).unwrap();
        assert_eq!(
            small,
            Space {
                free: 40_960,
                total: 409_600
            }
        );
        assert_eq!(small.free_percent(), 10.0);
        assert!(check_room(Some(small), 40_000, 960).is_ok());
        assert!(matches!(
            check_room(Some(small), 40_000, 961),
            Err(StorageError::Full {
                free: 40_960,
                reserve: 961
            })
        ));
    }
}
