//! Photo-sized buffers, reused from one capture to the next.
//!
//! Every capture needs a buffer or two of a few megabytes (the body, the decoded image).
//! Freshly allocated, each one's pages are faulted in one by one by the kernel: with
//! glibc's defaults a freed buffer of that size goes back to the system, so every capture
//! paid for 850-880 page faults (base64 JSON) or 210-370 (raw) on the benchmark VM,
//! counted in /proc/PID/stat. Kept here instead, a buffer's pages stay mapped.
//!
//! The chunks of a body being received are copied into such buffers too, so that the
//! server's read buffer is let go at once and reused: held until the writer thread got
//! to them, the chunks made every read land in fresh pages (~250 faults per raw photo,
//! in the kernel's copy out of the socket, seen with `perf record -e page-faults`).
//!
//! Bounded: at most [`KEEP_BYTES`] are kept, and buffers unused for a minute are let go
//! ([`TrimWorker`]), so an idle kiosk goes back to its idle memory.

use std::sync::Mutex;
use std::time::Duration;

use crate::clock::Stopwatch;

use bytes::Bytes;

/// Most bytes (capacities) kept for reuse: the buffers of four concurrent base64
/// captures of 2 MB photos, with room.
pub const KEEP_BYTES: usize = 24 << 20;
/// Buffers unused for this long are let go.
pub const IDLE: Duration = Duration::from_secs(60);

/// Kept buffers (empty), with when each was given back.
static POOL: Mutex<Vec<(Vec<u8>, Stopwatch)>> = Mutex::new(Vec::new());

fn pool() -> std::sync::MutexGuard<'static, Vec<(Vec<u8>, Stopwatch)>> {
    POOL.lock().unwrap_or_else(|p| p.into_inner())
}

/// An empty buffer with room for at least `capacity` bytes: the smallest kept one that
/// fits, or a new one.
pub fn take(capacity: usize) -> Vec<u8> {
    let mut pool = pool();
    let fit = pool
        .iter()
        .enumerate()
        .filter(|(_, (v, _))| v.capacity() >= capacity)
        .min_by_key(|(_, (v, _))| v.capacity())
        .map(|(i, _)| i);
    match fit {
        Some(i) => pool.swap_remove(i).0,
        None => Vec::with_capacity(capacity),
    }
}

/// Gives a buffer back for reuse (its content is dropped). When keeping it would go over
/// [`KEEP_BYTES`], the oldest kept ones make room, or it is simply freed.
pub fn give(mut v: Vec<u8>) {
    let cap = v.capacity();
    if cap == 0 || cap > KEEP_BYTES {
        return;
    }
    v.clear();
    let mut pool = pool();
    let mut kept: usize = pool.iter().map(|(v, _)| v.capacity()).sum();
    while kept + cap > KEEP_BYTES && !pool.is_empty() {
        // Oldest first (pushed in order of return).
        kept -= pool.remove(0).0.capacity();
    }
    pool.push((v, Stopwatch::start()));
}

/// `v`'s bytes, without a copy, as [`Bytes`] that give `v` back ([`give`]) once the last
/// clone is dropped.
pub fn into_bytes(v: Vec<u8>) -> Bytes {
    Bytes::from_owner(Recycled(v))
}

struct Recycled(Vec<u8>);

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

/// Lets go of the buffers unused for `idle`; returns how many bytes that freed.
pub fn trim(idle: Duration) -> usize {
    let mut pool = pool();
    let before: usize = pool.iter().map(|(v, _)| v.capacity()).sum();
    pool.retain(|(_, at)| at.elapsed() < idle);
    before - pool.iter().map(|(v, _)| v.capacity()).sum::<usize>()
}

/// Bytes kept right now.
pub fn kept_bytes() -> usize {
    pool().iter().map(|(v, _)| v.capacity()).sum()
}

/// Trims the pool every [`IDLE`] / 2.
pub struct TrimWorker;

impl crate::workers::Worker for TrimWorker {
    fn name(&self) -> &'static str {
        "buffer_trim"
    }

    async fn work(&mut self) -> Result<crate::workers::Next, String> {
        trim(IDLE);
        Ok(crate::workers::Next::Idle(IDLE / 2))
    }

    fn details(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({"kept_bytes": kept_bytes()}))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// One test: the pool is process-wide.
    #[test]
    fn reuses_bounds_and_trims() {
        trim(Duration::ZERO);
        assert_eq!(kept_bytes(), 0);

        // A buffer handed out as Bytes comes back once the last clone is gone, and the
        // next request of that size gets the same memory.
        let mut v = take(1 << 20);
        v.extend_from_slice(&[7; 1000]);
        let addr = v.as_ptr();
        let bytes = into_bytes(v);
        let clone = bytes.slice(10..20);
        assert_eq!(bytes.len(), 1000);
        assert_eq!(&clone[..], &[7; 10]);
        drop(bytes);
        assert_eq!(kept_bytes(), 0, "a clone still holds it");
        drop(clone);
        assert!(kept_bytes() >= 1 << 20);
        let again = take(4096);
        assert_eq!(again.as_ptr(), addr);
        assert!(again.is_empty());
        assert!(again.capacity() >= 1 << 20);
        // Too small for a bigger request: a new one.
        give(again);
        let big = take(2 << 20);
        assert_ne!(big.as_ptr(), addr);
        assert!(kept_bytes() >= 1 << 20);

        // Never more than KEEP_BYTES: the oldest make room.
        for _ in 0..20 {
            give(Vec::with_capacity(3 << 20));
        }
        assert!(kept_bytes() <= KEEP_BYTES);
        assert!(kept_bytes() > KEEP_BYTES - (3 << 20));
        give(Vec::with_capacity(KEEP_BYTES + 1));
        assert!(kept_bytes() <= KEEP_BYTES);

        // Idle buffers go.
        assert_eq!(trim(Duration::from_secs(3600)), 0);
        assert!(trim(Duration::ZERO) > 0);
        assert_eq!(kept_bytes(), 0);
        drop(big);
    }
}
