//! A small, signed OVH API client for the SMS routes (reqwest + rustls, no OpenSSL).
//!
//! Signing follows python-ovh: `"$1$" + sha1(secret+ck+METHOD+url+body+timestamp)`, with the
//! timestamp on OVH's clock (local clock + a signed delta fetched from `GET /auth/time`).
//!
//! Decisions:
//! - TLS trusts the compiled-in Mozilla roots (`webpki-roots`), so the kiosk image does not
//!   need a CA bundle; the crypto provider is `ring`.
//! - The client never retries a call by itself except once after an `INVALID_SIGNATURE`
//!   answer (OVH did not process that call), after refreshing the time delta. reqwest's own
//!   retries are disabled: a job POST is not idempotent (use a `tag` and
//!   [`OvhClient::outgoing_ids_by_tag`]/[`OvhClient::pending_job_ids`] to recover).
//! - `INVALID_SIGNATURE`, `QUERY_TIME_OUT` and a "Query out of time" message are all read as
//!   [`OvhError::InvalidSignature`] (OVH's exact answer to a stale timestamp is not documented).
//! - Error texts never include the application secret, the consumer key, or a full phone
//!   number: OVH's messages are scrubbed (digit runs of 7+ are masked).

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::phone;

/// Local clock: unix seconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Resolves an endpoint name (`ovh-eu`, …) or a full `http(s)://…` URL to the API base URL,
/// without a trailing slash.
pub fn endpoint_base(name: &str) -> Result<String, OvhError> {
    let trimmed = name.trim();
    let known = match trimmed {
        "ovh-eu" => Some("https://eu.api.ovh.com/1.0"),
        "ovh-ca" => Some("https://ca.api.ovh.com/1.0"),
        "ovh-us" => Some("https://api.us.ovhcloud.com/1.0"),
        "kimsufi-eu" => Some("https://eu.api.kimsufi.com/1.0"),
        "kimsufi-ca" => Some("https://ca.api.kimsufi.com/1.0"),
        "soyoustart-eu" => Some("https://eu.api.soyoustart.com/1.0"),
        "soyoustart-ca" => Some("https://ca.api.soyoustart.com/1.0"),
        _ => None,
    };
    if let Some(url) = known {
        return Ok(url.to_string());
    }
    let lower = trimmed.to_ascii_lowercase();
    if (lower.starts_with("https://") || lower.starts_with("http://"))
        && reqwest::Url::parse(trimmed).is_ok_and(|u| u.host_str().is_some())
    {
        return Ok(trimmed.trim_end_matches('/').to_string());
    }
    Err(OvhError::Config(OvhErrorDetails::msg(format!(
        "unknown OVH endpoint {trimmed:?}: expected ovh-eu, ovh-ca, ovh-us, kimsufi-eu, \
         kimsufi-ca, soyoustart-eu, soyoustart-ca or an http(s):// URL"
    ))))
}

/// `"$1$"` + lowercase hex SHA-1 of `secret+consumer_key+METHOD+full_url+body+timestamp`.
pub fn signature(
    app_secret: &str,
    consumer_key: &str,
    method: &str,
    full_url: &str,
    body: &[u8],
    timestamp: i64,
) -> String {
    let mut h = Sha1::new();
    h.update(app_secret.as_bytes());
    h.update(b"+");
    h.update(consumer_key.as_bytes());
    h.update(b"+");
    h.update(method.to_ascii_uppercase().as_bytes());
    h.update(b"+");
    h.update(full_url.as_bytes());
    h.update(b"+");
    h.update(body);
    h.update(b"+");
    h.update(timestamp.to_string().as_bytes());
    format!("$1${}", hex::encode(h.finalize()))
}

/// OVH application credentials. `Debug` shows the application key only.
#[derive(Clone, PartialEq, Eq)]
pub struct OvhCredentials {
    pub app_key: String,
    pub app_secret: String,
    pub consumer_key: String,
}

impl fmt::Debug for OvhCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OvhCredentials")
            .field("app_key", &self.app_key)
            .field("app_secret", &"[redacted]")
            .field("consumer_key", &"[redacted]")
            .finish()
    }
}

