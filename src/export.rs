//! The Excel export (`GET /admin/export/excel`): one row per capture, and a per-day summary.
//!
//! Built to stay small on a kiosk whatever the catalog's size: captures are read in chunks
//! of [`CHUNK_ROWS`] by `seq` (each chunk a short read, so the touchscreen app's own reads
//! are never held up), handed over a bounded channel to a blocking thread that writes them
//! with rust_xlsxwriter's constant-memory mode (each row goes straight to a temp file under
//! the data directory, not to RAM, nor to a `/tmp` that may be RAM-backed). The finished
//! workbook is a file under `$KIOSK_DATA_DIR/exports/`, unlinked as soon as it is opened
//! for the answer: the open handle is streamed, and nothing is left behind even if the
//! client goes away. No phone numbers ever go into it.
//!
//! Times are written as real Excel date-times in the kiosk's local time (`KIOSK_TZ`):
//! Excel has no time zones, so every date column's header names the zone
//! (`created_at (Europe/Paris)`), and the per-day sheet counts local days.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rust_xlsxwriter::{Color, Format, FormatBorder, Workbook, Worksheet, XlsxError};

use crate::catalog::{self, Bucket, CaptureFilter, CaptureListItem, Catalog, CatalogError};
use crate::localtime::LocalTz;

