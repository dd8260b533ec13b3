//! Network plumbing every client of the daemon shares, so each thing is done one way: the
//! rustls configuration (ring, the compiled-in Mozilla roots), the reqwest client builder
//! and the way a failed request is described to people ([`http`]), the PostgreSQL connect
//! with its `sslmode` handling ([`pg`]), percent-encoding ([`percent`]), and the
//! current-thread runtime the one-shot commands (`diag`, `fleet`, `sms-test`) run on.
//!
//! TLS trusts `webpki-roots` rather than the system store: a kiosk image carries no CA
//! bundle, and every remote (WebDAV, S3, OVH, PostgreSQL) is then verified the same way.

pub mod http;
pub mod percent;
pub mod pg;

use std::future::Future;
use std::sync::Arc;

/// Setting up a client failed (before any request was made).
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The one rustls client configuration: ring, safe protocol versions, Mozilla's roots.
pub fn tls_config() -> Result<rustls::ClientConfig, NetError> {
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
    .with_no_client_auth())
}

/// Runs `f` to completion on a new current-thread runtime, for the one-shot commands.
/// Installs the crypto provider first (reqwest and tokio-postgres look it up).
pub fn block_on<F: Future>(f: F) -> std::io::Result<F::Output> {
    crate::install_crypto();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(f))
}
