#![allow(clippy::disallowed_methods)]
//! Events (issue 20) end to end: the real daemon; the remote side on a real PostgreSQL,
//! nginx (WebDAV) and the OVH-faithful server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::daemon::{Daemon, ADMIN_KEY};
use support::images::{b64, jpeg};
use support::nginx::Nginx;
use support::ovh::{OvhTestServer, APP_KEY, APP_SECRET, CONSUMER_KEY, SENDER, SERVICE};
use support::pg::PgCluster;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn admin(d: &Daemon, method: Method, path: &str) -> reqwest::RequestBuilder {
    client()
        .request(method, d.url(path))
        .header("x-api-key", ADMIN_KEY)
}

async fn answer(r: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = r.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// Asserts the JSON error shape and the code.
fn refused(got: (StatusCode, Value), status: StatusCode, want: &str) {
    let (s, v) = got;
    assert_eq!(s, status, "{v}");
    assert_eq!(code(&v), want, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

async fn post_event(d: &Daemon, body: Value) -> (StatusCode, Value) {
    answer(admin(d, Method::POST, "/admin/events").json(&body)).await
}

async fn patch_event(d: &Daemon, id: &str, body: Value) -> (StatusCode, Value) {
    answer(admin(d, Method::PATCH, &format!("/admin/events/{id}")).json(&body)).await
}

async fn events(d: &Daemon, query: &str) -> Vec<Value> {
    let (s, v) = answer(admin(d, Method::GET, &format!("/admin/events{query}"))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().clone()
}

async fn capture_json(d: &Daemon, seed: u32, extra: Value) -> (StatusCode, Value) {
    let mut body = json!({"image": b64(&jpeg(32, 24, seed))});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    answer(client().post(d.url("/api/capture")).json(&body)).await
}

async fn capture_raw(d: &Daemon, seed: u32, query: &str) -> (StatusCode, Value) {
    answer(
        client()
            .post(d.url(&format!("/api/capture{query}")))
            .header("content-type", "image/jpeg")
            .body(jpeg(32, 24, seed)),
    )
    .await
}

async fn stored(d: &Daemon, extra: Value, seed: u32) -> String {
    let (s, v) = capture_json(d, seed, extra).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn detail(d: &Daemon, id: &str) -> Value {
    let (s, v) = answer(admin(d, Method::GET, &format!("/admin/captures/{id}"))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn listed(d: &Daemon, query: &str) -> Vec<String> {
    let (s, v) = answer(admin(d, Method::GET, &format!("/admin/captures{query}"))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

fn capture_rows(d: &Daemon) -> i64 {
    d.catalog()
        .query_row("SELECT COUNT(*) FROM captures", [], |r| r.get(0))
        .unwrap()
}

fn upload_files(d: &Daemon) -> usize {
    std::fs::read_dir(d.uploads_dir())
        .map(|r| {
            r.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".jpg"))
                .count()
        })
        .unwrap_or(0)
}

async fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_open_rename_close_and_reopen_events_and_bad_input_changes_nothing() {
    let d = Daemon::start(&[]);
    assert!(events(&d, "").await.is_empty());

    // Opened now by default, open-ended.
    let (s, wedding) = post_event(&d, json!({"name": "  Mariage Dupont  "})).await;
    assert_eq!(s, StatusCode::CREATED, "{wedding}");
    let id = wedding["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(wedding["name"], "Mariage Dupont");
    assert_eq!(wedding["open"], true);
    assert!(wedding["ends_at"].is_null());
    assert_eq!(wedding["captures"], 0);

    // A past event, closed: listed after it (latest start first).
    let (s, fair) = post_event(
        &d,
        json!({"name": "Salon", "starts_at": "2026-01-10T09:00:00+01:00", "ends_at": "2026-01-10T18:00:00+01:00"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{fair}");
    assert_eq!(fair["starts_at"], "2026-01-10T08:00:00.000Z");
    assert_eq!(fair["open"], false);
    let fair_id = fair["id"].as_str().unwrap().to_string();
    let all = events(&d, "").await;
    let ids: Vec<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![id.as_str(), fair_id.as_str()]);
    let open = events(&d, "?open=true").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["id"], id.as_str());
    let closed = events(&d, "?open=false").await;
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0]["id"], fair_id.as_str());

    // Refusals: each with its code, none creates anything.
    let long = "x".repeat(101);
    for (body, status, want) in [
        (json!({"name": ""}), StatusCode::BAD_REQUEST, "invalid_name"),
        (
            json!({"name": "   "}),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            json!({"name": long}),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            json!({"starts_at": "now"}),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (json!({"name": 7}), StatusCode::BAD_REQUEST, "invalid_json"),
        (
            json!({"name": "A", "starts_at": "tomorrow"}),
            StatusCode::BAD_REQUEST,
            "invalid_starts_at",
        ),
        (
            json!({"name": "A", "starts_at": "2025-01-01T00:00:00Z", "ends_at": "soon"}),
            StatusCode::BAD_REQUEST,
            "invalid_ends_at",
        ),
        (
            json!({"name": "A", "starts_at": "2025-01-02T00:00:00Z", "ends_at": "2025-01-01T00:00:00Z"}),
            StatusCode::BAD_REQUEST,
            "invalid_event_range",
        ),
        (
            json!({"name": "A", "starts_at": "2025-01-01T00:00:00Z", "ends_at": "2025-01-01T00:00:00Z"}),
            StatusCode::BAD_REQUEST,
            "invalid_event_range",
        ),
        // Overlaps the open-ended wedding.
        (
            json!({"name": "Second"}),
            StatusCode::CONFLICT,
            "event_overlap",
        ),
        (
            json!({"name": "Later", "starts_at": "2099-01-01T00:00:00Z"}),
            StatusCode::CONFLICT,
            "event_overlap",
        ),
        // Overlaps the fair.
        (
            json!({"name": "Fair bis", "starts_at": "2026-01-10T12:00:00+01:00", "ends_at": "2026-01-10T20:00:00+01:00"}),
            StatusCode::CONFLICT,
            "event_overlap",
        ),
    ] {
        refused(post_event(&d, body.clone()).await, status, want);
    }
    refused(
        answer(
            admin(&d, Method::POST, "/admin/events")
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    refused(
        answer(admin(&d, Method::GET, "/admin/events?open=maybe")).await,
        StatusCode::BAD_REQUEST,
        "invalid_open",
    );
    assert_eq!(events(&d, "").await.len(), 2, "nothing was created");
    // Touching the fair's span from outside is no overlap.
    let (s, v) = post_event(
        &d,
        json!({"name": "Matin", "starts_at": "2026-01-10T07:00:00+01:00", "ends_at": "2026-01-10T09:00:00+01:00"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Unknown ids: 404 unknown_event, on every method.
    let unknown = "0123456789abcdef0123456789abcdef";
    refused(
        answer(admin(&d, Method::GET, &format!("/admin/events/{unknown}"))).await,
        StatusCode::NOT_FOUND,
        "unknown_event",
    );
    refused(
        patch_event(&d, unknown, json!({"name": "x"})).await,
        StatusCode::NOT_FOUND,
        "unknown_event",
    );
    refused(
        answer(admin(&d, Method::GET, "/admin/events/not%20an%20id")).await,
        StatusCode::NOT_FOUND,
        "unknown_event",
    );
    // Admin only.
    let r = client().get(d.url("/admin/events")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Rename, close, reopen.
    let (s, v) = patch_event(&d, &id, json!({"name": "Mariage Martin"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["name"].as_str(), v["open"].as_bool()),
        (Some("Mariage Martin"), Some(true))
    );
    let (s, v) = patch_event(&d, &id, json!({"ends_at": "now"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["open"], false);
    assert!(v["ends_at"].is_string());
    assert!(events(&d, "?open=true").await.is_empty());
    // Closed, another may open now.
    let (s, other) = post_event(&d, json!({"name": "Cocktail"})).await;
    assert_eq!(s, StatusCode::CREATED, "{other}");
    // Reopening the wedding would overlap the cocktail: refused, unchanged.
    refused(
        patch_event(&d, &id, json!({"ends_at": null})).await,
        StatusCode::CONFLICT,
        "event_overlap",
    );
    let (s, v) = answer(admin(&d, Method::GET, &format!("/admin/events/{id}"))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["open"], false);
    let other_id = other["id"].as_str().unwrap();
    let (s, _) = patch_event(&d, other_id, json!({"ends_at": "now"})).await;
    assert_eq!(s, StatusCode::OK);
    // Now it can be reopened; bad patches change nothing.
    for (body, want) in [
        (json!({"name": ""}), "invalid_name"),
        (json!({"name": 3}), "invalid_name"),
        (
            json!({"ends_at": "2000-01-01T00:00:00Z"}),
            "invalid_event_range",
        ),
        (json!({"starts_at": "later"}), "invalid_starts_at"),
        (json!({"ends_at": 5}), "invalid_ends_at"),
    ] {
        refused(
            patch_event(&d, &id, body).await,
            StatusCode::BAD_REQUEST,
            want,
        );
    }
    refused(
        answer(
            admin(&d, Method::PATCH, &format!("/admin/events/{id}"))
                .header("content-type", "application/json")
                .body("[1]"),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    let (_, v) = answer(admin(&d, Method::GET, &format!("/admin/events/{id}"))).await;
    assert_eq!(v["name"], "Mariage Martin");
    // Reopening a closed event whose span the cocktail now follows still overlaps it.
    refused(
        patch_event(&d, &id, json!({"ends_at": null})).await,
        StatusCode::CONFLICT,
        "event_overlap",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_belong_to_their_event_and_every_admin_view_filters_by_it() {
    let d = Daemon::start(&[]);
    let before = stored(&d, json!({}), 1).await;
    assert!(detail(&d, &before).await["event_id"].is_null());

    let (_, fair) = post_event(
        &d,
        json!({"name": "Salon", "starts_at": "2026-01-10T09:00:00+01:00", "ends_at": "2026-01-10T18:00:00+01:00"}),
    )
    .await;
    let fair_id = fair["id"].as_str().unwrap().to_string();
    let (s, wedding) = post_event(&d, json!({"name": "Mariage"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let wedding_id = wedding["id"].as_str().unwrap().to_string();

    // Taken while the wedding is open: it belongs to it.
    let during = stored(&d, json!({}), 2).await;
    let v = detail(&d, &during).await;
    assert_eq!(v["event_id"], wedding_id.as_str(), "{v}");
    assert_eq!(v["event_name"], "Mariage");
    // The app names the event (JSON field, query parameter of a raw body).
    let named = stored(&d, json!({"event_id": fair_id}), 3).await;
    assert_eq!(detail(&d, &named).await["event_id"], fair_id.as_str());
    let (s, v) = capture_raw(&d, 4, &format!("?event_id={fair_id}")).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let raw = v["id"].as_str().unwrap().to_string();
    assert_eq!(detail(&d, &raw).await["event_id"], fair_id.as_str());

    // An unknown event: 400 unknown_event, nothing stored (row nor file), by every path.
    let (rows, files) = (capture_rows(&d), upload_files(&d));
    let unknown = "0123456789abcdef0123456789abcdef";
    refused(
        capture_json(&d, 5, json!({"event_id": unknown})).await,
        StatusCode::BAD_REQUEST,
        "unknown_event",
    );
    refused(
        capture_json(&d, 5, json!({"event_id": "bad id!"})).await,
        StatusCode::BAD_REQUEST,
        "unknown_event",
    );
    refused(
        capture_raw(&d, 6, &format!("?event_id={unknown}")).await,
        StatusCode::BAD_REQUEST,
        "unknown_event",
    );
    refused(
        capture_raw(&d, 6, &format!("?id=chosen-1&event_id={unknown}")).await,
        StatusCode::BAD_REQUEST,
        "unknown_event",
    );
    let (s, v) = answer(
        client()
            .post(d.url("/api/capture-batch"))
            .json(&json!({"captures": [
                {"image": b64(&jpeg(32, 24, 7)), "event_id": unknown},
                {"image": b64(&jpeg(32, 24, 8)), "event_id": fair_id},
            ]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"][0]["error"]["code"], "unknown_event", "{v}");
    assert_eq!(v["results"][1]["status"], 201, "{v}");
    let batched = v["results"][1]["id"].as_str().unwrap().to_string();
    assert_eq!((capture_rows(&d), upload_files(&d)), (rows + 1, files + 1));
    assert!(
        d.catalog()
            .query_row(
                "SELECT COUNT(*) FROM captures WHERE id = 'chosen-1'",
                [],
                |r| r.get::<_, i64>(0)
            )
            .unwrap()
            == 0
    );

    // Closing and renaming the wedding keeps its captures; after it, captures have none.
    let (s, _) = patch_event(
        &d,
        &wedding_id,
        json!({"name": "Mariage M.", "ends_at": "now"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let after = stored(&d, json!({}), 9).await;
    assert!(detail(&d, &after).await["event_id"].is_null());
    let v = detail(&d, &during).await;
    assert_eq!(
        (v["event_id"].as_str(), v["event_name"].as_str()),
        (Some(wedding_id.as_str()), Some("Mariage M."))
    );
    let (_, v) = answer(admin(
        &d,
        Method::GET,
        &format!("/admin/events/{wedding_id}"),
    ))
    .await;
    assert_eq!(v["captures"], 1);

    // The listing.
    assert_eq!(
        listed(&d, &format!("?event_id={wedding_id}")).await,
        vec![during.clone()]
    );
    let mut fair_caps = listed(&d, &format!("?event_id={fair_id}")).await;
    fair_caps.sort();
    let mut want = vec![named.clone(), raw.clone(), batched.clone()];
    want.sort();
    assert_eq!(fair_caps, want);
    assert_eq!(listed(&d, "").await.len(), 6);
    refused(
        answer(admin(
            &d,
            Method::GET,
            &format!("/admin/captures?event_id={unknown}"),
        ))
        .await,
        StatusCode::BAD_REQUEST,
        "unknown_event",
    );
    let (_, page) = answer(admin(&d, Method::GET, "/admin/captures?limit=50")).await;
    let item = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == during.as_str())
        .unwrap()
        .clone();
    assert_eq!(item["event_id"], wedding_id.as_str());

    // Statistics.
    let (s, st) = answer(admin(
        &d,
        Method::GET,
        &format!("/admin/stats?event_id={fair_id}"),
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{st}");
    assert_eq!(st["captures"]["total"], 3, "{st}");
    assert_eq!(st["event"]["id"], fair_id.as_str());
    let per_day: i64 = st["per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["captures"].as_i64().unwrap())
        .sum();
    assert_eq!(per_day, 3);
    let (_, all) = answer(admin(&d, Method::GET, "/admin/stats")).await;
    assert_eq!(all["captures"]["total"], 6);
    assert!(all.get("event").is_none());
    refused(
        answer(admin(
            &d,
            Method::GET,
            &format!("/admin/stats?event_id={unknown}"),
        ))
        .await,
        StatusCode::BAD_REQUEST,
        "unknown_event",
    );

    // The Excel export.
    let r = admin(
        &d,
        Method::GET,
        &format!("/admin/export/excel?event_id={wedding_id}"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-export-rows"], "1");
    let r = admin(&d, Method::GET, "/admin/export/excel")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-export-rows"], "6");
    refused(
        answer(admin(
            &d,
            Method::GET,
            &format!("/admin/export/excel?event_id={unknown}"),
        ))
        .await,
        StatusCode::BAD_REQUEST,
        "unknown_event",
    );

    // Kept across a restart: stored with the row.
    let mut d = d;
    d.restart();
    assert_eq!(detail(&d, &during).await["event_id"], wedding_id.as_str());
    assert_eq!(events(&d, "").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_reach_postgres_and_erasure_keeps_to_the_event() {
    let ovh = OvhTestServer::start_default();
    let pg = PgCluster::new();
    let nginx = Nginx::start();
    let env = [
        ("OVH_ENDPOINT", ovh.base_url()),
        ("OVH_APP_KEY", APP_KEY.into()),
        ("OVH_APP_SECRET", APP_SECRET.into()),
        ("OVH_CONSUMER_KEY", CONSUMER_KEY.into()),
        ("SMS_SERVICE_NAME", SERVICE.into()),
        ("SMS_SENDER", SENDER.into()),
        ("PUBLIC_BASE_URL", nginx.base_url()),
        ("REMOTE_STORAGE_URL", nginx.base_url()),
        ("REMOTE_DATABASE_URL", pg.url()),
    ];
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let d = Daemon::start(&pairs);

    // Created while PostgreSQL is down: it arrives once it is back.
    pg.stop();
    let (s, ev) = post_event(&d, json!({"name": "Mariage"})).await;
    assert_eq!(s, StatusCode::CREATED, "{ev}");
    let ev_id = ev["id"].as_str().unwrap().to_string();
    let inside = stored(&d, json!({}), 1).await;
    let inside2 = stored(&d, json!({}), 2).await;
    pg.start();
    let row = |sql: &str| pg.psql(sql).trim().to_string();
    wait_until("the event row", Duration::from_secs(60), || {
        pg.try_psql(&format!(
            "SELECT name FROM kiosk_events WHERE kiosk_id = 'test-kiosk' AND id = '{ev_id}'"
        ))
        .is_ok_and(|s| s.trim() == "Mariage")
    })
    .await;
    assert_eq!(
        row(&format!(
            "SELECT ends_at IS NULL FROM kiosk_events WHERE id = '{ev_id}'"
        )),
        "t"
    );
    wait_until("the captures' event", Duration::from_secs(60), || {
        pg.psql(&format!(
            "SELECT count(*) FROM kiosk_captures WHERE event_id = '{ev_id}'"
        ))
        .trim()
            == "2"
    })
    .await;
    let (_, v) = answer(admin(&d, Method::GET, &format!("/admin/events/{ev_id}"))).await;
    assert_eq!(v["synced"], true, "{v}");

    // Closing and renaming reach it too.
    let (s, _) = patch_event(
        &d,
        &ev_id,
        json!({"name": "Mariage Martin", "ends_at": "now"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    wait_until("the change", Duration::from_secs(30), || {
        pg.psql(&format!(
            "SELECT name || ' ' || (ends_at IS NOT NULL) FROM kiosk_events WHERE id = '{ev_id}'"
        ))
        .trim()
            == "Mariage Martin true"
    })
    .await;
    let outside = stored(&d, json!({}), 3).await;

    // One guest got the two photos of the event and one after it.
    let phone = "06 11 22 33 44";
    for id in [&inside, &inside2, &outside] {
        let (s, v) = answer(
            client()
                .post(d.url("/api/send-sms"))
                .json(&json!({"capture_id": id, "phone": phone})),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    }
    wait_until("texts sent", Duration::from_secs(60), || {
        ovh.sent_jobs().len() == 3
    })
    .await;

    // Unknown event: refused, nothing erased.
    refused(
        answer(
            admin(&d, Method::POST, "/admin/gdpr/erase")
                .json(&json!({"phone": phone, "event_id": "0123456789abcdef0123456789abcdef"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "unknown_event",
    );
    assert_eq!(capture_rows(&d), 3);

    let (s, v) = answer(
        admin(&d, Method::POST, "/admin/gdpr/erase")
            .json(&json!({"phone": phone, "event_id": ev_id})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut removed: Vec<String> = v["captures_removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    removed.sort();
    let mut want = vec![inside.clone(), inside2.clone()];
    want.sort();
    assert_eq!(removed, want, "{v}");
    assert_eq!(listed(&d, "").await, vec![outside.clone()]);
    wait_until("remote erasure", Duration::from_secs(30), || {
        pg.psql("SELECT count(*) FROM kiosk_captures").trim() == "1"
    })
    .await;
    assert_eq!(row("SELECT id FROM kiosk_captures"), outside);
    // The event itself stays (it holds no personal data).
    assert_eq!(row("SELECT count(*) FROM kiosk_events"), "1");
}

/// An event changed while PostgreSQL is down, then the outbox is lost: the start-up
/// rebuild finds the change in the catalog and it still reaches the remote database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsynced_event_survives_the_loss_of_the_outbox() {
    let pg = PgCluster::new();
    let url = pg.url();
    let mut d = Daemon::start(&[("REMOTE_DATABASE_URL", url.as_str())]);
    pg.stop();
    let (s, ev) = post_event(&d, json!({"name": "Salon"})).await;
    assert_eq!(s, StatusCode::CREATED, "{ev}");
    let id = ev["id"].as_str().unwrap().to_string();
    let (s, _) = patch_event(&d, &id, json!({"name": "Salon du livre"})).await;
    assert_eq!(s, StatusCode::OK);
    d.kill9();
    std::fs::remove_dir_all(d.data_dir().join("outbox")).unwrap();
    pg.start();
    d.spawn();
    wait_until("the event row", Duration::from_secs(60), || {
        pg.try_psql(&format!("SELECT name FROM kiosk_events WHERE id = '{id}'"))
            .is_ok_and(|s| s.trim() == "Salon du livre")
    })
    .await;
    let (_, v) = answer(admin(&d, Method::GET, &format!("/admin/events/{id}"))).await;
    assert_eq!(v["synced"], true, "{v}");
}
