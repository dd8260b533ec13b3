//! The OVH client against the OVH-faithful test server.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use selfie_kiosk::clock::{Clock, SystemClock};
use selfie_kiosk::sms::ovh::{OvhClient, OvhCredentials, OvhError, SmsJobRequest, SmsPriority};
use support::ovh::{Fault, JobState, OvhTestServer, SENDER, SERVICE};

const NUMBER: &str = "+33612345678";

/// The system clock `offset` seconds off (the offset can change while a client uses it).
#[derive(Debug)]
struct OffsetClock(Arc<AtomicI64>);

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.0.load(Ordering::SeqCst) * 1000
    }
}

fn creds(server: &OvhTestServer) -> OvhCredentials {
    OvhCredentials {
        app_key: server.app_key(),
        app_secret: server.app_secret(),
        consumer_key: server.consumer_key(),
    }
}

fn client(server: &OvhTestServer) -> OvhClient {
    client_with(server, creds(server), 0)
}

/// A client whose local clock is `offset` seconds off real time.
fn client_with(server: &OvhTestServer, creds: OvhCredentials, offset: i64) -> OvhClient {
    let clock = Arc::new(OffsetClock(Arc::new(AtomicI64::new(offset))));
    OvhClient::with_clock(&server.base_url(), creds, Duration::from_secs(2), clock).unwrap()
}

fn job(tag: &str) -> SmsJobRequest {
    SmsJobRequest {
        message: "Voici votre photo : https://vps.example.com/uploads/abc.jpg".into(),
        receivers: vec![NUMBER.into()],
        sender: Some(SENDER.into()),
        no_stop_clause: Some(true),
        priority: Some(SmsPriority::High),
        validity_period: Some(2880),
        tag: Some(tag.into()),
    }
}

fn assert_no_secrets(e: &OvhError, server: &OvhTestServer) {
    let text = format!("{e} {e:?}");
    assert!(!text.contains(&server.app_secret()), "{text}");
    assert!(!text.contains(&server.consumer_key()), "{text}");
    assert!(!text.contains("612345678"), "{text}");
}

#[tokio::test]
async fn send_ok_is_recorded_with_our_fields() {
    let server = OvhTestServer::start_default();
    let c = client(&server);
    let res = c.send_sms(SERVICE, &job("kiosk1-sms-1")).await.unwrap();
    assert_eq!(res.valid_receivers, vec![NUMBER.to_string()]);
    assert!(res.invalid_receivers.is_empty());
    assert_eq!(res.ids.len(), 1);
    assert_eq!(res.total_credits_removed, 1.0);

    let jobs = server.sent_jobs();
    assert_eq!(jobs.len(), 1);
    let j = &jobs[0];
    assert_eq!(j.receivers, vec![NUMBER.to_string()]);
    assert_eq!(j.sender, SENDER);
    assert_eq!(j.tag.as_deref(), Some("kiosk1-sms-1"));
    assert!(j.no_stop_clause);
    assert_eq!(j.priority.as_deref(), Some("high"));
    assert_eq!(j.validity_period, Some(2880));
    assert_eq!(j.ids, res.ids);
    // Compact JSON: exactly what was signed.
    assert_eq!(
        j.raw_body,
        serde_json::to_vec(&job("kiosk1-sms-1")).unwrap()
    );
    assert_eq!(server.time_request_count(), 1);
    // The delta is kept: a second call does not fetch the time again.
    c.senders(SERVICE).await.unwrap();
    assert_eq!(server.time_request_count(), 1);
}

#[tokio::test]
async fn skewed_kiosk_clock_still_signs_correctly() {
    for offset in [600, -600] {
        let server = OvhTestServer::start_default();
        let c = client_with(&server, creds(&server), offset);
        c.send_sms(SERVICE, &job("skew")).await.unwrap();
        let delta = c.time_delta().unwrap();
        assert!((delta + offset).abs() <= 2, "offset {offset} delta {delta}");
    }
    // The server's clock off instead.
    let server = OvhTestServer::start_default();
    server.set_skew_secs(-600);
    let c = client(&server);
    assert_eq!(c.senders(SERVICE).await.unwrap(), vec![SENDER.to_string()]);
}

#[tokio::test]
async fn clock_change_after_delta_is_recovered_by_one_refresh() {
    let server = OvhTestServer::start_default();
    let offset = Arc::new(AtomicI64::new(0));
    let clock = Arc::new(OffsetClock(offset.clone()));
    let c = OvhClient::with_clock(
        &server.base_url(),
        creds(&server),
        Duration::from_secs(2),
        clock,
    )
    .unwrap();
    c.sms_account(SERVICE).await.unwrap();
    assert_eq!(server.time_request_count(), 1);
    // NTP steps the kiosk clock by 10 minutes: the stored delta is now wrong.
    offset.store(600, Ordering::SeqCst);
    c.sms_account(SERVICE).await.unwrap();
    assert_eq!(server.time_request_count(), 2);
    // invalidate_time_delta forces a fetch before the next call.
    c.invalidate_time_delta();
    assert_eq!(c.time_delta(), None);
    c.sms_account(SERVICE).await.unwrap();
    assert_eq!(server.time_request_count(), 3);
}

