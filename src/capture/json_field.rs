//! A JSON capture body's `image` value decoded while the body arrives (see
//! [`super::stream`]): only the plain case that the whole-body decoder's fast path takes,
//! with the same bytes; anything else turns it off, and the body is read whole instead.

/// Where a JSON body's image value stands, as far as the body has arrived. Offsets are
/// into the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The start of the body has not arrived yet.
    Seeking,
    /// The value's string opens at `open` and its base64 starts at `start` (after a
    /// `data:` prefix, if any); `pos`: the first byte not decoded yet.
    Decoding {
        open: usize,
        start: usize,
        pos: usize,
    },
    /// All decoded: base64 in `start..end`, the closing quote at `end`.
    Done {
        open: usize,
        start: usize,
        end: usize,
    },
    /// Not decoded on the fly: the whole body is read at the end.
    Off,
}

/// Decodes the `image` value of a JSON body while the body arrives. It only takes what
/// the whole-body decoder's fast path takes (standard alphabet, padding only at the end,
/// no escapes or line breaks) and gives the same bytes; anything else turns it off.
pub(super) struct Base64Field {
    state: State,
    max: u64,
}

/// Longest `{"image":"data:…;base64,` looked at before giving up.
const MAX_PREFIX: usize = 256;

impl Base64Field {
    pub(super) fn new(max: u64) -> Self {
        Base64Field {
            state: State::Seeking,
            max,
        }
    }

    pub(super) fn is_off(&self) -> bool {
        self.state == State::Off
    }

    /// `body`: all the bytes so far; decoded bytes are appended to `out`.
    pub(super) fn advance(&mut self, body: &[u8], out: &mut Vec<u8>) {
        if self.state == State::Seeking {
            self.state = match image_value(body) {
                Prefix::NeedMore => return,
                Prefix::No => State::Off,
                Prefix::At { open, start } => State::Decoding {
                    open,
                    start,
                    pos: start,
                },
            };
        }
        let State::Decoding {
            open,
            start,
            mut pos,
        } = self.state
        else {
            return;
        };
        // Whole groups of four first, without looking for the closing quote: the decoder
        // refuses a quote as it refuses any other byte, so when it takes them they hold
        // none. (Looking for it first cost as much as a tenth of a millisecond per photo.)
        // A group with '=' can only be the last one: it waits for the closing quote.
        let groups = whole_groups(&body[pos..]);
        let refused = groups > 0
            && base64_simd::STANDARD
                .decode_append(&body[pos..pos + groups], out)
                .is_err();
        if !refused {
            pos += groups;
        }
        let avail = &body[pos..];
        self.state = match memchr::memchr(b'"', avail) {
            Some(q) => {
                // The last piece: padded or not, as the whole-body decoder would take it.
                let end = pos + q;
                let tail = &avail[..q];
                let engine = if tail.len().is_multiple_of(4) {
                    base64_simd::STANDARD
                } else {
                    base64_simd::STANDARD_NO_PAD
                };
                if end == start || engine.decode_append(tail, out).is_err() {
                    State::Off
                } else {
                    State::Done { open, start, end }
                }
            }
            // Not base64, and not the end of it either.
            None if refused => State::Off,
            // Less than a group left, or the one with '=': more is needed.
            None => State::Decoding { open, start, pos },
        };
        if out.len() as u64 > self.max {
            // The whole-body decoder says how much too large.
            self.state = State::Off;
        }
    }

    /// Once the body is complete: the body with the base64 cut out, and what the image
    /// string holds then (empty, or the `data:` prefix). `None` when not decoded.
    pub(super) fn cut_doc<'b>(&self, body: &'b [u8]) -> Option<(Vec<u8>, &'b str)> {
        let State::Done { open, start, end } = self.state else {
            return None;
        };
        let mut doc = Vec::with_capacity(start + (body.len() - end));
        doc.extend_from_slice(&body[..start]);
        doc.extend_from_slice(&body[end..]);
        let kept = std::str::from_utf8(&body[open..start]).ok()?;
        Some((doc, kept))
    }
}

