//! `GET /openapi.json`: the OpenAPI 3 document of the whole API.
//!
//! It is generated from the code, so it cannot drift from what the server serves: every
//! route is written once with `routing::route!`, which reads the method and the
//! path from the handler's `#[utoipa::path]`, and the one list (`documented_routes` in
//! [`super`]) is built into the server's router or into this document. The daemon serves
//! the document from a file compiled in (`assets/openapi/kiosk.json`, written by
//! `cargo run --example openapi`, held equal to the code's by `tests/openapi.rs`), so its
//! binary carries none of the builders. This module adds what is common to many
//! operations: the admin security and its 401 (applied to the admin group itself, the one
//! `require_admin` guards), and the `ErrorBody` schema on every 4xx/5xx answer that has no
//! body of its own.
//!
//! The document is public (no admin key): the API listens on localhost, and the document
//! holds no secret, only the shapes of requests and answers.

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::error::ErrorBody;
use super::static_files::{self, Assets, File};

/// Name of the `X-API-Key` security scheme.
pub const API_KEY_SCHEME: &str = "api_key";
/// Name of the `Authorization: Bearer` security scheme.
pub const BEARER_SCHEME: &str = "bearer";

/// An 8×8 JPEG, base64: the example of the capture routes (a request that succeeds).
pub const EXAMPLE_JPEG_BASE64: &str = "/9j/4AAQSkZJRgABAgAAAQABAAD/wAARCAAIAAgDAREAAhEBAxEB/9sAQwAQCwwODAoQDg0OEhEQExgoGhgWFhgxIyUdKDozPTw5Mzg3QEhcTkBEV0U3OFBtUVdfYmdoZz5NcXlwZHhcZWdj/9sAQwEREhIYFRgvGhovY0I4QmNjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2Nj/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwCDT9C6fJWlXFiy/Hban//Z";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "selfie-kiosk",
        description = "The kiosk daemon's HTTP API (localhost). JSON in and out; every error \
                       is `{\"error\": {\"code\", \"message\"}}` (the `ErrorBody` schema). Admin \
                       routes need the admin key, as `X-API-Key: <key>` or \
                       `Authorization: Bearer <key>`.",
        license(name = "MIT", identifier = "MIT"),
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "captures", description = "Photos from the touchscreen app"),
        (name = "sms", description = "Texting a guest the link to their photo"),
        (name = "files", description = "The stored JPEGs"),
        (name = "backgrounds", description = "Backgrounds the admin uploaded, for the app"),
        (name = "health", description = "Health of the kiosk"),
        (name = "meta", description = "This document"),
        (name = "admin", description = "Operators (admin key)"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_KEY_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "The admin key (ADMIN_API_KEY, or the generated $KIOSK_DATA_DIR/admin_api_key)",
            ))),
        );
        components.add_security_scheme(
            BEARER_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The admin key as a bearer token"))
                    .build(),
            ),
        );
    }
}

/// The document before any route is added: info, tags, security schemes, `ErrorBody`.
pub fn base() -> Document {
    ApiDoc::openapi()
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Marks every operation of `doc` (the admin group's own document) as needing the admin
/// key, with its 401 answer.
pub fn require_admin_key(doc: &mut Document) {
    use utoipa::openapi::security::SecurityRequirement;
    for item in doc.paths.paths.values_mut() {
        for op in operations_mut(item) {
            op.security = Some(vec![
                SecurityRequirement::new(API_KEY_SCHEME, Vec::<String>::new()),
                SecurityRequirement::new(BEARER_SCHEME, Vec::<String>::new()),
            ]);
            op.responses.responses.insert(
                "401".to_string(),
                ResponseBuilder::new()
                    .description(
                        "`unauthorized`: no admin key, or a wrong one (repeated failures from \
                         one address are answered more and more slowly)",
                    )
                    .build()
                    .into(),
            );
        }
    }
}

/// Completes the assembled document: every 4xx/5xx answer without a body of its own gets
/// the `ErrorBody` schema.
pub fn finish(mut doc: Document) -> Document {
    let error_schema = Ref::from_schema_name(<ErrorBody as ToSchema>::name());
    for item in doc.paths.paths.values_mut() {
        for op in operations_mut(item) {
            for (status, response) in op.responses.responses.iter_mut() {
                let utoipa::openapi::RefOr::T(response) = response else {
                    continue;
                };
                if (status.starts_with('4') || status.starts_with('5'))
                    && response.content.is_empty()
                {
                    response.content.insert(
                        "application/json".to_string(),
                        Content::new(Some(error_schema.clone())),
                    );
                }
            }
        }
    }
    doc
}

/// The document as the daemon serves it: `assets/openapi/kiosk.json`, compiled in (gzip),
/// which a test holds equal to [`super::openapi()`]. Served like the console's files
/// (ETag, gzip when accepted) with a policy that lets it run nothing.
#[derive(Clone)]
pub struct DocFile(Arc<Assets>);

/// The policy of the document's answers: a JSON file, never a page.
pub const DOC_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

const DOC_FILES: &[File] = &[static_files::page_file!(
    "openapi.json",
    "application/json",
    "openapi/kiosk.json"
)];

/// The compiled-in document, for the routers' `Extension`.
pub fn document() -> DocFile {
    DocFile(Arc::new(Assets::new(
        DOC_FILES,
        DOC_CSP,
        "the API document",
    )))
}

/// `GET /openapi.json`
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    summary = "This OpenAPI document",
    description = "Public (no admin key): the API is on localhost and the document holds no secret.",
    responses(
        (status = 200, description = "The OpenAPI document", body = Object),
        (status = 304, description = "Not modified (`If-None-Match`)"),
    )
)]
pub async fn get_openapi_json(Extension(doc): Extension<DocFile>, headers: HeaderMap) -> Response {
    doc.0.serve("openapi.json", &headers)
}

/// A document as its file under `assets/openapi/` holds it: pretty JSON and a final newline
/// (readable diffs when a route changes).
pub fn file_text(doc: &Document) -> String {
    // Plain data structures always serialize; an empty text would fail the tests.
    let mut text = doc.to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}
