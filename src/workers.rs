//! Background workers: every long-lived loop of the daemon (the job runner, the cleanup
//! timer, the remote probes, heartbeats, the watchdog, …) is a [`Worker`] run by one
//! supervisor loop, [`spawn`], and reports through one registry, [`Workers`].
//!
//! The shape follows garage's `Worker` / `WorkerInfo`: a worker does one round of work
//! and says what comes next ([`Next`]); the supervisor sleeps until then (or until the
//! worker's waker fires, or the daemon stops), records each round in the worker's
//! [`WorkerInfo`] (state, runs, last run, last error, next wake), and keeps going. A round
//! that returns an error, or panics, is logged, shown as `failed`, and retried after a
//! capped backoff: one bad round never takes a loop down for good. (With `panic = "abort"`,
//! as in the `kiosk` profile, a panic ends the process instead and systemd restarts it.)
//!
//! `/health` shows the registry as its `workers` check and `/admin/diag` lists it; the
//! watchdog worker pings systemd only while the job runner keeps reporting in
//! ([`Workers::alive`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::FutureExt;
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;

/// What a worker does after a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// More work is ready: go again at once.
    Busy,
    /// Nothing to do before this much time has passed (or the waker fires).
    Idle(Duration),
    /// Nothing more to do, ever (e.g. the thing it serves is not configured).
    Done,
}

/// One long-lived loop of the daemon, one round at a time.
pub trait Worker: Send + 'static {
    /// Stable, `snake_case`: the key in `/health`'s `workers` check.
    fn name(&self) -> &'static str;

    /// One round of work. An `Err` is a failure of the loop itself (logged, shown as
    /// `failed`, retried with backoff), not an expected outcome such as "the remote is
    /// down", which the worker reports through its own status.
    fn work(&mut self) -> impl Future<Output = Result<Next, String>> + Send;

    /// Woken before the deadline of [`Next::Idle`] when this fires.
    fn waker(&self) -> Option<Arc<Notify>> {
        None
    }

    /// Worker-specific figures shown next to the common ones (read after every round).
    fn details(&self) -> Option<serde_json::Value> {
        None
    }

    /// Whether a stop may interrupt a round. The job runner says no: a round it started
    /// finishes, so its acknowledgements are recorded before the daemon exits.
    fn interruptible(&self) -> bool {
        true
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Spawned, first round not finished yet.
    Starting,
    Busy,
    Idle,
    /// The last round failed or panicked; it is retried after a backoff.
    Failed,
    /// Finished for good ([`Next::Done`]).
    Done,
    /// The daemon is stopping and the worker has returned.
    Stopped,
}

/// What the registry shows of one worker.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkerInfo {
    pub name: &'static str,
    pub state: WorkerState,
    /// Rounds completed (successfully or not).
    pub runs: u64,
    pub last_run_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    /// Failed rounds in a row (0 once a round succeeds).
    pub consecutive_failures: u32,
    /// Rounds that panicked, over the daemon's life.
    pub panics: u32,
    /// When the worker will look again, when idle or failed.
    pub next_wake_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// Monotonic ms of its last sign of life (rounds, and [`Alive`] pings within one).
    #[serde(skip)]
    alive_mono_ms: i64,
}

/// The registry of every worker's [`WorkerInfo`]: one per daemon, owned by the `App`.
#[derive(Debug, Clone)]
pub struct Workers {
    inner: Arc<Mutex<BTreeMap<&'static str, WorkerInfo>>>,
    clock: Arc<dyn Clock>,
}

/// First and longest wait after a failed round.
const FAILURE_BACKOFF_BASE: Duration = Duration::from_secs(1);
const FAILURE_BACKOFF_CAP: Duration = Duration::from_secs(60);

