//! Capture bodies handled while they arrive: by the time the last byte is in, the photo
//! is already written to its temp file and little more than the fsync is left.
//!
//! A raw JPEG body is written as it comes. A JSON body is decoded as it comes when it
//! starts the usual way, `{"image":"` then plain base64 (optionally behind a
//! `data:image/…;base64,` prefix): the decoded bytes go to the file as they appear. Any
//! other JSON body (fields in another order, escapes, line breaks, the URL-safe
//! alphabet, bad base64) is gathered and decoded whole at the end, exactly as before, so
//! its answer and its errors are the same either way.

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{CaptureError, CaptureMeta, PendingDigest, Upload, PREALLOCATE_MAX};
use crate::app::App;
use crate::buffers;
use crate::ids;
use crate::storage::image::{self, Format};
use crate::storage::IncomingFile;

/// What the writer thread hands back: the capture's bytes, its temp file when they are
/// already in one, and (JSON bodies) the fields read from the body. Their SHA-256 comes
/// separately, from a [`PieceHasher`].
type Written = (Bytes, Option<IncomingFile>, Option<CaptureMeta>);

/// Where the capture's SHA-256 goes.
type DigestTx = std::sync::mpsc::SyncSender<[u8; 32]>;

/// A capture body being received: a blocking thread, fed chunk by chunk, writes it (a
/// JPEG) to its temp file and gathers its bytes (to validate and hash them), letting go
/// of each chunk once used. A body that is not a JPEG is only gathered (the capture path
/// converts or refuses it). `E`: the errors of reading the body (a JSON body's reader
/// may have its own, besides the capture's).
pub struct StreamingUpload<E = CaptureError> {
    intake: Intake,
    done: tokio::sync::oneshot::Receiver<Result<Written, E>>,
    digest: PendingDigest,
}

/// How the chunks reach the writer thread.
enum Intake {
    /// Each chunk copied into a reused buffer of its own (a raw body: the writer appends
    /// it to the body and has it hashed as it is).
    Staged(std::sync::mpsc::Sender<Vec<u8>>),
    /// Each chunk copied straight into the body's buffer, whose filled part is split off
    /// and handed over; the writer joins the parts back (they are contiguous: no copy).
    /// A JSON body: its base64 is only read, never hashed, so one copy is enough.
    Gathered {
        /// The body buffer's room not handed over yet (dropped before `parts`, so that
        /// the writer ends up holding the whole buffer).
        rest: bytes::BytesMut,
        parts: std::sync::mpsc::Sender<bytes::BytesMut>,
    },
}

/// Reads the capture fields of a JSON body whose image value was cut out (see
/// [`StreamingUpload::start_json`]): `Some` only when the document is valid and its
/// image value is exactly `kept`.
pub type ReadCutDoc = fn(doc: &[u8], kept: &str) -> Option<CaptureMeta>;

impl StreamingUpload {
    /// A raw body. `id`: the capture's id (the file's name); `expected`: the declared length.
    pub fn start(app: &App, id: &str, expected: u64) -> StreamingUpload {
        let uploads = app.uploads.clone();
        let reserve = app.disk_reserve_bytes();
        let id = id.to_string();
        // Taken here, on the runtime's worker, not on the blocking thread: glibc keeps
        // freed megabytes in the heap arena of the thread that allocated them, and a
        // dozen blocking threads with one arena each would hold tens of MB. Reused (see
        // `buffers`).
        let mut body = buffers::take(capacity(expected));
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        Self::spawn(Intake::Staged(tx), move |digest_tx| {
            let mut file = SniffedFile::default();
            let hasher = PieceHasher::start(digest_tx);
            for chunk in rx {
                body.extend_from_slice(&chunk);
                hasher.hash(buffers::into_bytes(chunk));
                file.feed(&body, || uploads.begin(&id, expected, reserve).ok());
            }
            Ok((buffers::into_bytes(body), file.into_file(), None))
        })
    }
}