/// Rows read from SQLite per chunk.
pub const CHUNK_ROWS: usize = 5_000;
/// Excel's row limit, less the header.
pub const MAX_DATA_ROWS: usize = 1_048_575;
/// Leftover export files older than this belong to no running export.
const STALE_EXPORT: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("another export is running; try again when it is done")]
    Busy,
    #[error("{0}")]
    Catalog(#[from] CatalogError),
    #[error("cannot write the workbook: {0}")]
    Xlsx(#[from] XlsxError),
    #[error("cannot write the export file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("export task failed: {0}")]
    Task(String),
}

/// A finished workbook: an open, already unlinked file.
#[derive(Debug)]
pub struct ExportFile {
    pub file: std::fs::File,
    pub len: u64,
    /// Capture rows written.
    pub rows: usize,
    /// Captures left out because the sheet reached Excel's row limit.
    pub truncated: usize,
}

/// The download name: `selfie-kiosk-{kiosk_id}-{YYYYMMDD}.xlsx` (the local date).
pub fn file_name(kiosk_id: &str, now_ms: i64, tz: &LocalTz) -> String {
    let ymd: String = tz
        .date_label(now_ms)
        .chars()
        .filter(|c| *c != '-')
        .collect();
    format!("selfie-kiosk-{kiosk_id}-{ymd}.xlsx")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The exports of one kiosk: where their files go, and the one slot they take turns in.
#[derive(Debug, Clone)]
pub struct Exports {
    catalog: Catalog,
    /// `$KIOSK_DATA_DIR/exports`
    dir: PathBuf,
    /// One export at a time: each holds a writer thread and temp files.
    running: Arc<tokio::sync::Semaphore>,
}

impl Exports {
    pub fn new(catalog: Catalog, data_dir: &Path) -> Exports {
        Exports {
            catalog,
            dir: data_dir.join("exports"),
            running: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// Writes the workbook for the captures `filter` selects, times in `tz`, and returns
    /// it open.
    pub async fn export(
        &self,
        filter: CaptureFilter,
        tz: &LocalTz,
    ) -> Result<ExportFile, ExportError> {
        let _permit = self.running.try_acquire().map_err(|_| ExportError::Busy)?;
        export(&self.catalog, &self.dir, filter, tz.clone()).await
    }
}

async fn export(
    catalog: &Catalog,
    dir: &Path,
    filter: CaptureFilter,
    tz: LocalTz,
) -> Result<ExportFile, ExportError> {
    let dir = dir.to_path_buf();
    let tmp_dir = dir.join("tmp");
    std::fs::create_dir_all(&tmp_dir).map_err(io(&tmp_dir))?;
    {
        let dir = dir.clone();
        let _ = tokio::task::spawn_blocking(move || remove_stale(&dir)).await;
    }
    let path = dir.join(format!("export-{}.xlsx", crate::ids::random_hex(8)));

    // Fixed before the first chunk: what arrives during the export is not half in it.
    let span = filter.clone();
    let zone = tz.clone();
    let (upto, days) = catalog
        .read(move |c| {
            let upto = catalog::max_capture_seq(c)?;
            let ev = span.event_id.as_deref();
            // The local days from the first to the last one with something in them.
            let days = match catalog::activity_span(c, span.from_ms, span.to_ms, ev)? {
                Some((first, last)) => {
                    let bounds = zone.days_between(first, last);
                    catalog::buckets_between_in(c, span.scope, &bounds, ev)?
                }
                None => Vec::new(),
            };
            let days: Vec<Bucket> = days
                .into_iter()
                .filter(|d| d.captures > 0 || d.sms_sent > 0)
                .collect();
            Ok((upto, days))
        })
        .await?;

    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<CaptureListItem>>(1);
    let writer = {
        let (path, tmp_dir) = (path.clone(), tmp_dir.clone());
        tokio::task::spawn_blocking(move || write_workbook(&path, &tmp_dir, rx, &days, &tz))
    };
    let reader = async {
        let mut after = 0i64;
        loop {
            let filter = filter.clone();
            let chunk = catalog
                .read(move |c| catalog::list_captures_chunk(c, &filter, after, upto, CHUNK_ROWS))
                .await?;
            let Some(last) = chunk.last() else {
                return Ok::<(), ExportError>(());
            };
            after = last.seq;
            let full = chunk.len() == CHUNK_ROWS;
            if tx.send(chunk).await.is_err() {
                // The writer stopped (its error is reported below).
                return Ok(());
            }
            if !full {
                return Ok(());
            }
        }
    };
    let read_result = reader.await;
    drop(tx);
    let written = writer
        .await
        .map_err(|e| ExportError::Task(e.to_string()))
        .and_then(|r| r);
    let result = read_result.and(written);
    let (rows, truncated) = match result {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    let file = std::fs::File::open(&path).map_err(io(&path));
    // Unlinked now: the open handle keeps the data until the answer is sent.
    let _ = std::fs::remove_file(&path);
    let file = file?;
    let len = file.metadata().map_err(io(&path))?.len();
    Ok(ExportFile {
        file,
        len,
        rows,
        truncated,
    })
}

/// Removes export files an interrupted run left (a crash, a power cut).
fn remove_stale(dir: &Path) {
    for d in [dir.to_path_buf(), dir.join("tmp")] {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let old = e
                .metadata()
                .ok()
                .filter(|m| m.is_file())
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_EXPORT);
            if old {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Excel's serial date-time (days since 1899-12-30) for Unix milliseconds.
pub fn excel_serial(ms: i64) -> f64 {
    ms as f64 / catalog::DAY_MS as f64 + 25_569.0
}

/// Unix milliseconds of an RFC 3339 date-time (client-supplied `taken_at`).
fn rfc3339_ms(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Column titles; `{tz}` is replaced by the zone's name.
const CAPTURE_COLUMNS: &[(&str, f64)] = &[
    ("id", 36.0),
    ("created_at ({tz})", 24.0),
    ("taken_at ({tz})", 24.0),
    ("background", 24.0),
    ("bytes", 12.0),
    ("width", 8.0),
    ("height", 8.0),
    ("synced", 8.0),
    ("synced_at ({tz})", 24.0),
    ("SMS", 8.0),
];

const STATS_COLUMNS: &[(&str, f64)] = &[
    ("date ({tz})", 20.0),
    ("captures", 12.0),
    ("synced", 12.0),
    ("SMS sent", 12.0),
];

struct Formats {
    header: Format,
    datetime: Format,
    date: Format,
}

fn header_row(
    ws: &mut Worksheet,
    columns: &[(&str, f64)],
    f: &Formats,
    tz: &LocalTz,
) -> Result<(), XlsxError> {
    for (i, (title, width)) in columns.iter().enumerate() {
        let col = i as u16;
        ws.set_column_width(col, *width)?;
        ws.write_string_with_format(0, col, title.replace("{tz}", tz.name()), &f.header)?;
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

fn write_workbook(
    path: &Path,
    tmp_dir: &Path,
    mut rx: tokio::sync::mpsc::Receiver<Vec<CaptureListItem>>,
    days: &[Bucket],
    tz: &LocalTz,
) -> Result<(usize, usize), ExportError> {
    // Excel shows a serial as it is: the local wall-clock reading.
    let local = |ms: i64| excel_serial(tz.wall_ms(ms));
    let f = Formats {
        header: Format::new()
            .set_bold()
            .set_background_color(Color::RGB(0xD9E1F2))
            .set_border_bottom(FormatBorder::Thin),
        datetime: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
        date: Format::new().set_num_format("yyyy-mm-dd"),
    };
    let mut wb = Workbook::new();
    wb.set_tempdir(tmp_dir)?;

    let ws = wb.add_worksheet_with_constant_memory();
    ws.set_name("Captures")?;
    header_row(ws, CAPTURE_COLUMNS, &f, tz)?;
    let mut rows = 0usize;
    let mut truncated = 0usize;
    while let Some(chunk) = rx.blocking_recv() {
        for c in chunk {
            if rows >= MAX_DATA_ROWS {
                truncated += 1;
                continue;
            }
            rows += 1;
            let r = rows as u32;
            ws.write_string(r, 0, &c.id)?;
            ws.write_number_with_format(r, 1, local(c.created_ms), &f.datetime)?;
            if let Some(t) = &c.taken_at {
                match rfc3339_ms(t) {
                    Some(ms) => ws.write_number_with_format(r, 2, local(ms), &f.datetime)?,
                    None => ws.write_string(r, 2, t)?,
                };
            }
            match (&c.background_name, &c.background_id) {
                (Some(name), _) => {
                    ws.write_string(r, 3, name)?;
                }
                (None, Some(id)) => {
                    ws.write_string(r, 3, format!("({id}, deleted)"))?;
                }
                (None, None) => {}
            }
            ws.write_number(r, 4, c.bytes as f64)?;
            ws.write_number(r, 5, c.width as f64)?;
            ws.write_number(r, 6, c.height as f64)?;
            ws.write_string(r, 7, if c.is_synced { "yes" } else { "no" })?;
            if let Some(ms) = c.synced_ms {
                ws.write_number_with_format(r, 8, local(ms), &f.datetime)?;
            }
            ws.write_number(r, 9, c.sms_count as f64)?;
        }
    }
    ws.autofilter(0, 0, rows as u32, (CAPTURE_COLUMNS.len() - 1) as u16)?;
    if truncated > 0 {
        tracing::warn!(
            rows,
            truncated,
            "Excel export truncated at the sheet's row limit"
        );
    }

    let ws = wb.add_worksheet_with_constant_memory();
    ws.set_name("Stats")?;
    header_row(ws, STATS_COLUMNS, &f, tz)?;
    for (i, d) in days.iter().enumerate() {
        let r = i as u32 + 1;
        ws.write_number_with_format(r, 0, local(d.start_ms), &f.date)?;
        ws.write_number(r, 1, d.captures as f64)?;
        ws.write_number(r, 2, d.synced as f64)?;
        ws.write_number(r, 3, d.sms_sent as f64)?;
    }
    ws.autofilter(0, 0, days.len() as u32, (STATS_COLUMNS.len() - 1) as u16)?;

    wb.save(path)?;
    Ok((rows, truncated))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn serial_dates() {
        // 1970-01-01 is Excel day 25569; 2026-06-01T12:00:00Z is 46174.5.
        assert_eq!(excel_serial(0), 25_569.0);
        let noon = rfc3339_ms("2026-06-01T12:00:00Z").unwrap();
        assert_eq!(excel_serial(noon), 46_174.5);
        assert_eq!(rfc3339_ms("2026-06-01T14:00:00+02:00"), Some(noon));
        assert_eq!(rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn names_the_file_after_kiosk_and_day() {
        let ms = rfc3339_ms("2026-06-01T23:59:59Z").unwrap();
        assert_eq!(
            file_name("hall-b", ms, &LocalTz::utc()),
            "selfie-kiosk-hall-b-20260601.xlsx"
        );
        // 23:59:59Z is already the next day in Paris.
        let paris = LocalTz::from_posix_rule("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        assert_eq!(
            file_name("hall-b", ms, &paris),
            "selfie-kiosk-hall-b-20260602.xlsx"
        );
    }
}
