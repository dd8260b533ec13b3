//! Time as an input: code that schedules or expires things reads a [`Clock`] it is given,
//! so tests can move time without sleeping.
//!
//! Many kiosk boards have no real-time clock: until NTP answers, the system clock may say
//! 1970. A wall-clock reading before [`BUILD_EPOCH_MS`] is therefore "not sane"; captures
//! taken then are flagged with the boot id and a monotonic reading, so their real time can
//! be recomputed once the clock is set (see `cleanup::fix_clocks`).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// No correct clock reads earlier than this (2026-11-01T00:00:00Z, before this build).
pub const BUILD_EPOCH_MS: i64 = 1_793_491_200_000;
/// [`BUILD_EPOCH_MS`] in seconds.
pub const BUILD_EPOCH_S: i64 = BUILD_EPOCH_MS / 1000;

/// `YYYYMMDD'T'HHMMSS'Z'` (ISO 8601 basic format, UTC) of a wall-clock reading: what S3
/// signs and what names a diagnostics bundle. `None` only for a reading past year 9999.
pub fn format_basic_utc(ms: i64) -> Option<String> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()?
        .format(fmt)
        .ok()
}

/// Whether a wall-clock reading can be trusted.
pub fn is_sane(ms: i64) -> bool {
    ms >= BUILD_EPOCH_MS
}

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Wall-clock milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// Milliseconds on a clock that never jumps and counts suspend (CLOCK_BOOTTIME),
    /// meaningful only within one boot.
    fn monotonic_ms(&self) -> i64 {
        rustix::time::clock_gettime_dynamic(rustix::time::DynamicClockId::Boottime)
            .map(|t| t.tv_sec * 1000 + t.tv_nsec / 1_000_000)
            .unwrap_or_else(|_| {
                let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
                t.tv_sec * 1000 + t.tv_nsec / 1_000_000
            })
    }
    /// Identifies this boot (the kernel's random boot id).
    fn boot_id(&self) -> String {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        system_now_ms()
    }
}

/// Milliseconds since the Unix epoch from the system's wall clock. The one place the
/// daemon reads it (`clippy.toml` keeps `SystemTime::now` and friends out of the rest):
/// code that schedules or expires things reads the [`Clock`] it is given instead; this is
/// for what has no `App` at hand (command-line tools, file names).
#[allow(clippy::disallowed_methods)]
pub fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Measures how long something took (latencies, uptime, idle times), on the monotonic
/// clock: the one place `Instant::now` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    #[allow(clippy::disallowed_methods)]
    pub fn start() -> Stopwatch {
        Stopwatch(std::time::Instant::now())
    }

    pub fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}

/// A clock tests set and advance by hand (wall clock, monotonic clock and boot id).
#[derive(Debug)]
pub struct ManualClock {
    wall: AtomicI64,
    mono: AtomicI64,
    boot: Mutex<String>,
}

impl ManualClock {
    pub fn new(ms: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            wall: AtomicI64::new(ms),
            mono: AtomicI64::new(1_000),
            boot: Mutex::new("boot-1".into()),
        })
    }
    /// Sets the wall clock (a jump, as when NTP answers); the monotonic clock is unmoved.
    pub fn set(&self, ms: i64) {
        self.wall.store(ms, Ordering::SeqCst);
    }
    /// Time passes: both clocks move.
    pub fn advance(&self, ms: i64) {
        self.wall.fetch_add(ms, Ordering::SeqCst);
        self.mono.fetch_add(ms, Ordering::SeqCst);
    }
    /// A reboot: new boot id, monotonic clock restarts.
    pub fn reboot(&self, boot_id: &str) {
        *self.boot.lock().unwrap_or_else(|p| p.into_inner()) = boot_id.to_string();
        self.mono.store(1_000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.wall.load(Ordering::SeqCst)
    }
    fn monotonic_ms(&self) -> i64 {
        self.mono.load(Ordering::SeqCst)
    }
    fn boot_id(&self) -> String {
        self.boot.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A wall clock that follows tokio's (pausable) time from a fixed start: with
/// `tokio::time::pause()`, days pass in microseconds and timers fire in order.
#[derive(Debug)]
pub struct TokioClock {
    base_ms: i64,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// Tokio's clock is the point here: tests pause and advance it.
    #[allow(clippy::disallowed_methods)]
    pub fn new(base_ms: i64) -> Arc<TokioClock> {
        Arc::new(TokioClock {
            base_ms,
            start: tokio::time::Instant::now(),
        })
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> i64 {
        self.base_ms + self.start.elapsed().as_millis() as i64
    }
    fn monotonic_ms(&self) -> i64 {
        self.start.elapsed().as_millis() as i64
    }
    fn boot_id(&self) -> String {
        "tokio-clock".into()
    }
}
