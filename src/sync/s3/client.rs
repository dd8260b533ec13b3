//! Requests to the store (`PUT`, `DELETE`, `GET`, the `HEAD` probe), signed by
//! `sigv4`, and the refusals worded with a hint at what to check.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::sigv4::{self, Credentials, EMPTY_SHA256};
use super::S3Config;
use crate::clock::{Clock, SystemClock};
use crate::net::{self, percent};
use crate::sync::webdav::send_jpeg;
use crate::sync::RemoteFileError;

const SERVICE: &str = "s3";
/// At most this much of an error answer is read (for its `<Code>`).
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// An S3-compatible store, ready to use.
#[derive(Clone, Debug)]
pub struct S3 {
    client: reqwest::Client,
    config: Arc<S3Config>,
    /// `scheme://host[:port]` requests go to (the bucket in the host when virtual-hosted).
    origin: String,
    /// The `Host` header, as signed.
    host: String,
    /// `/bucket` (path style) or empty (virtual-hosted), URI-encoded.
    bucket_path: String,
    /// Requests are signed with this clock's time.
    clock: Arc<dyn Clock>,
}

impl S3 {
    pub fn new(config: &S3Config) -> Result<S3, String> {
        S3::with_clock(config, Arc::new(SystemClock))
    }

    /// Like [`S3::new`], signing with `clock`'s time (which the store checks: 15 minutes of
    /// skew at most).
    pub fn with_clock(config: &S3Config, clock: Arc<dyn Clock>) -> Result<S3, String> {
        let ep = reqwest::Url::parse(&config.endpoint)
            .map_err(|_| format!("endpoint {} is not a URL", config.endpoint))?;
        let host = ep
            .host_str()
            .ok_or_else(|| format!("endpoint {} has no host", config.endpoint))?;
        let authority = match ep.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let (host, bucket_path) = if config.path_style {
            (
                authority,
                format!("/{}", percent::encode(&config.bucket, percent::COMPONENT)),
            )
        } else {
            (format!("{}.{authority}", config.bucket), String::new())
        };
        let origin = format!("{}://{host}", ep.scheme());

        let client = net::http::file_store_client_builder()
            .map_err(|e| e.to_string())?
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(S3 {
            client,
            config: Arc::new(config.clone()),
            origin,
            host,
            bucket_path,
            clock,
        })
    }

    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// The object's URL (unsigned: for logs and diagnostics).
    pub fn url_for(&self, id: &str) -> String {
        format!("{}{}", self.origin, self.object_path(id))
    }

    fn object_path(&self, id: &str) -> String {
        self.object_path_of(&format!("{id}.jpg"))
    }

    /// The path of the object `name` (with its extension) under the prefix.
    fn object_path_of(&self, name: &str) -> String {
        format!(
            "{}/{}",
            self.bucket_path,
            percent::encode(&self.config.key_for_name(name), percent::PATH)
        )
    }

    /// A request with `host`, `x-amz-content-sha256`, `x-amz-date` and `Authorization`.
    fn signed(
        &self,
        method: Method,
        path: &str,
        payload_sha256: &str,
    ) -> Result<reqwest::RequestBuilder, RemoteFileError> {
        let amz_date = sigv4::amz_date(self.clock.now_ms()).ok_or_else(|| {
            RemoteFileError::Remote("the clock cannot be formatted for signing".into())
        })?;
        let headers = [
            ("host", self.host.as_str()),
            ("x-amz-content-sha256", payload_sha256),
            ("x-amz-date", amz_date.as_str()),
        ];
        let auth = sigv4::authorization(
            &Credentials {
                access_key: &self.config.access_key,
                secret_key: self.config.secret_key.expose(),
                region: &self.config.region,
                service: SERVICE,
            },
            &amz_date,
            method.as_str(),
            path,
            "",
            &headers,
            payload_sha256,
        );
        let mut rb = self
            .client
            .request(method, format!("{}{path}", self.origin));
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        Ok(rb.header(reqwest::header::AUTHORIZATION, auth))
    }

    /// A signed request without a body on the object `path`, sent.
    async fn send_bodyless(
        &self,
        method: Method,
        path: &str,
    ) -> Result<reqwest::Response, RemoteFileError> {
        self.signed(method, path, EMPTY_SHA256)?
            .send()
            .await
            .map_err(|e| RemoteFileError::Remote(net::http::describe(e)))
    }

    /// Uploads `path` as `{prefix}/{id}.jpg`: hashed in a first read, then streamed.
    pub async fn put(&self, id: &str, path: &Path) -> Result<(), RemoteFileError> {
        let local = |e| RemoteFileError::local(path, e);
        let mut file = tokio::fs::File::open(path).await.map_err(local)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut len: u64 = 0;
        loop {
            let n = file.read(&mut buf).await.map_err(local)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
        file.rewind().await.map_err(local)?;
        let sha = hex::encode(hasher.finalize());
        let signed = self.signed(Method::PUT, &self.object_path(id), &sha)?;
        // Exactly the bytes hashed, even if the file grew meanwhile.
        let resp = send_jpeg(signed, file.take(len), len).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(RemoteFileError::Remote(error_message("PUT", resp).await.0))
        }
    }

