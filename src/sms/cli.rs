//! `selfie-kiosk sms-test PHONE`: the SMS set-up checked end to end from the command line.

use super::{client_from_config, ovh, phone};

/// `selfie-kiosk sms-test PHONE`: checks credentials, credits and sender end to end, then
/// sends one text (unless `dry_run`). Returns the report lines; errors say what to fix.
pub async fn sms_test(
    config: &crate::config::Config,
    raw_phone: &str,
    dry_run: bool,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let Some(o) = &config.ovh else {
        return Err("SMS is not configured: set OVH_APP_KEY, OVH_APP_SECRET, OVH_CONSUMER_KEY, SMS_SERVICE_NAME and SMS_SENDER".into());
    };
    let e164 = phone::normalize(raw_phone, phone::Region::FR)
        .map_err(|e| format!("phone number refused: {e}"))?;
    let client = client_from_config(config)?.ok_or("SMS is not configured")?;
    let delta = client
        .refresh_time_delta()
        .await
        .map_err(|e| format!("cannot reach the OVH API at {}: {e}", client.base_url()))?;
    out.push(format!(
        "OVH API reachable at {} (clock difference {delta:+} s)",
        client.base_url()
    ));
    let account = client
        .sms_account(&o.service_name)
        .await
        .map_err(|e| format!("credentials or service name rejected: {e}"))?;
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
        .map_err(|e| format!("cannot list senders: {e}"))?;
    if !senders.iter().any(|s| s == &o.sender) {
        return Err(format!(
            "sender '{}' is not registered on {} (registered: {}); create it in the OVH manager or fix SMS_SENDER",
            o.sender,
            o.service_name,
            senders.join(", ")
        ));
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
        .map_err(|e| format!("sending failed: {e}"))?;
    out.push(format!(
        "test SMS accepted by OVH for {} (job ids {:?}, {} credit(s))",
        phone::mask(&e164),
        res.ids,
        res.total_credits_removed
    ));
    Ok(out)
}