/// What OVH said about a failed call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OvhErrorDetails {
    /// OVH's `message` (scrubbed), or our own description.
    pub message: String,
    /// OVH's `errorCode` (`INVALID_SIGNATURE`, `NOT_GRANTED_CALL`, …).
    pub error_code: Option<String>,
    /// OVH's `class` (`Client::BadRequest`, …).
    pub class: Option<String>,
    /// HTTP status, when there was an answer.
    pub http_status: Option<u16>,
    /// `X-Ovh-Queryid`, to quote to OVH support.
    pub query_id: Option<String>,
}

impl OvhErrorDetails {
    fn msg(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::default()
        }
    }
}

impl fmt::Display for OvhErrorDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        let mut extra = Vec::new();
        if let Some(c) = &self.error_code {
            extra.push(format!("errorCode {c}"));
        }
        if let Some(c) = &self.class {
            extra.push(format!("class {c}"));
        }
        if let Some(s) = self.http_status {
            extra.push(format!("HTTP {s}"));
        }
        if let Some(q) = &self.query_id {
            extra.push(format!("query id {q}"));
        }
        if !extra.is_empty() {
            write!(f, " ({})", extra.join(", "))?;
        }
        Ok(())
    }
}

/// An OVH call failed; the variant says what the caller should do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OvhError {
    /// Network error, timeout, 5xx, 429: retry later (for a job POST, check by tag first).
    #[error("OVH temporarily unavailable: {0}")]
    Transient(OvhErrorDetails),
    /// Credentials, rights, service name, sender, credits: no retry until the configuration
    /// changes.
    #[error("OVH configuration error: {0}")]
    Config(OvhErrorDetails),
    /// OVH refused this message (invalid request or receivers): permanent for this message.
    #[error("OVH rejected the request: {0}")]
    Rejected(OvhErrorDetails),
    /// Still an invalid signature after refreshing the time delta and retrying: almost
    /// certainly a wrong application secret (counts as a configuration error).
    #[error("OVH says the signature is invalid (wrong application secret?): {0}")]
    InvalidSignature(OvhErrorDetails),
    /// An answer we cannot read.
    #[error("unexpected answer from OVH: {0}")]
    Protocol(OvhErrorDetails),
}

impl OvhError {
    pub fn details(&self) -> &OvhErrorDetails {
        match self {
            OvhError::Transient(d)
            | OvhError::Config(d)
            | OvhError::Rejected(d)
            | OvhError::InvalidSignature(d)
            | OvhError::Protocol(d) => d,
        }
    }

    /// Worth retrying later.
    pub fn is_transient(&self) -> bool {
        matches!(self, OvhError::Transient(_))
    }

    /// Needs an operator to fix the configuration (includes a persistent invalid signature).
    pub fn is_config(&self) -> bool {
        matches!(self, OvhError::Config(_) | OvhError::InvalidSignature(_))
    }

    pub fn http_status(&self) -> Option<u16> {
        self.details().http_status
    }
}

/// Priority of an SMS job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SmsPriority {
    High,
    Medium,
    Low,
    VeryLow,
}

/// Body of `POST /sms/{service}/jobs`. `Debug` masks the receivers.
#[derive(Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SmsJobRequest {
    pub message: String,
    pub receivers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_stop_clause: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<SmsPriority>,
    /// Minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity_period: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

impl fmt::Debug for SmsJobRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked: Vec<String> = self.receivers.iter().map(|r| phone::mask(r)).collect();
        f.debug_struct("SmsJobRequest")
            .field("message_len", &self.message.chars().count())
            .field("receivers", &masked)
            .field("sender", &self.sender)
            .field("no_stop_clause", &self.no_stop_clause)
            .field("priority", &self.priority)
            .field("validity_period", &self.validity_period)
            .field("tag", &self.tag)
            .finish()
    }
}

/// Answer of `POST /sms/{service}/jobs`. `Debug` masks the receivers.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SmsJobResult {
    pub ids: Vec<u64>,
    pub valid_receivers: Vec<String>,
    pub invalid_receivers: Vec<String>,
    pub total_credits_removed: f64,
}

