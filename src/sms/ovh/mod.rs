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
//!
//! Seams: `client` makes the calls, `signing` computes the signature, `types` holds
//! the request and answer bodies, `error` classifies OVH's refusals, `time` keeps the
//! delta to OVH's clock.

pub mod client;
pub mod error;
pub mod signing;
mod time;
pub mod types;

pub use client::OvhClient;
pub use error::{OvhError, OvhErrorDetails};
pub use signing::signature;
pub use types::{OvhCredentials, SmsAccount, SmsJob, SmsJobRequest, SmsJobResult, SmsPriority};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
