//! What the bundle is made of when the daemon runs: `GET /admin/diag`'s snapshot (built
//! here for the route) and the CLI's HTTP client that fetches it, or the public `/health`
//! when the admin key is not at hand. The catalog and outbox summaries are shared with the
//! offline path.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::{config_json, Secrets, JOBS_LISTED, LAST_CAPTURES};
use crate::app::App;
use crate::catalog;
use crate::config::Config;
use crate::health;
use crate::net;

/// Catalog figures and the last captures (ids and dates only; no phone number is read),
/// the backlog as `scope` defines it. A figure that cannot be read is `{"error": …}` in
/// its place; the others still show.
pub fn catalog_summary(conn: &rusqlite::Connection, scope: catalog::SyncScope) -> Value {
    let or_error = |r: Result<Value, catalog::CatalogError>| {
        r.unwrap_or_else(|e| json!({"error": e.to_string()}))
    };
    fn date(ms: Option<i64>) -> Value {
        json!(ms.map(catalog::format_ms))
    }
    let counts = match catalog::count_captures(conn) {
        Ok((n, unmarked)) => health::local_db_counts(scope, n, unmarked),
        Err(e) => ["captures", "unsynced"]
            .into_iter()
            .map(|k| (k.to_string(), json!({"error": e.to_string()})))
            .collect(),
    };
    let span = catalog::capture_span(conn).map_err(|e| e.to_string());
    let from_span = |f: fn(&catalog::CaptureSpan) -> Value| match &span {
        Ok(s) => f(s),
        Err(e) => json!({"error": e}),
    };
    let sms = catalog::sms_by_status(conn).map(|by_status| {
        // Only the statuses present, as GROUP BY gives them.
        let present: Map<String, Value> = by_status
            .into_iter()
            .filter(|&(_, n)| n > 0)
            .map(|(s, n)| (s, json!(n)))
            .collect();
        Value::Object(present)
    });
    let last = catalog::recent_captures(conn, LAST_CAPTURES).map(|rows| {
        rows.iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "created_at": catalog::format_ms(c.created_ms),
                    "synced_at": c.synced_ms.map(catalog::format_ms),
                    "bytes": c.bytes,
                    "file_missing": c.file_missing,
                })
            })
            .collect::<Vec<_>>()
            .into()
    });
    let mut summary = json!({
        "schema_version": or_error(catalog::schema_version(conn).map(Value::from)),
        "file_missing": from_span(|s| json!(s.file_missing)),
        "oldest_capture": from_span(|s| date(s.oldest_ms)),
        "newest_capture": from_span(|s| date(s.newest_ms)),
        "last_synced": from_span(|s| date(s.last_synced_ms)),
        "backgrounds": or_error(catalog::count_backgrounds(conn).map(Value::from)),
        "sms_by_status": or_error(sms),
        "last_captures": or_error(last),
    });
    if let Value::Object(o) = &mut summary {
        o.extend(counts);
    }
    summary
}

/// Outbox figures and the first jobs (kinds, targets — capture or SMS ids — and errors).
pub fn outbox_summary(
    stats: &crate::outbox::OutboxStats,
    jobs: &[crate::outbox::Job],
    now_ms: i64,
) -> Value {
    let mut jobs: Vec<&crate::outbox::Job> = jobs.iter().collect();
    jobs.sort_by_key(|j| j.next_at_ms);
    let listed: Vec<Value> = jobs
        .iter()
        .take(JOBS_LISTED)
        .map(|j| {
            json!({
                "kind": j.kind.as_str(),
                "target": j.target,
                "attempts": j.attempts,
                "created_at": crate::catalog::format_ms(j.created_ms),
                "next_at": crate::catalog::format_ms(j.next_at_ms),
                "leased": j.leased,
                "last_error": j.last_error,
            })
        })
        .collect();
    let check = health::outbox_check(stats, now_ms);
    json!({
        "status": check.status,
        "summary": check.details,
        "jobs_listed": listed.len(),
        "jobs": listed,
    })
}

/// What `GET /admin/diag` answers: everything the CLI cannot read while the daemon runs.
pub async fn daemon_snapshot(app: &App) -> Value {
    let secrets = Secrets::from_app(app);
    let report = health::report(app).await;
    let ob = app.outbox.clone();
    let now = app.clock.now_ms();
    let outbox = tokio::task::spawn_blocking(move || -> Result<Value, String> {
        let stats = ob.stats().map_err(|e| e.to_string())?;
        let jobs = ob.list().map_err(|e| e.to_string())?;
        Ok(outbox_summary(&stats, &jobs, now))
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()))
    .unwrap_or_else(|e| json!({"error": e}));
    let scope = app.sync_scope();
    let catalog = app
        .catalog
        .read(move |c| Ok(catalog_summary(c, scope)))
        .await
        .unwrap_or_else(|e| json!({"error": e.to_string()}));
    let settings = app.settings.get();
    let v = json!({
        "daemon": {
            "pid": std::process::id(),
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": app.started.elapsed().as_secs(),
        },
        "health": report,
        "workers": app.workers.list(),
        "outbox": outbox,
        "catalog": catalog,
        "config": config_json(&app.config, Some(&settings), crate::config::Keys::Running),
        "logs": secrets.scrub_lines(&crate::logging::recent_logs()),
    });
    secrets.scrub_json(&v)
}

fn admin_key(config: &Config) -> Option<String> {
    if let Some(k) = &config.admin_api_key {
        return Some(k.expose().to_string());
    }
    std::fs::read_to_string(config.data_dir.join("admin_api_key"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn daemon_url(config: &Config) -> String {
    let mut addr = config.listen;
    // A wildcard listener is reached through loopback.
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    format!("http://{addr}")
}

/// The client to the daemon on this machine (never through a proxy).
fn http_client() -> Result<reqwest::Client, String> {
    net::http::client_builder()
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(15))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())
}

/// The public `GET /health` (no key needed; 503 still carries the report).
pub(super) async fn public_health(config: &Config) -> Result<Value, String> {
    http_client()?
        .get(format!("{}/health", daemon_url(config)))
        .send()
        .await
        .map_err(net::http::describe)?
        .json::<Value>()
        .await
        .map_err(net::http::describe)
}

/// `GET /admin/diag` with the admin key this configuration gives.
pub(super) async fn from_daemon(config: &Config) -> Result<Value, String> {
    let url = format!("{}/admin/diag", daemon_url(config));
    let key = admin_key(config).ok_or_else(|| {
        "no admin key (ADMIN_API_KEY unset and $KIOSK_DATA_DIR/admin_api_key unreadable)"
            .to_string()
    })?;
    let resp = http_client()?
        .get(&url)
        .header("x-api-key", key)
        .send()
        .await
        .map_err(|e| {
            if e.is_connect() {
                format!("no daemon answering on {}", config.listen)
            } else {
                let e = net::http::describe(e);
                format!("the daemon on {} did not answer: {e}", config.listen)
            }
        })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!(
            "the daemon on {} answered {status} to GET /admin/diag{}",
            config.listen,
            if status.as_u16() == 401 {
                " (the admin key differs: run diag with the daemon's configuration)"
            } else {
                ""
            }
        ));
    }
    resp.json::<Value>().await.map_err(|e| {
        let e = net::http::describe(e);
        format!("unreadable answer from the daemon: {e}")
    })
}