#[tokio::test]
async fn bad_secret_refreshes_once_then_fails() {
    let server = OvhTestServer::start_default();
    let mut bad = creds(&server);
    bad.app_secret = "notTheRightSecret0000000000000000".into();
    let c = client_with(&server, bad.clone(), 0);
    let before = server.request_count();
    let e = c.send_sms(SERVICE, &job("bad")).await.unwrap_err();
    assert!(matches!(e, OvhError::InvalidSignature(_)), "{e:?}");
    assert!(e.is_config() && !e.is_transient());
    assert_eq!(e.details().error_code.as_deref(), Some("INVALID_SIGNATURE"));
    assert_eq!(e.http_status(), Some(400));
    assert!(e.details().query_id.is_some());
    // time, POST, time again, POST again: one retry only.
    assert_eq!(server.request_count() - before, 4);
    assert_eq!(server.time_request_count(), 2);
    assert!(server.sent_jobs().is_empty());
    let text = format!("{e} {e:?}");
    assert!(!text.contains(&bad.app_secret), "{text}");
    assert_no_secrets(&e, &server);
}

#[tokio::test]
async fn wrong_keys_are_config_errors() {
    let server = OvhTestServer::start_default();
    let mut c1 = creds(&server);
    c1.app_key = "unknownKey".into();
    let e = client_with(&server, c1, 0)
        .senders(SERVICE)
        .await
        .unwrap_err();
    assert!(e.is_config(), "{e:?}");
    assert_eq!(e.details().error_code.as_deref(), Some("INVALID_KEY"));

    let mut c2 = creds(&server);
    c2.consumer_key = "wrongConsumerKey".into();
    let e = client_with(&server, c2, 0)
        .senders(SERVICE)
        .await
        .unwrap_err();
    assert!(matches!(e, OvhError::Config(_)), "{e:?}");
    assert_eq!(
        e.details().error_code.as_deref(),
        Some("INVALID_CREDENTIAL")
    );
    assert_eq!(e.http_status(), Some(403));
    assert_no_secrets(&e, &server);
}

#[tokio::test]
async fn server_errors_are_transient() {
    let server = OvhTestServer::start_default();
    let c = client(&server);
    server.set_fault(Fault::Status5xx(2));
    let e = c.send_sms(SERVICE, &job("5xx")).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(e.http_status(), Some(500));
    let e = c.sms_account(SERVICE).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(e.http_status(), Some(503));
    // Fault used up: works again.
    c.send_sms(SERVICE, &job("5xx")).await.unwrap();
    assert_eq!(server.sent_jobs().len(), 1);
}

