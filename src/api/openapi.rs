//! `GET /openapi.json`: the OpenAPI 3 document of the whole API.
//!
//! It is generated from the code, so it cannot drift from what the server serves: every
//! route is registered with `utoipa_axum::routes!`, which reads the method and the path
//! from the handler's `#[utoipa::path]` and adds the operation to the document and the
//! handler to the router in the same call (see `documented_routes` in [`super`]). This
//! module adds what is common to many operations: the admin security and its 401 (applied
//! to the admin group itself, the one `require_admin` guards), and the `ErrorBody` schema
//! on every 4xx/5xx answer that has no body of its own.
//!
//! The document is public (no admin key): the API listens on localhost, and the document
//! holds no secret, only the shapes of requests and answers.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::error::ErrorBody;

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

/// The serialized document, built once with the router and handed to the handler.
#[derive(Clone)]
pub struct DocJson(bytes::Bytes);

impl DocJson {
    pub fn new(doc: &Document) -> DocJson {
        // Serializing plain data structures does not fail; an empty object would be
        // caught by the tests.
        DocJson(bytes::Bytes::from(doc.to_json().unwrap_or_else(|e| {
            tracing::error!("the OpenAPI document cannot be serialized: {e}");
            "{}".to_string()
        })))
    }
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
    )
)]
pub async fn get_openapi_json(Extension(doc): Extension<DocJson>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        doc.0,
    )
        .into_response()
}
