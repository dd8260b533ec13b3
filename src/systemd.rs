//! systemd integration without libsystemd: `sd_notify` datagrams to `$NOTIFY_SOCKET`.
//!
//! READY=1 is sent once the API socket is bound, STOPPING=1 when the drain starts, and
//! WATCHDOG=1 every half `WatchdogSec` — but only while the job runner keeps reporting in
//! to the workers registry ([`WatchdogWorker`]), so a wedged daemon is restarted by systemd.

use std::time::Duration;

use crate::workers::{Next, Worker, Workers};

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

/// Pings the watchdog at half its interval while the worker it watches (the job runner)
/// keeps reporting in: a wedged runner stops the pings and systemd restarts the daemon.
/// Done at once when systemd asked for no watchdog.
pub struct WatchdogWorker {
    workers: Workers,
    watched: &'static str,
    interval: Option<Duration>,
    first: bool,
}

impl WatchdogWorker {
    pub fn new(workers: Workers, watched: &'static str) -> WatchdogWorker {
        WatchdogWorker {
            workers,
            watched,
            interval: watchdog_interval(),
            first: true,
        }
    }
}

impl Worker for WatchdogWorker {
    fn name(&self) -> &'static str {
        "watchdog"
    }

    async fn work(&mut self) -> Result<Next, String> {
        let Some(interval) = self.interval else {
            return Ok(Next::Done);
        };
        let every = interval / 2;
        // The first ping comes half an interval after start, after READY=1.
        if std::mem::take(&mut self.first) {
            return Ok(Next::Idle(every));
        }
        let age = self.workers.alive_age_ms(self.watched);
        if should_ping(age, interval) {
            notify("WATCHDOG=1");
        } else {
            tracing::error!(
                worker = self.watched,
                age_ms = age,
                "core loop stalled: not pinging the watchdog"
            );
        }
        Ok(Next::Idle(every))
    }
}

/// Whether to ping: the watched worker showed life within one watchdog interval. A worker
/// that was never registered counts as stalled.
fn should_ping(alive_age_ms: Option<i64>, interval: Duration) -> bool {
    alive_age_ms.is_some_and(|age| age <= interval.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::clock::ManualClock;

    /// The watchdog follows the job runner's signs of life: a runner that stops reporting
    /// for longer than the interval stops the pings, and one that reports again resumes them.
    #[test]
    fn pings_only_while_the_watched_worker_reports_in() {
        let clock = ManualClock::new(1_800_000_000_000);
        let workers = Workers::new(clock.clone());
        let interval = Duration::from_secs(2);
        assert!(
            !should_ping(workers.alive_age_ms("jobs"), interval),
            "never registered"
        );
        // Registered through the supervisor's registry, as `workers::spawn` does.
        let alive = workers.alive("jobs");
        workers.register_for_test("jobs");
        assert!(should_ping(workers.alive_age_ms("jobs"), interval));
        clock.advance(2_500); // stuck for longer than the interval
        assert!(!should_ping(workers.alive_age_ms("jobs"), interval));
        alive.ping();
        assert!(should_ping(workers.alive_age_ms("jobs"), interval));
    }
}
