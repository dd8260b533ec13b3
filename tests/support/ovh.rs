//! An OVH-faithful SMS API server for tests.
//!
//! It runs on its own thread with its own tokio runtime, on `127.0.0.1:0`, so it can be used
//! from sync and async tests alike; it stops when dropped.
//!
//! Behaviour (where OVH's exact behaviour is unknown, the stricter reading was chosen):
//! - `GET /1.0/auth/time` is unsigned and answers a bare integer: real time + `skew`.
//! - Every other call must carry `X-Ovh-Application` (unknown → 403 `INVALID_KEY`),
//!   `X-Ovh-Consumer` (missing → 401 `NOT_CREDENTIAL`, wrong → 403 `INVALID_CREDENTIAL`),
//!   `X-Ovh-Timestamp` and `X-Ovh-Signature`. The timestamp must be within
//!   [`TIMESTAMP_TOLERANCE_SECS`] (±60 s) of the server clock — OVH documents no window; this
//!   is strict on purpose, so a client that ignores the time delta fails — and the signature
//!   is recomputed over `http://{Host}{path and query}` and the exact body bytes. Both
//!   failures answer 400 `INVALID_SIGNATURE` with an `X-Ovh-Queryid` header.
//! - A body must come with `Content-Type: application/json` and be valid JSON.
//! - `POST /1.0/sms/{service}/jobs` rejects unknown fields (catches snake_case mistakes),
//!   requires `message` and a non-empty `receivers`, checks `sender` against the registered
//!   senders ("Sms sender X does not exists. Please create it first", 400). Receivers that are
//!   not `+` and 8–15 digits go to `invalidReceivers`; if none is valid the answer is a 200
//!   with empty `validReceivers`/`ids` and nothing is recorded. A missing `sender` uses the
//!   first registered sender. Credits: one per valid receiver per SMS part (160/153 GSM
//!   characters, 70/67 otherwise); not enough credits → 400 "Not enough credits".
//! - Each accepted POST is recorded as one [`RecordedJob`] with one id per valid receiver.
//!   With `auto_send` (the default) jobs go straight to "sent" (listed by `/outgoing`, not by
//!   `/jobs`); with `set_auto_send(false)` they stay pending until
//!   [`OvhTestServer::deliver_pending`].
//! - Unknown service → 404 "This service does not exist"; unknown route → 404.
//! - Error bodies look like OVH's: `{"class","errorCode"?,"httpCode","message"}`.
//! - Faults ([`Fault`]) apply after authentication, so they never hide a signing bug.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

pub const APP_KEY: &str = "testAppKey0123456";
pub const APP_SECRET: &str = "testAppSecret0123456789abcdefghij";
pub const CONSUMER_KEY: &str = "testConsumerKey0123456789abcdefg";
pub const SERVICE: &str = "sms-ab12345-1";
pub const SENDER: &str = "SelfieBox";

/// Accepted distance between `X-Ovh-Timestamp` and the server clock.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 60;

/// First job id handed out.
const FIRST_ID: u64 = 27_814_656;

#[derive(Debug, Clone)]
pub struct OvhServerConfig {
    pub app_key: String,
    pub app_secret: String,
    pub consumer_key: String,
    pub service: String,
    pub senders: Vec<String>,
    pub credits: f64,
}

impl Default for OvhServerConfig {
    fn default() -> Self {
        Self {
            app_key: APP_KEY.into(),
            app_secret: APP_SECRET.into(),
            consumer_key: CONSUMER_KEY.into(),
            service: SERVICE.into(),
            senders: vec![SENDER.into()],
            credits: 100.0,
        }
    }
}

/// Fault injected at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// The next n signed calls answer 500 then 503 alternately (after authentication).
    Status5xx(u32),
    /// The next n job POSTs hang for `hang` (default 30 s, see `set_hang`) and record nothing.
    Timeout(u32),
    /// Every signed call answers 403 `NOT_GRANTED_CALL` until the fault is reset.
    NotGranted,
    /// The next job POST is recorded as accepted, then the connection is dropped without an
    /// answer. One-shot: the fault goes back to `None`.
    AcceptThenDrop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Sent,
}