impl fmt::Debug for SmsJobResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsJobResult")
            .field("ids", &self.ids)
            .field("valid_receivers", &mask_all(&self.valid_receivers))
            .field("invalid_receivers", &mask_all(&self.invalid_receivers))
            .field("total_credits_removed", &self.total_credits_removed)
            .finish()
    }
}

/// `GET /sms/{service}` (the fields we use).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SmsAccount {
    pub credits_left: f64,
    pub status: Option<String>,
}

/// `GET /sms/{service}/jobs/{id}` (the fields we use). `Debug` masks the receiver.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SmsJob {
    pub id: u64,
    pub tag: Option<String>,
    pub sender: Option<String>,
    pub receiver: Option<String>,
    pub creation_datetime: Option<String>,
    pub credits: Option<f64>,
}

impl fmt::Debug for SmsJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsJob")
            .field("id", &self.id)
            .field("tag", &self.tag)
            .field("sender", &self.sender)
            .field("receiver", &self.receiver.as_deref().map(phone::mask))
            .field("creation_datetime", &self.creation_datetime)
            .field("credits", &self.credits)
            .finish()
    }
}

fn mask_all(v: &[String]) -> Vec<String> {
    v.iter().map(|r| phone::mask(r)).collect()
}

const DELTA_UNKNOWN: i64 = i64::MIN;

struct Inner {
    base: String,
    creds: OvhCredentials,
    http: reqwest::Client,
    clock: Clock,
    delta: AtomicI64,
}

/// OVH API client. Cheap to clone.
#[derive(Clone)]
pub struct OvhClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for OvhClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OvhClient")
            .field("base", &self.inner.base)
            .field("creds", &self.inner.creds)
            .field("time_delta", &self.time_delta())
            .finish()
    }
}

