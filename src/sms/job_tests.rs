//! The SMS job's decisions, without I/O.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::job::*;
use super::ovh::{OvhError, OvhErrorDetails, SmsJobResult, SmsPriority};
use crate::catalog::{CaptureRow, SmsRow};
use crate::settings::RuntimeSettings;

const NOW: i64 = 10_000_000;

fn row(status: &str) -> SmsRow {
    SmsRow {
        id: "s1".into(),
        capture_id: "c1".into(),
        phone: Some("+33612345678".into()),
        phone_hmac: "h".into(),
        phone_masked: "+33 6 •• •• •• 78".into(),
        status: status.into(),
        attempts: 0,
        last_error: None,
        tag: "selfie-kiosk-s1".into(),
        ovh_ids: None,
        created_ms: NOW - 1_000,
        expires_ms: NOW + 90 * 60_000,
        attempt_started_ms: None,
        sent_ms: None,
    }
}

fn pending(mut r: SmsRow) -> SmsRow {
    r.attempt_started_ms = Some(NOW - 500);
    r
}

fn expired(mut r: SmsRow) -> SmsRow {
    r.expires_ms = NOW - 1;
    r
}

fn capture(remote_file: bool) -> CaptureRow {
    crate::sync::job::test_capture("c1", remote_file.then_some(NOW - 100), None)
}

#[test]
fn final_rows_are_left_alone_whatever_else_holds() {
    for s in ["sent", "failed", "expired", "cancelled"] {
        assert_eq!(
            decide_sms(&expired(row(s)), false, NOW),
            SmsStep::AlreadyFinal,
            "{s}"
        );
    }
}

#[test]
fn unconfigured_then_expiry_then_capture() {
    assert_eq!(
        decide_sms(&row("queued"), false, NOW),
        SmsStep::NotConfigured
    );
    assert_eq!(
        decide_sms(&expired(row("queued")), true, NOW),
        SmsStep::Expire
    );
    assert_eq!(decide_sms(&row("queued"), true, NOW), SmsStep::LoadCapture);
    // A pending attempt is checked at OVH before the request may expire.
    assert_eq!(
        decide_sms(&pending(expired(row("sending"))), true, NOW),
        SmsStep::LoadCapture
    );
}

#[test]
fn capture_gone_cancels_not_online_waits() {
    let r = row("queued");
    assert_eq!(decide_with_capture(&r, None, true), CaptureStep::Cancel);
    assert_eq!(
        decide_with_capture(&r, Some(&capture(false)), true),
        CaptureStep::WaitForSync { mark: true }
    );
    assert_eq!(
        decide_with_capture(&row("waiting_for_sync"), Some(&capture(false)), true),
        CaptureStep::WaitForSync { mark: false },
        "the row already says so"
    );
}

#[test]
fn online_or_standalone_sends_checking_a_pending_attempt_first() {
    let (online, local) = (capture(true), capture(false));
    let send = |r: &SmsRow, c, storage| match decide_with_capture(r, Some(c), storage) {
        CaptureStep::Send { check_first, .. } => check_first,
        other => panic!("{other:?}"),
    };
    assert!(!send(&row("queued"), &online, true));
    assert!(
        !send(&row("queued"), &local, false),
        "no remote storage: send at once"
    );
    assert!(send(&pending(row("sending")), &online, true));
}

#[test]
fn an_earlier_attempt_found_at_ovh_is_not_resent() {
    let r = row("sending");
    assert_eq!(
        after_check(Ok(true), &expired(r.clone()), NOW),
        Earlier::Reached
    );
    assert_eq!(after_check(Ok(false), &r, NOW), Earlier::Resend);
    assert_eq!(
        after_check(Ok(false), &expired(r.clone()), NOW),
        Earlier::Expire
    );
    assert_eq!(
        after_check(Err("timeout".into()), &r, NOW),
        Earlier::Unknown("cannot check an earlier attempt at OVH: timeout".into())
    );
}

#[test]
fn transient_failures_retry_the_others_fail() {
    let d = || OvhErrorDetails {
        message: "x".into(),
        ..Default::default()
    };
    let ok = SmsJobResult {
        ids: vec![7],
        ..Default::default()
    };
    assert!(matches!(after_send(Ok(ok)), AfterSend::Sent(r) if r.ids == [7]));
    assert!(matches!(
        after_send(Err(OvhError::Transient(d()))),
        AfterSend::Retry(m) if m.starts_with("OVH temporarily unavailable")
    ));
    for e in [
        OvhError::Config(d()),
        OvhError::Rejected(d()),
        OvhError::InvalidSignature(d()),
        OvhError::Protocol(d()),
    ] {
        assert!(matches!(after_send(Err(e)), AfterSend::Fail(_)));
    }
}

#[test]
fn the_request_carries_the_link_the_tag_and_what_is_left_of_the_validity() {
    let mut settings = RuntimeSettings::from_config(&crate::config::Config::with_data_dir(
        std::path::Path::new("/tmp"),
    ));
    settings.sms_template = "Your photo: {link}".into();
    let r = row("queued");
    let req = ovh_request(
        &r,
        &capture(true),
        &settings,
        "KIOSK",
        "https://p.example/",
        NOW,
    )
    .unwrap();
    // The share page by default, named by the public token (never the capture id).
    assert_eq!(req.message, "Your photo: https://p.example/tokc1.html");
    let mut image = settings.clone();
    image.sms_link = crate::share::SmsLink::Image;
    let req_image = ovh_request(&r, &capture(true), &image, "K", "https://p.example/", NOW);
    assert_eq!(
        req_image.unwrap().message,
        "Your photo: https://p.example/tokc1.jpg"
    );
    assert_eq!(req.receivers, ["+33612345678"]);
    assert_eq!(req.sender.as_deref(), Some("KIOSK"));
    assert_eq!(req.tag.as_deref(), Some("selfie-kiosk-s1"));
    assert_eq!(req.validity_period, Some(90));
    assert_eq!(req.priority, Some(SmsPriority::High));
    assert_eq!(req.no_stop_clause, Some(true));
    // Nearly expired: at least a minute.
    let req = ovh_request(
        &expired(r.clone()),
        &capture(true),
        &settings,
        "K",
        "b/",
        NOW,
    )
    .unwrap();
    assert_eq!(req.validity_period, Some(1));
    let mut forgotten = r;
    forgotten.phone = None;
    assert!(ovh_request(&forgotten, &capture(true), &settings, "K", "b/", NOW).is_none());
}
