//! Remote image files on S3-compatible object storage (AWS S3, Scaleway, OVHcloud, MinIO,
//! Garage…): `PUT {prefix}/{id}.jpg` streamed from disk and `DELETE`, signed with AWS
//! Signature Version 4 by the small signer below (no SDK). Both are idempotent: a repeated
//! PUT overwrites with the same bytes, a DELETE of a missing object is success.
//!
//! The payload is signed: the file is read once to compute its SHA-256, which goes into
//! `x-amz-content-sha256`, then streamed. The store verifies the body against it, so a
//! file truncated or changed on the way is refused rather than stored, plain-HTTP
//! endpoints (a MinIO on the LAN) work the same as HTTPS ones, and reading a capture twice
//! from local disk costs little next to sending it.
//!
//! Addressing: path style (`https://endpoint/bucket/key`) for custom endpoints (what
//! S3-compatible stores expect), virtual-hosted style (`https://bucket.s3.region…/key`) for
//! AWS itself; `path_style=` in the URL overrides either. HTTPS trusts the compiled-in
//! Mozilla roots (`webpki-roots`), like the OVH client, so the kiosk image needs no CA
//! bundle. Redirects are not followed: S3 answers a wrong region with a redirect, which is
//! reported (with its error code) instead.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::RemoteFileError;
use crate::config::Secret;

/// SHA-256 of the empty payload (bodyless requests).
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SERVICE: &str = "s3";
const DEFAULT_REGION: &str = "us-east-1";
/// At most this much of an error answer is read (for its `<Code>`).
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// Where and how to reach the bucket; parsed from `REMOTE_STORAGE_URL=s3://…`.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix without leading or trailing `/` (may be empty): objects are
    /// `{prefix}/{id}.jpg`.
    pub prefix: String,
    /// `scheme://host[:port]`, no trailing `/` (e.g. `https://s3.fr-par.scw.cloud`).
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: Secret,
    /// `https://endpoint/bucket/key` rather than `https://bucket.endpoint/key`.
    pub path_style: bool,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key", &mask_access_key(&self.access_key))
            .field("secret_key", &self.secret_key)
            .field("path_style", &self.path_style)
            .finish()
    }
}

/// `…WXYZ`: enough to tell keys apart, as `aws configure list` shows them.
fn mask_access_key(k: &str) -> String {
    let n = k.chars().count();
    if n <= 8 {
        return "<set>".into();
    }
    let tail: String = k.chars().skip(n - 4).collect();
    format!("…{tail}")
}

