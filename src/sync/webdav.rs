//! Remote files over WebDAV: `PUT {base}{name}.jpg` (streamed from disk), the share page
//! `PUT {base}{name}.html`, and `DELETE`, as nginx `dav_methods PUT DELETE` or Apache mod_dav serve them. Both are
//! idempotent: a repeated PUT overwrites with the same bytes, a DELETE of a missing file
//! is success.
//!
//! Credentials come from `REMOTE_STORAGE_URL` as written there, percent-encoded as URL
//! user-info is (`%40` for an `@`, `%2F` for a `/`); they are decoded here, once, before
//! they go into the `Authorization` header.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;

use crate::config::{RemoteStorage, Secret};
use crate::net::{self, percent};

#[derive(Debug, thiserror::Error)]
pub enum RemoteFileError {
    /// The remote, not this file, is the problem (unreachable, refusing, full,
    /// misconfigured): hold every upload back.
    #[error("remote storage: {0}")]
    Remote(String),
    /// This capture's local file is gone.
    #[error("local file missing: {0}")]
    LocalMissing(String),
}

impl RemoteFileError {
    /// The capture's file at `path` cannot be read: named alone when it is gone, with the
    /// reason otherwise.
    pub fn local(path: &Path, e: std::io::Error) -> RemoteFileError {
        if e.kind() == std::io::ErrorKind::NotFound {
            RemoteFileError::LocalMissing(path.display().to_string())
        } else {
            RemoteFileError::LocalMissing(format!("{}: {e}", path.display()))
        }
    }
}

#[derive(Clone, Debug)]
pub struct WebDav {
    client: reqwest::Client,
    base: String,
    /// Decoded from the URL.
    user: Option<String>,
    /// Decoded from the URL.
    password: Option<Secret>,
}

impl WebDav {
    pub fn new(storage: &RemoteStorage) -> Result<WebDav, String> {
        let RemoteStorage::WebDav {
            base,
            user,
            password,
        } = storage
        else {
            return Err("not a WebDAV storage URL".into());
        };
        let client = net::http::file_store_client_builder()
            .map_err(|e| e.to_string())?
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(WebDav {
            client,
            base: base.clone(),
            user: user.as_deref().map(percent::decode),
            password: password
                .as_ref()
                .map(|p| Secret::new(percent::decode(p.expose()))),
        })
    }

    pub fn url_for(&self, id: &str) -> String {
        self.url_of(&format!("{id}.jpg"))
    }

    /// The URL of the remote file `name` (with its extension).
    pub fn url_of(&self, name: &str) -> String {
        format!("{}{name}", self.base)
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.user {
            Some(u) => rb.basic_auth(u, self.password.as_ref().map(|p| p.expose())),
            None => rb,
        }
    }

    /// Uploads `path` as `{id}.jpg`, streaming it.
    pub async fn put(&self, id: &str, path: &Path) -> Result<(), RemoteFileError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| RemoteFileError::local(path, e))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| RemoteFileError::LocalMissing(e.to_string()))?
            .len();
        let resp = send_jpeg(self.auth(self.client.put(self.url_for(id))), file, len).await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(RemoteFileError::Remote(status_message("PUT", s))),
        }
    }

    /// Uploads a share page as `{name}.html` (`text/html; charset=utf-8`).
    pub async fn put_page(&self, name: &str, html: bytes::Bytes) -> Result<(), RemoteFileError> {
        let resp = self
            .auth(self.client.put(self.url_of(&format!("{name}.html"))))
            .header(reqwest::header::CONTENT_TYPE, PAGE_CONTENT_TYPE)
            .body(html)
            .send()
            .await
            .map_err(|e| RemoteFileError::Remote(net::http::describe(e)))?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(RemoteFileError::Remote(status_message("PUT", s))),
        }
    }

    /// Deletes the remote file `name` (with its extension); a missing file is success.
    pub async fn delete(&self, name: &str) -> Result<(), RemoteFileError> {
        let resp = self
            .auth(self.client.delete(self.url_of(name)))
            .send()
            .await
            .map_err(|e| RemoteFileError::Remote(net::http::describe(e)))?;
        match resp.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND || s == StatusCode::GONE => Ok(()),
            s => Err(RemoteFileError::Remote(status_message("DELETE", s))),
        }
    }

    /// A cheap reachability probe (any HTTP answer means the server is there).
    pub async fn probe(&self) -> Result<(), RemoteFileError> {
        self.auth(self.client.head(&self.base))
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| RemoteFileError::Remote(net::http::describe(e)))
    }
}

/// The `Content-Type` of share pages, on every remote.
pub const PAGE_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// Sends `rb` with a photo as its body: `len` bytes streamed from `file` in 64 KiB reads
/// (WebDAV and S3 uploads alike).
pub(crate) async fn send_jpeg(
    rb: reqwest::RequestBuilder,
    file: impl tokio::io::AsyncRead + Send + 'static,
    len: u64,
) -> Result<reqwest::Response, RemoteFileError> {
    let body =
        reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024));
    rb.header(reqwest::header::CONTENT_TYPE, "image/jpeg")
        .header(reqwest::header::CONTENT_LENGTH, len)
        .body(body)
        .send()
        .await
        .map_err(|e| RemoteFileError::Remote(net::http::describe(e)))
}

fn status_message(method: &str, s: StatusCode) -> String {
    let hint = match s.as_u16() {
        401 => "authentication failed: check the user and password in REMOTE_STORAGE_URL",
        403 => "forbidden: check the web server allows WebDAV PUT/DELETE for this kiosk",
        404 | 405 | 409 => {
            "the URL does not accept uploads: check REMOTE_STORAGE_URL and dav_methods"
        }
        413 => "the file is larger than the server accepts (client_max_body_size)",
        507 => "the server's disk is full",
        500..=599 => "server error",
        _ => "unexpected answer",
    };
    format!("{method} answered {s}: {hint}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use base64::Engine as _;

    fn webdav(url: &str) -> WebDav {
        let mut vars = crate::config::Vars::new();
        vars.insert("REMOTE_STORAGE_URL".into(), url.into());
        let config = crate::config::Config::from_vars(&vars).unwrap();
        WebDav::new(config.remote_storage.as_ref().unwrap()).unwrap()
    }

    fn authorization(w: &WebDav) -> Option<String> {
        let req = w.auth(w.client.put(w.url_for("abc"))).build().unwrap();
        req.headers()
            .get(reqwest::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap().to_string())
    }

    fn basic(user_pass: &str) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(user_pass);
        format!("Basic {b64}")
    }

    #[test]
    fn percent_encoded_credentials_are_sent_decoded() {
        let w = webdav("https://kiosk:p%40ss%2Fw@vps.example/uploads");
        assert_eq!(w.url_for("abc"), "https://vps.example/uploads/abc.jpg");
        assert_eq!(authorization(&w), Some(basic("kiosk:p@ss/w")));
        // An encoded user too; a raw '@' in the password works (the host follows the last
        // one), and a '%' that encodes nothing stays as written.
        let w = webdav("http://k%C3%A9v:50%off@p@127.0.0.1:9/dav/");
        assert_eq!(authorization(&w), Some(basic("kév:50%off@p")));
        assert_eq!(authorization(&webdav("http://127.0.0.1:9/dav/")), None);
    }
}
