//! `GET /openapi.json` against the real daemon: a valid OpenAPI 3 document (structurally,
//! and by `openapi-spec-validator`), exactly the routes the server serves (from the code and
//! by probing the live server), and schemathesis fuzzing the live API against it.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests and benchmarks measure real time; the rule that time is read through `clock`
// (clippy.toml) is for the daemon.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::daemon::{Daemon, ADMIN_KEY};

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn fetch_doc(d: &Daemon) -> Value {
    let r = client().get(d.url("/openapi.json")).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "GET /openapi.json (no admin key)"
    );
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    r.json().await.unwrap()
}

/// Every (METHOD, path) the document lists.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(*m).is_some() {
                out.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// Resolves a local `$ref` (`#/a/b`, JSON pointer escapes included).
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

fn collect_refs(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k == "$ref" {
                    if let Some(s) = child.as_str() {
                        out.push((at.to_string(), s.to_string()));
                    }
                } else {
                    collect_refs(child, &format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                collect_refs(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The daemon serves the documents compiled in from `assets/openapi/`, not built at run
/// time: each file must be, byte for byte, the document the code builds.
#[test]
fn the_committed_documents_are_the_ones_the_code_builds() {
    for (name, doc) in [
        ("kiosk.json", selfie_kiosk::api::openapi()),
        ("fleet.json", selfie_kiosk::fleet::serve::openapi()),
    ] {
        let path = repo().join("assets/openapi").join(name);
        let committed = std::fs::read_to_string(&path).unwrap();
        let built = selfie_kiosk::api::openapi::file_text(&doc);
        assert!(
            committed == built,
            "{} is not the document the code builds: run `cargo run --example openapi` and \
             commit the file",
            path.display()
        );
    }
}

#[tokio::test]
async fn document_is_valid_openapi_3_and_describes_errors_and_admin_security() {
    let d = Daemon::start(&[]);
    let doc = fetch_doc(&d).await;

    // The served document is the one the code builds.
    let in_process = serde_json::to_value(selfie_kiosk::api::openapi()).unwrap();
    assert_eq!(
        doc, in_process,
        "/openapi.json differs from selfie_kiosk::api::openapi()"
    );

    let version = doc["openapi"].as_str().expect("openapi field");
    assert!(version.starts_with("3."), "openapi: {version}");
    assert_eq!(doc["info"]["title"], "selfie-kiosk");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    // Every $ref resolves.
    let mut refs = Vec::new();
    collect_refs(&doc, "", &mut refs);
    assert!(refs.len() > 50, "suspiciously few $refs: {}", refs.len());
    for (at, r) in &refs {
        assert!(r.starts_with("#/"), "non-local $ref {r} at {at}");
        assert!(resolve(&doc, r).is_some(), "unresolved $ref {r} at {at}");
    }

    // The error schema is a component: {"error": {"code", "message"}}.
    let err = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(err["required"], serde_json::json!(["error"]), "{err}");
    let detail = resolve(&doc, err["properties"]["error"]["$ref"].as_str().unwrap()).unwrap();
    let required: BTreeSet<&str> = detail["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(required, BTreeSet::from(["code", "message"]), "{detail}");

    // The admin security schemes.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["type"], "apiKey");
    assert_eq!(schemes["api_key"]["in"], "header");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");

    let ops = operations(&doc);
    assert!(ops.len() >= 25, "{ops:?}");
    for (path, item) in doc["paths"].as_object().unwrap() {
        let mut n = 0;
        for m in METHODS {
            let Some(op) = item.get(*m) else { continue };
            n += 1;
            let what = format!("{} {path}", m.to_uppercase());
            let responses = op["responses"].as_object().expect(&what);
            assert!(!responses.is_empty(), "{what}: no responses");
            // A redirect (`GET /` to the staff console) succeeds with its 3xx alone.
            let redirect = responses.keys().all(|s| s.starts_with('3'));
            assert!(
                redirect || responses.keys().any(|s| s.starts_with('2')),
                "{what}: no success answer"
            );
            for (status, resp) in responses {
                assert!(
                    resp["description"].as_str().is_some_and(|s| !s.is_empty()),
                    "{what} {status}: no description"
                );
                let is_error = status.starts_with('4') || status.starts_with('5');
                // /health answers its report with 503 when down: not an error body.
                if is_error && !(path == "/health" && status == "503") {
                    assert_eq!(
                        resp["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{what} {status} does not reference the error schema"
                    );
                }
            }
            // Path templates and path parameters agree.
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            let templated: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            assert_eq!(declared, templated, "{what}: path parameters");
            // Admin routes need the key; the others do not.
            let security = op.get("security");
            if path.starts_with("/admin/") {
                assert_eq!(
                    security,
                    Some(&serde_json::json!([{"api_key": []}, {"bearer": []}])),
                    "{what}"
                );
                assert!(responses.contains_key("401"), "{what}: no 401");
            } else {
                assert!(security.is_none(), "{what}: public route with security");
            }
        }
        assert!(n > 0, "{path}: no operation");
    }

    // A real validator.
    let validator = repo().join(".venv-tools/bin/openapi-spec-validator");
    assert!(
        validator.exists(),
        "{} is missing: run tools/install-test-deps.sh as root (or: python3 -m venv .venv-tools && \
         .venv-tools/bin/pip install openapi-spec-validator)",
        validator.display()
    );
    let file = d.dir.join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = Command::new(&validator).arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_fallback(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::NOT_FOUND
        && *body == serde_json::json!({"error": {"code": "not_found", "message": "no such route"}})
}

async fn probe(d: &Daemon, method: &Method, path: &str) -> (StatusCode, Value) {
    let r = client()
        .request(method.clone(), d.url(path))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Every route registration in `src/` goes through `routing::route!` and `Routes::with`,
/// which take the method and the path from the handler's `#[utoipa::path]` and build the
/// router and the document from one list. A plain axum `.route(…)` would serve a route the
/// document does not list. `src/api/routing.rs` is where `Routes::with` itself calls axum.
#[test]
fn routes_are_only_registered_with_their_documentation() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo().join("src"), &mut files);
    assert!(files.len() > 20);
    let mut offences = Vec::new();
    for f in &files {
        if f.ends_with("src/api/routing.rs") {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            let plain_router = code.contains("Router::new") && !code.contains("MethodRouter::new");
            if plain_router
                || code.contains(".route(")
                || code.contains(".route_service(")
                || code.contains(".nest_service(")
                || code.contains("axum::routing")
            {
                offences.push(format!("{}:{}: {}", f.display(), i + 1, code));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "routes registered without their OpenAPI operation (use Routes::with(route!(handler))):\n{}",
        offences.join("\n")
    );
}

#[tokio::test]
async fn documented_routes_are_exactly_the_served_routes() {
    let d = Daemon::start(&[]);
    let doc = fetch_doc(&d).await;
    let ops = operations(&doc);

    // The code's list (the router and the document come out of the same builder) is the
    // served document's.
    let in_process = operations(&serde_json::to_value(selfie_kiosk::api::openapi()).unwrap());
    assert_eq!(ops, in_process);

    // What the README and DESIGN promise is there (a route dropped from both the router and
    // the document would go unnoticed otherwise).
    for (m, p) in [
        ("POST", "/api/capture"),
        ("POST", "/api/capture-batch"),
        ("GET", "/api/captures/status"),
        ("POST", "/api/send-sms"),
        ("GET", "/api/sms/{sms_id}"),
        ("GET", "/api/download/{id}"),
        ("GET", "/uploads/{file}"),
        ("GET", "/api/backgrounds"),
        ("GET", "/api/backgrounds/{id}"),
        ("GET", "/health"),
        ("GET", "/openapi.json"),
        ("GET", "/admin/config"),
        ("PUT", "/admin/config"),
        ("GET", "/admin/captures"),
        ("DELETE", "/admin/captures/{id}"),
        ("POST", "/admin/sync"),
        ("POST", "/admin/cleanup"),
        ("GET", "/admin/stats"),
        ("GET", "/admin/export/excel"),
        ("GET", "/admin/backgrounds"),
        ("POST", "/admin/backgrounds"),
        ("DELETE", "/admin/backgrounds/{id}"),
        ("POST", "/admin/gdpr/erase"),
        ("GET", "/admin/diag"),
    ] {
        assert!(
            ops.contains(&(m.to_string(), p.to_string())),
            "{m} {p} is not documented"
        );
    }

    // Every documented operation is routed: never the fallback 404, never 405.
    let mut paths = BTreeSet::new();
    for (m, p) in &ops {
        let concrete = p
            .replace("{file}", "0123456789abcdef0123456789abcdef.jpg")
            .replace("{id}", "0123456789abcdef0123456789abcdef")
            .replace("{sms_id}", "0123456789abcdef0123456789abcdef");
        assert!(!concrete.contains('{'), "unfilled parameter in {p}");
        let method = Method::from_bytes(m.as_bytes()).unwrap();
        let (s, body) = probe(&d, &method, &concrete).await;
        assert!(
            !is_fallback(s, &body) && s != StatusCode::METHOD_NOT_ALLOWED,
            "{m} {concrete} (documented) is not served: {s} {body}"
        );
        assert!(!s.is_server_error(), "{m} {concrete}: {s} {body}");
        paths.insert((p.clone(), concrete));
    }

    // On a documented path, a method the document does not list is not served (405).
    for (p, concrete) in &paths {
        for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if ops.contains(&(m.to_string(), p.clone())) {
                continue;
            }
            let method = Method::from_bytes(m.as_bytes()).unwrap();
            let (s, body) = probe(&d, &method, concrete).await;
            assert_eq!(
                s,
                StatusCode::METHOD_NOT_ALLOWED,
                "{m} {concrete} is served but not documented: {body}"
            );
        }
    }

    // Paths the document does not list get the fallback.
    for p in [
        "/api",
        "/api/",
        "/api/captures",
        "/api/captures/status/",
        "/api/capture/0123",
        "/api/sms",
        "/api/backgrounds/a/b",
        "/uploads",
        "/uploads/a/b.jpg",
        "/admin",
        "/admin/unknown",
        "/admin/captures/a/b",
        "/openapi.yaml",
        "/health/x",
        // `/` and `/docs` are the staff console's now (tests/console.rs).
        "/docs/x",
        "/console/a/b",
    ] {
        for m in [Method::GET, Method::POST, Method::DELETE] {
            let (s, body) = probe(&d, &m, p).await;
            assert!(is_fallback(s, &body), "{m} {p}: {s} {body}");
        }
    }
}

/// schemathesis against the live daemon (tools/schemathesis.sh): no 5xx, only documented
/// status codes and content types, every JSON answer matching its schema.
#[test]
fn schemathesis_finds_no_5xx_and_no_schema_violation() {
    let out = Command::new("bash")
        .arg(repo().join("tools/schemathesis.sh"))
        .arg(env!("CARGO_BIN_EXE_selfie-kiosk"))
        .current_dir(repo())
        .output()
        .expect("run tools/schemathesis.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tools/schemathesis.sh failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("Test cases:"),
        "schemathesis ran no test cases?\n{stdout}\n{stderr}"
    );
}