    /// Uploads a share page as `{prefix}/{name}.html` (`text/html; charset=utf-8`).
    pub async fn put_page(&self, name: &str, html: bytes::Bytes) -> Result<(), RemoteFileError> {
        let sha = hex::encode(Sha256::digest(&html));
        let path = self.object_path_of(&format!("{name}.html"));
        let resp = self
            .signed(Method::PUT, &path, &sha)?
            .header(
                reqwest::header::CONTENT_TYPE,
                crate::sync::webdav::PAGE_CONTENT_TYPE,
            )
            .body(html)
            .send()
            .await
            .map_err(|e| RemoteFileError::Remote(net::http::describe(e)))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(RemoteFileError::Remote(error_message("PUT", resp).await.0))
        }
    }

    /// Deletes `{prefix}/{name}` (`name` with its extension); a missing object is success
    /// (S3 answers 204 anyway), a missing bucket is not (that is a configuration error,
    /// and the object may well be in the right bucket).
    pub async fn delete(&self, name: &str) -> Result<(), RemoteFileError> {
        let resp = self
            .send_bodyless(Method::DELETE, &self.object_path_of(name))
            .await?;
        let status = resp.status();
        if status.is_success() || status == StatusCode::GONE {
            return Ok(());
        }
        let (msg, code) = error_message("DELETE", resp).await;
        if status == StatusCode::NOT_FOUND && code.as_deref() != Some("NoSuchBucket") {
            return Ok(());
        }
        Err(RemoteFileError::Remote(msg))
    }

    /// Downloads `{prefix}/{id}.jpg` (`None`: no such object). For diagnostics and tests.
    pub async fn get(&self, id: &str) -> Result<Option<Vec<u8>>, RemoteFileError> {
        self.get_object(&format!("{id}.jpg")).await
    }

    /// Downloads `{prefix}/{name}` (`name` with its extension; `None`: no such object).
    pub async fn get_object(&self, name: &str) -> Result<Option<Vec<u8>>, RemoteFileError> {
        let resp = self
            .send_bodyless(Method::GET, &self.object_path_of(name))
            .await?;
        let status = resp.status();
        if status.is_success() {
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| RemoteFileError::Remote(net::http::describe(e)))?;
            return Ok(Some(bytes.to_vec()));
        }
        let (msg, code) = error_message("GET", resp).await;
        if status == StatusCode::NOT_FOUND && code.as_deref() != Some("NoSuchBucket") {
            return Ok(None);
        }
        Err(RemoteFileError::Remote(msg))
    }

    /// The `Content-Type` the store serves `{prefix}/{name}` with (`None`: no such
    /// object). For diagnostics and tests (a share page must be served as HTML).
    pub async fn content_type(&self, name: &str) -> Result<Option<String>, RemoteFileError> {
        let resp = self
            .send_bodyless(Method::HEAD, &self.object_path_of(name))
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(RemoteFileError::Remote(format!("HEAD answered {s}"))),
        }
    }

    /// A cheap reachability probe: `HEAD` the bucket; any HTTP answer means the store is
    /// there (a 403 or 404 is for the uploads to report, with their error code).
    pub async fn probe(&self) -> Result<(), RemoteFileError> {
        let path = if self.bucket_path.is_empty() {
            "/"
        } else {
            self.bucket_path.as_str()
        };
        self.signed(Method::HEAD, path, EMPTY_SHA256)?
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| RemoteFileError::Remote(net::http::describe(e)))
    }
}

/// The message for a refused request, and the S3 error code from its XML body if any.
async fn error_message(method: &str, mut resp: reqwest::Response) -> (String, Option<String>) {
    let status = resp.status();
    let mut body: Vec<u8> = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match tokio::time::timeout(Duration::from_secs(10), resp.chunk()).await {
            Ok(Ok(Some(c))) => body.extend_from_slice(&c),
            _ => break,
        }
    }
    let body = String::from_utf8_lossy(&body);
    let code = xml_text(&body, "Code");
    let message = xml_text(&body, "Message");
    (
        status_message(method, status, code.as_deref(), message.as_deref()),
        code,
    )
}

/// The text of the first `<tag>…</tag>` (S3 error bodies are flat and small).
fn xml_text(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    let text = body[start..end].trim();
    (!text.is_empty()).then(|| text.chars().filter(|c| !c.is_control()).take(200).collect())
}

