//! The kiosk's local time (`KIOSK_TZ`): which zone, and the calendar arithmetic the
//! statistics, the daily cleanup and the Excel export do in it.
//!
//! Zones come from the system's tz database (TZif files under `/usr/share/zoneinfo`),
//! parsed by `tz-rs` (no dependencies, ~tens of KB) rather than bundled in the binary: a
//! kiosk image that has no tz database can give a POSIX rule instead
//! (`KIOSK_TZ=CET-1CEST,M3.5.0,M10.5.0/3`), and a zone that cannot be loaded there falls
//! back to UTC with a warning, never a refusal to start. With a database present, a name it
//! does not hold is a configuration error.
//!
//! Days and hours are wall-clock ones: a local day can last 23 or 25 hours, and hour
//! buckets are real hours labelled with the local time and offset in force (the autumn
//! night has two "02:00", `+02:00` then `+01:00`; the spring one none).

use std::path::{Path, PathBuf};
use std::sync::Arc;

const SECOND_MS: i64 = 1_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// Where TZif files are looked for, in order (`TZDIR` first when set).
pub const ZONEINFO_DIRS: &[&str] = &[
    "/usr/share/zoneinfo",
    "/usr/lib/zoneinfo",
    "/usr/share/lib/zoneinfo",
    "/etc/zoneinfo",
];

/// Largest TZif file read (real ones are a few KB).
const MAX_TZIF_BYTES: u64 = 256 * 1024;

/// Why a zone could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TzError {
    /// The name is not a zone of the database that is there (a configuration error).
    #[error("'{name}' is not a time zone of the tz database in {dir} (an IANA name such as Europe/Paris, or a POSIX rule such as CET-1CEST,M3.5.0,M10.5.0/3)")]
    Unknown { name: String, dir: String },
    /// There is no tz database to look the name up in (a warning: UTC is used).
    #[error("this system has no time-zone database (looked in {dirs}) to find '{name}' in; install the zone files (Debian: tzdata) or give a POSIX rule such as CET-1CEST,M3.5.0,M10.5.0/3")]
    NoDatabase { name: String, dirs: String },
    /// The file is there but is not a usable TZif file.
    #[error("the zone file {path} cannot be used: {reason}")]
    BadFile { path: String, reason: String },
}

impl TzError {
    /// Whether start-up must stop (else: a warning and UTC).
    pub fn is_config_error(&self) -> bool {
        matches!(self, TzError::Unknown { .. } | TzError::BadFile { .. })
    }
}

/// A time zone with its name: what `KIOSK_TZ` (or the system) chose.
#[derive(Clone)]
pub struct LocalTz {
    name: Arc<str>,
    zone: Arc<tz::TimeZone>,
}

impl std::fmt::Debug for LocalTz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LocalTz").field(&self.name).finish()
    }
}

impl PartialEq for LocalTz {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Default for LocalTz {
    fn default() -> Self {
        LocalTz::utc()
    }
}

/// Names that mean UTC and need no database.
fn is_utc_name(name: &str) -> bool {
    matches!(
        name,
        "UTC" | "Etc/UTC" | "Etc/UCT" | "UCT" | "Zulu" | "Etc/Zulu" | "Etc/Universal" | "Universal"
    )
}

/// A plausible IANA name: `Area/Location` made of letters, digits, `_`, `-`, `+`, never
/// a path that climbs out of the database.
fn is_zone_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('/')
        && name.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-+".contains(c))
        })
}

impl LocalTz {
    pub fn utc() -> LocalTz {
        LocalTz {
            name: Arc::from("UTC"),
            zone: Arc::new(tz::TimeZone::utc()),
        }
    }

    /// A zone from the bytes of a TZif file.
    pub fn from_tzif(name: &str, bytes: &[u8]) -> Result<LocalTz, String> {
        let zone = tz::TimeZone::from_tz_data(bytes).map_err(|e| e.to_string())?;
        Ok(LocalTz {
            name: Arc::from(name),
            zone: Arc::new(zone),
        })
    }

