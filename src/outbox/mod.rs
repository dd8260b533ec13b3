//! The outbox: a durable queue of jobs on sled — what must still be done with the outside
//! world (upload a capture, send an SMS, delete a remote copy), and when to try next.
//!
//! Why sled and why this shape: the catalog (SQLite) is the truth about *what* exists; the
//! outbox is only the *schedule*. Keeping the schedule apart means a hot queue (claims,
//! retries, backoff updates on every attempt) never contends with the capture path's
//! catalog writes, and a lost or corrupt outbox is harmless: start-up rebuilds the jobs
//! from the catalog (unsynced rows → sync jobs, unsent SMS rows → SMS jobs).
//!
//! Layout, all updated together in one multi-tree transaction:
//! - `jobs`: job id (u64 BE, sled's monotonic id, so a scan is FIFO) → [`Job`] as JSON;
//! - `due`: next-attempt time (ms, BE) ++ job id → () — the timer index, scanned in order;
//! - `keys`: dedupe key (`sync:{capture}`) → job id, so pushing the same work twice is a
//!   no-op (rebuild from the catalog relies on this);
//! - `dead`: jobs that gave up (kinds that may), kept for inspection.
//!
//! A claim moves the job's due time to the end of its lease: if the process dies during
//! the attempt, the job is simply due again when the lease runs out (and at start-up all
//! leases are released at once, since the previous process is gone). Every push and ack
//! is flushed before it is reported done.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
};
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("outbox record is corrupt: {0}")]
    Corrupt(String),
    #[error("outbox flush task failed: {0}")]
    Task(String),
}

impl OutboxError {
    /// The disk (or its quota) is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, OutboxError::Sled(sled::Error::Io(e))
            if e.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error()))
    }
}

impl From<TransactionError<OutboxError>> for OutboxError {
    fn from(e: TransactionError<OutboxError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => OutboxError::Sled(e),
        }
    }
}

/// What a job does. The target is a capture id or an SMS id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Upload the capture's file and metadata to the configured remotes.
    Sync,
    /// Send an SMS once its capture is in remote storage.
    Sms,
    /// Delete a capture's remote copies (retention, admin delete, erasure).
    RemoteDelete,
    /// Copy an SMS row (no phone number) to the remote SMS log.
    SmsLog,
    /// Copy an event's latest version to the remote database (issue 20).
    EventSync,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Sync => "sync",
            JobKind::Sms => "sms",
            JobKind::RemoteDelete => "remote_delete",
            JobKind::SmsLog => "sms_log",
            JobKind::EventSync => "event_sync",
        }
    }
    /// Whether a job of this kind may be given up on. A sync job never gives up: the
    /// guest's photo must reach the VPS however long the kiosk is offline.
    pub fn may_dead_letter(self) -> bool {
        !matches!(self, JobKind::Sync | JobKind::RemoteDelete) && self != JobKind::EventSync
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: u64,
    pub kind: JobKind,
    pub target: String,
    pub attempts: u32,
    pub created_ms: i64,
    pub next_at_ms: i64,
    pub leased: bool,
    pub last_error: Option<String>,
}

impl Job {
    pub fn key(&self) -> String {
        job_key(self.kind, &self.target)
    }
}

pub fn job_key(kind: JobKind, target: &str) -> String {
    format!("{}:{}", kind.as_str(), target)
}

/// Counters for `/health` and diagnostics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OutboxStats {
    pub pending: usize,
    pub leased: usize,
    pub dead: usize,
    pub oldest_created_ms: Option<i64>,
    pub by_kind: std::collections::BTreeMap<String, usize>,
}

#[derive(Clone)]
pub struct Outbox {
    db: sled::Db,
    jobs: sled::Tree,
    due: sled::Tree,
    keys: sled::Tree,
    dead: sled::Tree,
    notify: Arc<Notify>,
    flushes: Arc<Flushes>,
}

