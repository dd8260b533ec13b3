//! What a failed OVH call means for the caller (retry, fix the configuration, drop the
//! message), read from OVH's answer, with secrets and phone numbers scrubbed from it.

use std::fmt;

use reqwest::StatusCode;
use serde::Deserialize;

use super::types::OvhCredentials;
use crate::sms::phone;

/// What OVH said about a failed call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OvhErrorDetails {
    /// OVH's `message` (scrubbed), or our own description.
    pub message: String,
    /// OVH's `errorCode` (`INVALID_SIGNATURE`, `NOT_GRANTED_CALL`, …).
    pub error_code: Option<String>,
    /// OVH's `class` (`Client::BadRequest`, …).
    pub class: Option<String>,
    /// HTTP status, when there was an answer.
    pub http_status: Option<u16>,
    /// `X-Ovh-Queryid`, to quote to OVH support.
    pub query_id: Option<String>,
}

impl OvhErrorDetails {
    pub(super) fn msg(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::default()
        }
    }
}

impl fmt::Display for OvhErrorDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        let mut extra = Vec::new();
        if let Some(c) = &self.error_code {
            extra.push(format!("errorCode {c}"));
        }
        if let Some(c) = &self.class {
            extra.push(format!("class {c}"));
        }
        if let Some(s) = self.http_status {
            extra.push(format!("HTTP {s}"));
        }
        if let Some(q) = &self.query_id {
            extra.push(format!("query id {q}"));
        }
        if !extra.is_empty() {
            write!(f, " ({})", extra.join(", "))?;
        }
        Ok(())
    }
}

/// An OVH call failed; the variant says what the caller should do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OvhError {
    /// Network error, timeout, 5xx, 429: retry later (for a job POST, check by tag first).
    #[error("OVH temporarily unavailable: {0}")]
    Transient(OvhErrorDetails),
    /// Credentials, rights, service name, sender, credits: no retry until the configuration
    /// changes.
    #[error("OVH configuration error: {0}")]
    Config(OvhErrorDetails),
    /// OVH refused this message (invalid request or receivers): permanent for this message.
    #[error("OVH rejected the request: {0}")]
    Rejected(OvhErrorDetails),
    /// Still an invalid signature after refreshing the time delta and retrying: almost
    /// certainly a wrong application secret (counts as a configuration error).
    #[error("OVH says the signature is invalid (wrong application secret?): {0}")]
    InvalidSignature(OvhErrorDetails),
    /// An answer we cannot read.
    #[error("unexpected answer from OVH: {0}")]
    Protocol(OvhErrorDetails),
}

impl OvhError {
    pub fn details(&self) -> &OvhErrorDetails {
        match self {
            OvhError::Transient(d)
            | OvhError::Config(d)
            | OvhError::Rejected(d)
            | OvhError::InvalidSignature(d)
            | OvhError::Protocol(d) => d,
        }
    }

    /// Worth retrying later.
    pub fn is_transient(&self) -> bool {
        matches!(self, OvhError::Transient(_))
    }

    /// Needs an operator to fix the configuration (includes a persistent invalid signature).
    pub fn is_config(&self) -> bool {
        matches!(self, OvhError::Config(_) | OvhError::InvalidSignature(_))
    }

    pub fn http_status(&self) -> Option<u16> {
        self.details().http_status
    }
}

