//! Public names of captures (issue 20): a capture's remote files are named by its public
//! token, which the tests read from the daemon's catalog.
#![allow(dead_code)]

use super::daemon::Daemon;

/// The public token of capture `id` (panics when there is no such capture).
pub fn public_token(d: &Daemon, id: &str) -> String {
    d.catalog()
        .query_row(
            "SELECT public_token FROM captures WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("no public token for {id}: {e}"))
}

/// The remote files of a capture with this token: its photo and its share page.
pub fn remote_files(token: &str) -> [String; 2] {
    [format!("{token}.html"), format!("{token}.jpg")]
}
