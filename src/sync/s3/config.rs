//! `REMOTE_STORAGE_URL=s3://…`: bucket, prefix, endpoint, region and credentials, with the
//! defaults the AWS tools take from the environment.

use std::fmt;

use crate::config::Secret;
use crate::net::percent;

const DEFAULT_REGION: &str = "us-east-1";

/// Where and how to reach the bucket; parsed from `REMOTE_STORAGE_URL=s3://…`.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix without leading or trailing `/` (may be empty): objects are
    /// `{prefix}/{id}.jpg`.
    pub prefix: String,
    /// `scheme://host[:port]`, no trailing `/` (e.g. `https://s3.fr-par.scw.cloud`).
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: Secret,
    /// `https://endpoint/bucket/key` rather than `https://bucket.endpoint/key`.
    pub path_style: bool,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key", &mask_access_key(&self.access_key))
            .field("secret_key", &self.secret_key)
            .field("path_style", &self.path_style)
            .finish()
    }
}

/// `…WXYZ`: enough to tell keys apart, as `aws configure list` shows them.
fn mask_access_key(k: &str) -> String {
    let n = k.chars().count();
    if n <= 8 {
        return "<set>".into();
    }
    let tail: String = k.chars().skip(n - 4).collect();
    format!("…{tail}")
}

impl S3Config {
    /// Parses `s3://[ACCESS:SECRET@]bucket[/prefix][?endpoint=…&region=…&path_style=true]`.
    ///
    /// Defaults come from `get` (the configuration's variables): credentials from
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, the region from `AWS_REGION` then
    /// `AWS_DEFAULT_REGION` then `us-east-1`, the endpoint from `S3_ENDPOINT_URL`, then
    /// `AWS_ENDPOINT_URL_S3`, then `AWS_ENDPOINT_URL`, then AWS's
    /// `https://s3.{region}.amazonaws.com`. Path style is the default with a custom
    /// endpoint. Credentials in the URL may be percent-encoded; since AWS secret keys
    /// often hold `/` or `+`, everything before the last `@` is taken as credentials.
    /// Error texts never include the secret (nor the URL, which may hold it).
    pub fn from_url(url: &str, get: &dyn Fn(&str) -> Option<String>) -> Result<S3Config, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| "must start with s3://".to_string())?;
        let (main, query) = match rest.split_once('?') {
            Some((m, q)) => (m, Some(q)),
            None => (rest, None),
        };
        if main.contains('#') || query.is_some_and(|q| q.contains('#')) {
            return Err("must not have a fragment (#…)".into());
        }
        let (creds, location) = match main.rfind('@') {
            Some(i) => (Some(&main[..i]), &main[i + 1..]),
            None => (None, main),
        };
        let (bucket, raw_prefix) = match location.split_once('/') {
            Some((b, p)) => (b, p),
            None => (location, ""),
        };
        check_bucket(bucket)?;
        let prefix = parse_prefix(raw_prefix)?;

        let mut q_endpoint = None;
        let mut q_region = None;
        let mut q_path_style = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent::decode_strict(v).map_err(|e| format!("parameter '{k}': {e}"))?;
            match k {
                "endpoint" => q_endpoint = Some(v),
                "region" => q_region = Some(v),
                "path_style" => {
                    q_path_style = Some(
                        parse_bool(&v)
                            .ok_or_else(|| format!("path_style='{v}' is not true or false"))?,
                    )
                }
                _ => {
                    return Err(format!(
                        "unknown parameter '{k}' (known: endpoint, region, path_style)"
                    ))
                }
            }
        }

        let region = match q_region {
            Some(r) => r,
            None => get("AWS_REGION")
                .or_else(|| get("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| DEFAULT_REGION.into()),
        };
        if region.is_empty()
            || region.len() > 64
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "region '{region}' is not a region name (e.g. eu-west-3, fr-par)"
            ));
        }

        let custom_endpoint = match q_endpoint {
            Some(e) => Some(("endpoint", e)),
            None => ["S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
                .into_iter()
                .find_map(|n| get(n).map(|v| (n, v))),
        };
        let (endpoint, custom) = match custom_endpoint {
            Some((source, e)) => (normalize_endpoint(source, &e)?, true),
            None => (format!("https://s3.{region}.amazonaws.com"), false),
        };
        let path_style = q_path_style.unwrap_or(custom);

        let (access_key, secret_key) = match creds {
            Some(c) => {
                let (a, s) = c.split_once(':').ok_or_else(|| {
                    "credentials in the URL must be ACCESS_KEY:SECRET_KEY@ (the secret is missing)"
                        .to_string()
                })?;
                let a = percent::decode_strict(a)
                    .map_err(|_| "the access key in the URL is badly percent-encoded")?;
                let s = percent::decode_strict(s)
                    .map_err(|_| "the secret key in the URL is badly percent-encoded")?;
                (a, s)
            }
            None => match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
                (Some(a), Some(s)) => (a, s),
                (None, None) => {
                    return Err("no S3 credentials: put ACCESS_KEY:SECRET_KEY@ in the URL \
                         or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                        .into())
                }
                (None, Some(_)) => {
                    return Err("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".into())
                }
                (Some(_), None) => {
                    return Err("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into())
                }
            },
        };
        if access_key.is_empty() || secret_key.is_empty() {
            return Err("the S3 access key and secret key must not be empty".into());
        }
        if access_key
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
        {
            return Err("the S3 access key has characters no access key has".into());
        }

        Ok(S3Config {
            bucket: bucket.to_string(),
            prefix,
            endpoint,
            region,
            access_key,
            secret_key: Secret::new(secret_key),
            path_style,
        })
    }

    /// `s3://bucket/prefix?endpoint=…&region=…&path_style=…`, without credentials: safe
    /// to show, and parses back to the same place.
    pub fn display_url(&self) -> String {
        let prefix = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("/{}", self.prefix)
        };
        format!(
            "s3://{}{prefix}?endpoint={}&region={}&path_style={}",
            self.bucket, self.endpoint, self.region, self.path_style
        )
    }

    /// The object key of a capture: `{prefix}/{id}.jpg`.
    pub fn key_for(&self, id: &str) -> String {
        self.key_for_name(&format!("{id}.jpg"))
    }

    /// The key of the object `name` (with its extension) under the prefix.
    pub fn key_for_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }
}

