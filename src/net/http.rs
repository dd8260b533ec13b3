//! The reqwest client every HTTP remote starts from, and the one description of a failed
//! request that goes into logs, `/health` and error answers.

use std::time::Duration;

use super::NetError;

/// What the kiosk calls itself on the wire.
pub const USER_AGENT: &str = concat!("selfie-kiosk/", env!("CARGO_PKG_VERSION"));

/// A client builder with the kiosk's TLS ([`super::tls_config`]) and user agent; each
/// caller adds the timeouts, redirect and retry policies its protocol needs.
pub fn client_builder() -> Result<reqwest::ClientBuilder, NetError> {
    crate::install_crypto();
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(super::tls_config()?)
        .user_agent(USER_AGENT))
}

/// [`client_builder`] with the timeouts for moving photos to a file store (WebDAV, S3):
/// a quick connect, a stalled transfer noticed after 30 s, five minutes for a whole file,
/// idle connections dropped before the server does.
pub fn file_store_client_builder() -> Result<reqwest::ClientBuilder, NetError> {
    Ok(client_builder()?
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(300))
        .pool_idle_timeout(Duration::from_secs(30)))
}

/// A failed request for people: what kind of failure, then reqwest's error chain, at most
/// 300 characters. The URL is left out: it may carry tags, service names or ids that
/// have no place in a log line, and the caller knows which remote it called.
pub fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_decode() {
        "cannot decode the answer"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut msg = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_described_without_its_url() {
        let client = client_builder().unwrap().build().unwrap();
        let e = client
            .get("http://127.0.0.1:9/secret-tag-42")
            .send()
            .await
            .unwrap_err();
        let text = describe(e);
        assert!(text.starts_with("cannot connect: "), "{text}");
        assert!(!text.contains("secret-tag-42"), "{text}");
    }
}