/// One flush at a time, shared by everyone who asked before it began (group flush). sled's
/// `flush_async` runs each flush on sled's own small thread pool; a burst of captures, each
/// flushing, filled that pool with flushes waiting on log writes that needed a thread of
/// the same pool, and the daemon hung.
#[derive(Debug, Default)]
struct Flushes {
    /// Flush requests made so far (each after its writes).
    asked: std::sync::atomic::AtomicU64,
    /// Every request up to this number is durable.
    done: std::sync::atomic::AtomicU64,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbox")
    }
}

fn due_key(at_ms: i64, id: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    // Times before 1970 (a board with no RTC) clamp to 0 so ordering stays monotonic.
    k[..8].copy_from_slice(&(at_ms.max(0) as u64).to_be_bytes());
    k[8..].copy_from_slice(&id.to_be_bytes());
    k
}

fn decode(v: &[u8]) -> Result<Job, OutboxError> {
    serde_json::from_slice(v).map_err(|e| OutboxError::Corrupt(e.to_string()))
}

fn encode(job: &Job) -> Vec<u8> {
    // Serializing a plain struct of strings and numbers cannot fail.
    serde_json::to_vec(job).unwrap_or_default()
}

type TxResult<T> = Result<T, ConflictableTransactionError<OutboxError>>;

impl Outbox {
    /// Opens the outbox directory. sled locks it: only the daemon opens it.
    pub fn open(dir: &std::path::Path) -> Result<Outbox, OutboxError> {
        Outbox::from_db(Outbox::config().path(dir).open()?)
    }

    /// An outbox that lives off the data disk and is gone at exit (a full disk at start:
    /// the catalog refills the real one at the next start).
    pub fn open_temporary() -> Result<Outbox, OutboxError> {
        Outbox::from_db(Outbox::config().temporary(true).open()?)
    }

    fn config() -> sled::Config {
        sled::Config::new()
            .cache_capacity(8 * 1024 * 1024)
            .flush_every_ms(Some(1000))
    }

    fn from_db(db: sled::Db) -> Result<Outbox, OutboxError> {
        Ok(Outbox {
            jobs: db.open_tree("jobs")?,
            due: db.open_tree("due")?,
            keys: db.open_tree("keys")?,
            dead: db.open_tree("dead")?,
            db,
            notify: Arc::new(Notify::new()),
            flushes: Arc::default(),
        })
    }

