//! The archive and its durable write: a `.tar.gz` built in memory (a bundle is small),
//! written to a temporary name, fsynced, renamed, and the rename made durable too.

use std::io::Write as _;
use std::path::Path;

use serde_json::Value;

pub(super) fn write_durable(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("partial");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // USB sticks get pulled right after: make the rename itself durable.
        let _ = crate::storage::sync_dir(dir);
    }
    Ok(())
}

pub(super) fn tar_gz(
    files: &[(&str, Vec<u8>)],
    prefix: &str,
    mtime: u64,
) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, format!("{prefix}/{name}"), data.as_slice())?;
    }
    tar.into_inner()?.finish()
}

pub(super) fn pretty(v: &Value) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s.into_bytes()
}
