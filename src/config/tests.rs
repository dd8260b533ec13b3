//! The configuration parser: defaults, every refusal naming its variable, secrets kept
//! out of `Debug` and errors, all problems reported at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

fn vars(pairs: &[(&str, &str)]) -> Vars {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_are_valid() {
    let c = Config::from_vars(&vars(&[])).unwrap();
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(c.uploads_dir, PathBuf::from("./data/uploads"));
    assert_eq!(c.retention_days, 30);
    assert!(c.ovh.is_none() && c.remote_storage.is_none());
}

#[test]
fn bad_values_name_their_variable() {
    for (k, v) in [
        ("KIOSK_LISTEN", "nowhere"),
        ("RETENTION_DAYS", "0"),
        ("RETENTION_DAYS", "abc"),
        ("MAX_CAPTURE_BYTES", "12XB"),
        ("MAX_CAPTURE_BYTES", "10"),
        ("REMOTE_DATABASE_URL", "mysql://x"),
        ("REMOTE_STORAGE_URL", "ftp://x/"),
        ("PUBLIC_BASE_URL", "vps/uploads"),
        ("KIOSK_CORS_ORIGINS", "http://a/b"),
        ("KIOSK_ID", "bad id"),
        ("KIOSK_LOG", "[[["),
    ] {
        let e = Config::from_vars(&vars(&[(k, v)])).unwrap_err();
        assert!(e.to_string().starts_with(k), "{k}={v}: {e}");
    }
    // A partial OVH configuration names the first missing variable.
    let e = Config::from_vars(&vars(&[("OVH_APP_KEY", "only-one")])).unwrap_err();
    assert!(e.to_string().starts_with("OVH_APP_SECRET: is unset"), "{e}");
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let c = Config::from_vars(&vars(&[
        ("REMOTE_DATABASE_URL", "postgresql://u:hunter2pw@db/x"),
        ("REMOTE_STORAGE_URL", "https://kiosk:davpass99@vps/uploads"),
        ("ADMIN_API_KEY", "admin-key-0123456789"),
    ]))
    .unwrap();
    let dbg = format!("{c:?}");
    for s in ["hunter2pw", "davpass99", "admin-key-0123456789"] {
        assert!(!dbg.contains(s), "{s} leaked in {dbg}");
    }
    assert_eq!(
        c.remote_storage.unwrap().display_url(),
        "https://vps/uploads/"
    );
    let e = Config::from_vars(&vars(&[("REMOTE_DATABASE_URL", "pg://u:hunter2pw@x")])).unwrap_err();
    assert!(!e.to_string().contains("hunter2pw"));
}

#[test]
fn s3_storage() {
    let c = Config::from_vars(&vars(&[
        (
            "REMOTE_STORAGE_URL",
            "s3://kiosk-photos/captures?endpoint=https://s3.fr-par.scw.cloud&region=fr-par",
        ),
        ("AWS_ACCESS_KEY_ID", "SCWEXAMPLEKEY0000000"),
        ("AWS_SECRET_ACCESS_KEY", "s3-secret/With+Slash99"),
    ]))
    .unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("s3-secret/With+Slash99"), "secret in {dbg}");
    let Some(RemoteStorage::S3(s3)) = &c.remote_storage else {
        panic!("not S3: {dbg}");
    };
    assert_eq!(s3.bucket, "kiosk-photos");
    assert_eq!(s3.prefix, "captures");
    assert!(s3.path_style);
    assert_eq!(
        c.remote_storage.as_ref().unwrap().display_url(),
        "s3://kiosk-photos/captures?endpoint=https://s3.fr-par.scw.cloud&region=fr-par&path_style=true"
    );

    // Credentials in the URL; no Debug, display or error shows them.
    let c = Config::from_vars(&vars(&[(
        "REMOTE_STORAGE_URL",
        "s3://AKIAURLKEY00000:url-secret-42@bucket-1",
    )]))
    .unwrap();
    let r = c.remote_storage.unwrap();
    assert!(!format!("{r:?}").contains("url-secret-42"));
    assert!(!r.display_url().contains("url-secret-42"));
    assert_eq!(
        r.display_url(),
        "s3://bucket-1?endpoint=https://s3.us-east-1.amazonaws.com&region=us-east-1&path_style=false"
    );

    // No credentials at all.
    let e = Config::from_vars(&vars(&[("REMOTE_STORAGE_URL", "s3://bucket-1/p")])).unwrap_err();
    assert!(e.to_string().starts_with("REMOTE_STORAGE_URL: "), "{e}");
    assert!(e.to_string().contains("AWS_ACCESS_KEY_ID"), "{e}");
    // Bad values never echo the secret.
    for url in [
        "s3://AKIAX:url-secret-42@b",
        "s3://AKIAX:url-secret-42@bucket-1?bogus=1",
        "s3://AKIAX:url-secret-42@bucket-1?endpoint=ftp://h",
    ] {
        let e = Config::from_vars(&vars(&[("REMOTE_STORAGE_URL", url)])).unwrap_err();
        assert!(e.to_string().starts_with("REMOTE_STORAGE_URL: "), "{e}");
        assert!(!e.to_string().contains("url-secret-42"), "{e}");
    }
}

