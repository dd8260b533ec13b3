//! The start-up recovery (files against rows, outbox rebuild) runs after READY, while
//! captures are taken: it keeps its guarantees and never races a capture.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use selfie_kiosk::catalog::{self, Catalog, NewCapture};
use serde_json::Value;
use support::daemon::Daemon;
use support::images::{jpeg, sha256_hex};

/// Rows with files, as a kiosk that has been running a while has.
const KEPT: usize = 20_000;
/// Files without rows (a crash between file and row, each time). Removing one costs a
/// directory fsync, which keeps the recovery busy long enough for captures to overlap it.
const ORPHANS: usize = 1_500;
/// Orphans whose id a new capture takes while the recovery runs.
const REUSED: usize = 100;
/// Rows without files.
const LOST: usize = 300;

fn new_capture(id: &str, bytes: &[u8], created_ms: i64) -> NewCapture {
    let sha = sha256_hex(bytes);
    NewCapture {
        id: id.to_string(),
        created_ms,
        taken_at: None,
        background_id: None,
        bytes: bytes.len() as i64,
        width: 48,
        height: 32,
        sha256: sha.clone(),
        source_sha256: sha,
        source_format: "jpeg".into(),
    }
}

/// Writes the catalog and files of a kiosk whose files and rows disagree.
fn seed(data: &Path) -> Vec<u8> {
    let uploads = data.join("uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    let small = jpeg(48, 32, 1);
    let cat = Catalog::open(&data.join("catalog.sqlite3")).unwrap();
    let now = selfie_kiosk::clock::system_now_ms();
    let img = small.clone();
    cat.write_blocking(move |tx| {
        for i in 0..KEPT {
            catalog::insert_capture(tx, &new_capture(&format!("kept-{i}"), &img, now - 1000))?;
        }
        for i in 0..LOST {
            catalog::insert_capture(tx, &new_capture(&format!("lost-{i}"), &img, now - 1000))?;
        }
        catalog::insert_capture(tx, &new_capture("back-0", &img, now - 1000))?;
        catalog::set_file_missing(tx, "back-0", true)?;
        Ok(())
    })
    .unwrap();
    drop(cat);
    for i in 0..KEPT {
        std::fs::write(uploads.join(format!("kept-{i}.jpg")), &small).unwrap();
    }
    for i in 0..ORPHANS {
        std::fs::write(
            uploads.join(format!("orphan-{i}.jpg")),
            b"never acknowledged",
        )
        .unwrap();
    }
    std::fs::write(uploads.join("back-0.jpg"), &small).unwrap();
    small
}

async fn recovery_state(c: &reqwest::Client, d: &Daemon) -> Value {
    let v: Value = c
        .get(d.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["checks"]["workers"]["workers"]["recovery"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn captures_during_the_start_up_recovery_are_kept_and_it_still_does_its_work() {
    let tmp = tempfile::tempdir().unwrap();
    // A remote that never answers: every unsynced row must end up with a sync job.
    let mut d = Daemon::new_in(
        tmp.path(),
        &[("REMOTE_STORAGE_URL", "http://127.0.0.1:9/uploads/")],
    );
    let small = seed(&d.data_dir());
    selfie_kiosk::install_crypto();
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    // READY (listening) before the recovery is through.
    d.spawn_listening();
    let at_start = recovery_state(&c, &d).await;
    assert_ne!(
        at_start["state"], "done",
        "the recovery finished before the first request: the test proves nothing (make the seed bigger): {at_start}"
    );

    // Captures meanwhile: some take the id of an orphan file the recovery will look at,
    // the others get an id from the daemon.
    let mut tasks = Vec::new();
    for i in 0..REUSED + 50 {
        let c = c.clone();
        let url = if i < REUSED {
            d.url(&format!("/api/capture?id=orphan-{i}"))
        } else {
            d.url("/api/capture")
        };
        let img = jpeg(64, 48, 1000 + i as u32);
        tasks.push(tokio::spawn(async move {
            let r = c
                .post(url)
                .header("content-type", "image/jpeg")
                .body(img.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            let v: Value = r.json().await.unwrap();
            (v["id"].as_str().unwrap().to_string(), sha256_hex(&img))
        }));
    }
    let mut acked = HashMap::new();
    let mut overlapped = false;
    for t in tasks {
        let (id, sha) = t.await.unwrap();
        acked.insert(id, sha);
        if !overlapped {
            overlapped = recovery_state(&c, &d).await["state"] != "done";
        }
    }
    assert!(
        overlapped,
        "no capture was acknowledged while the recovery ran: the test proves nothing"
    );

    d.wait_recovered();
    let rec = recovery_state(&c, &d).await;
    let details = &rec["details"];
    // An orphan whose id a capture takes later may go first (it was one then): the
    // capture's file is what counts, checked below.
    let removed = details["orphan_files_removed"].as_u64().unwrap() as usize;
    assert!((ORPHANS - REUSED..=ORPHANS).contains(&removed), "{rec}");
    assert_eq!(details["rows_marked_missing"], LOST, "{rec}");
    assert_eq!(details["rows_unmarked"], 1, "{rec}");

    // The outbox holds one sync job per row with a file: the old ones (rebuilt), the one
    // back, and each new capture's (pushed by the capture; a rebuild never doubles it).
    let health: Value = c
        .get(d.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ob = &health["checks"]["outbox"];
    assert_eq!(ob["by_kind"]["sync"], KEPT + 1 + REUSED + 50, "{ob}");

    let uploads = d.uploads_dir();
    let db = d.catalog();
    let missing = |id: &str| -> i64 {
        db.query_row(
            "SELECT file_missing FROM captures WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("{id}: no row ({e})"))
    };
    // Every capture acknowledged during the recovery: its row, its file, byte for byte.
    assert_eq!(acked.len(), REUSED + 50);
    for (id, sha) in &acked {
        assert_eq!(missing(id), 0, "{id} marked missing");
        let bytes = std::fs::read(uploads.join(format!("{id}.jpg")))
            .unwrap_or_else(|e| panic!("{id}: acknowledged, file gone ({e})"));
        assert_eq!(&sha256_hex(&bytes), sha, "{id} damaged");
    }
    // The orphans nobody took are gone; the lost rows are flagged; the one back unflagged.
    for i in REUSED..ORPHANS {
        assert!(
            !uploads.join(format!("orphan-{i}.jpg")).exists(),
            "orphan-{i} kept"
        );
    }
    for i in 0..LOST {
        assert_eq!(missing(&format!("lost-{i}")), 1, "lost-{i} not flagged");
    }
    assert_eq!(missing("back-0"), 0);
    // The old captures are untouched.
    let kept: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM captures WHERE id LIKE 'kept-%' AND file_missing = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept as usize, KEPT);
    for i in (0..KEPT).step_by(997) {
        assert_eq!(
            std::fs::read(uploads.join(format!("kept-{i}.jpg"))).unwrap(),
            small
        );
    }
    let (code, _) = d.terminate(Duration::from_secs(20));
    assert_eq!(code, Some(0));
}