impl<E: From<CaptureError> + Send + 'static> StreamingUpload<E> {
    /// A JSON body of `expected` bytes holding one capture of at most `max` bytes.
    /// `read_cut` reads the fields when the image was decoded on the fly; `read_whole`
    /// reads the whole body otherwise (its image decoded into the buffer it is given).
    pub fn start_json(
        app: &App,
        expected: u64,
        max: u64,
        read_cut: ReadCutDoc,
        read_whole: impl FnOnce(&[u8], Vec<u8>) -> Result<(Vec<u8>, CaptureMeta), E> + Send + 'static,
    ) -> StreamingUpload<E> {
        let uploads = app.uploads.clone();
        let reserve = app.disk_reserve_bytes();
        // Both buffers taken on the runtime's worker (see `start`). The body's is filled
        // there too, as the chunks come (see `Intake::Gathered`).
        let rest = bytes::BytesMut::from(Bytes::from(buffers::take(capacity(expected))));
        // At most this much image in a body of `expected` bytes.
        let image_len = expected / 4 * 3;
        let mut image = buffers::take(capacity(image_len).min(max as usize));
        let (parts, rx) = std::sync::mpsc::channel::<bytes::BytesMut>();
        Self::spawn(Intake::Gathered { rest, parts }, move |digest_tx| {
            // Named for now: an id in the body is read only once the body is complete.
            let provisional = ids::new_id();
            let mut field = Base64Field::new(max);
            let mut file = SniffedFile::default();
            // Given a copy of what is decoded; abandoned if the body is read whole (which
            // is then hashed once decoded).
            let mut hasher = Some(PieceHasher::start(digest_tx.clone()));
            let mut body = bytes::BytesMut::new();
            for part in rx {
                body.unsplit(part);
                let decoded = image.len();
                field.advance(&body, &mut image);
                if field.is_off() {
                    file.give_up();
                    if let Some(h) = hasher.take() {
                        h.abandon();
                    }
                } else {
                    if let Some(h) = &hasher {
                        h.hash_copy(&image[decoded..]);
                    }
                    file.feed(&image, || {
                        uploads.begin(&provisional, image_len, reserve).ok()
                    });
                }
            }
            let cut = field.cut_doc(&body);
            // Errors too go past the `give` below: the body's buffer is reused either way.
            let read = match cut.and_then(|(doc, kept)| read_cut(&doc, kept)) {
                Some(meta) => super::validate_meta(&meta).map_err(E::from).map(|()| {
                    let mut file = file.into_file();
                    if let (Some(f), Some(id)) = (file.as_mut(), meta.id.as_deref()) {
                        f.retarget(id);
                    }
                    (buffers::into_bytes(image), file, Some(meta))
                }),
                None => {
                    drop(file);
                    if let Some(h) = hasher.take() {
                        h.abandon();
                    }
                    read_whole(&body, image).map(|(image, meta)| {
                        let image = buffers::into_bytes(image);
                        PieceHasher::start(digest_tx).hash(image.clone());
                        (image, None, Some(meta))
                    })
                }
            };
            // Whole again (the parts were contiguous, and the worker's rest is gone):
            // back to the pool without a copy.
            body.clear();
            buffers::give(Vec::from(body));
            read
        })
    }

    /// Runs `receive` on the blocking pool: it reads the chunks from the other end of
    /// `intake`, and has the bytes hashed through the digest sender it is given (see
    /// [`PieceHasher`]).
    fn spawn(
        intake: Intake,
        receive: impl FnOnce(DigestTx) -> Result<Written, E> + Send + 'static,
    ) -> StreamingUpload<E> {
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let (digest_tx, digest) = std::sync::mpsc::sync_channel(1);
        tokio::task::spawn_blocking(move || {
            // Nobody waiting: the body was cut short (the file goes with what is dropped).
            let _ = done_tx.send(receive(digest_tx));
        });
        StreamingUpload {
            intake,
            done,
            digest,
        }
    }

    /// Hands over the next chunk.
    pub fn feed(&mut self, chunk: Bytes) {
        // Copied, and the chunk let go at once: the server can then read the next bytes
        // into the same memory. Held until the writer got to it, each chunk made it read
        // into fresh pages instead (~250 page faults per photo, in the kernel's copy out
        // of the socket).
        // The writer only stops early if it panicked; `finish` reports that.
        match &mut self.intake {
            Intake::Staged(chunks) => {
                let mut staged = buffers::take(chunk.len());
                staged.extend_from_slice(&chunk);
                drop(chunk);
                let _ = chunks.send(staged);
            }
            Intake::Gathered { rest, parts } => {
                rest.extend_from_slice(&chunk);
                drop(chunk);
                let _ = parts.send(rest.split());
            }
        }
    }

    /// The body is complete: waits for the writer to catch up. Returns the upload and,
    /// for a JSON body, its fields. (Dropped instead, on an aborted body, the writer ends
    /// and its temp file is removed.)
    pub async fn finish(self) -> Result<(Upload, Option<CaptureMeta>), E> {
        match self.intake {
            Intake::Staged(chunks) => drop(chunks),
            // The unused room goes too, so that the buffer is whole again.
            Intake::Gathered { rest, parts } => {
                let _ = parts.send(rest);
            }
        }
        let (source, file, meta) = self
            .done
            .await
            .map_err(|_| CaptureError::task("the upload task failed"))??;
        let upload = Upload {
            source,
            file,
            digest: Some(self.digest),
        };
        Ok((upload, meta))
    }
}