/// One accepted `POST /sms/{service}/jobs`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedJob {
    pub service: String,
    /// One id per valid receiver.
    pub ids: Vec<u64>,
    pub receivers: Vec<String>,
    pub message: String,
    pub sender: String,
    pub tag: Option<String>,
    pub no_stop_clause: bool,
    pub priority: Option<String>,
    pub validity_period: Option<u64>,
    pub credits: f64,
    pub state: JobState,
    /// The exact body bytes received.
    pub raw_body: Vec<u8>,
    /// Server clock (unix seconds) at acceptance.
    pub created_at: i64,
}

struct Service {
    credits: f64,
    status: String,
    senders: Vec<String>,
}

struct Inner {
    app_key: String,
    app_secret: String,
    consumer_key: String,
    services: HashMap<String, Service>,
    jobs: Vec<RecordedJob>,
    skew: i64,
    fault: Fault,
    hang: Duration,
    auto_send: bool,
    next_id: u64,
    status_flip: bool,
    /// Numbers OVH reports as invalid receivers (e.g. not a real line).
    unreachable: Vec<String>,
}

struct State {
    inner: Mutex<Inner>,
    requests: AtomicU64,
    time_requests: AtomicU64,
    signed_ok: AtomicU64,
    query_seq: AtomicU64,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct OvhTestServer {
    state: Arc<State>,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OvhTestServer {
    /// Starts with [`OvhServerConfig::default`].
    pub fn start_default() -> Self {
        Self::start(OvhServerConfig::default())
    }

    pub fn start(config: OvhServerConfig) -> Self {
        let mut services = HashMap::new();
        services.insert(
            config.service.clone(),
            Service {
                credits: config.credits,
                status: "enable".into(),
                senders: config.senders.clone(),
            },
        );
        let state = Arc::new(State {
            inner: Mutex::new(Inner {
                app_key: config.app_key,
                app_secret: config.app_secret,
                consumer_key: config.consumer_key,
                services,
                jobs: Vec::new(),
                skew: 0,
                fault: Fault::None,
                hang: Duration::from_secs(30),
                auto_send: true,
                next_id: FIRST_ID,
                status_flip: false,
                unreachable: Vec::new(),
            }),
            requests: AtomicU64::new(0),
            time_requests: AtomicU64::new(0),
            signed_ok: AtomicU64::new(0),
            query_seq: AtomicU64::new(0),
        });
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind the OVH test server");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("ovh-test-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    loop {
                        tokio::select! {
                            _ = &mut rx => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let st = st.clone();
                                tokio::spawn(async move {
                                    let svc = hyper::service::service_fn(move |req| {
                                        let st = st.clone();
                                        async move { serve(st, req).await }
                                    });
                                    let _ = hyper::server::conn::http1::Builder::new()
                                        .serve_connection(TokioIo::new(stream), svc)
                                        .await;
                                });
                            }
                        }
                    }
                });
                rt.shutdown_background();
            })
            .expect("spawn the OVH test server");
        Self {
            state,
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:{port}/1.0`
    pub fn base_url(&self) -> String {
        format!("http://{}/1.0", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Credentials this server accepts.
    pub fn app_key(&self) -> String {
        self.state.lock().app_key.clone()
    }
    pub fn app_secret(&self) -> String {
        self.state.lock().app_secret.clone()
    }
    pub fn consumer_key(&self) -> String {
        self.state.lock().consumer_key.clone()
    }

    /// All requests received (including `/auth/time`, including rejected ones).
    pub fn request_count(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// `GET /auth/time` requests received.
    pub fn time_request_count(&self) -> u64 {
        self.state.time_requests.load(Ordering::SeqCst)
    }

    /// Signed requests whose authentication passed.
    pub fn authenticated_count(&self) -> u64 {
        self.state.signed_ok.load(Ordering::SeqCst)
    }

    /// Server clock = real time + skew (seconds).
    pub fn set_skew_secs(&self, skew: i64) {
        self.state.lock().skew = skew;
    }

    pub fn set_credits(&self, credits: f64) {
        for s in self.state.lock().services.values_mut() {
            s.credits = credits;
        }
    }

    pub fn credits(&self) -> f64 {
        self.state
            .lock()
            .services
            .values()
            .next()
            .map_or(0.0, |s| s.credits)
    }

    pub fn set_senders(&self, senders: &[&str]) {
        for s in self.state.lock().services.values_mut() {
            s.senders = senders.iter().map(|s| s.to_string()).collect();
        }
    }

    pub fn set_fault(&self, fault: Fault) {
        self.state.lock().fault = fault;
    }

    pub fn fault(&self) -> Fault {
        self.state.lock().fault
    }

    /// Numbers the server will list in `invalidReceivers`.
    pub fn set_unreachable(&self, numbers: &[&str]) {
        self.state.lock().unreachable = numbers.iter().map(|s| s.to_string()).collect();
    }

    /// How long a `Fault::Timeout` POST hangs.
    pub fn set_hang(&self, hang: Duration) {
        self.state.lock().hang = hang;
    }

    /// `true` (default): accepted jobs are sent at once. `false`: they stay pending until
    /// [`OvhTestServer::deliver_pending`].
    pub fn set_auto_send(&self, auto: bool) {
        self.state.lock().auto_send = auto;
    }

    /// Moves every pending job to sent.
    pub fn deliver_pending(&self) {
        for j in self.state.lock().jobs.iter_mut() {
            j.state = JobState::Sent;
        }
    }

    /// Every accepted job, pending or sent, in order.
    pub fn sent_jobs(&self) -> Vec<RecordedJob> {
        self.state.lock().jobs.clone()
    }
}

impl Drop for OvhTestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct DropConnection;
impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}
impl std::error::Error for DropConnection {}

enum Outcome {
    Reply(Response<Full<Bytes>>),
    Drop,
}

async fn serve(
    st: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DropConnection> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(DropConnection),
    };
    match handle(&st, &parts.method, &parts.uri, &parts.headers, body).await {
        Outcome::Reply(r) => Ok(r),
        // hyper closes the connection without answering when the service fails.
        Outcome::Drop => Err(DropConnection),
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn response(st: &State, status: StatusCode, body: Vec<u8>) -> Outcome {
    let qid = st.query_seq.fetch_add(1, Ordering::SeqCst) + 1;
    let resp = Response::builder()
        .status(status)
        .header("Content-Type", "application/json; charset=utf-8")
        .header(
            "X-Ovh-Queryid",
            format!("EU.ext-test.{qid:08x}.{}", now_secs()),
        )
        .body(Full::new(Bytes::from(body)))
        .expect("response");
    Outcome::Reply(resp)
}

fn reply(st: &State, status: StatusCode, body: Value) -> Outcome {
    response(st, status, serde_json::to_vec(&body).expect("json"))
}

fn ovh_error(st: &State, status: StatusCode, code: Option<&str>, message: &str) -> Outcome {
    let class = match status.as_u16() {
        400 => "Client::BadRequest",
        401 => "Client::Unauthorized",
        403 => "Client::Forbidden",
        404 => "Client::NotFound",
        _ => "Server::InternalServerError",
    };
    let mut body = json!({
        "class": class,
        "httpCode": format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")),
        "message": message,
    });
    if let Some(c) = code {
        body["errorCode"] = json!(c);
    }
    reply(st, status, body)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hexs = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hexs, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(uri: &http::Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

async fn handle(
    st: &State,
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Outcome {
    st.requests.fetch_add(1, Ordering::SeqCst);
    let Some(rel) = uri.path().strip_prefix("/1.0") else {
        return ovh_error(
            st,
            StatusCode::NOT_FOUND,
            None,
            "Got an invalid (or empty) URL",
        );
    };
    let server_now = now_secs() + st.lock().skew;
    if rel == "/auth/time" && *method == Method::GET {
        st.time_requests.fetch_add(1, Ordering::SeqCst);
        return response(st, StatusCode::OK, server_now.to_string().into_bytes());
    }

    // --- authentication --------------------------------------------------------------
    let (app_key, app_secret, consumer_key) = {
        let i = st.lock();
        (
            i.app_key.clone(),
            i.app_secret.clone(),
            i.consumer_key.clone(),
        )
    };
    if header(headers, "X-Ovh-Application") != Some(app_key.as_str()) {
        return ovh_error(
            st,
            StatusCode::FORBIDDEN,
            Some("INVALID_KEY"),
            "Invalid application key",
        );
    }
    let Some(ck) = header(headers, "X-Ovh-Consumer") else {
        return ovh_error(
            st,
            StatusCode::UNAUTHORIZED,
            Some("NOT_CREDENTIAL"),
            "You must login first",
        );
    };
    if ck != consumer_key {
        return ovh_error(
            st,
            StatusCode::FORBIDDEN,
            Some("INVALID_CREDENTIAL"),
            "This credential is not valid",
        );
    }
    let invalid_sig = || {
        ovh_error(
            st,
            StatusCode::BAD_REQUEST,
            Some("INVALID_SIGNATURE"),
            "Invalid signature",
        )
    };
    let ts = header(headers, "X-Ovh-Timestamp").and_then(|t| t.parse::<i64>().ok());
    let Some(ts) = ts else { return invalid_sig() };
    if (ts - server_now).abs() > TIMESTAMP_TOLERANCE_SECS {
        return invalid_sig();
    }
    let Some(host) = header(headers, "Host") else {
        return invalid_sig();
    };
    let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let full_url = format!("http://{host}{path_and_query}");
    let expected = selfie_kiosk::sms::ovh::signature(
        &app_secret,
        &consumer_key,
        method.as_str(),
        &full_url,
        &body,
        ts,
    );
    if header(headers, "X-Ovh-Signature") != Some(expected.as_str()) {
        return invalid_sig();
    }
    st.signed_ok.fetch_add(1, Ordering::SeqCst);

    // --- body checks -----------------------------------------------------------------
    let json_body: Option<Value> = if body.is_empty() {
        None
    } else {
        let ct = header(headers, "Content-Type").unwrap_or("");
        if !ct.to_ascii_lowercase().starts_with("application/json") {
            return ovh_error(st, StatusCode::BAD_REQUEST, None, "Invalid content type");
        }
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(_) => return ovh_error(st, StatusCode::BAD_REQUEST, None, "Invalid JSON received"),
        }
    };

    // --- faults on signed calls ------------------------------------------------------
    {
        let mut i = st.lock();
        match i.fault {
            Fault::Status5xx(n) if n > 0 => {
                i.fault = if n > 1 {
                    Fault::Status5xx(n - 1)
                } else {
                    Fault::None
                };
                i.status_flip = !i.status_flip;
                let status = if i.status_flip {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                drop(i);
                return ovh_error(st, status, None, "Internal server error");
            }
            Fault::NotGranted => {
                drop(i);
                return ovh_error(
                    st,
                    StatusCode::FORBIDDEN,
                    Some("NOT_GRANTED_CALL"),
                    "This call has not been granted",
                );
            }
            _ => {}
        }
    }

    // --- routes ----------------------------------------------------------------------
    let segs: Vec<String> = rel
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let not_found_url = || {
        ovh_error(
            st,
            StatusCode::NOT_FOUND,
            None,
            "Got an invalid (or empty) URL",
        )
    };
    let service = match segs.as_slice() {
        ["sms", service, ..] => *service,
        _ => return not_found_url(),
    };
    if !st.lock().services.contains_key(service) {
        return ovh_error(
            st,
            StatusCode::NOT_FOUND,
            None,
            "This service does not exist",
        );
    }
    match (method.clone(), &segs[2..]) {
        (Method::GET, []) => {
            let body = {
                let i = st.lock();
                i.services.get(service).map(|s| {
                    json!({
                        "name": service,
                        "description": "",
                        "creditsLeft": s.credits,
                        "status": s.status,
                        "userQuantityWithQuota": 0,
                        "smsResponse": {"responseType": "cgi"},
                    })
                })
            };
            match body {
                Some(b) => reply(st, StatusCode::OK, b),
                None => not_found_url(),
            }
        }
        (Method::GET, ["senders"]) => {
            let senders = st
                .lock()
                .services
                .get(service)
                .map(|s| s.senders.clone())
                .unwrap_or_default();
            reply(st, StatusCode::OK, json!(senders))
        }
        (Method::GET, ["jobs"]) => {
            let ids = ids_where(st, service, JobState::Pending, None);
            reply(st, StatusCode::OK, json!(ids))
        }
        (Method::GET, ["outgoing"]) => {
            let tag = query_param(uri, "tag");
            let ids = ids_where(st, service, JobState::Sent, tag.as_deref());
            reply(st, StatusCode::OK, json!(ids))
        }
        (Method::GET, ["jobs", id]) => details(st, service, id, JobState::Pending),
        (Method::GET, ["outgoing", id]) => details(st, service, id, JobState::Sent),
        (Method::POST, ["jobs"]) => post_job(st, service, json_body, &body, server_now).await,
        _ => not_found_url(),
    }
}

fn ids_where(st: &State, service: &str, state: JobState, tag: Option<&str>) -> Vec<u64> {
    st.lock()
        .jobs
        .iter()
        .filter(|j| j.service == service && j.state == state)
        .filter(|j| tag.is_none_or(|t| j.tag.as_deref() == Some(t)))
        .flat_map(|j| j.ids.clone())
        .collect()
}

fn details(st: &State, service: &str, id: &str, state: JobState) -> Outcome {
    let found = id.parse::<u64>().ok().and_then(|id| {
        let i = st.lock();
        i.jobs
            .iter()
            .find(|j| j.service == service && j.state == state && j.ids.contains(&id))
            .map(|j| {
                let pos = j.ids.iter().position(|x| *x == id).unwrap_or(0);
                json!({
                    "id": id,
                    "tag": j.tag,
                    "sender": j.sender,
                    "receiver": j.receivers.get(pos),
                    "message": j.message,
                    "creationDatetime": j.created_at.to_string(),
                    "credits": j.credits / j.ids.len().max(1) as f64,
                    "differedDelivery": 0,
                    "ptt": 1,
                    "deliveryReceipt": if state == JobState::Sent { 1 } else { 0 },
                })
            })
    });
    match found {
        Some(v) => reply(st, StatusCode::OK, v),
        None => ovh_error(
            st,
            StatusCode::NOT_FOUND,
            None,
            &format!("The requested object (id = {id}) does not exist"),
        ),
    }
}

fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

fn sms_parts(message: &str) -> u32 {
    let gsm = message
        .chars()
        .all(|c| c.is_ascii() || "€£¥èéùìòÇØøÅåÆæßÉÄÖÑÜäöñüà".contains(c));
    let n = message.chars().count() as u32;
    let (single, multi) = if gsm { (160, 153) } else { (70, 67) };
    if n <= single {
        1
    } else {
        n.div_ceil(multi)
    }
}

const JOB_FIELDS: &[&str] = &[
    "charset",
    "class",
    "coding",
    "differedPeriod",
    "message",
    "noStopClause",
    "priority",
    "receivers",
    "receiversDocumentUrl",
    "receiversSlotId",
    "sender",
    "senderForResponse",
    "tag",
    "validityPeriod",
];

async fn post_job(st: &State, service: &str, body: Option<Value>, raw: &[u8], now: i64) -> Outcome {
    let bad = |m: &str| ovh_error(st, StatusCode::BAD_REQUEST, None, m);
    let Some(Value::Object(obj)) = body else {
        return bad("Missing parameters: message, receivers");
    };
    if let Some(k) = obj.keys().find(|k| !JOB_FIELDS.contains(&k.as_str())) {
        return bad(&format!("Invalid parameter: {k}"));
    }
    let message = match obj.get("message") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(Value::String(_)) | None => return bad("Missing parameter: message"),
        Some(_) => return bad("Invalid type for parameter message: expected string"),
    };
    let receivers: Vec<String> = match obj.get("receivers") {
        Some(Value::Array(a)) if !a.is_empty() => {
            let mut v = Vec::new();
            for r in a {
                match r {
                    Value::String(s) => v.push(s.clone()),
                    _ => return bad("Invalid type for parameter receivers: expected string[]"),
                }
            }
            v
        }
        _ => return bad("Missing parameter: receivers"),
    };
    let no_stop_clause = match obj.get("noStopClause") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return bad("Invalid type for parameter noStopClause: expected boolean"),
    };
    let priority = match obj.get("priority") {
        None => None,
        Some(Value::String(p)) if ["high", "medium", "low", "veryLow"].contains(&p.as_str()) => {
            Some(p.clone())
        }
        Some(_) => return bad("Invalid value for parameter priority"),
    };
    let validity_period = match obj.get("validityPeriod") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(n) => Some(n),
            None => return bad("Invalid type for parameter validityPeriod: expected long"),
        },
    };
    let tag = match obj.get("tag") {
        None => None,
        Some(Value::String(t)) => Some(t.clone()),
        Some(_) => return bad("Invalid type for parameter tag: expected string"),
    };
    let senders = st
        .lock()
        .services
        .get(service)
        .map(|s| s.senders.clone())
        .unwrap_or_default();
    let sender = match obj.get("sender") {
        None => match senders.first() {
            Some(s) => s.clone(),
            None => return bad("No sender available: please create one first"),
        },
        Some(Value::String(s)) => {
            if !senders.contains(s) {
                return bad(&format!(
                    "Sms sender {s} does not exists. Please create it first"
                ));
            }
            s.clone()
        }
        Some(_) => return bad("Invalid type for parameter sender: expected string"),
    };

    // Faults on job POSTs.
    let (hang, drop_after) = {
        let mut i = st.lock();
        match i.fault {
            Fault::Timeout(n) if n > 0 => {
                i.fault = if n > 1 {
                    Fault::Timeout(n - 1)
                } else {
                    Fault::None
                };
                (Some(i.hang), false)
            }
            Fault::AcceptThenDrop => {
                i.fault = Fault::None;
                (None, true)
            }
            _ => (None, false),
        }
    };
    if let Some(hang) = hang {
        tokio::time::sleep(hang).await;
        return ovh_error(st, StatusCode::GATEWAY_TIMEOUT, None, "Gateway timeout");
    }

    let unreachable = st.lock().unreachable.clone();
    let (valid, invalid): (Vec<String>, Vec<String>) = receivers
        .into_iter()
        .partition(|r| is_e164(r) && !unreachable.contains(r));
    if valid.is_empty() {
        return reply(
            st,
            StatusCode::OK,
            json!({"totalCreditsRemoved": 0, "invalidReceivers": invalid, "ids": [], "validReceivers": []}),
        );
    }
    let cost = f64::from(sms_parts(&message)) * valid.len() as f64;
    let ids = {
        let mut i = st.lock();
        let auto = i.auto_send;
        let Some(svc) = i.services.get_mut(service) else {
            drop(i);
            return ovh_error(
                st,
                StatusCode::NOT_FOUND,
                None,
                "This service does not exist",
            );
        };
        if svc.credits < cost {
            drop(i);
            return bad("Not enough credits to send this message");
        }
        svc.credits -= cost;
        let first = i.next_id;
        i.next_id += valid.len() as u64;
        let ids: Vec<u64> = (first..first + valid.len() as u64).collect();
        i.jobs.push(RecordedJob {
            service: service.to_string(),
            ids: ids.clone(),
            receivers: valid.clone(),
            message,
            sender,
            tag,
            no_stop_clause,
            priority,
            validity_period,
            credits: cost,
            state: if auto {
                JobState::Sent
            } else {
                JobState::Pending
            },
            raw_body: raw.to_vec(),
            created_at: now,
        });
        ids
    };
    if drop_after {
        return Outcome::Drop;
    }
    reply(
        st,
        StatusCode::OK,
        json!({
            "totalCreditsRemoved": cost,
            "invalidReceivers": invalid,
            "ids": ids,
            "validReceivers": valid,
        }),
    )
}

impl OvhTestServer {
    /// The daemon's SMS variables pointing at this server, without remote storage (an SMS
    /// is sent at once), links under `public_base_url`.
    pub fn daemon_env(&self, public_base_url: &str) -> Vec<(String, String)> {
        [
            ("OVH_ENDPOINT", self.base_url()),
            ("OVH_APP_KEY", APP_KEY.to_string()),
            ("OVH_APP_SECRET", APP_SECRET.to_string()),
            ("OVH_CONSUMER_KEY", CONSUMER_KEY.to_string()),
            ("SMS_SERVICE_NAME", SERVICE.to_string()),
            ("SMS_SENDER", SENDER.to_string()),
            ("OVH_TIMEOUT_SECS", "2".to_string()),
            ("PUBLIC_BASE_URL", public_base_url.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}
