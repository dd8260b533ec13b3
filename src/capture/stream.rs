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

use super::json_field::Base64Field;
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
