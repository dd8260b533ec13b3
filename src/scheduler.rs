//! The scheduler: recurring tasks on one timer loop — "sleep until the next deadline",
//! with deadlines computed from the injected [`Clock`](crate::clock::Clock) and persisted last runs, so a restart
//! loses no timer and a run missed while the kiosk was off happens at the next start.
//! (One-off work — uploads, SMS, remote deletions — lives in the outbox, whose job runner
//! sleeps until its next due job the same way.) Each task is a [`Worker`]:
//! - [`CleanupWorker`], the retention cleanup: at start, then every day at `cleanup_hour`
//!   (the kiosk's local time, `KIOSK_TZ`; a run-time setting, re-read every round);
//! - [`ClockFixWorker`]: every minute, recompute the times of captures taken before the
//!   wall clock was set (cheap when there are none);
//! - [`NumberSweepWorker`]: every minute, forget the numbers of failed SMS requests whose
//!   retry window (their validity) has passed.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::App;
use crate::localtime::LocalTz;
use crate::workers::{self, Next, Worker};

/// Longest sleep: settings (the cleanup hour) and wall-clock jumps are picked up this often.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// The next time strictly after `after_ms` that is `hour`:00 UTC.
pub fn next_daily(after_ms: i64, hour: u32) -> i64 {
    LocalTz::utc().next_at_hour(after_ms, hour)
}

/// A task due at start, then every day at `hour`:00 local time after its last run (UTC
/// unless made [`Daily::in_zone`]). On the spring night without that hour it runs when the
/// clock jumps past it; on the autumn night with it twice, at the first.
#[derive(Debug, Clone, Default)]
pub struct Daily {
    last_ms: Option<i64>,
    tz: LocalTz,
}

impl Daily {
    /// A timer whose hours are those of `tz`.
    pub fn in_zone(tz: LocalTz) -> Daily {
        Daily { last_ms: None, tz }
    }

    /// Whether the task is due at `now_ms` (always before its first run: it runs at start).
    pub fn due(&self, now_ms: i64, hour: u32) -> bool {
        self.next_ms(hour).is_none_or(|next| now_ms >= next)
    }

    /// The task ran and finished at `now_ms`.
    pub fn ran(&mut self, now_ms: i64, hour: u32) {
        // A run late by a few ms still counts for its slot, so the next is tomorrow's.
        self.last_ms = Some(match self.next_ms(hour) {
            Some(next) => now_ms.max(next),
            None => now_ms,
        });
    }

    /// When the task is next due, once it has run.
    pub fn next_ms(&self, hour: u32) -> Option<i64> {
        self.last_ms.map(|last| self.tz.next_at_hour(last, hour))
    }

    /// How long to sleep before looking again (settings and clock jumps are re-read at
    /// least every `MAX_SLEEP`).
    pub fn wait(&self, now_ms: i64, hour: u32) -> Duration {
        let next = self.next_ms(hour).unwrap_or(now_ms);
        Duration::from_millis((next - now_ms).max(0) as u64).min(MAX_SLEEP)
    }
}

/// What `/health` shows of the retention cleanup: the `cleanup` worker's details.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SchedulerSnapshot {
    pub next_cleanup_ms: Option<i64>,
    pub last_cleanup_ms: Option<i64>,
    pub last_cleanup_removed: Option<usize>,
    pub last_cleanup_error: Option<String>,
}

/// The retention cleanup's figures, read from its worker (defaults before the first round).
pub fn snapshot(workers: &crate::workers::Workers) -> SchedulerSnapshot {
    workers
        .get(CLEANUP)
        .and_then(|w| w.details)
        .and_then(|d| serde_json::from_value(d).ok())
        .unwrap_or_default()
}

/// The worker names.
pub const CLEANUP: &str = "cleanup";
pub const CLOCK_FIX: &str = "clock_fix";

/// The retention cleanup: at start, then every day at `cleanup_hour` (a run-time setting,
/// re-read every round). A run missed while the kiosk was off happens at the next start.
pub struct CleanupWorker {
    app: Arc<App>,
    daily: Daily,
    snapshot: SchedulerSnapshot,
    started: bool,
}

impl CleanupWorker {
    pub fn new(app: Arc<App>) -> CleanupWorker {
        CleanupWorker {
            daily: Daily::in_zone(app.config.kiosk_tz.clone()),
            app,
            snapshot: SchedulerSnapshot::default(),
            started: false,
        }
    }

