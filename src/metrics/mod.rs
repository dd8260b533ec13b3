//! Prometheus metrics (`GET /metrics`): the registry of what only events can tell
//! (counters and histograms), and the scrape that renders it with the gauges.
//!
//! Gauges are not kept here: [`scrape`] reads them at scrape time from the state the
//! daemon already has (the outbox, the workers registry, the probe cache, SMS health, the
//! disk, the clock), the same figures `/health` shows, so there is no shadow copy to drift.
//! The registry holds only what would otherwise be lost: how many captures, requests,
//! uploads and SMS attempts ended how, and how long requests took.
//!
//! Every label value is bounded and says nothing about a person: results and error codes
//! are `&'static str`, HTTP routes are the router's templates (`/api/sms/{sms_id}`, never
//! the path asked, never a query string; anything unrouted is `unmatched`), methods
//! outside the standard ones are `other`.
//!
//! - [`encode`]: the text format;
//! - [`scrape`]: one scrape of an [`crate::App`].

pub mod encode;
pub mod scrape;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use encode::Histogram;

/// Buckets of request durations, in seconds (the usual Prometheus defaults).
pub const HTTP_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of capture durations: a 25 MB photo over a slow link takes seconds.
pub const CAPTURE_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";

/// Capture results always shown, from zero, so `increase()` sees the first one.
pub const CAPTURE_RESULTS: [&str; 2] = ["created", "repeated"];
/// How an upload of one capture to one remote ended.
pub const UPLOAD_RESULTS: [&str; 3] = ["ok", "error", "local_missing"];
/// How an SMS send attempt ended (`retry`: a transient failure, sent again later).
pub const SMS_RESULTS: [&str; 3] = ["sent", "retry", "failed"];
/// Remote labels, as in `/health`'s checks.
pub const REMOTE_DB: &str = "remote_db";
pub const REMOTE_STORAGE: &str = "remote_storage";

/// The registry: one per daemon, in the `App`; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    captures: Mutex<BTreeMap<&'static str, u64>>,
    capture_seconds: Mutex<Histogram>,
    /// By route template, then method and status.
    http: Mutex<BTreeMap<String, RouteStats>>,
    uploads: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    sms: Mutex<BTreeMap<&'static str, u64>>,
}

impl Default for Inner {
    fn default() -> Inner {
        Inner {
            captures: Mutex::new(CAPTURE_RESULTS.iter().map(|r| (*r, 0)).collect()),
            capture_seconds: Mutex::new(Histogram::new(&CAPTURE_BUCKETS)),
            http: Mutex::default(),
            uploads: Mutex::new(
                [REMOTE_DB, REMOTE_STORAGE]
                    .iter()
                    .flat_map(|r| UPLOAD_RESULTS.iter().map(move |x| ((*r, *x), 0)))
                    .collect(),
            ),
            sms: Mutex::new(SMS_RESULTS.iter().map(|r| (*r, 0)).collect()),
        }
    }
}