/// OVH's answer to a refused call, classified.
pub(super) fn classify(
    creds: &OvhCredentials,
    status: StatusCode,
    body: &[u8],
    query_id: Option<String>,
) -> OvhError {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase", default)]
    struct ApiError {
        message: Option<String>,
        error_code: Option<String>,
        class: Option<String>,
    }
    let parsed: ApiError = serde_json::from_slice(body).unwrap_or_default();
    let message = parsed.message.map(|m| scrub(creds, &m)).unwrap_or_else(|| {
        format!(
            "HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_string()
    });
    let code = parsed.error_code.clone().unwrap_or_default();
    let lower = message.to_ascii_lowercase();
    let details = OvhErrorDetails {
        message,
        error_code: parsed.error_code,
        class: parsed.class,
        http_status: Some(status.as_u16()),
        query_id,
    };
    if code == "INVALID_SIGNATURE"
        || code == "QUERY_TIME_OUT"
        || lower.contains("invalid signature")
        || lower.contains("out of time")
    {
        return OvhError::InvalidSignature(details);
    }
    if matches!(
        code.as_str(),
        "INVALID_KEY" | "INVALID_CREDENTIAL" | "NOT_GRANTED_CALL" | "NOT_CREDENTIAL" | "FORBIDDEN"
    ) {
        return OvhError::Config(details);
    }
    match status.as_u16() {
        401 | 403 | 404 => OvhError::Config(details),
        408 | 429 | 500..=599 => OvhError::Transient(details),
        400..=499 => {
            // Unknown sender ("does not exists") or no credits left: the operator must act.
            if lower.contains("does not exist") || lower.contains("credit") {
                OvhError::Config(details)
            } else {
                OvhError::Rejected(details)
            }
        }
        _ => OvhError::Protocol(details),
    }
}

/// Removes secrets and full phone numbers from text that goes into an error.
pub(super) fn scrub(creds: &OvhCredentials, text: &str) -> String {
    let mut out = text.to_string();
    for secret in [&creds.app_secret, &creds.consumer_key] {
        if !secret.is_empty() {
            out = out.replace(secret.as_str(), "[redacted]");
        }
    }
    mask_digit_runs(&out)
}

/// Masks every run of 7 or more digits (optionally after `+`), i.e. anything that may be a
/// phone number. Job ids are shorter than that in practice; masking one is harmless.
fn mask_digit_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        let plus = chars[i] == '+';
        let mut j = if plus { i + 1 } else { i };
        while j < chars.len() && chars[j].is_ascii_digit() {
            j += 1;
        }
        let digits = j - if plus { i + 1 } else { i };
        if digits >= 7 {
            let run: String = chars[start..j].iter().collect();
            if plus {
                out.push_str(&phone::mask(&run));
            } else {
                out.push_str(&"*".repeat(digits - 2));
                out.extend(&chars[j - 2..j]);
            }
            i = j;
        } else if digits > 0 {
            out.extend(&chars[start..j]);
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk";
    const CK: &str = "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY";

    #[test]
    fn classification() {
        let creds = OvhCredentials {
            app_key: "key".into(),
            app_secret: SECRET.into(),
            consumer_key: CK.into(),
        };
        let err = |status: u16, body: &str| {
            classify(
                &creds,
                StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT),
                body.as_bytes(),
                Some("EU.q1".into()),
            )
        };
        let e = err(
            400,
            r#"{"errorCode":"INVALID_SIGNATURE","httpCode":"400 Bad Request","message":"Invalid signature"}"#,
        );
        assert!(matches!(e, OvhError::InvalidSignature(_)));
        assert_eq!(e.details().query_id.as_deref(), Some("EU.q1"));
        assert_eq!(e.details().error_code.as_deref(), Some("INVALID_SIGNATURE"));
        assert!(err(
            403,
            r#"{"errorCode":"NOT_GRANTED_CALL","message":"This call has not been granted"}"#
        )
        .is_config());
        assert!(err(
            403,
            r#"{"errorCode":"INVALID_CREDENTIAL","message":"This credential is not valid"}"#
        )
        .is_config());
        assert!(err(
            403,
            r#"{"errorCode":"INVALID_KEY","message":"Invalid application key"}"#
        )
        .is_config());
        assert!(err(404, r#"{"message":"This service does not exist"}"#).is_config());
        assert!(err(
            400,
            r#"{"message":"Sms sender X does not exists. Please create it first"}"#
        )
        .is_config());
        assert!(matches!(
            err(400, r#"{"message":"Invalid receivers"}"#),
            OvhError::Rejected(_)
        ));
        assert!(err(500, "<html>oops</html>").is_transient());
        assert!(err(503, "").is_transient());
        assert!(err(429, "{}").is_transient());
        let e = err(
            400,
            &format!(r#"{{"message":"bad receiver +33612345678 for {CK}"}}"#),
        );
        let text = e.to_string();
        assert!(!text.contains("612345") && !text.contains(CK), "{text}");
        assert!(text.contains("+33*******78"), "{text}");
        assert!(
            text.contains("HTTP 400") && text.contains("EU.q1"),
            "{text}"
        );
    }

    #[test]
    fn digit_runs_are_masked() {
        assert_eq!(
            mask_digit_runs("id 27814656 to 0612345678"),
            "id ******56 to ********78"
        );
        assert_eq!(
            mask_digit_runs("code 400, +33612345678."),
            "code 400, +33*******78."
        );
    }
}