#[tokio::test]
async fn timeout_is_transient() {
    let server = OvhTestServer::start_default();
    server.set_hang(Duration::from_secs(10));
    let c = client(&server);
    c.senders(SERVICE).await.unwrap();
    server.set_fault(Fault::Timeout(1));
    let t = Instant::now();
    let e = c.send_sms(SERVICE, &job("slow")).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("timeout"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(server.sent_jobs().is_empty());
}

#[tokio::test]
async fn unreachable_server_is_transient() {
    let server = OvhTestServer::start_default();
    let url = server.base_url();
    let cr = creds(&server);
    drop(server);
    let c = OvhClient::new(&url, cr, Duration::from_secs(2)).unwrap();
    let e = c.sms_account(SERVICE).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
}

#[tokio::test]
async fn not_granted_is_config() {
    let server = OvhTestServer::start_default();
    let c = client(&server);
    server.set_fault(Fault::NotGranted);
    let e = c.send_sms(SERVICE, &job("ng")).await.unwrap_err();
    assert!(matches!(e, OvhError::Config(_)), "{e:?}");
    assert_eq!(e.details().error_code.as_deref(), Some("NOT_GRANTED_CALL"));
    assert!(e.to_string().contains("This call has not been granted"));
    assert_no_secrets(&e, &server);
}

#[tokio::test]
async fn unknown_sender_and_service_are_config() {
    let server = OvhTestServer::start_default();
    let c = client(&server);
    let mut j = job("sender");
    j.sender = Some("Nobody".into());
    let e = c.send_sms(SERVICE, &j).await.unwrap_err();
    assert!(matches!(e, OvhError::Config(_)), "{e:?}");
    assert!(e.to_string().contains("Nobody does not exists"), "{e}");
    assert_eq!(e.http_status(), Some(400));

    let e = c.send_sms("sms-zz99999-1", &job("svc")).await.unwrap_err();
    assert!(matches!(e, OvhError::Config(_)), "{e:?}");
    assert_eq!(e.http_status(), Some(404));
    assert!(e.to_string().contains("This service does not exist"), "{e}");
    assert!(server.sent_jobs().is_empty());
}

#[tokio::test]
async fn invalid_receiver_is_rejected_and_masked() {
    let server = OvhTestServer::start_default();
    let c = client(&server);
    let mut j = job("bad-number");
    j.receivers = vec!["0612345678".into()];
    let e = c.send_sms(SERVICE, &j).await.unwrap_err();
    assert!(matches!(e, OvhError::Rejected(_)), "{e:?}");
    assert!(!e.is_transient() && !e.is_config());
    assert!(e.to_string().contains("78"), "{e}");
    assert_no_secrets(&e, &server);
    assert!(server.sent_jobs().is_empty());

    // A request OVH refuses outright (empty message) is Rejected too.
    let mut j = job("empty");
    j.message = String::new();
    let e = c.send_sms(SERVICE, &j).await.unwrap_err();
    assert!(matches!(e, OvhError::Rejected(_)), "{e:?}");
}

#[tokio::test]
async fn outgoing_by_tag_finds_the_job() {
    let server = OvhTestServer::start_default();
    let c = client(&server);
    let tag = "kiosk 1/sms+42&x=é";
    let res = c.send_sms(SERVICE, &job(tag)).await.unwrap();
    c.send_sms(SERVICE, &job("other")).await.unwrap();
    assert_eq!(c.outgoing_ids_by_tag(SERVICE, tag).await.unwrap(), res.ids);
    assert!(c
        .outgoing_ids_by_tag(SERVICE, "never-used")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn pending_jobs_carry_their_tag() {
    let server = OvhTestServer::start_default();
    server.set_auto_send(false);
    let c = client(&server);
    let res = c.send_sms(SERVICE, &job("pending-1")).await.unwrap();
    let pending = c.pending_job_ids(SERVICE).await.unwrap();
    assert_eq!(pending, res.ids);
    let id = pending[0];
    assert_eq!(
        c.job_tag(SERVICE, id).await.unwrap().as_deref(),
        Some("pending-1")
    );
    let detail = c.job(SERVICE, id).await.unwrap().unwrap();
    assert_eq!(detail.id, id);
    assert!(!format!("{detail:?}").contains("612345678"));
    assert!(c
        .outgoing_ids_by_tag(SERVICE, "pending-1")
        .await
        .unwrap()
        .is_empty());

    server.deliver_pending();
    assert!(c.pending_job_ids(SERVICE).await.unwrap().is_empty());
    assert_eq!(c.job(SERVICE, id).await.unwrap(), None);
    assert_eq!(
        c.outgoing_ids_by_tag(SERVICE, "pending-1").await.unwrap(),
        vec![id]
    );
}

#[tokio::test]
async fn accepted_then_dropped_is_transient_and_recoverable_by_tag() {
    let server = OvhTestServer::start_default();
    let c = client(&server);
    c.senders(SERVICE).await.unwrap();
    server.set_fault(Fault::AcceptThenDrop);
    let e = c.send_sms(SERVICE, &job("lost-answer")).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    // The client did not resend on its own.
    assert_eq!(server.sent_jobs().len(), 1);
    assert_eq!(server.sent_jobs()[0].state, JobState::Sent);
    assert_eq!(
        c.outgoing_ids_by_tag(SERVICE, "lost-answer").await.unwrap(),
        server.sent_jobs()[0].ids
    );
}

#[tokio::test]
async fn credits_decrease() {
    let server = OvhTestServer::start_default();
    server.set_credits(10.0);
    let c = client(&server);
    let acc = c.sms_account(SERVICE).await.unwrap();
    assert_eq!(acc.credits_left, 10.0);
    assert_eq!(acc.status.as_deref(), Some("enable"));
    c.send_sms(SERVICE, &job("c1")).await.unwrap();
    let mut long = job("c2");
    long.message = "x".repeat(200); // two SMS parts
    let res = c.send_sms(SERVICE, &long).await.unwrap();
    assert_eq!(res.total_credits_removed, 2.0);
    assert_eq!(c.sms_account(SERVICE).await.unwrap().credits_left, 7.0);
    assert_eq!(server.credits(), 7.0);

    server.set_credits(0.0);
    let e = c.send_sms(SERVICE, &job("c3")).await.unwrap_err();
    assert!(e.is_config(), "{e:?}");
}

#[test]
fn server_works_from_sync_code() {
    let server = OvhTestServer::start_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let c = client(&server);
    let senders = rt.block_on(c.senders(SERVICE)).unwrap();
    assert_eq!(senders, vec![SENDER.to_string()]);
    assert_eq!(server.authenticated_count(), 1);
}