impl S3Config {
    /// Parses `s3://[ACCESS:SECRET@]bucket[/prefix][?endpoint=…&region=…&path_style=true]`.
    ///
    /// Defaults come from `get` (the configuration's variables): credentials from
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, the region from `AWS_REGION` then
    /// `AWS_DEFAULT_REGION` then `us-east-1`, the endpoint from `S3_ENDPOINT_URL`, then
    /// `AWS_ENDPOINT_URL_S3`, then `AWS_ENDPOINT_URL`, then AWS's
    /// `https://s3.{region}.amazonaws.com`. Path style is the default with a custom
    /// endpoint. Credentials in the URL may be percent-encoded; since AWS secret keys
    /// often hold `/` or `+`, everything before the last `@` is taken as credentials.
    /// Error texts never include the secret (nor the URL, which may hold it).
    pub fn from_url(url: &str, get: &dyn Fn(&str) -> Option<String>) -> Result<S3Config, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| "must start with s3://".to_string())?;
        let (main, query) = match rest.split_once('?') {
            Some((m, q)) => (m, Some(q)),
            None => (rest, None),
        };
        if main.contains('#') || query.is_some_and(|q| q.contains('#')) {
            return Err("must not have a fragment (#…)".into());
        }
        let (creds, location) = match main.rfind('@') {
            Some(i) => (Some(&main[..i]), &main[i + 1..]),
            None => (None, main),
        };
        let (bucket, raw_prefix) = match location.split_once('/') {
            Some((b, p)) => (b, p),
            None => (location, ""),
        };
        check_bucket(bucket)?;
        let prefix = parse_prefix(raw_prefix)?;

        let mut q_endpoint = None;
        let mut q_region = None;
        let mut q_path_style = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v).map_err(|e| format!("parameter '{k}': {e}"))?;
            match k {
                "endpoint" => q_endpoint = Some(v),
                "region" => q_region = Some(v),
                "path_style" => {
                    q_path_style = Some(
                        parse_bool(&v)
                            .ok_or_else(|| format!("path_style='{v}' is not true or false"))?,
                    )
                }
                _ => {
                    return Err(format!(
                        "unknown parameter '{k}' (known: endpoint, region, path_style)"
                    ))
                }
            }
        }

        let region = match q_region {
            Some(r) => r,
            None => get("AWS_REGION")
                .or_else(|| get("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| DEFAULT_REGION.into()),
        };
        if region.is_empty()
            || region.len() > 64
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "region '{region}' is not a region name (e.g. eu-west-3, fr-par)"
            ));
        }

        let custom_endpoint = match q_endpoint {
            Some(e) => Some(("endpoint", e)),
            None => ["S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
                .into_iter()
                .find_map(|n| get(n).map(|v| (n, v))),
        };
        let (endpoint, custom) = match custom_endpoint {
            Some((source, e)) => (normalize_endpoint(source, &e)?, true),
            None => (format!("https://s3.{region}.amazonaws.com"), false),
        };
        let path_style = q_path_style.unwrap_or(custom);

        let (access_key, secret_key) = match creds {
            Some(c) => {
                let (a, s) = c.split_once(':').ok_or_else(|| {
                    "credentials in the URL must be ACCESS_KEY:SECRET_KEY@ (the secret is missing)"
                        .to_string()
                })?;
                let a = percent_decode(a)
                    .map_err(|_| "the access key in the URL is badly percent-encoded")?;
                let s = percent_decode(s)
                    .map_err(|_| "the secret key in the URL is badly percent-encoded")?;
                (a, s)
            }
            None => match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
                (Some(a), Some(s)) => (a, s),
                (None, None) => {
                    return Err("no S3 credentials: put ACCESS_KEY:SECRET_KEY@ in the URL \
                         or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                        .into())
                }
                (None, Some(_)) => {
                    return Err("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".into())
                }
                (Some(_), None) => {
                    return Err("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into())
                }
            },
        };
        if access_key.is_empty() || secret_key.is_empty() {
            return Err("the S3 access key and secret key must not be empty".into());
        }
        if access_key
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
        {
            return Err("the S3 access key has characters no access key has".into());
        }

        Ok(S3Config {
            bucket: bucket.to_string(),
            prefix,
            endpoint,
            region,
            access_key,
            secret_key: Secret::new(secret_key),
            path_style,
        })
    }

    /// `s3://bucket/prefix?endpoint=…&region=…&path_style=…`, without credentials: safe
    /// to show, and parses back to the same place.
    pub fn display_url(&self) -> String {
        let prefix = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("/{}", self.prefix)
        };
        format!(
            "s3://{}{prefix}?endpoint={}&region={}&path_style={}",
            self.bucket, self.endpoint, self.region, self.path_style
        )
    }

    /// The object key of a capture: `{prefix}/{id}.jpg`.
    pub fn key_for(&self, id: &str) -> String {
        if self.prefix.is_empty() {
            format!("{id}.jpg")
        } else {
            format!("{}/{id}.jpg", self.prefix)
        }
    }
}

