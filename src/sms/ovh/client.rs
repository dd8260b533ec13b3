//! The OVH API client: signed calls with one retry after an invalid signature, the SMS
//! routes the kiosk uses, and network failures mapped to [`OvhError`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::error::{classify, scrub, OvhError, OvhErrorDetails};
use super::time::{local_seconds, TimeDelta};
use super::types::{mask_all, OvhCredentials, SmsAccount, SmsJob, SmsJobRequest, SmsJobResult};
use super::{endpoint_base, signature};
use crate::clock::{Clock, SystemClock};
use crate::net::{self, percent};

struct Inner {
    base: String,
    creds: OvhCredentials,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    delta: TimeDelta,
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

impl OvhClient {
    /// `endpoint`: an endpoint name or a base URL (see [`endpoint_base`]); `timeout`: per call.
    pub fn new(endpoint: &str, creds: OvhCredentials, timeout: Duration) -> Result<Self, OvhError> {
        Self::with_clock(endpoint, creds, timeout, Arc::new(SystemClock))
    }

    /// Like [`OvhClient::new`] with a given local clock.
    pub fn with_clock(
        endpoint: &str,
        creds: OvhCredentials,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, OvhError> {
        let base = endpoint_base(endpoint)?;
        let setup = |e: String| OvhError::Config(OvhErrorDetails::msg(e));
        let http = net::http::client_builder()
            .map_err(|e| setup(e.to_string()))?
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .retry(reqwest::retry::never())
            .build()
            .map_err(|e| setup(format!("HTTP client setup: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                base,
                creds,
                http,
                clock,
                delta: TimeDelta::unknown(),
            }),
        })
    }

    /// The API base URL (`https://eu.api.ovh.com/1.0`).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The current delta (OVH − local, seconds), if fetched.
    pub fn time_delta(&self) -> Option<i64> {
        self.inner.delta.get()
    }

    /// Forget the time delta: the next signed call fetches `/auth/time` again. Call it when
    /// connectivity returns (the kiosk clock may have been set meanwhile).
    pub fn invalidate_time_delta(&self) {
        self.inner.delta.forget();
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
            .map_err(|e| self.network_error(e))?;
        let (status, query_id, body) = self.read(resp).await?;
        if !status.is_success() {
            return Err(classify(&self.inner.creds, status, &body, query_id));
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
        let local = local_seconds(self.inner.clock.as_ref());
        Ok(self.inner.delta.set(server, local))
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
        let timestamp = local_seconds(self.inner.clock.as_ref()).saturating_add(delta);
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
        let resp = req.send().await.map_err(|e| self.network_error(e))?;
        let (status, query_id, bytes) = self.read(resp).await?;
        if status.is_success() {
            Ok((status, query_id, bytes))
        } else {
            Err(classify(&self.inner.creds, status, &bytes, query_id))
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
            let mut d = self.network_error(e).details().clone();
            d.http_status = Some(status.as_u16());
            d.query_id = query_id.clone();
            OvhError::Transient(d)
        })?;
        Ok((status, query_id, bytes))
    }

    /// A request that got no (complete) answer: transient, except an answer that cannot
    /// be decoded. [`net::http::describe`] leaves the URL out (it holds tags and service
    /// names).
    fn network_error(&self, e: reqwest::Error) -> OvhError {
        let decode = e.is_decode();
        let details = OvhErrorDetails::msg(scrub(&self.inner.creds, &net::http::describe(e)));
        if decode {
            OvhError::Protocol(details)
        } else {
            OvhError::Transient(details)
        }
    }
}

/// A path segment or query value, percent-encoded.
fn enc(s: &str) -> String {
    percent::encode(s, percent::COMPONENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unreachable_server_is_transient() {
        let c = client();
        let e = c.sms_account("sms-x").await.err();
        assert!(e.as_ref().is_some_and(OvhError::is_transient), "{e:?}");
    }

    fn client() -> OvhClient {
        let c = OvhCredentials {
            app_key: "key".into(),
            app_secret: "app-secret".into(),
            consumer_key: "consumer-key".into(),
        };
        match OvhClient::new("http://127.0.0.1:9/1.0", c, Duration::from_secs(1)) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }
}