    /// Woken whenever a job becomes due earlier than before.
    pub fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    pub async fn flush(&self) -> Result<(), OutboxError> {
        use std::sync::atomic::Ordering::SeqCst;
        let f = &self.flushes;
        let mine = f.asked.fetch_add(1, SeqCst) + 1;
        let _turn = f.one_at_a_time.lock().await;
        if f.done.load(SeqCst) >= mine {
            return Ok(()); // a flush that began after this request covered it
        }
        let covers = f.asked.load(SeqCst);
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| OutboxError::Task(e.to_string()))??;
        f.done.fetch_max(covers, SeqCst);
        Ok(())
    }

    /// Adds a job due at `at_ms`, unless a job with the same kind and target exists.
    /// Not durable until [`Outbox::flush`]; use [`Outbox::push_durable`] to wait for it.
    pub fn push(
        &self,
        kind: JobKind,
        target: &str,
        now_ms: i64,
        at_ms: i64,
    ) -> Result<Job, OutboxError> {
        let key = job_key(kind, target);
        let id = self.db.generate_id()?;
        let job = Job {
            id,
            kind,
            target: target.to_string(),
            attempts: 0,
            created_ms: now_ms,
            next_at_ms: at_ms,
            leased: false,
            last_error: None,
        };
        let existing = (&self.jobs, &self.due, &self.keys).transaction(
            |(jobs, due, keys)| -> TxResult<Option<Job>> {
                if let Some(old) = keys.get(key.as_bytes())? {
                    let old_id = u64_from(&old);
                    if let Some(v) = jobs.get(old_id.to_be_bytes())? {
                        return Ok(Some(
                            decode(&v).map_err(ConflictableTransactionError::Abort)?,
                        ));
                    }
                }
                keys.insert(key.as_bytes(), &id.to_be_bytes())?;
                jobs.insert(&id.to_be_bytes(), encode(&job))?;
                due.insert(&due_key(at_ms, id), &[])?;
                Ok(None)
            },
        )?;
        match existing {
            Some(old) => Ok(old),
            None => {
                self.notify.notify_one();
                Ok(job)
            }
        }
    }

    /// [`Outbox::push`] then flush: returns once the job survives a crash.
    pub async fn push_durable(
        &self,
        kind: JobKind,
        target: &str,
        now_ms: i64,
        at_ms: i64,
    ) -> Result<Job, OutboxError> {
        let job = self.push(kind, target, now_ms, at_ms)?;
        self.flush().await?;
        Ok(job)
    }

    pub fn get(&self, kind: JobKind, target: &str) -> Result<Option<Job>, OutboxError> {
        let Some(id) = self.keys.get(job_key(kind, target))? else {
            return Ok(None);
        };
        match self.jobs.get(id)? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// Claims up to `max` jobs due at `now_ms` (oldest due first), each leased for `lease`.
    pub fn claim(&self, now_ms: i64, max: usize, lease: Duration) -> Result<Vec<Job>, OutboxError> {
        let mut out = Vec::new();
        let until = now_ms + lease.as_millis() as i64;
        for item in self.due.iter() {
            if out.len() >= max {
                break;
            }
            let (k, _) = item?;
            if k.len() != 16 {
                continue;
            }
            let at = u64_from(&k[..8]) as i64;
            if at > now_ms.max(0) {
                break;
            }
            let id = u64_from(&k[8..]);
            let claimed =
                (&self.jobs, &self.due).transaction(|(jobs, due)| -> TxResult<Option<Job>> {
                    if due.remove(&k[..])?.is_none() {
                        return Ok(None);
                    }
                    let Some(v) = jobs.get(id.to_be_bytes())? else {
                        return Ok(None);
                    };
                    let mut job = decode(&v).map_err(ConflictableTransactionError::Abort)?;
                    job.leased = true;
                    job.next_at_ms = until;
                    jobs.insert(&id.to_be_bytes(), encode(&job))?;
                    due.insert(&due_key(until, id), &[])?;
                    Ok(Some(job))
                })?;
            if let Some(job) = claimed {
                out.push(job);
            }
        }
        Ok(out)
    }

    /// The job is done: removes it.
    pub fn ack(&self, job: &Job) -> Result<(), OutboxError> {
        (&self.jobs, &self.due, &self.keys)
            .transaction(|(jobs, due, keys)| remove_in(jobs, due, keys, job))?;
        Ok(())
    }

    /// Removes whatever job exists for `kind`/`target` (the capture was deleted).
    pub fn cancel(&self, kind: JobKind, target: &str) -> Result<bool, OutboxError> {
        match self.get(kind, target)? {
            Some(job) => {
                self.ack(&job)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Reschedules a job at `at_ms`. `failed` counts an attempt and records the error;
    /// otherwise (the job was only not ready) the attempt count is unchanged.
    pub fn reschedule(
        &self,
        job: &Job,
        at_ms: i64,
        failed: Option<&str>,
    ) -> Result<Job, OutboxError> {
        let id = job.id;
        let err = failed.map(|s| s.chars().take(500).collect::<String>());
        let updated =
            (&self.jobs, &self.due).transaction(|(jobs, due)| -> TxResult<Option<Job>> {
                let Some(v) = jobs.get(id.to_be_bytes())? else {
                    return Ok(None);
                };
                let mut cur = decode(&v).map_err(ConflictableTransactionError::Abort)?;
                due.remove(&due_key(cur.next_at_ms, id))?;
                if let Some(e) = &err {
                    cur.attempts = cur.attempts.saturating_add(1);
                    cur.last_error = Some(e.clone());
                }
                cur.leased = false;
                cur.next_at_ms = at_ms;
                jobs.insert(&id.to_be_bytes(), encode(&cur))?;
                due.insert(&due_key(at_ms, id), &[])?;
                Ok(Some(cur))
            })?;
        self.notify.notify_one();
        Ok(updated.unwrap_or_else(|| job.clone()))
    }

    /// Gives up on a job: it moves to the dead-letter tree, in the same transaction that
    /// removes it from the queue (a crash never leaves it in both, or in neither).
    pub fn bury(&self, job: &Job, error: &str) -> Result<(), OutboxError> {
        let mut dead = job.clone();
        dead.last_error = Some(error.chars().take(500).collect());
        dead.leased = false;
        let dead = encode(&dead);
        (&self.jobs, &self.due, &self.keys, &self.dead).transaction(
            |(jobs, due, keys, dead_tree)| {
                remove_in(jobs, due, keys, job)?;
                dead_tree.insert(&job.id.to_be_bytes(), dead.as_slice())?;
                Ok(())
            },
        )?;
        Ok(())
    }

    /// Makes every job of `kind` (or all kinds) that is waiting due now. Used when a remote
    /// comes back, so the backlog drains at once instead of waiting out each backoff.
    pub fn expedite(&self, kind: Option<JobKind>, now_ms: i64) -> Result<usize, OutboxError> {
        let mut moved = 0;
        for item in self.jobs.iter() {
            let (_, v) = item?;
            let job = decode(&v)?;
            if job.leased || job.next_at_ms <= now_ms || kind.is_some_and(|k| k != job.kind) {
                continue;
            }
            self.reschedule(&job, now_ms, None)?;
            moved += 1;
        }
        if moved > 0 {
            self.notify.notify_one();
        }
        Ok(moved)
    }

    /// Releases every lease: the process that held them is gone (start-up only).
    pub fn release_leases(&self, now_ms: i64) -> Result<usize, OutboxError> {
        let mut n = 0;
        for item in self.jobs.iter() {
            let (_, v) = item?;
            let job = decode(&v)?;
            if job.leased {
                self.reschedule(&job, now_ms, None)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// When the next job is due, if any.
    pub fn next_due_ms(&self) -> Result<Option<i64>, OutboxError> {
        Ok(self
            .due
            .first()?
            .filter(|(k, _)| k.len() == 16)
            .map(|(k, _)| u64_from(&k[..8]) as i64))
    }

    pub fn stats(&self) -> Result<OutboxStats, OutboxError> {
        let mut s = OutboxStats {
            dead: self.dead.len(),
            ..Default::default()
        };
        for item in self.jobs.iter() {
            let (_, v) = item?;
            let job = decode(&v)?;
            s.pending += 1;
            if job.leased {
                s.leased += 1;
            }
            *s.by_kind.entry(job.kind.as_str().to_string()).or_default() += 1;
            s.oldest_created_ms = Some(
                s.oldest_created_ms
                    .map_or(job.created_ms, |o: i64| o.min(job.created_ms)),
            );
        }
        Ok(s)
    }

    /// Every pending job (diagnostics, tests).
    pub fn list(&self) -> Result<Vec<Job>, OutboxError> {
        self.jobs.iter().map(|item| decode(&item?.1)).collect()
    }
}

/// Removes `job` from the queue trees, inside a transaction.
fn remove_in(
    jobs: &TransactionalTree,
    due: &TransactionalTree,
    keys: &TransactionalTree,
    job: &Job,
) -> TxResult<()> {
    let id = job.id;
    if let Some(v) = jobs.remove(&id.to_be_bytes())? {
        let cur = decode(&v).map_err(ConflictableTransactionError::Abort)?;
        due.remove(&due_key(cur.next_at_ms, id))?;
    }
    let key = job.key();
    if let Some(k) = keys.get(key.as_bytes())? {
        if u64_from(&k) == id {
            keys.remove(key.as_bytes())?;
        }
    }
    Ok(())
}

fn u64_from(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    u64::from_be_bytes(a)
}

/// Exponential backoff with ±25 % jitter: `base · 2^attempts`, capped at `cap`.
pub fn backoff(attempts: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempts.min(20));
    let d = exp.min(cap).as_millis() as f64;
    let jitter = 0.75 + crate::ids::random_unit() * 0.5;
    Duration::from_millis((d * jitter) as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Many threads pushing, claiming and acknowledging at once. sled 0.34's transactions
    /// escalate to an exclusive lock after conflicts, and that escalation deadlocked
    /// against `generate_id` (seen with 150 captures at once): every transaction is now
    /// serialised, and this must finish.
    #[test]
    fn concurrent_pushes_and_acks_never_deadlock() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        for t in 0..8 {
            let (ob, done_tx) = (ob.clone(), done_tx.clone());
            std::thread::spawn(move || {
                for i in 0..400 {
                    let target = format!("t{t}-{i}");
                    ob.push(JobKind::Sync, &target, 1000, 1000).unwrap();
                    ob.push(JobKind::Sms, &target, 1000, 1000).unwrap();
                    for job in ob.claim(2000, 4, Duration::from_secs(60)).unwrap() {
                        ob.ack(&job).unwrap();
                    }
                }
                done_tx.send(()).unwrap();
            });
        }
        for _ in 0..8 {
            done_rx
                .recv_timeout(Duration::from_secs(120))
                .expect("outbox threads stuck: deadlock");
        }
    }

    #[test]
    fn push_claim_ack_and_dedupe() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        let a = ob.push(JobKind::Sync, "a", 1000, 1000).unwrap();
        let again = ob.push(JobKind::Sync, "a", 2000, 2000).unwrap();
        assert_eq!(a.id, again.id, "same work pushed twice is one job");
        ob.push(JobKind::Sync, "b", 1000, 5000).unwrap();
        let got = ob.claim(1500, 10, Duration::from_secs(60)).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].target, "a");
        assert!(ob
            .claim(1500, 10, Duration::from_secs(60))
            .unwrap()
            .is_empty());
        // Lease expiry makes it due again.
        assert_eq!(
            ob.claim(70_000, 10, Duration::from_secs(60)).unwrap().len(),
            2
        );
        ob.ack(&got[0]).unwrap();
        assert!(ob.get(JobKind::Sync, "a").unwrap().is_none());
        assert_eq!(ob.stats().unwrap().pending, 1);
    }

    #[test]
    fn reschedule_and_release() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        ob.push(JobKind::Sms, "s", 0, 0).unwrap();
        let j = ob.claim(10, 1, Duration::from_secs(60)).unwrap().remove(0);
        let j = ob.reschedule(&j, 5000, Some("boom")).unwrap();
        assert_eq!(j.attempts, 1);
        assert_eq!(ob.next_due_ms().unwrap(), Some(5000));
        assert_eq!(ob.expedite(None, 100).unwrap(), 1);
        let j = ob.claim(100, 1, Duration::from_secs(60)).unwrap().remove(0);
        assert_eq!(ob.release_leases(200).unwrap(), 1);
        ob.bury(&j, "gave up").unwrap();
        let s = ob.stats().unwrap();
        assert_eq!((s.pending, s.dead), (0, 1));
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let ob = Outbox::open(dir.path()).unwrap();
            ob.push(JobKind::Sync, "x", 0, 0).unwrap();
            ob.db.flush().unwrap();
        }
        let ob = Outbox::open(dir.path()).unwrap();
        assert!(ob.get(JobKind::Sync, "x").unwrap().is_some());
    }

    #[test]
    fn backoff_is_capped() {
        let d = backoff(30, Duration::from_secs(1), Duration::from_secs(60));
        assert!(d <= Duration::from_secs(75) && d >= Duration::from_secs(45));
    }
}
