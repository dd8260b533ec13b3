//! `selfie-kiosk sms-test PHONE`: the SMS set-up checked end to end from the command line.

use super::{client_from_config, ovh, phone};

/// Why `sms-test` failed; [`SmsTestError::exit_code`] is its place in the exit-code table
/// ([`crate::cli`]).
#[derive(Debug, thiserror::Error)]
pub enum SmsTestError {
    /// SMS not configured, a bad OVH setting, a phone number refused.
    #[error("{0}")]
    Usage(String),
    /// The OVH API did not answer (network, timeout, 5xx).
    #[error("{0}")]
    Unreachable(String),
    /// OVH answered no: credentials, service, sender, the text refused.
    #[error("{0}")]
    Failed(String),
}

impl SmsTestError {
    pub fn exit_code(&self) -> u8 {
        match self {
            SmsTestError::Usage(_) => crate::cli::USAGE,
            SmsTestError::Unreachable(_) => crate::cli::UNAVAILABLE,
            SmsTestError::Failed(_) => crate::cli::FAILURE,
        }
    }

    /// An OVH error: a transient one means OVH could not be reached.
    fn ovh(what: &str, e: &ovh::OvhError) -> SmsTestError {
        let text = format!("{what}: {e}");
        if e.is_transient() {
            SmsTestError::Unreachable(text)
        } else {
            SmsTestError::Failed(text)
        }
    }
}

/// `selfie-kiosk sms-test PHONE`: checks credentials, credits and sender end to end, then
/// sends one text (unless `dry_run`). Returns the report lines; errors say what to fix.
pub async fn sms_test(
    config: &crate::config::Config,
    raw_phone: &str,
    dry_run: bool,
) -> Result<Vec<String>, SmsTestError> {
    let mut out = Vec::new();
    let Some(o) = &config.ovh else {
        return Err(SmsTestError::Usage("SMS is not configured: set OVH_APP_KEY, OVH_APP_SECRET, OVH_CONSUMER_KEY, SMS_SERVICE_NAME and SMS_SENDER".into()));
    };
    let e164 = phone::normalize(raw_phone, phone::Region::FR)
        .map_err(|e| SmsTestError::Usage(format!("phone number refused: {e}")))?;
    let client = client_from_config(config)
        .map_err(SmsTestError::Usage)?
        .ok_or_else(|| SmsTestError::Usage("SMS is not configured".into()))?;
    let delta = client.refresh_time_delta().await.map_err(|e| {
        SmsTestError::ovh(
            &format!("cannot reach the OVH API at {}", client.base_url()),
            &e,
        )
    })?;
    out.push(format!(
        "OVH API reachable at {} (clock difference {delta:+} s)",
        client.base_url()
    ));
    let account = client
        .sms_account(&o.service_name)
        .await
        .map_err(|e| SmsTestError::ovh("credentials or service name rejected", &e))?;
    out.push(format!(
        "service {}: {} credits left{}",
        o.service_name,
        account.credits_left,
        account
            .status
            .map(|s| format!(", status {s}"))
            .unwrap_or_default()
    ));
    let senders = client
        .senders(&o.service_name)
        .await
        .map_err(|e| SmsTestError::ovh("cannot list senders", &e))?;
    if !senders.iter().any(|s| s == &o.sender) {
        return Err(SmsTestError::Failed(format!(
            "sender '{}' is not registered on {} (registered: {}); create it in the OVH manager or fix SMS_SENDER",
            o.sender,
            o.service_name,
            senders.join(", ")
        )));
    }
    out.push(format!("sender '{}' is registered", o.sender));
    if dry_run {
        out.push("dry run: no text sent".into());
        return Ok(out);
    }
    let tag = format!("selfie-kiosk-test-{}", crate::ids::random_hex(6));
    let req = ovh::SmsJobRequest {
        message: format!(
            "selfie-kiosk {}: test SMS from kiosk {}",
            env!("CARGO_PKG_VERSION"),
            config.kiosk_id
        ),
        receivers: vec![e164.clone()],
        sender: Some(o.sender.clone()),
        no_stop_clause: Some(true),
        priority: Some(ovh::SmsPriority::High),
        validity_period: Some(60),
        tag: Some(tag),
    };
    let res = client
        .send_sms(&o.service_name, &req)
        .await
        .map_err(|e| SmsTestError::ovh("sending failed", &e))?;
    out.push(format!(
        "test SMS accepted by OVH for {} (job ids {:?}, {} credit(s))",
        phone::mask(&e164),
        res.ids,
        res.total_credits_removed
    ));
    Ok(out)
}
