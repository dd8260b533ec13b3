//! Parsing of single values: addresses, sizes, origins, remote URLs (credentials taken
//! apart), the OVH settings. Error texts never include a secret.

use std::net::SocketAddr;

use super::{ConfigError, OvhConfig, RemoteStorage, Secret};

/// `address:port` or `host name:port`. A host name is resolved once, here at start (the
/// first IPv4 address it has, else the first IPv6 one), so a typo stops start-up with the
/// variable's name rather than failing later.
pub(super) fn parse_addr(var: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs;
    if let Ok(a) = v.parse::<SocketAddr>() {
        return Ok(a);
    }
    let not_an_address = || {
        ConfigError::new(
            var,
            format!(
                "'{v}' is not an address:port or host:port (e.g. 127.0.0.1:8000, localhost:8000)"
            ),
        )
    };
    let (host, port) = v.rsplit_once(':').ok_or_else(not_an_address)?;
    let port: u16 = port.parse().map_err(|_| {
        ConfigError::new(
            var,
            format!("'{v}': the port must be a number from 0 to 65535"),
        )
    })?;
    let host_like = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !host_like {
        return Err(not_an_address());
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| ConfigError::new(var, format!("cannot resolve the host name '{host}': {e}")))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| ConfigError::new(var, format!("the host name '{host}' has no address")))
}

/// A whole number of seconds within `range`.
pub(super) fn parse_secs(
    var: &str,
    v: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    match v.trim().parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            var,
            format!(
                "'{v}' is not a whole number of seconds between {} and {}",
                range.start(),
                range.end()
            ),
        )),
    }
}

/// `RETENTION_DAYS`: 1 to 3650.
pub fn parse_retention_days(v: &str) -> Result<u32, String> {
    match v.trim().parse::<u32>() {
        Ok(n) if (1..=3650).contains(&n) => Ok(n),
        _ => Err(format!("'{v}' is not a number of days between 1 and 3650")),
    }
}

/// A byte size: `1048576`, `25MB`, `25 MiB`, `64M`, `1G`, `512k`. Units are binary
/// (a kiosk operator writing "25MB" means "about 25 megabytes"; either reading is fine).
pub fn parse_size(v: &str) -> Result<u64, String> {
    let s = v.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{v}' is not a size (e.g. 25MB, 1048576)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return Err(format!("'{v}' has an unknown unit (use B, KB, MB or GB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{v}' is too large"))
}

/// A byte size the way people write it, in the largest unit that divides it exactly:
/// `25MB`, `512KB`, `1GB`, `1500B`. [`parse_size`] reads it back to the same number.
pub fn format_size(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")];
    for (mult, unit) in UNITS {
        if n >= mult && n.is_multiple_of(mult) {
            return format!("{}{unit}", n / mult);
        }
    }
    format!("{n}B")
}

pub(super) fn parse_origin(o: &str) -> Result<String, String> {
    let rest = o
        .strip_prefix("http://")
        .or_else(|| o.strip_prefix("https://"))
        .ok_or_else(|| format!("origin '{o}' must start with http:// or https://"))?;
    if rest.is_empty() || rest.contains('/') || rest.contains(char::is_whitespace) {
        return Err(format!(
            "origin '{o}' must be scheme://host[:port] with no path"
        ));
    }
    http::HeaderValue::from_str(o)
        .map_err(|_| format!("origin '{o}' is not a valid header value"))?;
    Ok(o.to_string())
}

/// Splits `http(s)://[user:pass@]host[:port]/path/` into the base without credentials
/// (always ending in `/`) and the credentials. Error texts never include the password.
pub(super) fn parse_http_base(
    var: &str,
    v: &str,
) -> Result<(String, Option<String>, Option<Secret>), ConfigError> {
    let (scheme, rest) = if let Some(r) = v.strip_prefix("http://") {
        ("http://", r)
    } else if let Some(r) = v.strip_prefix("https://") {
        ("https://", r)
    } else {
        return Err(ConfigError::new(var, "must start with http:// or https://"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let (creds, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(ConfigError::new(var, "has no host name"));
    }
    let (user, password) = match creds {
        None => (None, None),
        Some(c) => match c.split_once(':') {
            Some((u, p)) => (Some(u.to_string()), Some(Secret::new(p))),
            None => (Some(c.to_string()), None),
        },
    };
    let mut base = format!("{scheme}{host}{path}");
    if base.contains(['?', '#']) {
        return Err(ConfigError::new(
            var,
            "must not have a query string or fragment",
        ));
    }
    if !base.ends_with('/') {
        base.push('/');
    }
    Ok((base, user, password))
}

/// `http(s)://…` (WebDAV) or `s3://…` (S3-compatible; defaults from the `AWS_*`
/// variables through `get`).
pub(super) fn parse_remote_storage(
    v: &str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<RemoteStorage, ConfigError> {
    if v.starts_with("s3://") {
        return crate::sync::s3::S3Config::from_url(v, get)
            .map(RemoteStorage::S3)
            .map_err(|m| ConfigError::new("REMOTE_STORAGE_URL", m));
    }
    if !v.starts_with("http://") && !v.starts_with("https://") {
        return Err(ConfigError::new(
            "REMOTE_STORAGE_URL",
            "must start with http:// or https:// (WebDAV) or s3:// (S3-compatible storage)",
        ));
    }
    let (base, user, password) = parse_http_base("REMOTE_STORAGE_URL", v)?;
    Ok(RemoteStorage::WebDav {
        base,
        user,
        password,
    })
}

pub(super) fn parse_ovh(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<OvhConfig>, ConfigError> {
    let names = [
        "OVH_APP_KEY",
        "OVH_APP_SECRET",
        "OVH_CONSUMER_KEY",
        "SMS_SERVICE_NAME",
        "SMS_SENDER",
    ];
    let values: Vec<Option<String>> = names.iter().map(|n| get(n)).collect();
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    if let Some(i) = values.iter().position(Option::is_none) {
        return Err(ConfigError::new(
            names[i],
            "is unset while other OVH SMS settings are set (set all of OVH_APP_KEY, OVH_APP_SECRET, OVH_CONSUMER_KEY, SMS_SERVICE_NAME, SMS_SENDER, or none)",
        ));
    }
    let [app_key, app_secret, consumer_key, service_name, sender]: [String; 5] =
        match values.into_iter().flatten().collect::<Vec<_>>().try_into() {
            Ok(a) => a,
            Err(_) => return Err(ConfigError::new("OVH_APP_KEY", "incomplete OVH settings")),
        };
    let endpoint = get("OVH_ENDPOINT").unwrap_or_else(|| "ovh-eu".into());
    crate::sms::ovh::endpoint_base(&endpoint)
        .map_err(|_| ConfigError::new("OVH_ENDPOINT", format!("'{endpoint}' is not a known endpoint (ovh-eu, ovh-ca, ovh-us) nor an http(s):// URL")))?;
    if sender.is_empty()
        || sender.chars().count() > 11
        || !sender
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-' || c == '+')
    {
        return Err(ConfigError::new(
            "SMS_SENDER",
            format!("'{sender}' is not a valid sender (1-11 letters or digits)"),
        ));
    }
    if service_name.contains(['/', '?', '#']) {
        return Err(ConfigError::new(
            "SMS_SERVICE_NAME",
            "must be the service name, e.g. sms-ab12345-1",
        ));
    }
    Ok(Some(OvhConfig {
        endpoint,
        app_key,
        app_secret: Secret::new(app_secret),
        consumer_key: Secret::new(consumer_key),
        service_name,
        sender,
    }))
}
