//! Capture ids: 32 lowercase hex characters generated here (128 random bits), or a
//! client-chosen `[A-Za-z0-9_-]{1,64}`. Nothing else ever becomes a file name.

/// Whether `id` is acceptable as a capture (or any resource) id.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `n` random bytes as lowercase hex (2n characters), from the OS generator.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    if getrandom::fill(&mut buf).is_err() {
        // The OS generator does not fail on Linux once booted; if it ever does, fall back
        // to a time-and-counter mix rather than refusing the capture.
        let t = crate::clock::system_now_ms() as u128;
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
    hex::encode(buf)
}

/// A new capture id: 128 random bits.
pub fn new_id() -> String {
    random_hex(16)
}

/// A random number in `[0, 1)` (backoff jitter).
pub fn random_unit() -> f64 {
    let mut buf = [0u8; 8];
    let _ = getrandom::fill(&mut buf);
    (u64::from_le_bytes(buf) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(is_valid_id("abc-DEF_123"));
        for bad in ["", "a/b", "..", "a.b", "a\0b", &"x".repeat(65), "é"] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
        let id = new_id();
        assert_eq!(id.len(), 32);
        assert!(is_valid_id(&id));
        assert_ne!(new_id(), id);
    }
}
