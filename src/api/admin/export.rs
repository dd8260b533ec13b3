//! `GET /admin/export/excel`: the workbook ([`crate::export`]) streamed as an attachment.

use crate::clock::Stopwatch;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Uri};
use axum::response::Response;
use serde::Deserialize;
use tokio_util::io::ReaderStream;

use super::parse_range;
use crate::api::error::ApiResult;
use crate::api::query;
use crate::app::SharedApp;
use crate::catalog::CaptureFilter;

#[derive(Debug, Default, Deserialize)]
struct ExportQuery {
    from: Option<String>,
    to: Option<String>,
    event_id: Option<String>,
}

/// `GET /admin/export/excel[?from=…&to=…]`: the workbook as an attachment.
#[utoipa::path(
    get,
    path = "/admin/export/excel",
    tag = "admin",
    summary = "The captures as an Excel workbook",
    params(
        ("from" = Option<String>, Query, description = "RFC 3339 or `YYYY-MM-DD`, inclusive"),
        ("to" = Option<String>, Query, description = "RFC 3339 or `YYYY-MM-DD`, inclusive"),
        ("event_id" = Option<String>, Query, description = "Only this event's captures"),
    ),
    responses(
        (status = 200, description = "The workbook, as an attachment",
            content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers(
                ("Content-Disposition" = String),
                ("X-Export-Rows" = u64, description = "Rows written"),
                ("X-Export-Truncated" = Option<u64>, description = "Rows left out (the sheet is full)"),
            )),
        (status = 400, description = "`invalid_query`, `invalid_from`, `invalid_to`, `invalid_range`, `unknown_event`"),
        (status = 429, description = "`export_busy`: another export is running"),
        (status = 503, description = "`catalog_unavailable`"),
    )
)]
pub(super) async fn get_export_excel(
    State(app): State<SharedApp>,
    uri: Uri,
) -> ApiResult<Response> {
    let q: ExportQuery = query(&uri)?;
    let (from_ms, to_ms) = parse_range(q.from.as_deref(), q.to.as_deref())?;
    let filter = CaptureFilter {
        from_ms,
        to_ms,
        event_id: super::event_filter(&app, q.event_id.as_deref()).await?,
        ..CaptureFilter::all(app.sync_scope())
    };
    let started = Stopwatch::start();
    let out = app.exports.export(filter, &app.config.kiosk_tz).await?;
    tracing::info!(
        rows = out.rows,
        bytes = out.len,
        ms = started.elapsed().as_millis() as u64,
        "Excel export built"
    );
    let name = crate::export::file_name(
        &app.config.kiosk_id,
        app.clock.now_ms(),
        &app.config.kiosk_tz,
    );
    let file = tokio::fs::File::from_std(out.file);
    let mut r = Response::new(Body::from_stream(ReaderStream::with_capacity(
        file,
        64 * 1024,
    )));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(out.len));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("x-export-rows", HeaderValue::from(out.rows));
    if out.truncated > 0 {
        h.insert("x-export-truncated", HeaderValue::from(out.truncated));
    }
    Ok(r)
}