impl Workers {
    pub fn new(clock: Arc<dyn Clock>) -> Workers {
        Workers {
            inner: Arc::default(),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, WorkerInfo>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every worker, by name.
    pub fn list(&self) -> Vec<WorkerInfo> {
        self.lock().values().cloned().collect()
    }

    pub fn get(&self, name: &str) -> Option<WorkerInfo> {
        self.lock().get(name).cloned()
    }

    /// How long ago (ms) the worker `name` last showed a sign of life; `None` if it was
    /// never registered.
    pub fn alive_age_ms(&self, name: &str) -> Option<i64> {
        let mono = self.clock.monotonic_ms();
        self.lock().get(name).map(|w| mono - w.alive_mono_ms)
    }

    /// A handle a worker keeps to report life within a long round.
    pub fn alive(&self, name: &'static str) -> Alive {
        Alive {
            workers: self.clone(),
            name,
        }
    }

    /// Registers `name` as [`spawn`] does, without running anything (unit tests).
    #[cfg(test)]
    pub(crate) fn register_for_test(&self, name: &'static str) {
        self.register(name);
    }

    fn register(&self, name: &'static str) {
        let mono = self.clock.monotonic_ms();
        self.lock().insert(
            name,
            WorkerInfo {
                name,
                state: WorkerState::Starting,
                runs: 0,
                last_run_ms: None,
                last_error: None,
                last_error_ms: None,
                consecutive_failures: 0,
                panics: 0,
                next_wake_ms: None,
                details: None,
                alive_mono_ms: mono,
            },
        );
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut WorkerInfo, i64)) {
        let mono = self.clock.monotonic_ms();
        if let Some(w) = self.lock().get_mut(name) {
            w.alive_mono_ms = mono;
            f(w, self.clock.now_ms());
        }
    }
}

/// Reports that a worker is alive in the middle of a long round (an upload batch).
#[derive(Debug, Clone)]
pub struct Alive {
    workers: Workers,
    name: &'static str,
}

impl Alive {
    pub fn ping(&self) {
        self.workers.update(self.name, |_, _| {});
    }
}

/// How a round ended, for the registry.
enum Round {
    Ok(Next),
    Failed(String),
    Panicked(String),
    Interrupted,
}

/// Runs `worker` on `tracker` until `shutdown`, recording every round in `workers`.
pub fn spawn<W: Worker>(
    tracker: &TaskTracker,
    workers: &Workers,
    mut worker: W,
    shutdown: CancellationToken,
) {
    let name = worker.name();
    workers.register(name);
    let workers = workers.clone();
    tracker.spawn(async move {
        let waker = worker.waker();
        let interruptible = worker.interruptible();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            workers.update(name, |w, _| w.state = WorkerState::Busy);
            let round = AssertUnwindSafe(worker.work()).catch_unwind();
            let round = if interruptible {
                tokio::select! {
                    _ = shutdown.cancelled() => Round::Interrupted,
                    r = round => settle(r),
                }
            } else {
                settle(round.await)
            };
            let details = worker.details();
            let wait = match round {
                Round::Interrupted => break,
                Round::Ok(next) => {
                    workers.update(name, |w, now| {
                        w.runs += 1;
                        w.last_run_ms = Some(now);
                        w.consecutive_failures = 0;
                        w.details = details;
                        (w.state, w.next_wake_ms) = match next {
                            Next::Busy => (WorkerState::Busy, None),
                            Next::Idle(d) => (WorkerState::Idle, Some(now + ms(d))),
                            Next::Done => (WorkerState::Done, None),
                        };
                    });
                    match next {
                        Next::Busy => continue,
                        Next::Idle(d) => d,
                        Next::Done => {
                            tracing::debug!(worker = name, "worker done");
                            return;
                        }
                    }
                }
                Round::Failed(error) => failed(&workers, name, error, false, details),
                Round::Panicked(error) => failed(&workers, name, error, true, details),
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                _ = notified(waker.as_deref()) => {}
            }
        }
        workers.update(name, |w, _| {
            w.state = WorkerState::Stopped;
            w.next_wake_ms = None;
        });
    });
}