#[test]
fn heartbeat_interval_is_checked() {
    let secs = |v: &str| {
        Config::from_vars(&vars(&[("KIOSK_HEARTBEAT_SECS", v)]))
            .map(|c| c.heartbeat_interval.as_secs())
    };
    assert_eq!(secs("").unwrap(), DEFAULT_HEARTBEAT_SECS);
    assert_eq!(secs("1").unwrap(), 1);
    assert_eq!(secs(" 300 ").unwrap(), 300);
    for bad in ["0", "abc", "-5", "86401"] {
        let e = secs(bad).unwrap_err().to_string();
        assert!(e.starts_with("KIOSK_HEARTBEAT_SECS: "), "{bad}: {e}");
    }
}

#[test]
fn every_bad_value_is_reported_at_once() {
    let (c, errors) = Config::check(&vars(&[
        ("RETENTION_DAYS", "abc"),
        ("KIOSK_LISTEN", "nonsense"),
        ("KIOSK_HEARTBEAT_SECS", "0"),
        ("MAX_CAPTURE_BYTES", "12XB"),
    ]));
    let named: Vec<&str> = errors.iter().map(|e| e.var.as_str()).collect();
    assert_eq!(
        named,
        [
            "KIOSK_LISTEN",
            "RETENTION_DAYS",
            "MAX_CAPTURE_BYTES",
            "KIOSK_HEARTBEAT_SECS"
        ]
    );
    // The rest of the configuration stands, bad values replaced by their defaults.
    assert_eq!(c.retention_days, DEFAULT_RETENTION_DAYS);
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
}

#[test]
fn host_names_are_resolved_once() {
    let c = Config::from_vars(&vars(&[("KIOSK_LISTEN", "localhost:8123")])).unwrap();
    assert_eq!(c.listen.port(), 8123);
    assert!(c.listen.ip().is_loopback(), "{}", c.listen);
    let e = Config::from_vars(&vars(&[("HEALTH_LISTEN", "no-such-host.invalid:80")]))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("HEALTH_LISTEN: cannot resolve"), "{e}");
    let e = Config::from_vars(&vars(&[("KIOSK_LISTEN", "localhost:99999")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("port"), "{e}");
}

#[test]
fn sizes_print_as_written() {
    for (n, text) in [
        (25 * 1024 * 1024, "25MB"),
        (512 * 1024, "512KB"),
        (1 << 30, "1GB"),
        (1500, "1500B"),
        (0, "0B"),
        (1024 * 1024 + 1024, "1025KB"),
    ] {
        assert_eq!(format_size(n), text);
        assert_eq!(parse_size(text).unwrap(), n, "{text}");
    }
    for n in [1u64, 1023, 1024, 65_537, 26_214_400, 3 << 40, u64::MAX] {
        assert_eq!(parse_size(&format_size(n)).unwrap(), n, "{n}");
    }
}

#[test]
fn sizes() {
    assert_eq!(parse_size("25MB").unwrap(), 25 * 1024 * 1024);
    assert_eq!(parse_size("512 k").unwrap(), 512 * 1024);
    assert_eq!(parse_size("100").unwrap(), 100);
    assert!(parse_size("-1").is_err());
    assert!(parse_size("99999999999999999999G").is_err());
}

#[test]
fn admin_listen_and_kiosk_tz() {
    let c = Config::from_vars(&vars(&[
        ("ADMIN_LISTEN", "localhost:8100"),
        ("KIOSK_TZ", "Europe/Paris"),
    ]))
    .unwrap();
    assert_eq!(c.admin_listen.map(|a| a.port()), Some(8100));
    assert_eq!(c.kiosk_tz.name(), "Europe/Paris");
    assert!(c.kiosk_tz_warning.is_none());
    let v = view(&c, None, Keys::AsConfigured);
    assert_eq!(v.read_only.kiosk_tz, "Europe/Paris");
    assert_eq!(
        v.read_only.admin_listen.as_deref(),
        Some(c.admin_listen.unwrap().to_string().as_str())
    );
    // KIOSK_TZ wins over TZ; TZ is the default.
    let c = Config::from_vars(&vars(&[("TZ", ":Europe/Paris")])).unwrap();
    assert_eq!(c.kiosk_tz.name(), "Europe/Paris");
    let c = Config::from_vars(&vars(&[("TZ", "Europe/Paris"), ("KIOSK_TZ", "UTC")])).unwrap();
    assert_eq!(c.kiosk_tz.name(), "UTC");
    for (k, v) in [
        ("ADMIN_LISTEN", "nowhere"),
        ("ADMIN_LISTEN", "127.0.0.1:99999"),
        ("KIOSK_TZ", "Not/AZone"),
        ("KIOSK_TZ", "../../etc/passwd"),
    ] {
        let e = Config::from_vars(&vars(&[(k, v)])).unwrap_err();
        assert!(e.to_string().starts_with(k), "{k}={v}: {e}");
    }
    // Both problems at once, with the others.
    let (_, errors) = Config::check(&vars(&[
        ("ADMIN_LISTEN", "nowhere"),
        ("KIOSK_TZ", "Not/AZone"),
        ("RETENTION_DAYS", "0"),
    ]));
    let names: Vec<&str> = errors.iter().map(|e| e.var.as_str()).collect();
    assert_eq!(names, vec!["RETENTION_DAYS", "ADMIN_LISTEN", "KIOSK_TZ"]);
}
