//! python-ovh's request signature.

use sha1::{Digest, Sha1};

/// `"$1$"` + lowercase hex SHA-1 of `secret+consumer_key+METHOD+full_url+body+timestamp`.
pub fn signature(
    app_secret: &str,
    consumer_key: &str,
    method: &str,
    full_url: &str,
    body: &[u8],
    timestamp: i64,
) -> String {
    let mut h = Sha1::new();
    h.update(app_secret.as_bytes());
    h.update(b"+");
    h.update(consumer_key.as_bytes());
    h.update(b"+");
    h.update(method.to_ascii_uppercase().as_bytes());
    h.update(b"+");
    h.update(full_url.as_bytes());
    h.update(b"+");
    h.update(body);
    h.update(b"+");
    h.update(timestamp.to_string().as_bytes());
    format!("$1${}", hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk";
    const CK: &str = "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY";
    const TS: i64 = 1457018875;
    const URL: &str = "https://eu.api.ovh.com/1.0/auth";

    #[test]
    fn signature_known_answers() {
        let body = br#"{"a":"b","c":"d"}"#;
        assert_eq!(
            signature(SECRET, CK, "GET", URL, b"", TS),
            "$1$e9556054b6309771395efa467c22e627407461ad"
        );
        assert_eq!(
            signature(SECRET, CK, "POST", URL, body, TS),
            "$1$ec2fb5c7a81f64723c77d2e5b609ae6f58a84fc1"
        );
        assert_eq!(
            signature(SECRET, CK, "PUT", URL, body, TS),
            "$1$8a75a9e7c8e7296c9dbeda6a2a735eb6bd58ec4b"
        );
        assert_eq!(
            signature(SECRET, CK, "delete", URL, b"", TS),
            "$1$a1eecd00b3b02b6cf5708b84b9ff42059a950d85"
        );
    }
}
