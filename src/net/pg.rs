//! The one PostgreSQL connect, for the sync's remote database and `fleet`: the URL parsed
//! once, TLS through rustls unless `sslmode=disable` (so `prefer`, the default, tries TLS
//! first and `require` insists), a bounded wait, and errors worded without the URL.

use std::str::FromStr;
use std::time::Duration;

/// Connecting failed; the text never holds the connection string.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("REMOTE_DATABASE_URL is not a valid postgresql:// URL")]
    BadUrl,
    #[error("connection timed out")]
    Timeout,
    #[error("{0}")]
    Db(String),
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        PgError::Db(describe(&e))
    }
}

/// The connection settings of `url`: `connect_timeout` unless the URL sets one, TCP
/// keepalives (a dead VPS is noticed), and the application name shown in
/// `pg_stat_activity`.
pub fn config(
    url: &str,
    application_name: &str,
    connect_timeout: Duration,
) -> Result<tokio_postgres::Config, PgError> {
    let mut config = tokio_postgres::Config::from_str(url).map_err(|_| PgError::BadUrl)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(connect_timeout);
    }
    config.keepalives_idle(Duration::from_secs(30));
    config.application_name(application_name);
    Ok(config)
}

/// Connects within `deadline`, with TLS unless `sslmode=disable`; the connection task is
/// spawned and ends when the client is dropped or the connection breaks.
pub async fn connect(
    config: &tokio_postgres::Config,
    deadline: Duration,
) -> Result<tokio_postgres::Client, PgError> {
    if matches!(
        config.get_ssl_mode(),
        tokio_postgres::config::SslMode::Disable
    ) {
        finish(deadline, config.connect(tokio_postgres::NoTls)).await
    } else {
        let tls = super::tls_config().map_err(|e| PgError::Db(e.to_string()))?;
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
        finish(deadline, config.connect(tls)).await
    }
}

async fn finish<S, T>(
    deadline: Duration,
    connecting: impl std::future::Future<
        Output = Result<
            (tokio_postgres::Client, tokio_postgres::Connection<S, T>),
            tokio_postgres::Error,
        >,
    >,
) -> Result<tokio_postgres::Client, PgError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (client, conn) = tokio::time::timeout(deadline, connecting)
        .await
        .map_err(|_| PgError::Timeout)??;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("remote database connection closed: {e}");
        }
    });
    Ok(client)
}

/// A PostgreSQL error for people: the server's message and SQLSTATE, or the client error
/// and its cause; at most 300 characters (tokio-postgres never prints the URL).
pub fn describe(e: &tokio_postgres::Error) -> String {
    let msg = if let Some(db) = e.as_db_error() {
        format!("{} ({})", db.message(), db.code().code())
    } else if let Some(src) = std::error::Error::source(e) {
        format!("{e}: {src}")
    } else {
        e.to_string()
    };
    msg.chars().take(300).collect()
}