/// One route's requests.
#[derive(Debug, Clone, Default)]
pub struct RouteStats {
    pub requests: BTreeMap<(&'static str, u16), u64>,
    pub seconds: BTreeMap<&'static str, Histogram>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The label of an HTTP method: the standard ones as they are, anything else `other`
/// (a client may send any token as a method).
pub fn method_label(m: &http::Method) -> &'static str {
    use http::Method as M;
    match *m {
        M::GET => "GET",
        M::HEAD => "HEAD",
        M::POST => "POST",
        M::PUT => "PUT",
        M::PATCH => "PATCH",
        M::DELETE => "DELETE",
        M::OPTIONS => "OPTIONS",
        M::TRACE => "TRACE",
        M::CONNECT => "CONNECT",
        _ => "other",
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// A capture ended with `result`: `created`, `repeated`, or the error code answered.
    pub fn capture(&self, result: &'static str) {
        *lock(&self.inner.captures).entry(result).or_default() += 1;
    }

    /// How long one `POST /api/capture` took.
    pub fn capture_duration(&self, d: Duration) {
        lock(&self.inner.capture_seconds).observe(d.as_secs_f64());
    }

    /// One HTTP request: `route` is the matched template or [`UNMATCHED`].
    pub fn http_request(&self, method: &'static str, route: &str, status: u16, d: Duration) {
        let mut http = lock(&self.inner.http);
        // No allocation once the route has been seen.
        let stats = match http.get_mut(route) {
            Some(s) => s,
            None => http.entry(route.to_string()).or_default(),
        };
        *stats.requests.entry((method, status)).or_default() += 1;
        stats
            .seconds
            .entry(method)
            .or_insert_with(|| Histogram::new(&HTTP_BUCKETS))
            .observe(d.as_secs_f64());
    }

    /// `n` captures' uploads to `remote` ([`REMOTE_DB`], [`REMOTE_STORAGE`]) ended with
    /// `result` (one of [`UPLOAD_RESULTS`]).
    pub fn uploads(&self, remote: &'static str, result: &'static str, n: usize) {
        *lock(&self.inner.uploads)
            .entry((remote, result))
            .or_default() += n as u64;
    }

    /// A batch of uploads to `remote`: how many ended `ok`, `error`, `local_missing`.
    pub fn upload_results(&self, remote: &'static str, [ok, error, missing]: [usize; 3]) {
        let mut u = lock(&self.inner.uploads);
        for (result, n) in UPLOAD_RESULTS.into_iter().zip([ok, error, missing]) {
            *u.entry((remote, result)).or_default() += n as u64;
        }
    }

    /// `n` captures sent to `remote` in one go (the PostgreSQL upsert), all or none.
    pub fn upload_batch(&self, remote: &'static str, ok: bool, n: usize) {
        self.uploads(remote, if ok { "ok" } else { "error" }, n);
    }

    /// An SMS send attempt ended with `result` (one of [`SMS_RESULTS`]).
    pub fn sms_attempt(&self, result: &'static str) {
        *lock(&self.inner.sms).entry(result).or_default() += 1;
    }

    /// A copy of the figures, taken lock by lock (each family is consistent in itself).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            captures: lock(&self.inner.captures).clone(),
            capture_seconds: lock(&self.inner.capture_seconds).clone(),
            http: lock(&self.inner.http).clone(),
            uploads: lock(&self.inner.uploads).clone(),
            sms: lock(&self.inner.sms).clone(),
        }
    }
}

/// The registry's figures at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub captures: BTreeMap<&'static str, u64>,
    pub capture_seconds: Histogram,
    pub http: BTreeMap<String, RouteStats>,
    pub uploads: BTreeMap<(&'static str, &'static str), u64>,
    pub sms: BTreeMap<&'static str, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_results_start_at_zero_and_count_up() {
        let m = Metrics::new();
        let s = m.snapshot();
        assert_eq!(s.captures.get("created"), Some(&0));
        assert_eq!(s.uploads.get(&(REMOTE_STORAGE, "error")), Some(&0));
        assert_eq!(s.sms.get("failed"), Some(&0));
        m.capture("created");
        m.capture("id_conflict");
        m.capture("created");
        m.uploads(REMOTE_DB, "ok", 3);
        m.sms_attempt("sent");
        let s = m.snapshot();
        assert_eq!(s.captures["created"], 2);
        assert_eq!(s.captures["id_conflict"], 1);
        assert_eq!(s.uploads[&(REMOTE_DB, "ok")], 3);
        assert_eq!(s.sms["sent"], 1);
    }

    #[test]
    fn requests_are_kept_by_route_method_and_status() {
        let m = Metrics::new();
        m.http_request("GET", "/api/sms/{sms_id}", 200, Duration::from_millis(3));
        m.http_request("GET", "/api/sms/{sms_id}", 404, Duration::from_millis(30));
        m.http_request("POST", UNMATCHED, 404, Duration::from_secs(20));
        let s = m.snapshot();
        let sms = &s.http["/api/sms/{sms_id}"];
        assert_eq!(sms.requests[&("GET", 200)], 1);
        assert_eq!(sms.requests[&("GET", 404)], 1);
        let h = &sms.seconds["GET"];
        assert_eq!(h.count, 2);
        // 3 ms in the 5 ms bucket, 30 ms in the 50 ms one.
        assert_eq!(h.counts[0], 1);
        assert_eq!(h.counts[3], 1);
        // Over the last bound: only in +Inf (count), in no bucket.
        let u = &s.http[UNMATCHED].seconds["POST"];
        assert_eq!((u.count, u.counts.iter().sum::<u64>()), (1, 0));
    }

    #[test]
    fn odd_methods_are_other() {
        let m = http::Method::from_bytes(b"BREW").unwrap_or(http::Method::GET);
        assert_eq!(method_label(&m), "other");
        assert_eq!(method_label(&http::Method::DELETE), "DELETE");
    }
}