/// Hashes a body on another blocking thread, piece by piece as the writer passes them
/// on, so that the digest is ready about when the last byte is written (hashing 1.6 MB
/// takes ~0.9 ms here, about as long as the fsync it used to run beside, and the fsync
/// is shorter now). A piece from the buffer pool goes back there once hashed (and its
/// other clones are gone). The digest is sent when the hasher is dropped (if nobody
/// waits for it any more, it is lost), not at all if it is abandoned.
struct PieceHasher {
    /// `None`: abandoned.
    pieces: std::sync::mpsc::Sender<Option<Bytes>>,
}

impl PieceHasher {
    fn start(digest: DigestTx) -> PieceHasher {
        let (pieces, rx) = std::sync::mpsc::channel::<Option<Bytes>>();
        tokio::task::spawn_blocking(move || {
            let mut hasher = Sha256::new();
            for piece in rx {
                let Some(piece) = piece else { return };
                hasher.update(&piece);
            }
            let _ = digest.send(hasher.finalize().into());
        });
        PieceHasher { pieces }
    }

    /// The next piece of the bytes, in order.
    fn hash(&self, piece: Bytes) {
        // The hashing thread only stops early if it panicked: then nobody gets a digest,
        // and the capture path reports that.
        let _ = self.pieces.send(Some(piece));
    }

    /// The next piece, copied (into a reused buffer).
    fn hash_copy(&self, piece: &[u8]) {
        if !piece.is_empty() {
            let mut copy = buffers::take(piece.len());
            copy.extend_from_slice(piece);
            self.hash(buffers::into_bytes(copy));
        }
    }

    /// The bytes will be hashed otherwise: no digest from this one.
    fn abandon(self) {
        let _ = self.pieces.send(None);
    }
}

/// A buffer size for a declared length, within reason: a client may announce a size it
/// never sends.
fn capacity(declared: u64) -> usize {
    declared.min(PREALLOCATE_MAX) as usize
}

/// The capture's temp file, begun once the first bytes show a JPEG. A failed write
/// (disk full, say) drops it: the capture path then stores the gathered bytes itself
/// and reports the error as it always does.
#[derive(Default)]
struct SniffedFile {
    /// `None`: undecided yet; `Some(None)`: no file.
    file: Option<Option<IncomingFile>>,
    /// How many bytes of the data are in the file.
    written: usize,
}

impl SniffedFile {
    /// `data`: all the bytes so far (the file gets those it does not have yet).
    fn feed(&mut self, data: &[u8], begin: impl FnOnce() -> Option<IncomingFile>) {
        if self.file.is_none() {
            if data.len() < 3 {
                return;
            }
            let jpeg = image::sniff(data) == Some(Format::Jpeg);
            self.file = Some(jpeg.then(begin).flatten());
        }
        if let Some(Some(f)) = &mut self.file {
            if data.len() > self.written {
                if f.write(&data[self.written..]).is_ok() {
                    self.written = data.len();
                } else {
                    self.give_up();
                }
            }
        }
    }

    /// No file after all (its temp file is removed).
    fn give_up(&mut self) {
        self.file = Some(None);
    }

    /// The file, once the body is complete: what is left of it goes to the disk now.
    fn into_file(self) -> Option<IncomingFile> {
        let mut file = self.file.flatten();
        if let Some(f) = file.as_mut() {
            f.start_writeback();
        }
        file
    }
}

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
struct Base64Field {
    state: State,
    max: u64,
}

/// Longest `{"image":"data:…;base64,` looked at before giving up.
const MAX_PREFIX: usize = 256;

impl Base64Field {
    fn new(max: u64) -> Self {
        Base64Field {
            state: State::Seeking,
            max,
        }
    }

    fn is_off(&self) -> bool {
        self.state == State::Off
    }

    /// `body`: all the bytes so far; decoded bytes are appended to `out`.
    fn advance(&mut self, body: &[u8], out: &mut Vec<u8>) {
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
    fn cut_doc<'b>(&self, body: &'b [u8]) -> Option<(Vec<u8>, &'b str)> {
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
/// decoded now: all but a last group holding '=' (which only the closing quote can follow).
fn whole_groups(b: &[u8]) -> usize {
    let n = b.len() / 4 * 4;
    if n >= 4 && b[n - 4..n].contains(&b'=') {
        n - 4
    } else {
        n
    }
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