fn settle(r: std::thread::Result<Result<Next, String>>) -> Round {
    match r {
        Ok(Ok(next)) => Round::Ok(next),
        Ok(Err(e)) => Round::Failed(e),
        Err(panic) => Round::Panicked(panic_message(panic.as_ref())),
    }
}

/// Records a failed round and returns how long to wait before the next.
fn failed(
    workers: &Workers,
    name: &'static str,
    error: String,
    panicked: bool,
    details: Option<serde_json::Value>,
) -> Duration {
    let mut wait = FAILURE_BACKOFF_BASE;
    workers.update(name, |w, now| {
        wait = crate::outbox::backoff(
            w.consecutive_failures,
            FAILURE_BACKOFF_BASE,
            FAILURE_BACKOFF_CAP,
        );
        w.runs += 1;
        w.last_run_ms = Some(now);
        w.consecutive_failures = w.consecutive_failures.saturating_add(1);
        w.panics += u32::from(panicked);
        w.last_error = Some(error.chars().take(300).collect());
        w.last_error_ms = Some(now);
        w.state = WorkerState::Failed;
        w.next_wake_ms = Some(now + ms(wait));
        if details.is_some() {
            w.details = details;
        }
    });
    if panicked {
        tracing::error!(worker = name, retry_in = ?wait, "worker panicked: {error}");
    } else {
        tracing::error!(worker = name, retry_in = ?wait, "worker round failed: {error}");
    }
    wait
}

async fn notified(n: Option<&Notify>) {
    match n {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panic: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::clock::SystemClock;

    /// Panics on its second round, then works: the panic is caught, shown, and the
    /// worker goes on after a backoff.
    struct Flaky {
        rounds: u32,
    }

    impl Worker for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }
        async fn work(&mut self) -> Result<Next, String> {
            self.rounds += 1;
            match self.rounds {
                2 => panic!("boom"),
                3 => Err("catalog unavailable".into()),
                n if n >= 5 => Ok(Next::Done),
                _ => Ok(Next::Idle(Duration::from_millis(10))),
            }
        }
        fn details(&self) -> Option<serde_json::Value> {
            Some(serde_json::json!({"rounds": self.rounds}))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_worker_is_shown_failed_and_restarted() {
        let workers = Workers::new(Arc::new(SystemClock));
        let tracker = TaskTracker::new();
        let stop = CancellationToken::new();
        spawn(&tracker, &workers, Flaky { rounds: 0 }, stop.clone());
        // Round 1 then the panic: failed, one panic recorded.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let w = workers.get("flaky").unwrap();
        assert_eq!(w.state, WorkerState::Failed);
        assert_eq!(w.panics, 1);
        assert_eq!(w.last_error.as_deref(), Some("panic: boom"));
        // The backoffs run out (≤ 1.25 s then ≤ 2.5 s): rounds 3 (an error), 4, 5 (done).
        tokio::time::sleep(Duration::from_secs(10)).await;
        let w = workers.get("flaky").unwrap();
        assert_eq!(w.state, WorkerState::Done);
        assert_eq!((w.runs, w.panics, w.consecutive_failures), (5, 1, 0));
        assert_eq!(w.details, Some(serde_json::json!({"rounds": 5})));
        tracker.close();
        tracker.wait().await;
    }

    struct Idle;
    impl Worker for Idle {
        fn name(&self) -> &'static str {
            "idle"
        }
        async fn work(&mut self) -> Result<Next, String> {
            Ok(Next::Idle(Duration::from_secs(3600)))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_an_idle_worker_and_shows_it_stopped() {
        let workers = Workers::new(Arc::new(SystemClock));
        let tracker = TaskTracker::new();
        let stop = CancellationToken::new();
        spawn(&tracker, &workers, Idle, stop.clone());
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(workers.get("idle").unwrap().state, WorkerState::Idle);
        assert!(workers.get("idle").unwrap().next_wake_ms.is_some());
        stop.cancel();
        tracker.close();
        tracker.wait().await;
        assert_eq!(workers.get("idle").unwrap().state, WorkerState::Stopped);
    }
}
