//! Logging: journald when the process runs under it, stderr otherwise. sled's own
//! logging is capped at `warn` (it is very chatty at trace level). On stderr, colour only
//! for a person at a terminal: none when stderr is a file or a pipe (a log full of escape
//! codes is unreadable) or when `NO_COLOR` is set (<https://no-color.org>).

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

/// Set once [`init`] has sent the logs to journald (the start banner is then one
/// structured event rather than plain lines on stderr).
static TO_JOURNALD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the logs go to journald (see [`init`]).
pub fn to_journald() -> bool {
    TO_JOURNALD.load(std::sync::atomic::Ordering::Relaxed)
}

/// Colour on stderr: only at a terminal, and not when `NO_COLOR` is set to anything.
pub fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    colour_allowed(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

fn colour_allowed(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    // no-color.org: "when present and not an empty string".
    terminal && no_color.is_none_or(|v| v.is_empty())
}

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
    let registry = tracing_subscriber::registry()
        .with(filter_layer)
        .with(recent_layer());
    #[cfg(feature = "journald")]
    if under_journald() {
        match tracing_journald::layer() {
            Ok(j) => {
                let _ = registry
                    .with(j.with_syslog_identifier("selfie-kiosk".into()))
                    .try_init();
                TO_JOURNALD.store(true, std::sync::atomic::Ordering::Relaxed);
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
                .with_ansi(colour_on_stderr())
                .with_target(false),
        )
        .try_init();
    Some(handle)
}

/// Applies a new filter, e.g. from `/admin/config` or SIGHUP.
pub fn set_filter(handle: &ReloadHandle, spec: &str) -> Result<(), String> {
    let f = EnvFilter::try_new(format!(
        "{spec},sled=warn,hyper=warn,reqwest=warn,tokio_postgres=warn"
    ))
    .map_err(|e| e.to_string())?;
    handle.reload(f).map_err(|e| e.to_string())
}

/// Formatted lines kept in memory for diagnostics (`GET /admin/diag`, `selfie-kiosk diag`).
pub const RECENT_LOG_LINES: usize = 2000;
/// Longer lines are cut (a log line is never this long; a runaway one must not eat memory).
const RECENT_LOG_LINE_MAX: usize = 4096;

static RECENT: std::sync::Mutex<std::collections::VecDeque<String>> =
    std::sync::Mutex::new(std::collections::VecDeque::new());

/// The last [`RECENT_LOG_LINES`] log lines of this process, oldest first. Logs never hold
/// secrets, but callers that ship them elsewhere still scrub them (see `crate::diag`).
pub fn recent_logs() -> Vec<String> {
    RECENT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect()
}

fn recent_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(RecentLogs)
        .with_ansi(false)
}

/// A `MakeWriter` whose writers push each formatted event into [`RECENT`] when dropped
/// (the fmt layer makes one writer per event).
#[derive(Clone, Copy)]
struct RecentLogs;

struct RecentWriter(Vec<u8>);

impl std::io::Write for RecentWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() < RECENT_LOG_LINE_MAX {
            self.0.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RecentWriter {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let mut ring = RECENT.lock().unwrap_or_else(|p| p.into_inner());
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if ring.len() >= RECENT_LOG_LINES {
                ring.pop_front();
            }
            ring.push_back(line.chars().take(RECENT_LOG_LINE_MAX).collect());
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RecentLogs {
    type Writer = RecentWriter;
    fn make_writer(&'a self) -> Self::Writer {
        RecentWriter(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::colour_allowed;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_at_a_terminal_without_no_color() {
        assert!(colour_allowed(true, None));
        assert!(colour_allowed(true, Some(OsStr::new(""))));
        assert!(!colour_allowed(true, Some(OsStr::new("1"))));
        assert!(!colour_allowed(false, None));
        assert!(!colour_allowed(false, Some(OsStr::new("1"))));
    }
}