fn system_clock() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl OvhClient {
    /// `endpoint`: an endpoint name or a base URL (see [`endpoint_base`]); `timeout`: per call.
    pub fn new(endpoint: &str, creds: OvhCredentials, timeout: Duration) -> Result<Self, OvhError> {
        Self::with_clock(endpoint, creds, timeout, Arc::new(system_clock))
    }

    /// Like [`OvhClient::new`] with a given local clock (unix seconds).
    pub fn with_clock(
        endpoint: &str,
        creds: OvhCredentials,
        timeout: Duration,
        clock: Clock,
    ) -> Result<Self, OvhError> {
        let base = endpoint_base(endpoint)?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| OvhError::Config(OvhErrorDetails::msg(format!("TLS setup: {e}"))))?
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .retry(reqwest::retry::never())
            .user_agent(concat!("selfie-kiosk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                OvhError::Config(OvhErrorDetails::msg(format!("HTTP client setup: {e}")))
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                base,
                creds,
                http,
                clock,
                delta: AtomicI64::new(DELTA_UNKNOWN),
            }),
        })
    }

    /// The API base URL (`https://eu.api.ovh.com/1.0`).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The current delta (OVH − local, seconds), if fetched.
    pub fn time_delta(&self) -> Option<i64> {
        match self.inner.delta.load(Ordering::Relaxed) {
            DELTA_UNKNOWN => None,
            d => Some(d),
        }
    }

    /// Forget the time delta: the next signed call fetches `/auth/time` again. Call it when
    /// connectivity returns (the kiosk clock may have been set meanwhile).
    pub fn invalidate_time_delta(&self) {
        self.inner.delta.store(DELTA_UNKNOWN, Ordering::Relaxed);
    }

    /// `GET /auth/time` (unsigned) and stores the delta.
    pub async fn refresh_time_delta(&self) -> Result<i64, OvhError> {
        let url = format!("{}/auth/time", self.inner.base);
        let resp = self
            .inner
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| self.network_error(&e))?;
        let (status, query_id, body) = self.read(resp).await?;
        if !status.is_success() {
            return Err(self.classify(status, &body, query_id));
        }
        let text = String::from_utf8_lossy(&body);
        let server: i64 = text.trim().parse().map_err(|_| {
            OvhError::Protocol(OvhErrorDetails {
                message: "GET /auth/time did not answer an integer".into(),
                http_status: Some(status.as_u16()),
                query_id,
                ..OvhErrorDetails::default()
            })
        })?;
        let delta = server.saturating_sub((self.inner.clock)());
        let delta = if delta == DELTA_UNKNOWN {
            delta + 1
        } else {
            delta
        };
        self.inner.delta.store(delta, Ordering::Relaxed);
        Ok(delta)
    }

    async fn delta(&self) -> Result<i64, OvhError> {
        match self.time_delta() {
            Some(d) => Ok(d),
            None => self.refresh_time_delta().await,
        }
    }

    /// Sends one SMS job. A 200 that accepted no receiver is [`OvhError::Rejected`].
    pub async fn send_sms(
        &self,
        service: &str,
        job: &SmsJobRequest,
    ) -> Result<SmsJobResult, OvhError> {
        let body = serde_json::to_vec(job).map_err(|e| {
            OvhError::Protocol(OvhErrorDetails::msg(format!("cannot encode the job: {e}")))
        })?;
        let path = format!("/sms/{}/jobs", enc(service));
        let (result, query_id): (SmsJobResult, _) =
            self.call_json(Method::POST, &path, Some(body)).await?;
        if result.valid_receivers.is_empty() {
            let invalid = mask_all(&result.invalid_receivers).join(", ");
            return Err(OvhError::Rejected(OvhErrorDetails {
                message: format!("OVH accepted no receiver (invalid receivers: [{invalid}])"),
                http_status: Some(200),
                query_id,
                ..OvhErrorDetails::default()
            }));
        }
        Ok(result)
    }

    /// `GET /sms/{service}`.
    pub async fn sms_account(&self, service: &str) -> Result<SmsAccount, OvhError> {
        let path = format!("/sms/{}", enc(service));
        Ok(self.call_json(Method::GET, &path, None).await?.0)
    }

    /// `GET /sms/{service}/jobs`: ids of the jobs not sent yet.
    pub async fn pending_job_ids(&self, service: &str) -> Result<Vec<u64>, OvhError> {
        let path = format!("/sms/{}/jobs", enc(service));
        Ok(self.call_json(Method::GET, &path, None).await?.0)
    }

    /// `GET /sms/{service}/outgoing?tag=…`: ids of the sent messages with this tag.
    pub async fn outgoing_ids_by_tag(
        &self,
        service: &str,
        tag: &str,
    ) -> Result<Vec<u64>, OvhError> {
        let path = format!("/sms/{}/outgoing?tag={}", enc(service), enc(tag));
        Ok(self.call_json(Method::GET, &path, None).await?.0)
    }

    /// `GET /sms/{service}/jobs/{id}`; `None` when the job is no longer pending (404 on the
    /// job, not on the service).
    pub async fn job(&self, service: &str, id: u64) -> Result<Option<SmsJob>, OvhError> {
        let path = format!("/sms/{}/jobs/{id}", enc(service));
        match self.call_json(Method::GET, &path, None).await {
            Ok((job, _)) => Ok(Some(job)),
            Err(OvhError::Config(d))
                if d.http_status == Some(404)
                    && !d.message.to_ascii_lowercase().contains("service") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The tag of a pending job (`Ok(None)` when gone or untagged).
    pub async fn job_tag(&self, service: &str, id: u64) -> Result<Option<String>, OvhError> {
        Ok(self.job(service, id).await?.and_then(|j| j.tag))
    }

    /// `GET /sms/{service}/senders`: registered senders (a cheap credential check).
    pub async fn senders(&self, service: &str) -> Result<Vec<String>, OvhError> {
        let path = format!("/sms/{}/senders", enc(service));
        Ok(self.call_json(Method::GET, &path, None).await?.0)
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(T, Option<String>), OvhError> {
        let (status, query_id, bytes) = self.signed(method, path, body.map(Bytes::from)).await?;
        let value = serde_json::from_slice(&bytes).map_err(|e| {
            OvhError::Protocol(OvhErrorDetails {
                message: format!("cannot read OVH's answer: {e}"),
                http_status: Some(status.as_u16()),
                query_id: query_id.clone(),
                ..OvhErrorDetails::default()
            })
        })?;
        Ok((value, query_id))
    }

    /// A signed call, retried once after `INVALID_SIGNATURE` with a fresh time delta.
    async fn signed(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Option<String>, Bytes), OvhError> {
        let url = reqwest::Url::parse(&format!("{}{}", self.inner.base, path))
            .map_err(|e| OvhError::Config(OvhErrorDetails::msg(format!("invalid OVH URL: {e}"))))?;
        let delta = self.delta().await?;
        match self.attempt(&method, &url, body.clone(), delta).await {
            Err(OvhError::InvalidSignature(_)) => {
                self.invalidate_time_delta();
                let delta = self.refresh_time_delta().await?;
                self.attempt(&method, &url, body, delta).await
            }
            other => other,
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &reqwest::Url,
        body: Option<Bytes>,
        delta: i64,
    ) -> Result<(StatusCode, Option<String>, Bytes), OvhError> {
        let c = &self.inner.creds;
        let timestamp = (self.inner.clock)().saturating_add(delta);
        let body_bytes: &[u8] = body.as_deref().unwrap_or(b"");
        let sig = signature(
            &c.app_secret,
            &c.consumer_key,
            method.as_str(),
            url.as_str(),
            body_bytes,
            timestamp,
        );
        let mut req = self
            .inner
            .http
            .request(method.clone(), url.clone())
            .header("X-Ovh-Application", &c.app_key)
            .header("X-Ovh-Consumer", &c.consumer_key)
            .header("X-Ovh-Timestamp", timestamp.to_string())
            .header("X-Ovh-Signature", sig);
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b);
        }
        let resp = req.send().await.map_err(|e| self.network_error(&e))?;
        let (status, query_id, bytes) = self.read(resp).await?;
        if status.is_success() {
            Ok((status, query_id, bytes))
        } else {
            Err(self.classify(status, &bytes, query_id))
        }
    }

    async fn read(
        &self,
        resp: reqwest::Response,
    ) -> Result<(StatusCode, Option<String>, Bytes), OvhError> {
        let status = resp.status();
        let query_id = resp
            .headers()
            .get("X-Ovh-Queryid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.bytes().await.map_err(|e| {
            // The connection broke while the answer was coming: OVH may well have acted on
            // the request, so this is never permanent (the caller's tag lookup decides).
            let mut d = self.network_error(&e).details().clone();
            d.http_status = Some(status.as_u16());
            d.query_id = query_id.clone();
            OvhError::Transient(d)
        })?;
        Ok((status, query_id, bytes))
    }

    fn network_error(&self, e: &reqwest::Error) -> OvhError {
        let kind = if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "cannot connect"
        } else if e.is_decode() {
            "cannot decode the answer"
        } else {
            "network error"
        };
        // reqwest's Display may include the URL (no secrets in it, but tags and service
        // names); keep the chain without the URL.
        let mut text = kind.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        let details = OvhErrorDetails::msg(self.scrub(&text));
        if e.is_decode() {
            OvhError::Protocol(details)
        } else {
            OvhError::Transient(details)
        }
    }

    fn classify(&self, status: StatusCode, body: &[u8], query_id: Option<String>) -> OvhError {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase", default)]
        struct ApiError {
            message: Option<String>,
            error_code: Option<String>,
            class: Option<String>,
        }
        let parsed: ApiError = serde_json::from_slice(body).unwrap_or_default();
        let message = parsed.message.map(|m| self.scrub(&m)).unwrap_or_else(|| {
            format!(
                "HTTP {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
            .trim_end()
            .to_string()
        });
        let code = parsed.error_code.clone().unwrap_or_default();
        let lower = message.to_ascii_lowercase();
        let details = OvhErrorDetails {
            message,
            error_code: parsed.error_code,
            class: parsed.class,
            http_status: Some(status.as_u16()),
            query_id,
        };
        if code == "INVALID_SIGNATURE"
            || code == "QUERY_TIME_OUT"
            || lower.contains("invalid signature")
            || lower.contains("out of time")
        {
            return OvhError::InvalidSignature(details);
        }
        if matches!(
            code.as_str(),
            "INVALID_KEY"
                | "INVALID_CREDENTIAL"
                | "NOT_GRANTED_CALL"
                | "NOT_CREDENTIAL"
                | "FORBIDDEN"
        ) {
            return OvhError::Config(details);
        }
        match status.as_u16() {
            401 | 403 | 404 => OvhError::Config(details),
            408 | 429 | 500..=599 => OvhError::Transient(details),
            400..=499 => {
                // Unknown sender ("does not exists") or no credits left: the operator must act.
                if lower.contains("does not exist") || lower.contains("credit") {
                    OvhError::Config(details)
                } else {
                    OvhError::Rejected(details)
                }
            }
            _ => OvhError::Protocol(details),
        }
    }

    /// Removes secrets and full phone numbers from text that goes into an error.
    fn scrub(&self, text: &str) -> String {
        let c = &self.inner.creds;
        let mut out = text.to_string();
        for secret in [&c.app_secret, &c.consumer_key] {
            if !secret.is_empty() {
                out = out.replace(secret.as_str(), "[redacted]");
            }
        }
        mask_digit_runs(&out)
    }
}

