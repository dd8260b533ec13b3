#![allow(clippy::disallowed_methods)]
//! `KIOSK_TZ` against the real binary: with `Europe/Paris`, `/admin/stats` buckets
//! captures by Paris hours and days (a capture ten minutes after Paris midnight is
//! "today" although it is still yesterday in UTC), the Excel export writes Paris times and
//! says so, the daily cleanup is due at 03:00 Paris time; an unknown zone stops start-up
//! with exit 64 naming the variable. Expected local times come from coreutils' `date`
//! (glibc's reading of the same tz database), not from the daemon's code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use support::daemon::{free_port, run_cli, Daemon, ADMIN_KEY};
use support::images::jpeg;

const PARIS: &str = "Europe/Paris";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `date` in Paris: `args` after `TZ=Europe/Paris date`.
fn paris_date(args: &[&str]) -> String {
    let out = std::process::Command::new("date")
        .args(args)
        .env("TZ", PARIS)
        .output()
        .expect("coreutils date");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn hour_label(ms: i64) -> String {
    paris_date(&[
        &format!("-d@{}", ms.div_euclid(1000)),
        "+%Y-%m-%dT%H:00:00%:z",
    ])
}

fn day_label(ms: i64) -> String {
    paris_date(&[&format!("-d@{}", ms.div_euclid(1000)), "+%F"])
}

/// The Paris wall-clock reading of `ms` as an Excel serial (what a local date cell holds).
fn paris_serial(ms: i64) -> f64 {
    let wall = paris_date(&[
        &format!("-d@{}", ms.div_euclid(1000)),
        "+%Y-%m-%dT%H:%M:%SZ",
    ]);
    let t =
        time::OffsetDateTime::parse(&wall, &time::format_description::well_known::Rfc3339).unwrap();
    (t.unix_timestamp() * 1000 + ms.rem_euclid(1000)) as f64 / 86_400_000.0 + 25_569.0
}

async fn admin_get(d: &Daemon, path: &str) -> Value {
    let r = client()
        .get(d.url(path))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn capture(d: &Daemon, seed: u32) -> String {
    let r = client()
        .post(d.url("/api/capture"))
        .header("content-type", "image/jpeg")
        .body(jpeg(32, 24, seed))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// Puts a capture at the time chosen (the catalog is the truth the stats read).
fn set_created(d: &Daemon, id: &str, ms: i64) {
    let db = d.catalog();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let n = db
        .execute(
            "UPDATE captures SET created_ms = ?2 WHERE id = ?1",
            rusqlite::params![id, ms],
        )
        .unwrap();
    assert_eq!(n, 1);
}

fn nonzero(items: &[Value], key: &str) -> BTreeMap<String, i64> {
    items
        .iter()
        .filter(|b| b["captures"].as_i64().unwrap() > 0)
        .map(|b| {
            (
                b[key].as_str().unwrap().to_string(),
                b["captures"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_excel_are_in_paris_time() {
    let d = Daemon::start(&[("KIOSK_TZ", PARIS)]);
    let now = now_ms();
    let midnight: i64 = paris_date(&["-d", "today 00:00", "+%s"])
        .parse::<i64>()
        .unwrap()
        * 1000;
    // Just after and just before Paris midnight (both "yesterday" in UTC), three hours
    // ago, 26 hours ago, and now.
    let times = [
        midnight + 10 * 60_000,
        midnight - 10 * 60_000,
        now - 3 * 3_600_000,
        now - 26 * 3_600_000,
        now,
    ];
    let mut ids = Vec::new();
    for (i, t) in times.iter().enumerate() {
        let id = capture(&d, i as u32).await;
        set_created(&d, &id, *t);
        ids.push(id);
    }

    let v = admin_get(&d, "/admin/stats").await;
    assert_eq!(v["tz"], PARIS, "{v}");
    let per_hour = v["per_hour"].as_array().unwrap();
    assert_eq!(per_hour.len(), 48);
    assert_eq!(per_hour[47]["hour"], hour_label(now).as_str(), "{v}");
    for h in per_hour {
        let label = h["hour"].as_str().unwrap();
        assert_eq!(
            h["local_hour"].as_u64().unwrap(),
            label[11..13].parse::<u64>().unwrap(),
            "{h}"
        );
        assert!(
            label.ends_with(":00:00+01:00") || label.ends_with(":00:00+02:00"),
            "{label}"
        );
    }
    let mut want_hours: BTreeMap<String, i64> = BTreeMap::new();
    let mut want_days: BTreeMap<String, i64> = BTreeMap::new();
    for t in times {
        *want_hours.entry(hour_label(t)).or_default() += 1;
        *want_days.entry(day_label(t)).or_default() += 1;
    }
    assert_eq!(nonzero(per_hour, "hour"), want_hours, "{v:#}");
    let per_day = v["per_day"].as_array().unwrap();
    assert_eq!(per_day.len(), 30);
    assert_eq!(nonzero(per_day, "date"), want_days, "{v:#}");
    let today = day_label(now);
    assert_eq!(v["today"]["date"], today.as_str());
    assert_eq!(per_day[29]["date"], today.as_str());
    // The capture ten minutes after Paris midnight is today's, the one ten minutes before
    // is yesterday's, though both are the same UTC date.
    assert_eq!(day_label(times[0]), today);
    assert_ne!(day_label(times[1]), today);
    assert_eq!(v["today"]["captures"], want_days[&today]);

    // /admin/config says which zone, read-only.
    let cfg = admin_get(&d, "/admin/config").await;
    assert_eq!(cfg["read_only"]["kiosk_tz"], PARIS);

    // Excel: Paris wall-clock times, the zone in the headers, Paris days.
    let r = client()
        .get(d.url("/admin/export/excel"))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let name = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(name.contains(&today.replace('-', "")), "{name}");
    let bytes = r.bytes().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("export.xlsx");
    std::fs::write(&path, &bytes).unwrap();
    use calamine::Reader;
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook(&path).unwrap();
    let sheet = wb.worksheet_range("Captures").unwrap();
    let rows: Vec<_> = sheet.rows().collect();
    assert_eq!(rows.len(), 1 + times.len());
    let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
    assert_eq!(header[1], "created_at (Europe/Paris)");
    assert_eq!(header[8], "synced_at (Europe/Paris)");
    for row in &rows[1..] {
        let id = row[0].to_string();
        let i = ids.iter().position(|x| *x == id).unwrap();
        let cell = match &row[1] {
            calamine::Data::DateTime(dt) => dt.as_f64(),
            other => panic!("not a date: {other:?}"),
        };
        let want = paris_serial(times[i]);
        assert!((cell - want).abs() < 1e-7, "{id}: {cell} vs {want}");
    }
    let stats = wb.worksheet_range("Stats").unwrap();
    let srows: Vec<_> = stats.rows().collect();
    assert_eq!(srows[0][0].to_string(), "date (Europe/Paris)");
    let mut got_days = BTreeMap::new();
    for r in &srows[1..] {
        let serial = match &r[0] {
            calamine::Data::DateTime(dt) => dt.as_f64(),
            other => panic!("not a date: {other:?}"),
        };
        // A local midnight, as a serial: a whole number of days.
        assert!((serial - serial.round()).abs() < 1e-9, "{serial}");
        let day_ms = ((serial.round() - 25_569.0) * 86_400_000.0) as i64;
        let label = time::OffsetDateTime::from_unix_timestamp(day_ms / 1000)
            .unwrap()
            .date()
            .to_string();
        let n = match &r[1] {
            calamine::Data::Float(f) => *f as i64,
            other => panic!("{other:?}"),
        };
        got_days.insert(label, n);
    }
    assert_eq!(got_days, want_days);
}

/// The daily cleanup's next run is 03:00 Paris time (the default `cleanup_hour`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_cleanup_is_due_at_the_local_hour() {
    let d = Daemon::start(&[("KIOSK_TZ", PARIS)]);
    // The cleanup runs once at start; its next run is known once that one is done.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let v = loop {
        let r = client().get(d.url("/health")).send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        if v["checks"]["scheduler"]["next_cleanup"].is_string() {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no next cleanup: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let next = v["checks"]["scheduler"]["next_cleanup"].as_str().unwrap();
    let next = time::OffsetDateTime::parse(next, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp();
    let today_3: i64 = paris_date(&["-d", "today 03:00", "+%s"]).parse().unwrap();
    let tomorrow_3: i64 = paris_date(&["-d", "tomorrow 03:00", "+%s"])
        .parse()
        .unwrap();
    let now_s = now_ms() / 1000;
    let want = if today_3 > now_s { today_3 } else { tomorrow_3 };
    assert_eq!(next, want, "{v:#}");
}

#[test]
fn an_unknown_zone_stops_start_up_naming_kiosk_tz() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data = data.to_str().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    for bad in ["Not/AZone", "Europe/Atlantis", "../../etc/passwd"] {
        let env = [
            ("KIOSK_DATA_DIR", data),
            ("KIOSK_LISTEN", listen.as_str()),
            ("KIOSK_TZ", bad),
        ];
        let (code, _, err) = run_cli(&["serve"], &env, tmp.path());
        assert_eq!(code, 64, "KIOSK_TZ={bad}: {err}");
        assert!(
            err.lines()
                .any(|l| l.contains("configuration error: KIOSK_TZ")),
            "{err}"
        );
        let (code, out, _) = run_cli(&["check-config"], &env, tmp.path());
        assert_eq!(code, 64);
        assert!(
            out.lines()
                .any(|l| l.contains("KIOSK_TZ") && l.contains("INVALID")),
            "{out}"
        );
    }
    // A zone of the database, a POSIX rule, and the system's (TZ) are accepted.
    for (var, good, shown) in [
        ("KIOSK_TZ", PARIS, PARIS),
        (
            "KIOSK_TZ",
            "CET-1CEST,M3.5.0,M10.5.0/3",
            "CET-1CEST,M3.5.0,M10.5.0/3",
        ),
        ("TZ", ":Europe/Paris", PARIS),
    ] {
        let env = [("KIOSK_DATA_DIR", data), (var, good)];
        let (code, out, err) = run_cli(&["check-config"], &env, tmp.path());
        assert_eq!(code, 0, "{var}={good}: {out}{err}");
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with("KIOSK_TZ") && l.trim_end().ends_with(shown)),
            "{var}={good}: {out}"
        );
    }
}
