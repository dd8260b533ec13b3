//! Local files: durable writes of capture images, free-space checks, image validation.
//!
//! A capture file is written to `uploads/.incoming/`, fsynced, renamed to `uploads/{id}.jpg`
//! and the directory fsynced: after `store` returns, the file survives a power cut, and a
//! crash before that leaves at most a temp file, which start-up removes.

pub mod image;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
        })
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
        // Unique per write: two requests for one id may both be streaming (the id lock
        // is taken once the body is in).
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .incoming
            .join(format!("{id}.{}.{seq}.tmp", std::process::id()));
        let file = create_private(&tmp)?;
        Ok(IncomingFile {
            file: Some(file),
            tmp,
            id: id.to_string(),
        })
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
    tmp: PathBuf,
    id: String,
}

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
            .map_err(|e| StorageError::io(&self.tmp, e))
    }

    /// fsync → rename to `{id}.jpg` → fsync the directory: from here the file survives a
    /// power cut.
    pub fn commit(mut self, uploads: &Uploads) -> Result<PathBuf, StorageError> {
        let dest = uploads.path_for(&self.id);
        if let Some(f) = self.file.take() {
            sync_and_rename(f, &self.tmp, &dest)?;
        }
        Ok(dest)
    }
}

impl Drop for IncomingFile {
    fn drop(&mut self) {
        // Not committed (or the commit failed before the rename): nothing half-written
        // stays behind. After a successful rename the temp path no longer exists.
        let _ = fs::remove_file(&self.tmp);
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

/// fsync the written temp file, rename it to `dest`, fsync `dest`'s directory.
fn sync_and_rename(f: File, tmp: &Path, dest: &Path) -> Result<(), StorageError> {
    f.sync_all().map_err(|e| StorageError::io(tmp, e))?;
    // The pages are clean now: let the kernel drop them. A photo is read back rarely (one
    // upload, a download or two), and a kiosk keeps thousands of them: cached, they would
    // push the catalog and the program out of a small board's memory. (It also keeps
    // virtual machines fast: on the benchmark VM, tools/bench-capture.sh's last scenario,
    // raw with 4 clients after ~1,000 captures kept, went from 252-266 to 385-415
    // captures/s with it.) Advice only.
    let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
    drop(f);
    fs::rename(tmp, dest).map_err(|e| StorageError::io(dest, e))?;
    let parent = dest.parent().unwrap_or(Path::new("."));
    sync_dir(parent).map_err(|e| StorageError::io(parent, e))
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

    fn incoming_names(u: &Uploads) -> Vec<String> {
        fs::read_dir(&u.incoming)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn incoming_files_commit_or_vanish() {
        let dir = tempfile::tempdir().unwrap();
        let u = Uploads::open(&dir.path().join("uploads")).unwrap();

        // Written in pieces, committed: the whole file under its name, no temp left.
        let mut f = u.begin("one", 6, 0).unwrap();
        f.write(b"abc").unwrap();
        f.write(b"def").unwrap();
        assert_eq!(incoming_names(&u).len(), 1);
        let path = f.commit(&u).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"abcdef");
        assert!(incoming_names(&u).is_empty());

        // Two writes for one id at once get their own temp files; dropped, both vanish.
        let mut a = u.begin("two", 3, 0).unwrap();
        let b = u.begin("two", 3, 0).unwrap();
        a.write(b"xyz").unwrap();
        assert_eq!(incoming_names(&u).len(), 2);
        drop((a, b));
        assert!(incoming_names(&u).is_empty());
        assert!(!u.path_for("two").exists());

        // Not enough room above the reserve: refused before anything exists.
        assert!(matches!(
            u.begin("three", 10, u64::MAX / 2),
            Err(StorageError::Full { .. })
        ));
        assert!(incoming_names(&u).is_empty());
    }
}