/// How many of `b`'s first bytes make whole groups of four base64 characters that can be
/// decoded now: none from a group holding '=' on, since only the closing quote may follow
/// padding. The decoder takes '=' at the end of whatever it is given, so a padded group
/// followed by more groups (`…N8M=xg==`) must not end a piece handed to it: held back, it
/// is decoded with the rest at the quote, where the misplaced padding is refused.
fn whole_groups(b: &[u8]) -> usize {
    let mut n = b.len() / 4 * 4;
    // The decoder refuses '=' anywhere but in the last group it is given, so looking at
    // the trailing groups is enough.
    while n >= 4 && b[n - 4..n].contains(&b'=') {
        n -= 4;
    }
    n
}

#[derive(Debug, PartialEq, Eq)]
enum Prefix {
    NeedMore,
    No,
    /// The string value opens at `open`; its base64 starts at `start`.
    At {
        open: usize,
        start: usize,
    },
}

/// Finds `{"image":"` (JSON whitespace allowed between the tokens) at the start of a
/// body, then an optional `data:…;base64,` prefix. Only the first key: later keys could
/// be inside a nested object.
fn image_value(body: &[u8]) -> Prefix {
    let mut i = 0;
    for token in [&b"{"[..], b"\"image\"", b":", b"\""] {
        while body
            .get(i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            i += 1;
        }
        if i > MAX_PREFIX {
            return Prefix::No;
        }
        let rest = &body[i..];
        if rest.len() < token.len() {
            return if token.starts_with(rest) {
                Prefix::NeedMore
            } else {
                Prefix::No
            };
        }
        if !rest.starts_with(token) {
            return Prefix::No;
        }
        i += token.len();
    }
    let open = i;
    let rest = &body[open..];
    if rest.len() < 5 && b"data:".starts_with(rest) {
        return Prefix::NeedMore;
    }
    if !rest.starts_with(b"data:") {
        return Prefix::At { open, start: open };
    }
    // A data: URL's header: printable ASCII without quote or backslash (so the JSON
    // string has no escapes), ending in ";base64,".
    let window = &rest[..rest.len().min(MAX_PREFIX)];
    match window
        .iter()
        .position(|&b| b == b',' || !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\')
    {
        Some(c) if window[c] == b',' && window[..c].ends_with(b";base64") => Prefix::At {
            open,
            start: open + c + 1,
        },
        Some(_) => Prefix::No,
        None if window.len() < MAX_PREFIX => Prefix::NeedMore,
        None => Prefix::No,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use base64::Engine;
    use proptest::prelude::*;

    /// Feeds `body` in pieces cut at `cuts`; returns the field and what it decoded.
    fn stream(body: &[u8], cuts: &[usize], max: u64) -> (Base64Field, Vec<u8>) {
        let mut field = Base64Field::new(max);
        let mut out = Vec::new();
        let mut ends: Vec<usize> = cuts.iter().map(|&c| c.min(body.len())).collect();
        ends.push(body.len());
        ends.sort_unstable();
        for end in ends {
            field.advance(&body[..end], &mut out);
        }
        (field, out)
    }

    fn b64(data: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(data)
    }

    #[test]
    fn finds_the_image_value_at_the_start() {
        let at = |s: &str| image_value(s.as_bytes());
        assert_eq!(
            at("{\"image\":\"QUJD\"}"),
            Prefix::At {
                open: 10,
                start: 10
            }
        );
        assert_eq!(
            at(" {\n \"image\" : \"data:image/jpeg;base64,QUJD\"}"),
            Prefix::At {
                open: 15,
                start: 38
            }
        );
        for partial in [
            "",
            " ",
            "{",
            "{\"ima",
            "{\"image\" :",
            "{\"image\":\"",
            "{\"image\":\"dat",
        ] {
            assert_eq!(at(partial), Prefix::NeedMore, "{partial:?}");
        }
        assert_eq!(at("{\"image\":\"data:image/png;base"), Prefix::NeedMore);
        for other in [
            "[\"image\"]",
            "{\"id\":\"a\",\"image\":\"QUJD\"}",
            "{\"images\":\"QUJD\"}",
            "{\"image\":null}",
            "{\"image\":\"data:image/jpeg,QUJD\"}",
            "{\"image\":\"data:image/jpeg;base64\\u002cQUJD\"}",
        ] {
            assert_eq!(at(other), Prefix::No, "{other:?}");
        }
        let padded = format!("{}{{\"image\":\"QUJD\"}}", " ".repeat(MAX_PREFIX + 1));
        assert_eq!(at(&padded), Prefix::No);
    }

    #[test]
    fn decodes_across_every_cut() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for len in [1, 2, 3, 998, 999, 1000] {
            for prefix in ["", "data:image/jpeg;base64,"] {
                let body = format!(
                    "{{\"image\":\"{prefix}{}\",\"id\":\"x\"}}",
                    b64(&data[..len])
                );
                for cut in 0..body.len() {
                    let (field, out) = stream(body.as_bytes(), &[cut, cut + 3], 10_000);
                    assert_eq!(out, &data[..len], "len {len} cut {cut}");
                    let (doc, kept) = field.cut_doc(body.as_bytes()).unwrap();
                    assert_eq!(kept, prefix);
                    assert_eq!(
                        doc,
                        format!("{{\"image\":\"{prefix}\",\"id\":\"x\"}}").as_bytes()
                    );
                }
            }
        }
    }

    #[test]
    fn anything_unusual_turns_it_off() {
        let ok = b64(b"hello world!");
        for value in [
            String::new(),                          // empty: the whole-body reader says so
            format!("{}\\n{}", &ok[..8], &ok[8..]), // an escape
            format!("{}=AAA", &ok[..7]),            // padding inside
            "QUJ".to_string() + "D-_A",             // URL-safe alphabet
            "QUJDR".to_string(),                    // 4n+1 characters
            "QUJ=".to_string(),                     // non-canonical trailing bits
        ] {
            let body = format!("{{\"image\":\"{value}\"}}");
            for cut in 0..body.len() {
                let (field, _) = stream(body.as_bytes(), &[cut], 10_000);
                assert!(field.is_off(), "{value:?} cut {cut}");
                assert!(field.cut_doc(body.as_bytes()).is_none());
            }
        }
        // More than `max` decoded bytes: off, however it arrives.
        let body = format!("{{\"image\":\"{}\"}}", b64(&[7u8; 100]));
        for cut in 0..body.len() {
            assert!(stream(body.as_bytes(), &[cut], 99).0.is_off());
        }
        assert!(!stream(body.as_bytes(), &[], 100).0.is_off());
    }

    /// Padding inside the value, in a group followed by more: refused however the body is
    /// cut (proptest found a cut where the group before the last was decoded alone).
    #[test]
    fn padding_before_the_last_group_is_refused_at_every_cut() {
        // "QUI=" and "QQ==" are each valid, canonical last groups; together they are not.
        let bad = br#"{"image":"QUJDQUI=QQ=="}"#;
        assert!(base64_simd::STANDARD
            .decode_to_vec(&b"QUJDQUI=QQ=="[..])
            .is_err());
        for cut in 0..bad.len() {
            let (field, _) = stream(bad, &[cut], 10_000);
            assert!(field.is_off(), "cut {cut}");
        }
    }

    proptest! {
        /// Whatever the value and however it is cut: when the stream decodes it, the
        /// whole-body decoder gives the same bytes; when that decoder's fast path takes
        /// it, so does the stream.
        #[test]
        fn agrees_with_the_whole_body_decoder(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            noise in proptest::collection::vec((any::<u16>(), prop::sample::select(&b"A=\\\"-_\n/+"[..])), 0..3),
            cuts in proptest::collection::vec(0usize..500, 0..4),
        ) {
            let mut value = b64(&data).into_bytes();
            for (at, byte) in &noise {
                if !value.is_empty() {
                    let i = *at as usize % value.len();
                    value[i] = *byte;
                }
            }
            let mut body = b"{\"image\":\"".to_vec();
            body.extend_from_slice(&value);
            body.extend_from_slice(b"\"}");
            let (field, out) = stream(&body, &cuts, 10_000);
            // A quote in the noise ends the string there (the document is then invalid,
            // which the cut document's parse finds out).
            let value = String::from_utf8(value).unwrap();
            let value = value.split('"').next().unwrap_or_default();
            let simd = if value.len().is_multiple_of(4) { base64_simd::STANDARD } else { base64_simd::STANDARD_NO_PAD };
            let fast = (!value.is_empty() && !value.contains('\\'))
                .then(|| simd.decode_to_vec(value.as_bytes()).ok())
                .flatten();
            if field.is_off() {
                prop_assert!(fast.is_none());
            } else {
                prop_assert_eq!(Some(&out), fast.as_ref());
                let whole = super::super::decode_image_field(value, 10_000, Vec::new()).unwrap();
                prop_assert_eq!(out, whole);
            }
        }
    }
}