    /// The persisted last run, for `/health` until the first run here finishes.
    async fn load_last_run(&mut self) {
        let last = self
            .app
            .catalog
            .read(|c| crate::catalog::schedule_last_run(c, "cleanup"))
            .await
            .ok()
            .flatten();
        if let Some(last) = last {
            let hour = self.app.settings.get().cleanup_hour;
            if self.app.config.kiosk_tz.next_at_hour(last, hour) <= self.app.clock.now_ms() {
                tracing::info!(
                    "a daily cleanup was missed while the kiosk was off: running it now"
                );
            }
            self.snapshot.last_cleanup_ms = Some(last);
        }
    }
}

impl Worker for CleanupWorker {
    fn name(&self) -> &'static str {
        CLEANUP
    }

    async fn work(&mut self) -> Result<Next, String> {
        if !self.started {
            self.started = true;
            self.load_last_run().await;
        }
        let hour = self.app.settings.get().cleanup_hour;
        if self.daily.due(self.app.clock.now_ms(), hour) {
            let res = crate::cleanup::run(&self.app).await;
            let now = self.app.clock.now_ms();
            match res {
                Ok(r) => {
                    self.snapshot.last_cleanup_ms = Some(now);
                    self.snapshot.last_cleanup_removed = Some(r.removed);
                    self.snapshot.last_cleanup_error = None;
                }
                Err(e) => {
                    tracing::error!("retention cleanup failed: {e}");
                    self.snapshot.last_cleanup_error = Some(e.to_string());
                }
            }
            self.daily.ran(now, hour);
        }
        self.snapshot.next_cleanup_ms = self.daily.next_ms(hour);
        Ok(Next::Idle(self.daily.wait(self.app.clock.now_ms(), hour)))
    }

    fn details(&self) -> Option<serde_json::Value> {
        serde_json::to_value(&self.snapshot).ok()
    }
}

/// Every minute, recomputes the times of captures taken before the wall clock was set
/// (cheap when there are none).
pub struct ClockFixWorker(pub Arc<App>);

impl Worker for ClockFixWorker {
    fn name(&self) -> &'static str {
        CLOCK_FIX
    }

    async fn work(&mut self) -> Result<Next, String> {
        crate::cleanup::fix_clocks(&self.0)
            .await
            .map_err(|e| format!("clock fix-up failed: {e}"))?;
        Ok(Next::Idle(MAX_SLEEP))
    }
}

/// Runs the scheduler's workers on their own tracker until `shutdown` (tools and tests
/// that want the recurring tasks without the whole daemon).
pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    spawn(&tracker, &app, shutdown);
    tracker.close();
    tracker.wait().await;
}

/// Spawns the scheduler's workers.
pub fn spawn(tracker: &TaskTracker, app: &Arc<App>, shutdown: CancellationToken) {
    workers::spawn(
        tracker,
        &app.workers,
        CleanupWorker::new(app.clone()),
        shutdown.clone(),
    );
    workers::spawn(
        tracker,
        &app.workers,
        ClockFixWorker(app.clone()),
        shutdown.clone(),
    );
    workers::spawn(
        tracker,
        &app.workers,
        NumberSweepWorker(app.clone()),
        shutdown,
    );
}

pub const SMS_NUMBERS: &str = "sms_numbers";

/// Every minute, forgets the clear numbers of failed SMS requests whose validity (the
/// window in which staff may retry them) has passed.
pub struct NumberSweepWorker(pub Arc<App>);

