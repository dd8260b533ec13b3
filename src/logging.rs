//! Logging: journald when the process runs under it, stderr otherwise. sled's own
//! logging is capped at `warn` (it is very chatty at trace level).

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Changes the log filter at run time.
pub type ReloadHandle = reload::Handle<EnvFilter, Registry>;

fn filter(spec: &str) -> EnvFilter {
    EnvFilter::try_new(format!(
        "{spec},sled=warn,hyper=warn,reqwest=warn,tokio_postgres=warn"
    ))
    .unwrap_or_else(|_| EnvFilter::new("info,sled=warn"))
}

/// Whether stderr is connected to the journal (systemd sets `JOURNAL_STREAM`).
fn under_journald() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some()
}

static HANDLE: std::sync::OnceLock<ReloadHandle> = std::sync::OnceLock::new();

/// Changes the process-wide log filter (no-op when logging was not initialised here).
pub fn set_level(spec: &str) -> Result<(), String> {
    match HANDLE.get() {
        Some(h) => set_filter(h, spec),
        None => Ok(()),
    }
}

/// Installs the global subscriber once; returns a handle to change the level later.
pub fn init(spec: &str) -> Option<ReloadHandle> {
    let (filter_layer, handle) = reload::Layer::new(filter(spec));
    let _ = HANDLE.set(handle.clone());
    let registry = tracing_subscriber::registry().with(filter_layer);
    #[cfg(feature = "journald")]
    if under_journald() {
        match tracing_journald::layer() {
            Ok(j) => {
                let _ = registry
                    .with(j.with_syslog_identifier("selfie-kiosk".into()))
                    .try_init();
                return Some(handle);
            }
            Err(e) => eprintln!("selfie-kiosk: journald unavailable ({e}); logging to stderr"),
        }
    }
    let _ = under_journald;
    let _ = registry
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false),
        )
        .try_init();
    Some(handle)
}

/// Applies a new filter, e.g. from `/admin/config` or SIGHUP.
pub fn set_filter(handle: &ReloadHandle, spec: &str) -> Result<(), String> {
    let f = EnvFilter::try_new(format!("{spec},sled=warn,hyper=warn,reqwest=warn,tokio_postgres=warn"))
        .map_err(|e| e.to_string())?;
    handle.reload(f).map_err(|e| e.to_string())
}
