//! The scheduler: recurring tasks on one timer loop — "sleep until the next deadline",
//! with deadlines computed from the injected [`Clock`] and persisted last runs, so a restart
//! loses no timer and a run missed while the kiosk was off happens at the next start.
//! (One-off work — uploads, SMS, remote deletions — lives in the outbox, whose own loop in
//! `sync::worker` sleeps until its next due job the same way.)
//!
//! Tasks:
//! - retention cleanup: at start, then every day at `cleanup_hour` (UTC; a run-time
//!   setting, re-read every round);
//! - clock fix-up: every minute, recompute the times of captures taken before the wall
//!   clock was set (cheap when there are none).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::clock::Clock;

const DAY_MS: i64 = 86_400_000;
/// Longest sleep: settings (the cleanup hour) and wall-clock jumps are picked up this often.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// The next time strictly after `after_ms` that is `hour`:00 UTC.
pub fn next_daily(after_ms: i64, hour: u32) -> i64 {
    let day_start = after_ms.div_euclid(DAY_MS) * DAY_MS;
    let today = day_start + hour as i64 * 3_600_000;
    if today > after_ms {
        today
    } else {
        today + DAY_MS
    }
}

/// What `/health` shows of the scheduler.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SchedulerSnapshot {
    pub running: bool,
    pub next_cleanup_ms: Option<i64>,
    pub last_cleanup_ms: Option<i64>,
    pub last_cleanup_removed: Option<usize>,
    pub last_cleanup_error: Option<String>,
}

#[derive(Debug, Default)]
pub struct SchedulerState(Mutex<SchedulerSnapshot>);

impl SchedulerState {
    pub fn snapshot(&self) -> SchedulerSnapshot {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    fn update(&self, f: impl FnOnce(&mut SchedulerSnapshot)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The timer loop for one daily task: runs `task` at start, then at every `hour()` o'clock.
/// Generic over the task so tests can drive it with paused tokio time.
pub async fn daily_loop<F, Fut>(
    clock: Arc<dyn Clock>,
    hour: impl Fn() -> u32,
    mut on_plan: impl FnMut(i64),
    mut task: F,
    shutdown: CancellationToken,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    task().await;
    let mut last = clock.now_ms();
    loop {
        let next = next_daily(last, hour());
        on_plan(next);
        let now = clock.now_ms();
        if now >= next {
            task().await;
            last = clock.now_ms().max(next);
            continue;
        }
        let wait = Duration::from_millis((next - now) as u64).min(MAX_SLEEP);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Runs every recurring task until `shutdown`.
pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    app.scheduler.update(|s| s.running = true);
    let last = {
        let a = app.clone();
        a.catalog
            .read(|c| crate::catalog::schedule_last_run(c, "cleanup"))
            .await
            .ok()
            .flatten()
    };
    if let Some(last) = last {
        let missed = next_daily(last, app.settings.get().cleanup_hour) <= app.clock.now_ms();
        if missed {
            tracing::info!("a daily cleanup was missed while the kiosk was off: running it now");
        }
        app.scheduler.update(|s| s.last_cleanup_ms = Some(last));
    }

    let fixer = {
        let app = app.clone();
        let shutdown = shutdown.clone();
        async move {
            loop {
                if let Err(e) = crate::cleanup::fix_clocks(&app).await {
                    tracing::error!("clock fix-up failed: {e}");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(MAX_SLEEP) => {}
                }
            }
        }
    };
    let settings_app = app.clone();
    let plan_app = app.clone();
    let task_app = app.clone();
    let cleanup = daily_loop(
        app.clock.clone(),
        move || settings_app.settings.get().cleanup_hour,
        move |next| {
            plan_app
                .scheduler
                .update(|s| s.next_cleanup_ms = Some(next))
        },
        move || {
            let app = task_app.clone();
            async move {
                let res = crate::cleanup::run(&app).await;
                let now = app.clock.now_ms();
                match res {
                    Ok(r) => app.scheduler.update(|s| {
                        s.last_cleanup_ms = Some(now);
                        s.last_cleanup_removed = Some(r.removed);
                        s.last_cleanup_error = None;
                    }),
                    Err(e) => {
                        tracing::error!("retention cleanup failed: {e}");
                        app.scheduler
                            .update(|s| s.last_cleanup_error = Some(e.to_string()));
                    }
                }
            }
        },
        shutdown.clone(),
    );
    tokio::join!(fixer, cleanup);
    app.scheduler.update(|s| s.running = false);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const H: i64 = 3_600_000;

    #[test]
    fn next_daily_is_strictly_after() {
        let day0 = 20_000 * DAY_MS;
        assert_eq!(next_daily(day0, 3), day0 + 3 * H);
        assert_eq!(next_daily(day0 + 3 * H, 3), day0 + DAY_MS + 3 * H);
        assert_eq!(next_daily(day0 + 5 * H, 3), day0 + DAY_MS + 3 * H);
        assert_eq!(next_daily(day0 + 2 * H, 23), day0 + 23 * H);
    }

    /// Paused time: the loop runs at start, then once a day at the hour, over a week.
    #[tokio::test(start_paused = true)]
    async fn runs_at_start_then_daily_at_the_hour() {
        let start = 20_000 * DAY_MS + 10 * H; // 10:00 UTC
        let clock = crate::clock::TokioClock::new(start);
        let runs = Arc::new(Mutex::new(Vec::<i64>::new()));
        let stop = CancellationToken::new();
        let (r, c) = (runs.clone(), clock.clone());
        let handle = tokio::spawn(daily_loop(
            clock.clone(),
            || 3,
            |_| {},
            move || {
                let (r, c) = (r.clone(), c.clone());
                async move { r.lock().unwrap().push(c.now_ms()) }
            },
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(7 * DAY_MS as u64 + 1000)).await;
        stop.cancel();
        handle.await.unwrap();
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
        let clock = crate::clock::TokioClock::new(start);
        let hour = Arc::new(AtomicUsize::new(3));
        let count = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let (h, n) = (hour.clone(), count.clone());
        let handle = tokio::spawn(daily_loop(
            clock.clone(),
            move || h.load(Ordering::SeqCst) as u32,
            |_| {},
            move || {
                let n = n.clone();
                async move {
                    n.fetch_add(1, Ordering::SeqCst);
                }
            },
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(60)).await;
        hour.store(12, Ordering::SeqCst); // 12:00 today, in under two hours
        tokio::time::sleep(Duration::from_millis(3 * H as u64)).await;
        assert_eq!(count.load(Ordering::SeqCst), 2);
        stop.cancel();
        handle.await.unwrap();
    }
}