/// S3 bucket naming, loosely (legacy and S3-compatible stores allow a little more than
/// AWS's current rules: upper case and `_`).
fn check_bucket(b: &str) -> Result<(), String> {
    if b.is_empty() {
        return Err("has no bucket name (s3://bucket/prefix)".into());
    }
    let ok_chars = b
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
    let ends_ok = b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !(3..=63).contains(&b.len()) || !ok_chars || !ends_ok {
        return Err(format!(
            "'{b}' is not a bucket name (3-63 letters, digits, '.', '-'; starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

fn parse_prefix(raw: &str) -> Result<String, String> {
    let p = percent_decode(raw.trim_matches('/')).map_err(|e| format!("prefix: {e}"))?;
    if p.is_empty() {
        return Ok(p);
    }
    if p.split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(format!(
            "prefix '{p}' must not have empty, '.' or '..' parts"
        ));
    }
    if p.chars().any(char::is_control) || p.len() > 512 {
        return Err("prefix has control characters or is too long".into());
    }
    Ok(p)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// `%XX` decoding (no `+` → space: that is form encoding, and `+` is common in secrets).
fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "bad percent-encoding".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-encoding is not UTF-8".to_string())
}

/// `scheme://host[:port]` from an endpoint value; `source` names where it came from.
fn normalize_endpoint(source: &str, e: &str) -> Result<String, String> {
    let shown = if e.contains('@') {
        "(value not shown)"
    } else {
        e
    };
    let bad = |why: &str| format!("{source} {shown}: {why}");
    let u = reqwest::Url::parse(e.trim())
        .map_err(|_| bad("not a URL (e.g. https://s3.fr-par.scw.cloud)"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(bad("must start with http:// or https://"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!(
            "{source}: must not hold credentials (put them before the bucket: s3://ACCESS:SECRET@bucket)"
        ));
    }
    let host = u.host_str().ok_or_else(|| bad("has no host"))?;
    if u.path() != "/" && !u.path().is_empty() {
        return Err(bad("must be scheme://host[:port] with no path"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(match u.port() {
        Some(p) => format!("{}://{host}:{p}", u.scheme()),
        None => format!("{}://{host}", u.scheme()),
    })
}

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
}

impl S3 {
    pub fn new(config: &S3Config) -> Result<S3, String> {
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
            (authority, format!("/{}", uri_encode(&config.bucket, false)))
        } else {
            (format!("{}.{authority}", config.bucket), String::new())
        };
        let origin = format!("{}://{host}", ep.scheme());

        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(300))
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("selfie-kiosk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(S3 {
            client,
            config: Arc::new(config.clone()),
            origin,
            host,
            bucket_path,
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
        format!(
            "{}/{}",
            self.bucket_path,
            uri_encode(&self.config.key_for(id), true)
        )
    }

    /// A request with `host`, `x-amz-content-sha256`, `x-amz-date` and `Authorization`.
    fn signed(
        &self,
        method: Method,
        path: &str,
        payload_sha256: &str,
    ) -> Result<reqwest::RequestBuilder, RemoteFileError> {
        let amz_date = amz_date_now()?;
        let headers = [
            ("host", self.host.as_str()),
            ("x-amz-content-sha256", payload_sha256),
            ("x-amz-date", amz_date.as_str()),
        ];
        let auth = authorization(
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

    /// Uploads `path` as `{prefix}/{id}.jpg`: hashed in a first read, then streamed.
    pub async fn put(&self, id: &str, path: &Path) -> Result<(), RemoteFileError> {
        let local = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::NotFound {
                RemoteFileError::LocalMissing(path.display().to_string())
            } else {
                RemoteFileError::LocalMissing(format!("{}: {e}", path.display()))
            }
        };
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
        // Exactly the bytes hashed, even if the file grew meanwhile.
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            file.take(len),
            64 * 1024,
        ));
        let resp = self
            .signed(Method::PUT, &self.object_path(id), &sha)?
            .header(reqwest::header::CONTENT_TYPE, "image/jpeg")
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body)
            .send()
            .await
            .map_err(|e| RemoteFileError::Remote(describe(&e)))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(RemoteFileError::Remote(error_message("PUT", resp).await.0))
        }
    }

    /// Deletes `{prefix}/{id}.jpg`; a missing object is success (S3 answers 204 anyway),
    /// a missing bucket is not (that is a configuration error, and the object may well
    /// be in the right bucket).
    pub async fn delete(&self, id: &str) -> Result<(), RemoteFileError> {
        let resp = self
            .signed(Method::DELETE, &self.object_path(id), EMPTY_SHA256)?
            .send()
            .await
            .map_err(|e| RemoteFileError::Remote(describe(&e)))?;
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
        let resp = self
            .signed(Method::GET, &self.object_path(id), EMPTY_SHA256)?
            .send()
            .await
            .map_err(|e| RemoteFileError::Remote(describe(&e)))?;
        let status = resp.status();
        if status.is_success() {
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| RemoteFileError::Remote(describe(&e)))?;
            return Ok(Some(bytes.to_vec()));
        }
        let (msg, code) = error_message("GET", resp).await;
        if status == StatusCode::NOT_FOUND && code.as_deref() != Some("NoSuchBucket") {
            return Ok(None);
        }
        Err(RemoteFileError::Remote(msg))
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
            .map_err(|e| RemoteFileError::Remote(describe(&e)))
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

/// A connection error, without credentials (the URL printed by reqwest holds none).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut msg = format!("{kind}: {e}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg.chars().take(300).collect()
}

// ---------------------------------------------------------------- Signature V4

struct Credentials<'a> {
    access_key: &'a str,
    secret_key: &'a str,
    region: &'a str,
    service: &'a str,
}

/// `YYYYMMDD'T'HHMMSS'Z'`, now, UTC.
fn amz_date_now() -> Result<String, RemoteFileError> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::now_utc()
        .format(fmt)
        .map_err(|e| RemoteFileError::Remote(format!("cannot format the clock for signing: {e}")))
}

/// S3's URI encoding: unreserved characters stay, everything else is `%XX` (upper case);
/// `/` stays when `keep_slash` (object keys).
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length; this branch cannot be reached.
        Err(_) => Vec::new(),
    }
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// The canonical request and the signed-headers list. `headers`: names in any case;
/// values are trimmed and inner runs of spaces collapsed.
fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    headers: &[(&str, &str)],
    payload_sha256: &str,
) -> (String, String) {
    let mut hs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    hs.sort();
    let mut canonical_headers = String::new();
    for (k, v) in &hs {
        canonical_headers.push_str(k);
        canonical_headers.push(':');
        canonical_headers.push_str(v);
        canonical_headers.push('\n');
    }
    let signed_headers = hs
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    (
        format!(
            "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_sha256}"
        ),
        signed_headers,
    )
}

fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// The `Authorization` header value for a request.
fn authorization(
    c: &Credentials<'_>,
    amz_date: &str,
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    headers: &[(&str, &str)],
    payload_sha256: &str,
) -> String {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let scope = format!("{date}/{}/{}/aws4_request", c.region, c.service);
    let (creq, signed_headers) = canonical_request(
        method,
        canonical_uri,
        canonical_query,
        headers,
        payload_sha256,
    );
    let sts = string_to_sign(amz_date, &scope, &creq);
    let key = signing_key(c.secret_key, date, c.region, c.service);
    let signature = hex::encode(hmac_sha256(&key, sts.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        c.access_key
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::collections::HashMap;

    /// AWS Signature Version 4 test suite, "get-vanilla".
    #[test]
    fn sigv4_test_suite_get_vanilla() {
        let headers = [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        let (creq, signed) = canonical_request("GET", "/", "", &headers, EMPTY_SHA256);
        assert_eq!(
            creq,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(signed, "host;x-amz-date");
        assert_eq!(
            string_to_sign(
                "20150830T123600Z",
                "20150830/us-east-1/service/aws4_request",
                &creq
            ),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        let c = Credentials {
            access_key: "AKIDEXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
            service: "service",
        };
        assert_eq!(
            authorization(
                &c,
                "20150830T123600Z",
                "GET",
                "/",
                "",
                &headers,
                EMPTY_SHA256
            ),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    /// Amazon S3 API reference, "Signature Calculations for the Authorization Header",
    /// example "GET Object" (the first ten bytes of examplebucket/test.txt).
    #[test]
    fn s3_documented_get_object_example() {
        let headers = [
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ];
        let c = Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
            service: "s3",
        };
        let (creq, _) = canonical_request("GET", "/test.txt", "", &headers, EMPTY_SHA256);
        assert_eq!(
            hex::encode(Sha256::digest(creq.as_bytes())),
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        );
        assert_eq!(
            authorization(
                &c,
                "20130524T000000Z",
                "GET",
                "/test.txt",
                "",
                &headers,
                EMPTY_SHA256
            ),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let (creq, signed) =
            canonical_request("PUT", "/k", "", &[("X-B", "  a   b "), ("host", "h")], "x");
        assert!(creq.contains("host:h\nx-b:a b\n"), "{creq}");
        assert_eq!(signed, "host;x-b");
    }

    #[test]
    fn uri_encoding_follows_s3() {
        assert_eq!(uri_encode("a b/c~d+e", true), "a%20b/c~d%2Be");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
        assert_eq!(uri_encode("photos/été", true), "photos/%C3%A9t%C3%A9");
    }

    #[test]
    fn amz_date_has_the_basic_format() {
        let d = amz_date_now().unwrap();
        assert_eq!(d.len(), 16, "{d}");
        assert!(d.ends_with('Z') && d.as_bytes()[8] == b'T', "{d}");
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    #[test]
    fn url_with_everything() {
        let c = S3Config::from_url(
            &format!(
                "s3://AKIAEXAMPLE123:{SECRET}@test-bucket/captures/2026/?endpoint=http://127.0.0.1:9000&region=eu-west-3"
            ),
            &env(&[]),
        )
        .unwrap();
        assert_eq!(c.bucket, "test-bucket");
        assert_eq!(c.prefix, "captures/2026");
        assert_eq!(c.endpoint, "http://127.0.0.1:9000");
        assert_eq!(c.region, "eu-west-3");
        assert_eq!(c.access_key, "AKIAEXAMPLE123");
        assert_eq!(c.secret_key.expose(), SECRET);
        assert!(c.path_style);
        assert_eq!(c.key_for("abc"), "captures/2026/abc.jpg");
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains(SECRET) && !dbg.contains("AKIAEXAMPLE123"),
            "{dbg}"
        );
        assert_eq!(
            c.display_url(),
            "s3://test-bucket/captures/2026?endpoint=http://127.0.0.1:9000&region=eu-west-3&path_style=true"
        );
        // The shown URL parses back to the same place.
        let again = S3Config::from_url(
            &c.display_url(),
            &env(&[
                ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE123"),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
            ]),
        )
        .unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn defaults_come_from_the_aws_variables() {
        let c = S3Config::from_url(
            "s3://kiosk-photos",
            &env(&[
                ("AWS_ACCESS_KEY_ID", "AKIAENVKEY000"),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
                ("AWS_DEFAULT_REGION", "eu-central-1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.prefix, "");
        assert_eq!(c.key_for("abc"), "abc.jpg");
        assert_eq!(c.region, "eu-central-1");
        assert_eq!(c.endpoint, "https://s3.eu-central-1.amazonaws.com");
        assert!(!c.path_style, "AWS itself: virtual-hosted style");

        let c = S3Config::from_url(
            "s3://b-1/p?path_style=false",
            &env(&[
                ("AWS_ACCESS_KEY_ID", "AKIAENVKEY000"),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
                ("AWS_REGION", "fr-par"),
                ("AWS_DEFAULT_REGION", "eu-central-1"),
                ("S3_ENDPOINT_URL", "https://s3.fr-par.scw.cloud/"),
            ]),
        )
        .unwrap();
        assert_eq!(c.region, "fr-par");
        assert_eq!(c.endpoint, "https://s3.fr-par.scw.cloud");
        assert!(!c.path_style, "explicit path_style wins");

        let c = S3Config::from_url(
            "s3://bucket",
            &env(&[
                ("AWS_ACCESS_KEY_ID", "AKIAENVKEY000"),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
                ("AWS_ENDPOINT_URL", "https://minio.example:443"),
            ]),
        )
        .unwrap();
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.endpoint, "https://minio.example");
        assert!(c.path_style);
    }

    #[test]
    fn percent_encoded_credentials_and_secret_with_slashes() {
        let c = S3Config::from_url("s3://AKIAX:abc%2Fdef+ghi@bucket/p", &env(&[])).unwrap();
        assert_eq!(c.secret_key.expose(), "abc/def+ghi");
        // An unencoded '/' in the secret works too: credentials end at the last '@'.
        let c = S3Config::from_url(&format!("s3://AKIAX:{SECRET}@bucket/p"), &env(&[])).unwrap();
        assert_eq!(c.secret_key.expose(), SECRET);
        assert_eq!((c.bucket.as_str(), c.prefix.as_str()), ("bucket", "p"));
    }

    #[test]
    fn errors_are_clear_and_never_show_the_secret() {
        let no_env = env(&[]);
        let cases: Vec<(String, &str)> = vec![
            ("s3://bucket/p".into(), "no S3 credentials"),
            (
                format!("s3://AKIAX{SECRET}@bucket"),
                "ACCESS_KEY:SECRET_KEY",
            ),
            (format!("s3://A:{SECRET}@b"), "is not a bucket name"),
            (format!("s3://A:{SECRET}@"), "no bucket"),
            (
                format!("s3://A:{SECRET}@bucket?endpont=x"),
                "unknown parameter 'endpont'",
            ),
            (format!("s3://A:{SECRET}@bucket?endpoint=ftp://x"), "http"),
            (
                format!("s3://A:{SECRET}@bucket?endpoint=http://h/path"),
                "no path",
            ),
            (
                format!("s3://A:{SECRET}@bucket?endpoint=http://u:K7MDENG@h"),
                "credentials",
            ),
            (
                format!("s3://A:{SECRET}@bucket?endpoint=http://u:{SECRET}@h"),
                "not shown",
            ),
            (format!("s3://A:{SECRET}@bucket?region=eu%20west"), "region"),
            (
                format!("s3://A:{SECRET}@bucket?path_style=maybe"),
                "path_style",
            ),
            (format!("s3://A:{SECRET}@bucket/a//b"), "prefix"),
            (format!("s3://A:{SECRET}@bucket/../b"), "prefix"),
            (format!("s3://A:{SECRET}@bucket#x"), "fragment"),
            (format!("s3://A:{SECRET}%zz@bucket"), "percent"),
        ];
        for (url, needle) in cases {
            let e = S3Config::from_url(&url, &no_env).unwrap_err();
            assert!(e.contains(needle), "{url}: {e}");
            assert!(!e.contains(SECRET) && !e.contains("K7MDENG"), "{url}: {e}");
        }
        let e = S3Config::from_url("s3://bucket", &env(&[("AWS_SECRET_ACCESS_KEY", SECRET)]))
            .unwrap_err();
        assert!(
            e.contains("AWS_ACCESS_KEY_ID is set") || e.contains("AWS_ACCESS_KEY_ID is not"),
            "{e}"
        );
        assert!(!e.contains(SECRET));
        let e = S3Config::from_url(
            "s3://bucket",
            &env(&[
                ("AWS_ACCESS_KEY_ID", "AKIAX"),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
                ("S3_ENDPOINT_URL", "nope"),
            ]),
        )
        .unwrap_err();
        assert!(e.starts_with("S3_ENDPOINT_URL"), "{e}");
    }

    #[test]
    fn addressing_styles() {
        let mut c = S3Config::from_url(
            &format!("s3://AKIAX:{SECRET}@my-bucket/captures?endpoint=http://127.0.0.1:9000"),
            &env(&[]),
        )
        .unwrap();
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
        let c = S3Config::from_url(
            &format!("s3://AKIAX:{SECRET}@bucket/p?endpoint=http://127.0.0.1:9"),
            &env(&[]),
        )
        .unwrap();
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
