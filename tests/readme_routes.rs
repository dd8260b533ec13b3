#![allow(clippy::disallowed_methods)]
//! README's "HTTP API" section and the daemon's `/openapi.json` name the same routes
//! (issue 18, item 8), so they cannot drift apart.
//!
//! The README's route list is machine-readable: in the section's tables, a row's first
//! cell names its routes as `` `METHOD /path` `` (the path as in the OpenAPI document,
//! several routes separated by `, `). Checked both ways: every OpenAPI operation has a row,
//! every row's route is an operation, and each operation's query parameters are named in
//! its row (`` `name` `` or `name=` in backticks). Adding a route means adding its row:
//! nothing here lists routes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use support::daemon::Daemon;

/// Routes the README may name that the OpenAPI document does not have, with the reason.
/// (Empty: the console's pages and assets are documented operations too.)
const README_ONLY: &[(&str, &str, &str)] = &[];

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// `(METHOD, /path)` → the text of the row that names it.
type Rows = BTreeMap<(String, String), String>;

/// The README's "## HTTP API" section, up to the next `## ` heading.
fn api_section(readme: &str) -> &str {
    let start = readme
        .find("\n## HTTP API\n")
        .expect("README.md has a '## HTTP API' section");
    let body = &readme[start + 1..];
    let end = body[3..].find("\n## ").map_or(body.len(), |i| i + 3);
    &body[..end]
}

/// The spans between backticks of `text`.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Every route of the section's table rows; a first-cell span that is not a route, or a
/// route named twice, is a problem.
fn readme_routes(section: &str) -> (Rows, Vec<String>) {
    let mut rows = Rows::new();
    let mut problems = Vec::new();
    for line in section.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix('|') else {
            continue;
        };
        let first = rest.split('|').next().unwrap_or("").trim();
        // The header and the separator row.
        if first == "route" || first.starts_with("---") {
            continue;
        }
        let spans = backticked(first);
        if spans.is_empty() {
            problems.push(format!("a row without a `METHOD /path` first cell: {line}"));
        }
        for span in spans {
            let route = span.split_once(' ').filter(|(m, p)| {
                METHODS.contains(m) && p.starts_with('/') && !p.contains([' ', '?'])
            });
            match route {
                Some((m, p)) => match rows.entry((m.to_string(), p.to_string())) {
                    std::collections::btree_map::Entry::Occupied(_) => {
                        problems.push(format!("`{span}` is in two rows"))
                    }
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(line.to_string());
                    }
                },
                None => problems.push(format!(
                    "`{span}` in a first cell is not `METHOD /path` (no query string: name \
                     parameters in the row's text)"
                )),
            }
        }
    }
    (rows, problems)
}

/// `(METHOD, /path)` → the names of the operation's query parameters.
fn openapi_routes(doc: &Value) -> BTreeMap<(String, String), Vec<String>> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let shared = item["parameters"].as_array().cloned().unwrap_or_default();
        for (method, op) in item.as_object().unwrap() {
            let m = method.to_ascii_uppercase();
            if !METHODS.contains(&m.as_str()) {
                continue;
            }
            let mut params = shared.clone();
            params.extend(op["parameters"].as_array().cloned().unwrap_or_default());
            let query = params
                .iter()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect();
            out.insert((m, path.clone()), query);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_and_openapi_name_the_same_routes_and_parameters() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let d = Daemon::start(&[]);
    let doc: Value = reqwest::get(d.url("/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let served = openapi_routes(&doc);
    assert!(served.len() > 20, "too few operations: {served:?}");

    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (rows, mut problems) = readme_routes(api_section(&readme));
    let readme_only: BTreeSet<(String, String)> = README_ONLY
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();

    for ((method, path), query) in &served {
        let Some(row) = rows.get(&(method.clone(), path.clone())) else {
            problems.push(format!(
                "`{method} {path}` is in /openapi.json but has no row in README's HTTP API section"
            ));
            continue;
        };
        let named: Vec<&str> = backticked(row);
        for q in query {
            let mentioned = named.iter().any(|s| {
                *s == q
                    || s.split(['?', '&', ' ', ',']).any(|w| {
                        w.strip_prefix(q.as_str())
                            .is_some_and(|r| r.starts_with('='))
                    })
            });
            if !mentioned {
                problems.push(format!(
                    "`{method} {path}`: its query parameter `{q}` is not named in its README row"
                ));
            }
        }
    }
    for (method, path) in rows.keys() {
        let key = (method.clone(), path.clone());
        if !served.contains_key(&key) && !readme_only.contains(&key) {
            problems.push(format!(
                "README names `{method} {path}`, which /openapi.json does not have"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "README's HTTP API section and /openapi.json disagree:\n  {}",
        problems.join("\n  ")
    );
}

/// The checker itself: it sees a missing row, an extra row, a missing parameter, and a
/// malformed first cell (a test that cannot fail would prove nothing).
#[test]
fn the_comparison_catches_each_kind_of_drift() {
    let section = "\n## HTTP API\n\n| route | contract |\n| --- | --- |\n\
        | `GET /a`, `POST /a` | `limit`, `cursor=` |\n\
        | `GET /b?x=1` | bad cell |\n\
        | no route here | text |\n\
        | `GET /a` | twice |\n";
    let (rows, problems) = readme_routes(api_section(section));
    assert!(rows.contains_key(&("GET".into(), "/a".into())));
    assert!(rows.contains_key(&("POST".into(), "/a".into())));
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("`GET /b?x=1`"), "{problems:?}");
    assert!(problems[1].contains("without"), "{problems:?}");
    assert!(problems[2].contains("two rows"), "{problems:?}");
    let row = &rows[&("GET".to_string(), "/a".to_string())];
    assert!(backticked(row).contains(&"limit"));
    assert!(backticked(row).contains(&"cursor="));
    // The section stops at the next heading.
    let two = "\n## HTTP API\n| `GET /x` | y |\n\n## Other\n| `GET /z` | w |\n";
    let (rows, _) = readme_routes(api_section(two));
    assert_eq!(rows.len(), 1);
}
