//! Heartbeats: the kiosk's health report, written to the shared remote database so staff
//! see the whole fleet (`selfie-kiosk fleet`, `psql`, Grafana).
//!
//! Every `KIOSK_HEARTBEAT_SECS` (read and checked by [`crate::config`], default 60 s), while the remote database
//! answers, the report is upserted into `kiosk_heartbeats` (one row per kiosk) and appended
//! to `kiosk_heartbeat_history`, whose figures (backlog, disk, credits…) the server extracts
//! into columns (see the migration in [`crate::sync::remote_db`]). The history is kept by
//! time: each beat also deletes this kiosk's rows older than the run-time setting
//! `heartbeat_history_days` (30 by default) — an index range scan on the primary key that
//! usually finds one row, so pruning costs a beat almost nothing and follows a change of the
//! setting at the next beat. `seen_at` is the *server's* `now()`: many boards have no RTC,
//! and staleness must be judged on one clock. When the database does not answer the beat is
//! skipped quietly (the health report already says the remote is unreachable).

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::workers::{Next, Worker};

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(crate::config::DEFAULT_HEARTBEAT_SECS);
/// Longest one beat may take (connect + three statements).
const BEAT_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends a heartbeat every `config.heartbeat_interval` while the remote database answers.
/// Done at once without a remote database. A beat that fails is not a failure of the worker: the health
/// report already says the remote is unreachable, so it is logged once and retried quietly.
pub struct HeartbeatWorker {
    app: Arc<App>,
    every: Duration,
    failing: bool,
}

impl HeartbeatWorker {
    pub fn new(app: Arc<App>) -> HeartbeatWorker {
        HeartbeatWorker {
            every: app.config.heartbeat_interval,
            app,
            failing: false,
        }
    }
}

impl Worker for HeartbeatWorker {
    fn name(&self) -> &'static str {
        "heartbeat"
    }

    async fn work(&mut self) -> Result<Next, String> {
        if self.app.remotes.db.is_none() {
            return Ok(Next::Done);
        }
        match tokio::time::timeout(BEAT_TIMEOUT, beat(&self.app)).await {
            Ok(Ok(())) => {
                if self.failing {
                    tracing::info!("heartbeats reach the remote database again");
                }
                self.failing = false;
            }
            Ok(Err(e)) => {
                if !self.failing {
                    tracing::info!("heartbeat not sent: {e}");
                }
                self.failing = true;
            }
            Err(_) => {
                if !self.failing {
                    tracing::info!("heartbeat not sent: the remote database did not answer");
                }
                self.failing = true;
            }
        }
        Ok(Next::Idle(self.every))
    }

    fn details(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({"interval_s": self.every.as_secs(), "failing": self.failing}))
    }
}

/// One heartbeat: upsert, append, prune by age.
pub async fn beat(app: &App) -> Result<(), String> {
    let Some(db) = app.remotes.db.as_ref() else {
        return Ok(());
    };
    let report = crate::health::report(app).await;
    // As text, cast to jsonb by the server (no serde feature needed in tokio-postgres).
    let json = serde_json::to_string(&report).map_err(|e| e.to_string())?;
    let status = report.status.as_str();
    let kiosk = app.config.kiosk_id.as_str();
    let keep_days = app.settings.get().heartbeat_history_days as i32;
    let client = db.client().await.map_err(|e| e.to_string())?;
    // Typed, unnamed statements: safe through PgBouncer's transaction pooling.
    use tokio_postgres::types::Type;
    let res = async {
        client
            .execute_typed(
                "INSERT INTO kiosk_heartbeats (kiosk_id, seen_at, status, version, report)
                 VALUES ($1, now(), $2, $3, $4::text::jsonb)
                 ON CONFLICT (kiosk_id) DO UPDATE SET seen_at = excluded.seen_at,
                    status = excluded.status, version = excluded.version,
                    report = excluded.report",
                &[
                    (&kiosk, Type::TEXT),
                    (&status, Type::TEXT),
                    (&report.version, Type::TEXT),
                    (&json, Type::TEXT),
                ],
            )
            .await?;
        // The history row is a copy of the last-report row just written, so `kiosk_status`
        // and the history's newest row agree exactly (a dashboard may join them).
        client
            .execute_typed(
                "INSERT INTO kiosk_heartbeat_history (kiosk_id, seen_at, status, report)
                 SELECT kiosk_id, seen_at, status, report FROM kiosk_heartbeats
                 WHERE kiosk_id = $1
                 ON CONFLICT DO NOTHING",
                &[(&kiosk, Type::TEXT)],
            )
            .await?;
        // Only this kiosk's own rows: a kiosk never prunes another's (they may run other
        // versions with other settings).
        client
            .execute_typed(
                "DELETE FROM kiosk_heartbeat_history
                 WHERE kiosk_id = $1 AND seen_at < now() - make_interval(days => $2)",
                &[(&kiosk, Type::TEXT), (&keep_days, Type::INT4)],
            )
            .await
    }
    .await;
    match res {
        Ok(_) => Ok(()),
        Err(e) => {
            db.reset().await;
            Err(format!("remote database: {e}"))
        }
    }
}
