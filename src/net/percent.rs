//! Percent-encoding through the `percent-encoding` crate: the sets the remotes need, and a
//! strict decoder for the places where a malformed `%` must be an error.

use std::borrow::Cow;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`) is encoded:
/// a path segment or a query value (OVH), an S3 bucket name.
pub const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// [`COMPONENT`] keeping `/`: an S3 object key, whose slashes are part of its path.
pub const PATH: &AsciiSet = &COMPONENT.remove(b'/');

/// `s` with every byte of `set` as `%XX` (upper-case hex).
pub fn encode(s: &str, set: &'static AsciiSet) -> String {
    utf8_percent_encode(s, set).to_string()
}

/// `%XX` decoding that refuses a `%` not followed by two hex digits and a result that is
/// not UTF-8. `+` stays `+`: that is form encoding, and `+` is common in secrets.
pub fn decode_strict(s: &str) -> Result<String, &'static str> {
    let b = s.as_bytes();
    let well_formed = b.iter().enumerate().all(|(i, &c)| {
        c != b'%'
            || b.get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return Err("bad percent-encoding");
    }
    percent_decode_str(s)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| "percent-encoding is not UTF-8")
}

/// `%XX` decoding as URL parsers do it for credentials: a malformed `%` stays as written,
/// bytes that are not UTF-8 become U+FFFD.
pub fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_follow_rfc3986_and_s3() {
        assert_eq!(encode("kiosk-1_a.b~c", COMPONENT), "kiosk-1_a.b~c");
        assert_eq!(
            encode("a b/c?d&e=f+é", COMPONENT),
            "a%20b%2Fc%3Fd%26e%3Df%2B%C3%A9"
        );
        assert_eq!(encode("a b/c~d+e", PATH), "a%20b/c~d%2Be");
        assert_eq!(encode("photos/été", PATH), "photos/%C3%A9t%C3%A9");
    }

    #[test]
    fn strict_decoding_refuses_what_is_malformed() {
        assert_eq!(decode_strict("abc%2Fdef+ghi"), Ok("abc/def+ghi".into()));
        assert_eq!(decode_strict("%C3%A9"), Ok("é".into()));
        assert_eq!(decode_strict("x%zz"), Err("bad percent-encoding"));
        assert_eq!(decode_strict("x%4"), Err("bad percent-encoding"));
        assert_eq!(decode_strict("%FF"), Err("percent-encoding is not UTF-8"));
    }

    #[test]
    fn lenient_decoding_keeps_a_stray_percent() {
        assert_eq!(decode("p%40ss%2Fw"), "p@ss/w");
        assert_eq!(decode("50%off"), "50%off");
    }
}
