//! systemd integration without libsystemd: `sd_notify` datagrams to `$NOTIFY_SOCKET`.
//!
//! READY=1 is sent once the API socket is bound, STOPPING=1 when the drain starts, and
//! WATCHDOG=1 every half `WatchdogSec` — but only while the job runner's loop keeps
//! reporting in ([`alive`]), so a wedged daemon is restarted by systemd.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

static LAST_ALIVE_MS: AtomicI64 = AtomicI64::new(0);

/// Called by core loops each time round.
pub fn alive() {
    LAST_ALIVE_MS.store(crate::catalog::now_ms(), Ordering::Relaxed);
}

/// Sends one notification; silently nothing when not under systemd.
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return false;
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
    } else {
        sock.send_to(state.as_bytes(), std::path::Path::new(&path))
    };
    sent.is_ok()
}

pub fn notify_ready() {
    alive();
    notify("READY=1\nSTATUS=serving");
}

pub fn notify_stopping() {
    notify("STOPPING=1\nSTATUS=stopping");
}

/// The watchdog interval systemd asked for, if any.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Pings the watchdog at half its interval while the core loops are alive.
pub async fn watchdog_loop(shutdown: CancellationToken) {
    let Some(interval) = watchdog_interval() else {
        return;
    };
    let every = interval / 2;
    let stale_ms = interval.as_millis() as i64;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let age = crate::catalog::now_ms() - LAST_ALIVE_MS.load(Ordering::Relaxed);
        if age <= stale_ms {
            notify("WATCHDOG=1");
        } else {
            tracing::error!(age_ms = age, "core loop stalled: not pinging the watchdog");
        }
    }
}
