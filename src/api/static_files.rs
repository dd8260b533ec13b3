//! Static web pages compiled into the binary (the staff console, the fleet page): one way
//! to serve them, so both pages keep the same caching and the same safety headers.
//!
//! Every file is sent with a strong ETag (a SHA-256 of its compressed bytes) and `Cache-Control:
//! no-cache`, so a browser revalidates and gets a 304 until the binary changes: no version
//! in file names is needed and an upgrade is seen at the next load. The binary carries
//! the files gzip-compressed (`build.rs` makes them, `page_file!` includes them): a client
//! that accepts gzip gets those bytes as they are, and the rare one that does not gets the
//! plain file, inflated once on its first demand. Every answer,
//! the 404 and the 304 included, carries the page's Content-Security-Policy, `nosniff`,
//! `Referrer-Policy: no-referrer` and `X-Frame-Options: DENY`.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::ApiError;

/// One file of a page: its name in the page, its media type, its source under `assets/`,
/// and its gzip form, compiled in. Written with `page_file!`.
pub struct File {
    pub name: &'static str,
    pub media_type: &'static str,
    pub source: &'static str,
    pub gzip: &'static [u8],
}

/// `page_file!("app.js", "text/javascript; charset=utf-8", "console/app.js")`: the file
/// `assets/console/app.js` as the page's `app.js`, in the gzip form `build.rs` made of it.
macro_rules! page_file {
    ($name:literal, $media_type:literal, $source:literal) => {
        $crate::api::static_files::File {
            name: $name,
            media_type: $media_type,
            source: $source,
            gzip: include_bytes!(concat!(env!("OUT_DIR"), "/assets/", $source, ".gz")),
        }
    };
}
pub(crate) use page_file;

/// One file, with its ETag and (once asked for) its plain form.
struct Asset {
    file: &'static File,
    etag: String,
    plain: OnceLock<Option<Vec<u8>>>,
}

impl Asset {
    fn new(file: &'static File) -> Asset {
        // The compressed bytes name the content as well as the plain ones would (build.rs
        // compresses the same way every time) without inflating every file at start-up.
        let digest = Sha256::digest(file.gzip);
        let etag = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Asset {
            file,
            etag,
            plain: OnceLock::new(),
        }
    }

    /// The plain bytes; `None` if the compressed form does not inflate (a broken build).
    fn plain(&self) -> Option<&[u8]> {
        self.plain
            .get_or_init(|| {
                let mut out = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(self.file.gzip),
                    &mut out,
                )
                .ok()?;
                Some(out)
            })
            .as_deref()
    }
}

/// A page's files and its policy, owned by the page's router (an `Extension`).
pub struct Assets {
    files: Vec<Asset>,
    csp: &'static str,
    /// For the 404's message: "no such file in {what}".
    what: &'static str,
}

impl Assets {
    pub fn new(files: &'static [File], csp: &'static str, what: &'static str) -> Assets {
        Assets {
            files: files.iter().map(Asset::new).collect(),
            csp,
            what,
        }
    }

    /// The file `name` as the request asks (304, gzip), or the JSON 404; with the policy.
    pub fn serve(&self, name: &str, headers: &HeaderMap) -> Response {
        match self.files.iter().find(|a| a.file.name == name) {
            Some(a) => secure(serve(a, headers), self.csp),
            None => secure(
                ApiError::not_found(format!("no such file in {}", self.what)).into_response(),
                self.csp,
            ),
        }
    }
}

/// Adds the safety headers every answer of a page carries.
pub fn secure(mut resp: Response, csp: &'static str) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

/// A 302 to `to`, with the page's headers.
pub fn redirect(to: &'static str, csp: &'static str) -> Response {
    secure(
        (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
        csp,
    )
}

/// Does `Accept-Encoding` allow gzip? (`gzip;q=0` refuses it.)
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// Does `If-None-Match` name `etag` (or `*`)?
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    super::files::if_none_match(headers, etag)
}

/// `asset` as the request asks: 304 when the client has it, gzip when accepted.
fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let gz = accepts_gzip(headers);
    // Each encoding is its own representation, so its own strong tag.
    let etag = if gz {
        format!("\"{}-gz\"", asset.etag)
    } else {
        format!("\"{}\"", asset.etag)
    };
    let mut fixed: Vec<(HeaderName, HeaderValue)> = vec![
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::VARY, HeaderValue::from_static("Accept-Encoding")),
    ];
    if let Ok(v) = HeaderValue::from_str(&etag) {
        fixed.push((header::ETAG, v));
    }
    let resp = if matches(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let body = if gz {
            fixed.push((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")));
            asset.file.gzip.to_vec()
        } else {
            match asset.plain() {
                Some(plain) => plain.to_vec(),
                None => {
                    return ApiError::internal(format!("{} does not inflate", asset.file.name))
                        .into_response()
                }
            }
        };
        fixed.push((
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.file.media_type),
        ));
        (StatusCode::OK, body).into_response()
    };
    let mut resp = resp;
    // `insert`, not `extend`: the body's default Content-Type must be replaced.
    for (k, v) in fixed {
        resp.headers_mut().insert(k, v);
    }
    resp
}

/// For each page's unit tests: every file listed once, and its compiled-in form inflates
/// to its source under `assets/` as it is now.
#[cfg(test)]
pub fn check_files(assets: &Assets) {
    for (i, a) in assets.files.iter().enumerate() {
        assert!(
            assets.files[..i].iter().all(|b| b.file.name != a.file.name),
            "{} twice",
            a.file.name
        );
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets")
            .join(a.file.source);
        let want = std::fs::read(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        assert_eq!(a.plain(), Some(&want[..]), "{}", a.file.name);
        assert!(
            a.file.gzip.len() < want.len() || want.len() < 512,
            "{} compresses",
            a.file.name
        );
    }
}

/// The names of a page's files from `dir` (for a test that none is forgotten).
#[cfg(test)]
pub fn sources_from(assets: &Assets, dir: &str) -> Vec<String> {
    let prefix = format!("{dir}/");
    let mut v: Vec<String> = assets
        .files
        .iter()
        .filter_map(|a| a.file.source.strip_prefix(&prefix).map(str::to_string))
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn gzip_is_chosen_only_when_accepted() {
        assert!(accepts_gzip(&headers(&[("accept-encoding", "gzip, br")])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br;q=1, GZIP;q=0.5"
        )])));
        assert!(accepts_gzip(&headers(&[("accept-encoding", "*")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[(
            "accept-encoding",
            "br, deflate"
        )])));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn if_none_match_lists_are_read() {
        let h = headers(&[("if-none-match", "\"a\", W/\"b\"")]);
        assert!(matches(&h, "\"a\""));
        assert!(matches(&h, "\"b\""));
        assert!(!matches(&h, "\"c\""));
        assert!(matches(&headers(&[("if-none-match", "*")]), "\"x\""));
    }
}