fn status_message(
    method: &str,
    s: StatusCode,
    code: Option<&str>,
    message: Option<&str>,
) -> String {
    let by_code = match code.unwrap_or("") {
        "SignatureDoesNotMatch" => Some(
            "the secret key does not match: check AWS_SECRET_ACCESS_KEY or the secret in REMOTE_STORAGE_URL",
        ),
        "InvalidAccessKeyId" => Some(
            "unknown access key: check AWS_ACCESS_KEY_ID or the access key in REMOTE_STORAGE_URL (and the endpoint)",
        ),
        "AccessDenied" | "AllAccessDisabled" => Some(
            "access denied: check the access key / bucket policy (s3:PutObject and s3:DeleteObject on the prefix)",
        ),
        "NoSuchBucket" => {
            Some("the bucket does not exist: check the bucket, endpoint and region in REMOTE_STORAGE_URL")
        }
        "PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException"
        | "IncorrectEndpoint" => Some(
            "wrong region or endpoint for this bucket: check region= / AWS_REGION and endpoint=",
        ),
        "RequestTimeTooSkewed" | "RequestExpired" => {
            Some("the kiosk's clock is off: check time synchronisation (NTP)")
        }
        "XAmzContentSHA256Mismatch" | "BadDigest" | "IncompleteBody" => {
            Some("the file changed or was cut while uploading")
        }
        "EntityTooLarge" => Some("the file is larger than the store accepts"),
        "QuotaExceeded" | "InsufficientStorage" | "StorageQuotaExceeded" => {
            Some("the storage quota is exhausted")
        }
        "SlowDown" | "ServiceUnavailable" => Some("the store asks to slow down or is unavailable"),
        "InvalidBucketName" => Some("the bucket name is refused: check REMOTE_STORAGE_URL"),
        _ => None,
    };
    let hint = by_code.unwrap_or(match s.as_u16() {
        301 | 307 | 308 => "redirected: wrong region or endpoint; check region= and endpoint=",
        400 => "bad request: check the region and endpoint in REMOTE_STORAGE_URL",
        401 | 403 => "forbidden: check the access key / bucket policy",
        404 => "not found: check the bucket and endpoint in REMOTE_STORAGE_URL",
        405 | 501 => "the endpoint does not accept this method: is it an S3 endpoint?",
        413 => "the file is larger than the store accepts",
        507 => "the store's disk is full",
        500..=599 => "server error",
        _ => "unexpected answer",
    });
    match (code, message) {
        (Some(c), Some(m)) if by_code.is_none() => {
            format!("{method} answered {s} ({c}: {m}): {hint}")
        }
        (Some(c), _) => format!("{method} answered {s} ({c}): {hint}"),
        (None, _) => format!("{method} answered {s}: {hint}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn config(url: &str) -> S3Config {
        S3Config::from_url(url, &|_: &str| None).unwrap()
    }

    #[test]
    fn addressing_styles() {
        let mut c = config(&format!(
            "s3://AKIAX:{SECRET}@my-bucket/captures?endpoint=http://127.0.0.1:9000"
        ));
        let s = S3::new(&c).unwrap();
        assert_eq!(
            s.url_for("abc"),
            "http://127.0.0.1:9000/my-bucket/captures/abc.jpg"
        );
        assert_eq!(s.host, "127.0.0.1:9000");
        c.endpoint = "https://s3.eu-west-3.amazonaws.com".into();
        c.path_style = false;
        let s = S3::new(&c).unwrap();
        assert_eq!(
            s.url_for("abc"),
            "https://my-bucket.s3.eu-west-3.amazonaws.com/captures/abc.jpg"
        );
        assert_eq!(s.host, "my-bucket.s3.eu-west-3.amazonaws.com");
        assert!(!format!("{s:?}").contains(SECRET));
    }

    #[test]
    fn error_messages_carry_the_code_and_a_hint() {
        let m = status_message(
            "PUT",
            StatusCode::FORBIDDEN,
            Some("SignatureDoesNotMatch"),
            Some("The request signature we calculated does not match"),
        );
        assert!(
            m.starts_with("PUT answered 403 Forbidden (SignatureDoesNotMatch)"),
            "{m}"
        );
        assert!(m.contains("AWS_SECRET_ACCESS_KEY"), "{m}");
        let m = status_message("PUT", StatusCode::FORBIDDEN, None, None);
        assert!(m.contains("check the access key / bucket policy"), "{m}");
        let m = status_message("PUT", StatusCode::NOT_FOUND, Some("NoSuchBucket"), None);
        assert!(
            m.contains("(NoSuchBucket)") && m.contains("bucket does not exist"),
            "{m}"
        );
        let m = status_message("PUT", StatusCode::BAD_REQUEST, Some("Weird"), Some("odd"));
        assert!(m.contains("(Weird: odd)"), "{m}");
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(xml_text(body, "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(xml_text("<html>", "Code"), None);
    }

    #[tokio::test]
    async fn a_missing_local_file_is_local_and_an_unreachable_store_is_remote() {
        let c = config(&format!(
            "s3://AKIAX:{SECRET}@bucket/p?endpoint=http://127.0.0.1:9"
        ));
        let s = S3::new(&c).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let e = s
            .put("abc", &dir.path().join("nope.jpg"))
            .await
            .unwrap_err();
        assert!(matches!(e, RemoteFileError::LocalMissing(_)), "{e:?}");
        let f = dir.path().join("abc.jpg");
        std::fs::write(&f, b"jpeg").unwrap();
        let e = s.put("abc", &f).await.unwrap_err();
        match e {
            RemoteFileError::Remote(m) => assert!(m.contains("connect"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(s.probe().await, Err(RemoteFileError::Remote(_))));
        assert!(matches!(
            s.delete("abc").await,
            Err(RemoteFileError::Remote(_))
        ));
    }
}