/// S3 bucket naming, loosely (legacy and S3-compatible stores allow a little more than
/// AWS's current rules: upper case and `_`).
fn check_bucket(b: &str) -> Result<(), String> {
    if b.is_empty() {
        return Err("has no bucket name (s3://bucket/prefix)".into());
    }
    let ok_chars = b
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
    let ends_ok = b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !(3..=63).contains(&b.len()) || !ok_chars || !ends_ok {
        return Err(format!(
            "'{b}' is not a bucket name (3-63 letters, digits, '.', '-'; starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

fn parse_prefix(raw: &str) -> Result<String, String> {
    let p = percent::decode_strict(raw.trim_matches('/')).map_err(|e| format!("prefix: {e}"))?;
    if p.is_empty() {
        return Ok(p);
    }
    if p.split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(format!(
            "prefix '{p}' must not have empty, '.' or '..' parts"
        ));
    }
    if p.chars().any(char::is_control) || p.len() > 512 {
        return Err("prefix has control characters or is too long".into());
    }
    Ok(p)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// `scheme://host[:port]` from an endpoint value; `source` names where it came from.
fn normalize_endpoint(source: &str, e: &str) -> Result<String, String> {
    let shown = if e.contains('@') {
        "(value not shown)"
    } else {
        e
    };
    let bad = |why: &str| format!("{source} {shown}: {why}");
    let u = reqwest::Url::parse(e.trim())
        .map_err(|_| bad("not a URL (e.g. https://s3.fr-par.scw.cloud)"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(bad("must start with http:// or https://"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!(
            "{source}: must not hold credentials (put them before the bucket: s3://ACCESS:SECRET@bucket)"
        ));
    }
    let host = u.host_str().ok_or_else(|| bad("has no host"))?;
    if u.path() != "/" && !u.path().is_empty() {
        return Err(bad("must be scheme://host[:port] with no path"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(match u.port() {
        Some(p) => format!("{}://{host}:{p}", u.scheme()),
        None => format!("{}://{host}", u.scheme()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    #[test]
    fn url_with_everything() {
        let c = S3Config::from_url(
            &format!(
                "s3://AKIAEXAMPLE123:{SECRET}@test-bucket/captures/2026/?endpoint=http://127.0.0.1:9000&region=eu-west-3"
            ),
            &env(&[]),
        )
        .unwrap();
        assert_eq!(c.bucket, "test-bucket");
        assert_eq!(c.prefix, "captures/2026");
        assert_eq!(c.endpoint, "http://127.0.0.1:9000");
        assert_eq!(c.region, "eu-west-3");
        assert_eq!(c.access_key, "AKIAEXAMPLE123");
        assert_eq!(c.secret_key.expose(), SECRET);
        assert!(c.path_style);
        assert_eq!(c.key_for("abc"), "captures/2026/abc.jpg");
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains(SECRET) && !dbg.contains("AKIAEXAMPLE123"),
            "{dbg}"
        );
        assert_eq!(
            c.display_url(),
            "s3://test-bucket/captures/2026?endpoint=http://127.0.0.1:9000&region=eu-west-3&path_style=true"
        );
        // The shown URL parses back to the same place.
        let again = S3Config::from_url(
            &c.display_url(),
            &env(&[
                ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE123"),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
            ]),
        )
        .unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn defaults_come_from_the_aws_variables() {
        let c = S3Config::from_url(
            "s3://kiosk-photos",
            &env(&[
                ("AWS_ACCESS_KEY_ID", "AKIAENVKEY000"),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
                ("AWS_DEFAULT_REGION", "eu-central-1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.prefix, "");
        assert_eq!(c.key_for("abc"), "abc.jpg");
        assert_eq!(c.region, "eu-central-1");
        assert_eq!(c.endpoint, "https://s3.eu-central-1.amazonaws.com");
        assert!(!c.path_style, "AWS itself: virtual-hosted style");

        let c = S3Config::from_url(
            "s3://b-1/p?path_style=false",
            &env(&[
                ("AWS_ACCESS_KEY_ID", "AKIAENVKEY000"),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
                ("AWS_REGION", "fr-par"),
                ("AWS_DEFAULT_REGION", "eu-central-1"),
                ("S3_ENDPOINT_URL", "https://s3.fr-par.scw.cloud/"),
            ]),
        )
        .unwrap();
        assert_eq!(c.region, "fr-par");
        assert_eq!(c.endpoint, "https://s3.fr-par.scw.cloud");
        assert!(!c.path_style, "explicit path_style wins");

        let c = S3Config::from_url(
            "s3://bucket",
            &env(&[
                ("AWS_ACCESS_KEY_ID", "AKIAENVKEY000"),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
                ("AWS_ENDPOINT_URL", "https://minio.example:443"),
            ]),
        )
        .unwrap();
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.endpoint, "https://minio.example");
        assert!(c.path_style);
    }

    #[test]
    fn percent_encoded_credentials_and_secret_with_slashes() {
        let c = S3Config::from_url("s3://AKIAX:abc%2Fdef+ghi@bucket/p", &env(&[])).unwrap();
        assert_eq!(c.secret_key.expose(), "abc/def+ghi");
        // An unencoded '/' in the secret works too: credentials end at the last '@'.
        let c = S3Config::from_url(&format!("s3://AKIAX:{SECRET}@bucket/p"), &env(&[])).unwrap();
        assert_eq!(c.secret_key.expose(), SECRET);
        assert_eq!((c.bucket.as_str(), c.prefix.as_str()), ("bucket", "p"));
    }

    #[test]
    fn errors_are_clear_and_never_show_the_secret() {
        let no_env = env(&[]);
        let cases: Vec<(String, &str)> = vec![
            ("s3://bucket/p".into(), "no S3 credentials"),
            (
                format!("s3://AKIAX{SECRET}@bucket"),
                "ACCESS_KEY:SECRET_KEY",
            ),
            (format!("s3://A:{SECRET}@b"), "is not a bucket name"),
            (format!("s3://A:{SECRET}@"), "no bucket"),
            (
                format!("s3://A:{SECRET}@bucket?endpont=x"),
                "unknown parameter 'endpont'",
            ),
            (format!("s3://A:{SECRET}@bucket?endpoint=ftp://x"), "http"),
            (
                format!("s3://A:{SECRET}@bucket?endpoint=http://h/path"),
                "no path",
            ),
            (
                format!("s3://A:{SECRET}@bucket?endpoint=http://u:K7MDENG@h"),
                "credentials",
            ),
            (
                format!("s3://A:{SECRET}@bucket?endpoint=http://u:{SECRET}@h"),
                "not shown",
            ),
            (format!("s3://A:{SECRET}@bucket?region=eu%20west"), "region"),
            (
                format!("s3://A:{SECRET}@bucket?path_style=maybe"),
                "path_style",
            ),
            (format!("s3://A:{SECRET}@bucket/a//b"), "prefix"),
            (format!("s3://A:{SECRET}@bucket/../b"), "prefix"),
            (format!("s3://A:{SECRET}@bucket#x"), "fragment"),
            (format!("s3://A:{SECRET}%zz@bucket"), "percent"),
        ];
        for (url, needle) in cases {
            let e = S3Config::from_url(&url, &no_env).unwrap_err();
            assert!(e.contains(needle), "{url}: {e}");
            assert!(!e.contains(SECRET) && !e.contains("K7MDENG"), "{url}: {e}");
        }
        let e = S3Config::from_url("s3://bucket", &env(&[("AWS_SECRET_ACCESS_KEY", SECRET)]))
            .unwrap_err();
        assert!(
            e.contains("AWS_ACCESS_KEY_ID is set") || e.contains("AWS_ACCESS_KEY_ID is not"),
            "{e}"
        );
        assert!(!e.contains(SECRET));
        let e = S3Config::from_url(
            "s3://bucket",
            &env(&[
                ("AWS_ACCESS_KEY_ID", "AKIAX"),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
                ("S3_ENDPOINT_URL", "nope"),
            ]),
        )
        .unwrap_err();
        assert!(e.starts_with("S3_ENDPOINT_URL"), "{e}");
    }
}
