//! Static web pages compiled into the binary (the staff console, the fleet page): one way
//! to serve them, so both pages keep the same caching and the same safety headers.
//!
//! Every file is sent with a strong ETag (a SHA-256 of its bytes) and `Cache-Control:
//! no-cache`, so a browser revalidates and gets a 304 until the binary changes: no version
//! in file names is needed and an upgrade is seen at the next load. A client that accepts
//! gzip gets the file compressed once, on first demand (the pages are small; compressing
//! them at start-up would cost every boot for pages most boots never serve). Every answer,
//! the 404 and the 304 included, carries the page's Content-Security-Policy, `nosniff`,
//! `Referrer-Policy: no-referrer` and `X-Frame-Options: DENY`.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::ApiError;

/// Name, media type and bytes of one file of a page.
pub type File = (&'static str, &'static str, &'static [u8]);

/// One file, with its ETag and (once asked for) its gzip form.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    bytes: &'static [u8],
    etag: String,
    gzip: OnceLock<Option<Vec<u8>>>,
}

impl Asset {
    fn new(name: &'static str, media_type: &'static str, bytes: &'static [u8]) -> Asset {
        let digest = Sha256::digest(bytes);
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Asset {
            name,
            media_type,
            bytes,
            etag: hex,
            gzip: OnceLock::new(),
        }
    }

    /// The compressed bytes; `None` when compression failed (then the plain file is sent)
    /// or would not make it smaller.
    fn gzipped(&self) -> Option<&[u8]> {
        self.gzip
            .get_or_init(|| {
                use std::io::Write;
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                enc.write_all(self.bytes).ok()?;
                let out = enc.finish().ok()?;
                (out.len() < self.bytes.len()).then_some(out)
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
            files: files
                .iter()
                .map(|(name, media_type, bytes)| Asset::new(name, media_type, bytes))
                .collect(),
            csp,
            what,
        }
    }

    /// The file `name` as the request asks (304, gzip), or the JSON 404; with the policy.
    pub fn serve(&self, name: &str, headers: &HeaderMap) -> Response {
        match self.files.iter().find(|a| a.name == name) {
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
    let gz = if accepts_gzip(headers) {
        asset.gzipped()
    } else {
        None
    };
    // Each encoding is its own representation, so its own strong tag.
    let etag = match gz {
        Some(_) => format!("\"{}-gz\"", asset.etag),
        None => format!("\"{}\"", asset.etag),
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
        fixed.push((
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.media_type),
        ));
        let body = match gz {
            Some(bytes) => {
                fixed.push((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")));
                bytes.to_vec()
            }
            None => asset.bytes.to_vec(),
        };
        (StatusCode::OK, body).into_response()
    };
    let mut resp = resp;
    // `insert`, not `extend`: the body's default Content-Type must be replaced.
    for (k, v) in fixed {
        resp.headers_mut().insert(k, v);
    }
    resp
}

/// For each page's unit tests: every file listed once, and its gzip form decompresses
/// to the file.
#[cfg(test)]
pub fn check_files(assets: &Assets) {
    for (i, a) in assets.files.iter().enumerate() {
        assert!(
            assets.files[..i].iter().all(|b| b.name != a.name),
            "{} twice",
            a.name
        );
        let Some(gz) = a.gzipped() else {
            panic!("{} does not compress", a.name)
        };
        let mut plain = Vec::new();
        let read = std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut plain);
        assert!(read.is_ok(), "{}", a.name);
        assert_eq!(plain, a.bytes, "{}", a.name);
    }
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
