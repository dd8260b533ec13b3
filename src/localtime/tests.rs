#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Bucket boundaries around Europe/Paris's DST changes of 2026 (last Sundays of March and
//! October, at 01:00 UTC), from the real TZif file and from the equivalent POSIX rule.

use super::*;

const PARIS_FILE: &str = "/usr/share/zoneinfo/Europe/Paris";
const PARIS_RULE: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

fn ms(rfc3339: &str) -> i64 {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn paris_file() -> LocalTz {
    let bytes = std::fs::read(PARIS_FILE).unwrap_or_else(|e| {
        panic!("{PARIS_FILE}: {e}: install the zone files (apt-get install tzdata, or tools/install-test-deps.sh)")
    });
    LocalTz::from_tzif("Europe/Paris", &bytes).unwrap()
}

/// Both ways of having Paris, so every test runs on each.
fn paris() -> Vec<LocalTz> {
    vec![paris_file(), LocalTz::from_posix_rule(PARIS_RULE).unwrap()]
}

fn labels(z: &LocalTz, bounds: &[i64]) -> Vec<String> {
    bounds[..bounds.len() - 1]
        .iter()
        .map(|b| z.rfc3339(*b))
        .collect()
}

/// Hour buckets of the local day `ms` is in.
fn hours_of_day(z: &LocalTz, at: i64) -> Vec<i64> {
    let end = z.next_day_start(at);
    let mut b = vec![z.day_start(at)];
    while *b.last().unwrap() < end {
        let n = z.next_hour_start(*b.last().unwrap());
        b.push(n);
    }
    b
}

#[test]
fn offsets_change_at_one_utc() {
    for z in paris() {
        assert_eq!(z.offset_ms(ms("2026-03-29T00:59:59Z")), HOUR_MS, "{z:?}");
        assert_eq!(z.offset_ms(ms("2026-03-29T01:00:00Z")), 2 * HOUR_MS);
        assert_eq!(z.offset_ms(ms("2026-10-25T00:59:59Z")), 2 * HOUR_MS);
        assert_eq!(z.offset_ms(ms("2026-10-25T01:00:00Z")), HOUR_MS);
    }
}

#[test]
fn spring_day_has_23_hours() {
    for z in paris() {
        let noon = ms("2026-03-29T10:00:00Z");
        assert_eq!(z.day_start(noon), ms("2026-03-28T23:00:00Z"));
        assert_eq!(z.next_day_start(noon), ms("2026-03-29T22:00:00Z"));
        let b = hours_of_day(&z, noon);
        assert_eq!(b.len() - 1, 23);
        let l = labels(&z, &b);
        assert_eq!(l[0], "2026-03-29T00:00:00+01:00");
        assert_eq!(l[1], "2026-03-29T01:00:00+01:00");
        assert_eq!(l[2], "2026-03-29T03:00:00+02:00");
        assert_eq!(z.local_hour(b[2]), 3);
        assert_eq!(z.local_hour(b[1]), 1);
        assert_eq!(l[22], "2026-03-29T23:00:00+02:00");
        assert!(b.windows(2).all(|w| w[1] - w[0] == HOUR_MS));
        // The instant just before the jump and the jump itself are in different buckets.
        let before = z.hour_start(ms("2026-03-29T00:59:59Z"));
        let after = z.hour_start(ms("2026-03-29T01:00:00Z"));
        assert_eq!((before, after), (b[1], b[2]));
        assert_eq!(z.date_label(b[0]), "2026-03-29");
        assert_eq!(z.date_label(b[0] - 1), "2026-03-28");
    }
}

#[test]
fn autumn_day_has_25_hours_with_two_two_oclocks() {
    for z in paris() {
        let noon = ms("2026-10-25T11:00:00Z");
        assert_eq!(z.day_start(noon), ms("2026-10-24T22:00:00Z"));
        assert_eq!(z.next_day_start(noon), ms("2026-10-25T23:00:00Z"));
        let b = hours_of_day(&z, noon);
        assert_eq!(b.len() - 1, 25);
        let l = labels(&z, &b);
        assert_eq!(l[2], "2026-10-25T02:00:00+02:00");
        assert_eq!(l[3], "2026-10-25T02:00:00+01:00");
        assert_eq!(l[4], "2026-10-25T03:00:00+01:00");
        assert_eq!(l[24], "2026-10-25T23:00:00+01:00");
        // 02:30 the first time and 02:30 the second time: two buckets, an hour apart.
        assert_eq!(z.hour_start(ms("2026-10-25T00:30:00Z")), b[2]);
        assert_eq!(z.hour_start(ms("2026-10-25T01:30:00Z")), b[3]);
    }
}

#[test]
fn last_days_and_hours_span_the_change() {
    for z in paris() {
        let now = ms("2026-03-30T08:15:00Z");
        let days = z.last_days(now, 3);
        assert_eq!(
            days,
            vec![
                ms("2026-03-27T23:00:00Z"),
                ms("2026-03-28T23:00:00Z"),
                ms("2026-03-29T22:00:00Z"),
                ms("2026-03-30T22:00:00Z"),
            ]
        );
        let lens: Vec<i64> = days.windows(2).map(|w| (w[1] - w[0]) / HOUR_MS).collect();
        assert_eq!(lens, vec![24, 23, 24]);
        let hours = z.last_hours(now, 48);
        assert_eq!(hours.len(), 49);
        assert_eq!(hours[47], ms("2026-03-30T08:00:00Z"));
        assert_eq!(hours[48], ms("2026-03-30T09:00:00Z"));
        assert!(hours.windows(2).all(|w| w[1] - w[0] == HOUR_MS));
        let l = labels(&z, &hours);
        assert!(!l.iter().any(|s| s.starts_with("2026-03-29T02:")), "{l:?}");

        let now = ms("2026-10-26T08:15:00Z");
        let days = z.last_days(now, 2);
        let lens: Vec<i64> = days.windows(2).map(|w| (w[1] - w[0]) / HOUR_MS).collect();
        assert_eq!(lens, vec![25, 24]);
        let l = labels(&z, &z.last_hours(now, 48));
        let twos = l.iter().filter(|s| s.starts_with("2026-10-25T02:")).count();
        assert_eq!(twos, 2, "{l:?}");
    }
}

#[test]
fn days_between_covers_both_ends() {
    for z in paris() {
        let b = z.days_between(ms("2026-10-24T21:59:00Z"), ms("2026-10-25T22:59:59Z"));
        assert_eq!(
            b,
            vec![
                ms("2026-10-23T22:00:00Z"),
                ms("2026-10-24T22:00:00Z"),
                ms("2026-10-25T23:00:00Z"),
            ]
        );
    }
}

#[test]
fn daily_hour_in_local_time_across_the_changes() {
    for z in paris() {
        // An ordinary day: 03:00 local is 02:00 UTC in winter.
        let t = z.next_at_hour(ms("2026-03-27T12:00:00Z"), 3);
        assert_eq!(t, ms("2026-03-28T02:00:00Z"));
        // Spring: 02:00 does not exist; the run is at the jump (03:00+02:00).
        assert_eq!(
            z.next_at_hour(ms("2026-03-28T12:00:00Z"), 2),
            ms("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            z.next_at_hour(ms("2026-03-28T12:00:00Z"), 3),
            ms("2026-03-29T01:00:00Z")
        );
        // Summer: 03:00 local is 01:00 UTC.
        assert_eq!(
            z.next_at_hour(ms("2026-03-29T01:00:00Z"), 3),
            ms("2026-03-30T01:00:00Z")
        );
        // Autumn: 02:00 happens twice; only the first counts, the next is tomorrow's.
        let first = z.next_at_hour(ms("2026-10-24T12:00:00Z"), 2);
        assert_eq!(first, ms("2026-10-25T00:00:00Z"));
        assert_eq!(z.next_at_hour(first, 2), ms("2026-10-26T01:00:00Z"));
        // Midnight, strictly after.
        let m = z.next_at_hour(ms("2026-10-25T23:00:00Z"), 0);
        assert_eq!(m, ms("2026-10-26T23:00:00Z"));
    }
}

#[test]
fn utc_is_plain_arithmetic() {
    let z = LocalTz::utc();
    let t = ms("2026-06-01T13:45:10Z");
    assert_eq!(z.day_start(t), ms("2026-06-01T00:00:00Z"));
    assert_eq!(z.hour_start(t), ms("2026-06-01T13:00:00Z"));
    assert_eq!(z.rfc3339(z.hour_start(t)), "2026-06-01T13:00:00Z");
    assert_eq!(z.next_at_hour(t, 3), ms("2026-06-02T03:00:00Z"));
    assert_eq!(
        z.next_at_hour(ms("2026-06-01T02:00:00Z"), 3),
        ms("2026-06-01T03:00:00Z")
    );
    assert_eq!(z.date_label(t), "2026-06-01");
}

#[test]
fn half_hour_zone_labels() {
    let z = LocalTz::from_posix_rule("IST-5:30").unwrap();
    let t = ms("2026-06-01T13:45:10Z"); // 19:15:10 local
    assert_eq!(z.hour_start(t), ms("2026-06-01T13:30:00Z"));
    assert_eq!(z.rfc3339(z.hour_start(t)), "2026-06-01T19:00:00+05:30");
    assert_eq!(z.day_start(t), ms("2026-05-31T18:30:00Z"));
    let neg = LocalTz::from_posix_rule("NST3:30").unwrap();
    assert!(neg.rfc3339(t).ends_with("-03:30"), "{}", neg.rfc3339(t));
}

fn dirs() -> Vec<PathBuf> {
    vec![PathBuf::from("/usr/share/zoneinfo")]
}

#[test]
fn names_are_looked_up_in_the_database() {
    assert!(std::path::Path::new(PARIS_FILE).is_file(), "install tzdata");
    let z = LocalTz::load("Europe/Paris", &dirs()).unwrap();
    assert_eq!(z.name(), "Europe/Paris");
    assert_eq!(z.offset_ms(ms("2026-07-01T00:00:00Z")), 2 * HOUR_MS);
    for bad in [
        "Not/AZone",
        "Paris",
        "../../etc/passwd",
        "Europe/../../etc/hostname",
    ] {
        let e = LocalTz::load(bad, &dirs()).unwrap_err();
        assert!(e.is_config_error(), "{bad}: {e}");
        assert!(matches!(e, TzError::Unknown { .. }), "{bad}: {e}");
    }
    // A file that is not TZif.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("Fake")).unwrap();
    std::fs::write(tmp.path().join("Fake/Zone"), b"not a zone file").unwrap();
    let e = LocalTz::load("Fake/Zone", &[tmp.path().to_path_buf()]).unwrap_err();
    assert!(matches!(e, TzError::BadFile { .. }), "{e}");
    // A POSIX rule needs no file; UTC neither.
    let z = LocalTz::load(PARIS_RULE, &[]).unwrap();
    assert_eq!(z.offset_ms(ms("2026-07-01T00:00:00Z")), 2 * HOUR_MS);
    assert_eq!(LocalTz::load("UTC", &[]).unwrap().offset_ms(0), 0);
}

#[test]
fn no_database_means_utc_with_a_warning() {
    let sys = System {
        zoneinfo: vec![PathBuf::from("/nonexistent/zoneinfo")],
        localtime: PathBuf::from("/nonexistent/localtime"),
        timezone: PathBuf::from("/nonexistent/timezone"),
    };
    let e = LocalTz::load("Europe/Paris", &sys.zoneinfo).unwrap_err();
    assert!(!e.is_config_error(), "{e}");
    let (z, warning) = resolve(Some("Europe/Paris"), None, &sys).unwrap();
    assert_eq!(z.name(), "UTC");
    let w = warning.unwrap();
    assert!(w.contains("KIOSK_TZ") && w.contains("UTC"), "{w}");
    // Nothing configured anywhere: UTC, quietly.
    assert_eq!(resolve(None, None, &sys).unwrap(), (LocalTz::utc(), None));
    // An unknown name where a database exists is refused.
    let real = System {
        zoneinfo: dirs(),
        ..sys
    };
    assert!(resolve(Some("Not/AZone"), None, &real).is_err());
}

#[test]
fn the_system_zone_from_tz_localtime_or_timezone() {
    let tmp = tempfile::tempdir().unwrap();
    let zi = tmp.path().join("usr/share/zoneinfo");
    std::fs::create_dir_all(zi.join("Europe")).unwrap();
    std::fs::copy(PARIS_FILE, zi.join("Europe/Paris")).unwrap();
    let etc = tmp.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let sys = System {
        zoneinfo: vec![zi.clone()],
        localtime: etc.join("localtime"),
        timezone: etc.join("timezone"),
    };
    // TZ wins, with or without its leading ':'.
    for tz in ["Europe/Paris", ":Europe/Paris"] {
        let (z, w) = resolve(None, Some(tz), &sys).unwrap();
        assert_eq!((z.name(), w), ("Europe/Paris", None));
    }
    let (z, w) = resolve(None, Some("Mars/Olympus"), &sys).unwrap();
    assert_eq!(z.name(), "UTC");
    assert!(w.unwrap().contains("TZ"));
    // /etc/timezone alone.
    std::fs::write(&sys.timezone, "Europe/Paris\n").unwrap();
    assert_eq!(resolve(None, None, &sys).unwrap().0.name(), "Europe/Paris");
    // The /etc/localtime link names the zone (and wins over /etc/timezone).
    std::fs::write(&sys.timezone, "Etc/UTC\n").unwrap();
    std::os::unix::fs::symlink("../usr/share/zoneinfo/Europe/Paris", &sys.localtime).unwrap();
    let (z, w) = resolve(None, None, &sys).unwrap();
    assert_eq!((z.name(), w), ("Europe/Paris", None));
    // KIOSK_TZ wins over all of it.
    let (z, _) = resolve(Some("UTC"), Some("Europe/Paris"), &sys).unwrap();
    assert_eq!(z.name(), "UTC");
}