impl Worker for NumberSweepWorker {
    fn name(&self) -> &'static str {
        SMS_NUMBERS
    }

    async fn work(&mut self) -> Result<Next, String> {
        let now = self.0.clock.now_ms();
        let n = self
            .0
            .catalog
            .write(move |c| crate::catalog::forget_expired_failed_numbers(c, now))
            .await
            .map_err(|e| format!("forgetting numbers failed: {e}"))?;
        if n > 0 {
            tracing::info!(
                count = n,
                "forgot the numbers of failed SMS past their validity"
            );
        }
        Ok(Next::Idle(MAX_SLEEP))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::clock::Clock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    const H: i64 = 3_600_000;
    const DAY_MS: i64 = 86_400_000;

    /// The cleanup hour is local: 03:00 in Paris is 02:00 UTC in winter, 01:00 in summer,
    /// and the timer follows the change.
    #[test]
    fn daily_in_a_zone_follows_its_wall_clock() {
        let paris = LocalTz::from_posix_rule("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let winter_3am = 1_774_663_200_000; // 2026-03-28T02:00:00Z
        let mut d = Daily::in_zone(paris);
        assert!(d.due(winter_3am, 3));
        d.ran(winter_3am, 3);
        let next = d.next_ms(3).unwrap();
        assert_eq!(
            next,
            winter_3am + DAY_MS - H,
            "the spring night is an hour short"
        );
        assert!(!d.due(next - 1, 3));
        assert!(d.due(next, 3));
        d.ran(next, 3);
        assert_eq!(d.next_ms(3), Some(next + DAY_MS));
        // UTC's timer for the same hour stays at 03:00Z.
        let mut utc = Daily::default();
        utc.ran(winter_3am, 3);
        assert_eq!(utc.next_ms(3), Some(winter_3am + H));
    }

    #[test]
    fn next_daily_is_strictly_after() {
        let day0 = 20_000 * DAY_MS;
        assert_eq!(next_daily(day0, 3), day0 + 3 * H);
        assert_eq!(next_daily(day0 + 3 * H, 3), day0 + DAY_MS + 3 * H);
        assert_eq!(next_daily(day0 + 5 * H, 3), day0 + DAY_MS + 3 * H);
        assert_eq!(next_daily(day0 + 2 * H, 23), day0 + 23 * H);
    }

    /// A daily task on the [`Daily`] timer, as [`CleanupWorker`] drives it, that records
    /// when it ran.
    struct Recorder {
        clock: Arc<crate::clock::TokioClock>,
        hour: Arc<AtomicUsize>,
        daily: Daily,
        runs: Arc<Mutex<Vec<i64>>>,
    }

    impl Worker for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        async fn work(&mut self) -> Result<Next, String> {
            let hour = self.hour.load(Ordering::SeqCst) as u32;
            let now = self.clock.now_ms();
            if self.daily.due(now, hour) {
                self.runs.lock().unwrap().push(now);
                self.daily.ran(self.clock.now_ms(), hour);
            }
            Ok(Next::Idle(self.daily.wait(self.clock.now_ms(), hour)))
        }
    }

    fn start_recorder(
        start: i64,
        hour: usize,
    ) -> (
        Arc<Mutex<Vec<i64>>>,
        Arc<AtomicUsize>,
        TaskTracker,
        CancellationToken,
    ) {
        let clock = crate::clock::TokioClock::new(start);
        let runs = Arc::new(Mutex::new(Vec::<i64>::new()));
        let hour = Arc::new(AtomicUsize::new(hour));
        let registry = crate::workers::Workers::new(clock.clone());
        let tracker = TaskTracker::new();
        let stop = CancellationToken::new();
        let worker = Recorder {
            clock,
            hour: hour.clone(),
            daily: Daily::default(),
            runs: runs.clone(),
        };
        workers::spawn(&tracker, &registry, worker, stop.clone());
        tracker.close();
        (runs, hour, tracker, stop)
    }

    /// Paused time: the task runs at start, then once a day at the hour, over a week.
    #[tokio::test(start_paused = true)]
    async fn runs_at_start_then_daily_at_the_hour() {
        let start = 20_000 * DAY_MS + 10 * H; // 10:00 UTC
        let (runs, _, tracker, stop) = start_recorder(start, 3);
        tokio::time::sleep(Duration::from_millis(7 * DAY_MS as u64 + 1000)).await;
        stop.cancel();
        tracker.wait().await;
        let runs = runs.lock().unwrap().clone();
        assert_eq!(runs.len(), 8, "{runs:?}");
        assert_eq!(runs[0], start);
        for (i, t) in runs[1..].iter().enumerate() {
            let want = 20_000 * DAY_MS + (i as i64 + 1) * DAY_MS + 3 * H;
            // Fires at the hour, give or take the loop's granularity.
            assert!((*t - want).abs() < 1000, "run {i} at {t}, wanted {want}");
        }
    }

    /// Changing the hour at run time takes effect for the next run.
    #[tokio::test(start_paused = true)]
    async fn hour_change_takes_effect() {
        let start = 20_000 * DAY_MS + 10 * H;
        let (runs, hour, tracker, stop) = start_recorder(start, 3);
        tokio::time::sleep(Duration::from_secs(60)).await;
        hour.store(12, Ordering::SeqCst); // 12:00 today, in under two hours
        tokio::time::sleep(Duration::from_millis(3 * H as u64)).await;
        assert_eq!(runs.lock().unwrap().len(), 2);
        stop.cancel();
        tracker.wait().await;
    }
}