    /// A zone from a POSIX TZ rule (`CET-1CEST,M3.5.0,M10.5.0/3`), no file needed.
    pub fn from_posix_rule(rule: &str) -> Option<LocalTz> {
        // A rule has an offset (a digit), and a `/` only in its transition times (after
        // the first `,`): anything else is a name, or a path.
        let head = rule.split(',').next().unwrap_or(rule);
        if !rule.chars().any(|c| c.is_ascii_digit()) || head.contains('/') || rule.starts_with(':')
        {
            return None;
        }
        let no_files = tz::TimeZoneSettings::new(&[], |_| Err("no files".into()));
        let zone = no_files.parse_posix_tz(rule).ok()?;
        Some(LocalTz {
            name: Arc::from(rule),
            zone: Arc::new(zone),
        })
    }

    /// `name` (an IANA name, or a POSIX rule) looked up in `dirs`.
    pub fn load(name: &str, dirs: &[PathBuf]) -> Result<LocalTz, TzError> {
        if is_utc_name(name) {
            return Ok(LocalTz {
                name: Arc::from(name),
                zone: Arc::new(tz::TimeZone::utc()),
            });
        }
        if is_zone_name(name) {
            for dir in dirs {
                let path = dir.join(name);
                if path.is_file() {
                    return read_tzif(name, &path);
                }
            }
        }
        if let Some(z) = LocalTz::from_posix_rule(name) {
            return Ok(z);
        }
        match dirs.iter().find(|d| d.is_dir()) {
            Some(dir) => Err(TzError::Unknown {
                name: name.to_string(),
                dir: dir.display().to_string(),
            }),
            None => Err(TzError::NoDatabase {
                name: name.to_string(),
                dirs: dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The zone's name as configured (`Europe/Paris`, `UTC`, or the POSIX rule).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The offset from UTC in force at `ms`, in milliseconds.
    pub fn offset_ms(&self, ms: i64) -> i64 {
        self.zone
            .find_local_time_type(ms.div_euclid(SECOND_MS))
            .map_or(0, |t| i64::from(t.ut_offset()) * SECOND_MS)
    }

    /// The wall-clock reading at `ms`, as milliseconds of a UTC-like timeline.
    pub fn wall_ms(&self, ms: i64) -> i64 {
        ms + self.offset_ms(ms)
    }

    /// The first instant whose wall-clock reading is `wall`, or, when the clock jumps over
    /// it (a spring-forward gap), the instant of the jump. Assumes at most one offset
    /// change within a day of it, as every real zone has.
    pub fn at_wall(&self, wall: i64) -> i64 {
        let before = wall - self.offset_ms(wall - DAY_MS);
        let after = wall - self.offset_ms(wall + DAY_MS);
        let (lo, hi) = (before.min(after), before.max(after));
        for c in [lo, hi] {
            if self.wall_ms(c) == wall {
                return c;
            }
        }
        // In a gap: the smallest instant at or past the wall time (the wall clock only
        // goes forward across a gap).
        let (mut lo, mut hi) = (lo, hi);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.wall_ms(mid) >= wall {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    /// The start of the local day `ms` is in.
    pub fn day_start(&self, ms: i64) -> i64 {
        let midnight = self.wall_ms(ms).div_euclid(DAY_MS) * DAY_MS;
        self.at_wall(midnight).min(ms)
    }

    /// The start of the local day after the one `ms` is in.
    pub fn next_day_start(&self, ms: i64) -> i64 {
        let midnight = self.wall_ms(ms).div_euclid(DAY_MS) * DAY_MS;
        self.at_wall(midnight + DAY_MS).max(ms + 1)
    }

    /// The start of the hour bucket `ms` is in: the last instant at or before it whose
    /// wall clock shows a whole hour.
    pub fn hour_start(&self, ms: i64) -> i64 {
        ms - self.wall_ms(ms).rem_euclid(HOUR_MS)
    }

    /// The start of the hour bucket after the one starting at `start`.
    pub fn next_hour_start(&self, start: i64) -> i64 {
        let next = self.hour_start(start + HOUR_MS);
        if next > start {
            next
        } else {
            start + HOUR_MS
        }
    }

    /// Bounds of the last `n` local days up to the one `now_ms` is in: `n + 1` instants,
    /// oldest first, the last one the end of today.
    pub fn last_days(&self, now_ms: i64, n: usize) -> Vec<i64> {
        let mut starts = vec![self.day_start(now_ms)];
        for _ in 1..n {
            let prev = self.day_start(starts[starts.len() - 1] - 1);
            starts.push(prev);
        }
        starts.reverse();
        starts.push(self.next_day_start(now_ms));
        starts
    }

    /// Bounds of the last `n` hour buckets up to the one `now_ms` is in (`n + 1`).
    pub fn last_hours(&self, now_ms: i64, n: usize) -> Vec<i64> {
        let this_hour = self.hour_start(now_ms);
        let mut starts = vec![this_hour];
        for _ in 1..n {
            let prev = self.hour_start(starts[starts.len() - 1] - 1);
            starts.push(prev);
        }
        starts.reverse();
        starts.push(self.next_hour_start(this_hour));
        starts
    }

    /// Bounds of every local day from the one `first_ms` is in to the one `last_ms` is in.
    pub fn days_between(&self, first_ms: i64, last_ms: i64) -> Vec<i64> {
        let mut bounds = vec![self.day_start(first_ms)];
        while bounds[bounds.len() - 1] <= last_ms {
            let b = bounds[bounds.len() - 1];
            bounds.push(self.next_day_start(b));
        }
        bounds
    }

    /// The next instant strictly after `after_ms` when the wall clock shows `hour`:00 (on
    /// a day the clock jumps over that hour: the moment of the jump; on a day it shows it
    /// twice: the first time only).
    pub fn next_at_hour(&self, after_ms: i64, hour: u32) -> i64 {
        let mut midnight = self.wall_ms(after_ms).div_euclid(DAY_MS) * DAY_MS - DAY_MS;
        loop {
            let t = self.at_wall(midnight + i64::from(hour.min(23)) * HOUR_MS);
            if t > after_ms {
                return t;
            }
            midnight += DAY_MS;
        }
    }

    /// The hour (0-23) on the local clock at `ms`.
    pub fn local_hour(&self, ms: i64) -> u8 {
        civil(self.wall_ms(ms)).3
    }

    /// `YYYY-MM-DD`: the local date at `ms`.
    pub fn date_label(&self, ms: i64) -> String {
        let (y, m, d, _, _, _) = civil(self.wall_ms(ms));
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// RFC 3339 local date-time with the offset in force (`Z` when it is zero), to the
    /// second: `2026-03-29T03:00:00+02:00`.
    pub fn rfc3339(&self, ms: i64) -> String {
        let off = self.offset_ms(ms) / SECOND_MS;
        let (y, mo, d, h, mi, s) = civil(ms + off * SECOND_MS);
        let zone = if off == 0 {
            "Z".to_string()
        } else {
            let sign = if off < 0 { '-' } else { '+' };
            let a = off.abs();
            format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
        };
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{zone}")
    }
}

/// Year, month, day, hour, minute, second of a UTC-like millisecond reading.
fn civil(ms: i64) -> (i32, u8, u8, u8, u8, u8) {
    match time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(SECOND_MS)) {
        Ok(t) => (
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
        ),
        Err(_) => (1970, 1, 1, 0, 0, 0),
    }
}

fn read_tzif(name: &str, path: &Path) -> Result<LocalTz, TzError> {
    let bad = |reason: String| TzError::BadFile {
        path: path.display().to_string(),
        reason,
    };
    let len = std::fs::metadata(path)
        .map_err(|e| bad(e.to_string()))?
        .len();
    if len > MAX_TZIF_BYTES {
        return Err(bad(format!("{len} bytes is too large for a zone file")));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    LocalTz::from_tzif(name, &bytes).map_err(bad)
}

/// Where the system keeps its zone settings (tests point it at a temp directory).
#[derive(Debug, Clone)]
pub struct System {
    /// Directories holding the tz database, in lookup order.
    pub zoneinfo: Vec<PathBuf>,
    /// `/etc/localtime` (a symbolic link into the database, or a TZif file).
    pub localtime: PathBuf,
    /// `/etc/timezone` (Debian: the zone's name).
    pub timezone: PathBuf,
}

impl System {
    /// The real system's, with `TZDIR` first when it is set.
    pub fn real(tzdir: Option<&str>) -> System {
        let mut zoneinfo: Vec<PathBuf> = tzdir
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .into_iter()
            .collect();
        zoneinfo.extend(ZONEINFO_DIRS.iter().map(PathBuf::from));
        System {
            zoneinfo,
            localtime: PathBuf::from("/etc/localtime"),
            timezone: PathBuf::from("/etc/timezone"),
        }
    }
}

/// The zone the daemon uses: `kiosk_tz` when given (an unknown name is an error; no
/// database: a warning and UTC), else the system's (`TZ`, then `/etc/localtime`, then
/// `/etc/timezone`), else UTC. The second value is a warning to log.
pub fn resolve(
    kiosk_tz: Option<&str>,
    tz_env: Option<&str>,
    sys: &System,
) -> Result<(LocalTz, Option<String>), TzError> {
    if let Some(name) = kiosk_tz {
        return match LocalTz::load(name, &sys.zoneinfo) {
            Ok(z) => Ok((z, None)),
            Err(e) if e.is_config_error() => Err(e),
            Err(e) => Ok((LocalTz::utc(), Some(format!("KIOSK_TZ: {e}; using UTC")))),
        };
    }
    let fallback = |what: &str, e: &dyn std::fmt::Display| {
        Ok((
            LocalTz::utc(),
            Some(format!(
                "the system's time zone ({what}) cannot be used: {e}; using UTC (set KIOSK_TZ)"
            )),
        ))
    };
    if let Some(tz) = tz_env.map(str::trim).filter(|t| !t.is_empty()) {
        let name = tz.strip_prefix(':').unwrap_or(tz);
        if name.starts_with('/') {
            let shown = zone_name_of(Path::new(name)).unwrap_or_else(|| name.to_string());
            return match read_tzif(&shown, Path::new(name)) {
                Ok(z) => Ok((z, None)),
                Err(e) => fallback("TZ", &e),
            };
        }
        return match LocalTz::load(name, &sys.zoneinfo) {
            Ok(z) => Ok((z, None)),
            Err(e) => fallback("TZ", &e),
        };
    }
    if let Ok(target) = std::fs::read_link(&sys.localtime) {
        let name = zone_name_of(&target);
        return match name {
            Some(name) => match LocalTz::load(&name, &sys.zoneinfo) {
                Ok(z) => Ok((z, None)),
                // A link into a database that is not there (or elsewhere): the file it
                // points at, if it can be read at all.
                Err(e) => match read_tzif(&name, &sys.localtime) {
                    Ok(z) => Ok((z, None)),
                    Err(_) => fallback("/etc/localtime", &e),
                },
            },
            None => match read_tzif("localtime", &sys.localtime) {
                Ok(z) => Ok((z, None)),
                Err(e) => fallback("/etc/localtime", &e),
            },
        };
    }
    let etc_name = std::fs::read_to_string(&sys.timezone)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if sys.localtime.is_file() {
        let name = etc_name.clone().unwrap_or_else(|| "localtime".into());
        return match read_tzif(&name, &sys.localtime) {
            Ok(z) => Ok((z, None)),
            Err(e) => fallback("/etc/localtime", &e),
        };
    }
    if let Some(name) = etc_name {
        return match LocalTz::load(&name, &sys.zoneinfo) {
            Ok(z) => Ok((z, None)),
            Err(e) => fallback("/etc/timezone", &e),
        };
    }
    Ok((LocalTz::utc(), None))
}

/// `Europe/Paris` from `/usr/share/zoneinfo/Europe/Paris` (`../usr/share/zoneinfo/…`).
fn zone_name_of(path: &Path) -> Option<String> {
    let s = path.to_str()?;
    let (_, name) = s.rsplit_once("zoneinfo/")?;
    let name = name
        .strip_prefix("posix/")
        .or_else(|| name.strip_prefix("right/"))
        .unwrap_or(name);
    is_zone_name(name).then(|| name.to_string())
}

#[cfg(test)]
mod tests;
