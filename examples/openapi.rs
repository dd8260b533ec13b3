//! Writes the OpenAPI documents the code builds into `assets/openapi/` (`kiosk.json`, what
//! the daemon serves at `/openapi.json`; `fleet.json`, what `fleet serve` serves at
//! `/fleet/api/openapi.json`). The daemon serves these files rather than building the
//! documents, and `tests/openapi.rs` fails while a file differs from the code's document:
//! run `cargo run --example openapi` after changing a route's `#[utoipa::path]` or a schema.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/openapi");
    for (name, doc) in [
        ("kiosk.json", selfie_kiosk::api::openapi()),
        ("fleet.json", selfie_kiosk::fleet::serve::openapi()),
    ] {
        let path = dir.join(name);
        let text = selfie_kiosk::api::openapi::file_text(&doc);
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        if old == text {
            println!("{}: up to date", path.display());
        } else {
            std::fs::write(&path, text).expect("write the document");
            println!("{}: written", path.display());
        }
    }
}
