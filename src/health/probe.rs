//! The remote probes: a worker that checks every [`PROBE_INTERVAL`] (every
//! [`PROBE_INTERVAL_FAILING`] while one fails) that each configured remote answers, within
//! [`PROBE_TIMEOUT`], and the cache of what it saw, which `/health` reads without touching
//! the network.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;

use super::{ms, PROBE_INTERVAL, PROBE_INTERVAL_FAILING, PROBE_TIMEOUT};
use crate::clock::{Clock, Stopwatch};
use crate::sync::remote_db::RemoteDb;
use crate::sync::RemoteFiles;
use crate::workers::{Next, Worker};

/// How long a database connection started by a probe may go on after the probe gave up.
const CONNECT_IN_BACKGROUND: Duration = Duration::from_secs(15);

/// What the last probes of one remote saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProbeSnapshot {
    pub last_probe_ms: Option<i64>,
    /// Outcome of the last probe.
    pub last_ok: Option<bool>,
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    pub latency_ms: Option<f64>,
}

impl ProbeSnapshot {
    pub(crate) fn record(&mut self, now_ms: i64, latency: Duration, result: Result<(), String>) {
        self.last_probe_ms = Some(now_ms);
        self.latency_ms = Some(ms(latency));
        match result {
            Ok(()) => {
                self.last_ok = Some(true);
                self.last_success_ms = Some(now_ms);
            }
            Err(e) => {
                self.last_ok = Some(false);
                self.last_error = Some(e.chars().take(300).collect());
                self.last_error_ms = Some(now_ms);
            }
        }
    }
}

/// The probe cache: what the last probes of each remote saw. One per daemon, in the `App`.
#[derive(Debug, Clone, Default)]
pub struct Probes {
    remote_db: Arc<Mutex<ProbeSnapshot>>,
    remote_storage: Arc<Mutex<ProbeSnapshot>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Probes {
    pub fn remote_db(&self) -> ProbeSnapshot {
        lock(&self.remote_db).clone()
    }
    pub fn remote_storage(&self) -> ProbeSnapshot {
        lock(&self.remote_storage).clone()
    }
}

async fn probe_db(db: &RemoteDb) -> Result<(), String> {
    let started = Stopwatch::start();
    // Connecting (TCP, TLS, authentication, migration check) may take longer than the
    // probe's bound on a slow mobile link; it goes on in its own task, bounded by
    // CONNECT_IN_BACKGROUND, so the next probe (and the sync worker) finds the connection
    // made instead of starting over every time.
    let connecting = {
        let db = db.clone();
        tokio::spawn(async move { tokio::time::timeout(CONNECT_IN_BACKGROUND, db.client()).await })
    };
    let client = match tokio::time::timeout(PROBE_TIMEOUT, connecting).await {
        Ok(Ok(Ok(Ok(c)))) => c,
        Ok(Ok(Ok(Err(e)))) => return Err(e.to_string()),
        Ok(Ok(Err(_))) => return Err("remote database: connection timed out".into()),
        Ok(Err(e)) => return Err(format!("remote database: probe task failed: {e}")),
        Err(_) => {
            return Err(format!(
                "remote database: no answer within {} s (probe)",
                PROBE_TIMEOUT.as_secs()
            ))
        }
    };
    let res = tokio::time::timeout(
        PROBE_TIMEOUT.saturating_sub(started.elapsed()),
        client.simple_query("SELECT 1"),
    )
    .await;
    let err = match res {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => format!("remote database: SELECT 1 failed: {e}"),
        Err(_) => format!(
            "remote database: SELECT 1 got no answer within {} s (probe)",
            PROBE_TIMEOUT.as_secs()
        ),
    };
    // A broken connection: make the next user reconnect. Detached: `reset` waits for the
    // connection lock, which a stalled connect elsewhere may hold for a while.
    let db = db.clone();
    tokio::spawn(async move { db.reset().await });
    Err(err)
}

async fn probe_files(files: &RemoteFiles) -> Result<(), String> {
    match tokio::time::timeout(PROBE_TIMEOUT, files.probe()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "remote storage: no answer within {} s (probe)",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

async fn timed<F: std::future::Future<Output = Result<(), String>>>(
    f: Option<F>,
) -> Option<(Duration, Result<(), String>)> {
    let f = f?;
    let t = Stopwatch::start();
    let r = f.await;
    Some((t.elapsed(), r))
}

/// Probes the configured remotes, caching the outcome in [`Probes`]. Done at once when no
/// remote is configured.
pub struct ProbeWorker {
    pub db: Option<RemoteDb>,
    pub files: Option<RemoteFiles>,
    pub probes: Probes,
    pub clock: Arc<dyn Clock>,
}

impl Worker for ProbeWorker {
    fn name(&self) -> &'static str {
        "remote_probes"
    }

    async fn work(&mut self) -> Result<Next, String> {
        if self.db.is_none() && self.files.is_none() {
            return Ok(Next::Done);
        }
        let db = timed(self.db.as_ref().map(probe_db));
        let files = timed(self.files.as_ref().map(probe_files));
        let (db, files) = tokio::join!(db, files);
        let now = self.clock.now_ms();
        let mut failing = false;
        for (slot, name, outcome) in [
            (&self.probes.remote_db, "remote database", db),
            (&self.probes.remote_storage, "remote storage", files),
        ] {
            let Some((took, res)) = outcome else { continue };
            let mut g = lock(slot);
            let was_ok = g.last_ok;
            match &res {
                Ok(()) if was_ok == Some(false) => {
                    tracing::info!("health probe: {name} reachable again")
                }
                Err(e) if was_ok != Some(false) => {
                    tracing::warn!("health probe: {name} unreachable ({e})")
                }
                _ => {}
            }
            failing |= res.is_err();
            g.record(now, took, res);
        }
        Ok(Next::Idle(if failing {
            PROBE_INTERVAL_FAILING
        } else {
            PROBE_INTERVAL
        }))
    }
}