/// Masks every run of 7 or more digits (optionally after `+`), i.e. anything that may be a
/// phone number. Job ids are shorter than that in practice; masking one is harmless.
fn mask_digit_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        let plus = chars[i] == '+';
        let mut j = if plus { i + 1 } else { i };
        while j < chars.len() && chars[j].is_ascii_digit() {
            j += 1;
        }
        let digits = j - if plus { i + 1 } else { i };
        if digits >= 7 {
            let run: String = chars[start..j].iter().collect();
            if plus {
                out.push_str(&phone::mask(&run));
            } else {
                out.push_str(&"*".repeat(digits - 2));
                out.extend(&chars[j - 2..j]);
            }
            i = j;
        } else if digits > 0 {
            out.extend(&chars[start..j]);
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Percent-encodes a path segment or query value (everything but RFC 3986 unreserved).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk";
    const CK: &str = "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY";
    const TS: i64 = 1457018875;
    const URL: &str = "https://eu.api.ovh.com/1.0/auth";

    #[test]
    fn signature_known_answers() {
        let body = br#"{"a":"b","c":"d"}"#;
        assert_eq!(
            signature(SECRET, CK, "GET", URL, b"", TS),
            "$1$e9556054b6309771395efa467c22e627407461ad"
        );
        assert_eq!(
            signature(SECRET, CK, "POST", URL, body, TS),
            "$1$ec2fb5c7a81f64723c77d2e5b609ae6f58a84fc1"
        );
        assert_eq!(
            signature(SECRET, CK, "PUT", URL, body, TS),
            "$1$8a75a9e7c8e7296c9dbeda6a2a735eb6bd58ec4b"
        );
        assert_eq!(
            signature(SECRET, CK, "delete", URL, b"", TS),
            "$1$a1eecd00b3b02b6cf5708b84b9ff42059a950d85"
        );
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint_base("ovh-eu").ok().as_deref(),
            Some("https://eu.api.ovh.com/1.0")
        );
        assert_eq!(
            endpoint_base("ovh-ca").ok().as_deref(),
            Some("https://ca.api.ovh.com/1.0")
        );
        assert_eq!(
            endpoint_base("ovh-us").ok().as_deref(),
            Some("https://api.us.ovhcloud.com/1.0")
        );
        assert_eq!(
            endpoint_base("soyoustart-eu").ok().as_deref(),
            Some("https://eu.api.soyoustart.com/1.0")
        );
        assert_eq!(
            endpoint_base("http://127.0.0.1:8080/1.0/").ok().as_deref(),
            Some("http://127.0.0.1:8080/1.0")
        );
        let err = endpoint_base("ovh-mars")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("ovh-mars"), "{err}");
        assert!(endpoint_base("ftp://x/1.0").is_err());
        assert!(endpoint_base("https://").is_err());
        assert!(endpoint_base("").is_err());
    }

    #[test]
    fn credentials_debug_redacts() {
        let c = OvhCredentials {
            app_key: "key".into(),
            app_secret: SECRET.into(),
            consumer_key: CK.into(),
        };
        let d = format!("{c:?}");
        assert!(
            d.contains("key") && !d.contains(SECRET) && !d.contains(CK),
            "{d}"
        );
    }

    #[test]
    fn job_body_is_camel_case_and_skips_none() {
        let job = SmsJobRequest {
            message: "hi".into(),
            receivers: vec!["+33612345678".into()],
            sender: Some("Selfie".into()),
            no_stop_clause: Some(true),
            priority: Some(SmsPriority::VeryLow),
            validity_period: None,
            tag: Some("k1-42".into()),
        };
        let s = serde_json::to_string(&job).unwrap_or_default();
        assert_eq!(
            s,
            r#"{"message":"hi","receivers":["+33612345678"],"sender":"Selfie","noStopClause":true,"priority":"veryLow","tag":"k1-42"}"#
        );
        assert!(!format!("{job:?}").contains("612345"));
    }

    fn client() -> OvhClient {
        let c = OvhCredentials {
            app_key: "key".into(),
            app_secret: SECRET.into(),
            consumer_key: CK.into(),
        };
        match OvhClient::new("http://127.0.0.1:9/1.0", c, Duration::from_secs(1)) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn classification() {
        let c = client();
        let err = |status: u16, body: &str| {
            c.classify(
                StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT),
                body.as_bytes(),
                Some("EU.q1".into()),
            )
        };
        let e = err(
            400,
            r#"{"errorCode":"INVALID_SIGNATURE","httpCode":"400 Bad Request","message":"Invalid signature"}"#,
        );
        assert!(matches!(e, OvhError::InvalidSignature(_)));
        assert_eq!(e.details().query_id.as_deref(), Some("EU.q1"));
        assert_eq!(e.details().error_code.as_deref(), Some("INVALID_SIGNATURE"));
        assert!(err(
            403,
            r#"{"errorCode":"NOT_GRANTED_CALL","message":"This call has not been granted"}"#
        )
        .is_config());
        assert!(err(
            403,
            r#"{"errorCode":"INVALID_CREDENTIAL","message":"This credential is not valid"}"#
        )
        .is_config());
        assert!(err(
            403,
            r#"{"errorCode":"INVALID_KEY","message":"Invalid application key"}"#
        )
        .is_config());
        assert!(err(404, r#"{"message":"This service does not exist"}"#).is_config());
        assert!(err(
            400,
            r#"{"message":"Sms sender X does not exists. Please create it first"}"#
        )
        .is_config());
        assert!(matches!(
            err(400, r#"{"message":"Invalid receivers"}"#),
            OvhError::Rejected(_)
        ));
        assert!(err(500, "<html>oops</html>").is_transient());
        assert!(err(503, "").is_transient());
        assert!(err(429, "{}").is_transient());
        let e = err(
            400,
            &format!(r#"{{"message":"bad receiver +33612345678 for {CK}"}}"#),
        );
        let text = e.to_string();
        assert!(!text.contains("612345") && !text.contains(CK), "{text}");
        assert!(text.contains("+33*******78"), "{text}");
        assert!(
            text.contains("HTTP 400") && text.contains("EU.q1"),
            "{text}"
        );
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(enc("kiosk-1_a.b~c"), "kiosk-1_a.b~c");
        assert_eq!(enc("a b/c?d&e=f+é"), "a%20b%2Fc%3Fd%26e%3Df%2B%C3%A9");
    }

    #[test]
    fn digit_runs_are_masked() {
        assert_eq!(
            mask_digit_runs("id 27814656 to 0612345678"),
            "id ******56 to ********78"
        );
        assert_eq!(
            mask_digit_runs("code 400, +33612345678."),
            "code 400, +33*******78."
        );
    }

    #[tokio::test]
    async fn unreachable_server_is_transient() {
        let c = client();
        let e = c.sms_account("sms-x").await.err();
        assert!(e.as_ref().is_some_and(OvhError::is_transient), "{e:?}");
    }
}
