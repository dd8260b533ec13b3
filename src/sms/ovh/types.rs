//! The bodies the SMS routes send and answer, and the credentials. Every `Debug` masks
//! phone numbers and secrets, so a logged value leaks neither.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::sms::phone;

/// OVH application credentials. `Debug` shows the application key only.
#[derive(Clone, PartialEq, Eq)]
pub struct OvhCredentials {
    pub app_key: String,
    pub app_secret: String,
    pub consumer_key: String,
}

impl fmt::Debug for OvhCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OvhCredentials")
            .field("app_key", &self.app_key)
            .field("app_secret", &"[redacted]")
            .field("consumer_key", &"[redacted]")
            .finish()
    }
}

/// Priority of an SMS job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SmsPriority {
    High,
    Medium,
    Low,
    VeryLow,
}

/// Body of `POST /sms/{service}/jobs`. `Debug` masks the receivers.
#[derive(Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SmsJobRequest {
    pub message: String,
    pub receivers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_stop_clause: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<SmsPriority>,
    /// Minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity_period: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

impl fmt::Debug for SmsJobRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked: Vec<String> = self.receivers.iter().map(|r| phone::mask(r)).collect();
        f.debug_struct("SmsJobRequest")
            .field("message_len", &self.message.chars().count())
            .field("receivers", &masked)
            .field("sender", &self.sender)
            .field("no_stop_clause", &self.no_stop_clause)
            .field("priority", &self.priority)
            .field("validity_period", &self.validity_period)
            .field("tag", &self.tag)
            .finish()
    }
}

/// Answer of `POST /sms/{service}/jobs`. `Debug` masks the receivers.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SmsJobResult {
    pub ids: Vec<u64>,
    pub valid_receivers: Vec<String>,
    pub invalid_receivers: Vec<String>,
    pub total_credits_removed: f64,
}

impl fmt::Debug for SmsJobResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsJobResult")
            .field("ids", &self.ids)
            .field("valid_receivers", &mask_all(&self.valid_receivers))
            .field("invalid_receivers", &mask_all(&self.invalid_receivers))
            .field("total_credits_removed", &self.total_credits_removed)
            .finish()
    }
}

/// `GET /sms/{service}` (the fields we use).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SmsAccount {
    pub credits_left: f64,
    pub status: Option<String>,
}

/// `GET /sms/{service}/jobs/{id}` (the fields we use). `Debug` masks the receiver.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SmsJob {
    pub id: u64,
    pub tag: Option<String>,
    pub sender: Option<String>,
    pub receiver: Option<String>,
    pub creation_datetime: Option<String>,
    pub credits: Option<f64>,
}

impl fmt::Debug for SmsJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsJob")
            .field("id", &self.id)
            .field("tag", &self.tag)
            .field("sender", &self.sender)
            .field("receiver", &self.receiver.as_deref().map(phone::mask))
            .field("creation_datetime", &self.creation_datetime)
            .field("credits", &self.credits)
            .finish()
    }
}

pub(super) fn mask_all(v: &[String]) -> Vec<String> {
    v.iter().map(|r| phone::mask(r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk";
    const CK: &str = "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY";

    #[test]
    fn credentials_debug_redacts() {
        let c = OvhCredentials {
            app_key: "key".into(),
            app_secret: SECRET.into(),
            consumer_key: CK.into(),
        };
        let d = format!("{c:?}");
        assert!(
            d.contains("key") && !d.contains(SECRET) && !d.contains(CK),
            "{d}"
        );
    }

    #[test]
    fn job_body_is_camel_case_and_skips_none() {
        let job = SmsJobRequest {
            message: "hi".into(),
            receivers: vec!["+33612345678".into()],
            sender: Some("Selfie".into()),
            no_stop_clause: Some(true),
            priority: Some(SmsPriority::VeryLow),
            validity_period: None,
            tag: Some("k1-42".into()),
        };
        let s = serde_json::to_string(&job).unwrap_or_default();
        assert_eq!(
            s,
            r#"{"message":"hi","receivers":["+33612345678"],"sender":"Selfie","noStopClause":true,"priority":"veryLow","tag":"k1-42"}"#
        );
        assert!(!format!("{job:?}").contains("612345"));
    }
}
