//! The OpenAPI 3.1 document, generated from the same route tables the
//! components dispatch on (`cargo xtask build` writes it; the console serves
//! it at `/api/openapi.json`). Schemas come from the Rust request and
//! response types through `schemars` (JSON Schema 2020-12, which OpenAPI 3.1
//! uses), so serde's rules (`deny_unknown_fields`, renames, enums) are the
//! document's.

use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};
use vigil_core::problem::{CONTENT_TYPE as PROBLEM_JSON, ProblemDocument};

use crate::router::schema_of;
use crate::{Access, Component, Route};

/// An operation served outside a route table (the console's static files).
pub struct StaticOperation {
    pub path: &'static str,
    pub summary: &'static str,
    pub content_type: &'static str,
}

fn title_of(status: u16) -> &'static str {
    match status {
        400 => "Malformed request (e.g. invalid JSON)",
        401 => "No valid access token",
        403 => "The principal lacks the required permission",
        404 => "Not found",
        405 => "Method not allowed",
        409 => "Conflict with the current state",
        412 => "Stale If-Match",
        413 => "Request body too large",
        415 => "Unsupported content type",
        422 => "Validation failed; `errors` names each field",
        429 => "Too many requests",
        503 => "The database is unavailable",
        _ => "Error",
    }
}

fn operation_id(route: &Route) -> String {
    let mut id = route.method.to_lowercase();
    for segment in route
        .path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "api")
    {
        let word = segment.trim_matches(['{', '}']).replace(['.', '-'], "_");
        id.push('_');
        id.push_str(&word);
    }
    id
}

/// The `{name}` segments of a path template, as OpenAPI path parameters.
fn path_parameters(path: &str) -> Option<Value> {
    let params: Vec<Value> = path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    (!params.is_empty()).then_some(Value::Array(params))
}

fn operation(component: &str, route: &Route, generator: &mut schemars::SchemaGenerator) -> Value {
    let mut op = Map::new();
    op.insert("operationId".into(), json!(operation_id(route)));
    op.insert("summary".into(), json!(route.summary));
    op.insert("tags".into(), json!([component]));
    let access = match route.access {
        Access::Public => {
            op.insert("security".into(), json!([]));
            "Public.".to_string()
        }
        Access::Authenticated => {
            op.insert("x-vigil-permission".into(), json!("authenticated"));
            "Any valid access token.".to_string()
        }
        Access::Needs(p) => {
            op.insert("x-vigil-permission".into(), json!(p.as_str()));
            format!("Needs the `{}` permission.", p.as_str())
        }
    };
    op.insert("description".into(), json!(access));

    if let Some(params) = path_parameters(route.path) {
        op.insert("parameters".into(), params);
    }
    if let Some(schema) = route.request {
        op.insert(
            "requestBody".into(),
            json!({"required": true, "content": {"application/json": {"schema": schema(generator)}}}),
        );
    }
    let mut responses = Map::new();
    // Replies that share a status are one response with several content
    // types (an export answers CSV, JSONL or STIX as asked).
    for reply in route.replies {
        let r = responses
            .entry(reply.status.to_string())
            .or_insert_with(|| json!({"description": reply.description}));
        if let Some(schema) = reply.schema {
            r["content"][reply.content_type] = json!({"schema": schema(generator)});
        }
    }
    for status in route.error_statuses() {
        responses.insert(
            status.to_string(),
            json!({"description": title_of(status), "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}),
        );
    }
    op.insert("responses".into(), Value::Object(responses));
    Value::Object(op)
}

/// The whole document for `components`, plus the console's static operations.
pub fn document(version: &str, components: &[&Component], statics: &[StaticOperation]) -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    let problem = schema_of::<ProblemDocument<'static>>(&mut generator);
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for component in components {
        for route in component.routes {
            let op = operation(component.name, route, &mut generator);
            paths
                .entry(route.path)
                .or_default()
                .insert(route.method.to_lowercase(), op);
        }
    }
    for s in statics {
        let mut op = json!({
            "operationId": format!("get{}", s.path.replace(['/', '.', '{', '}', '-'], "_")),
            "summary": s.summary,
            "tags": ["console"],
            "security": [],
            "description": "Public. Honours `If-None-Match` with the `ETag` it sends.",
            "responses": {
                "200": {"description": "The file", "content": {s.content_type: {"schema": {}}}},
                "304": {"description": "Not modified since the ETag sent in `If-None-Match`"},
                "404": {"description": "No such file", "content": {PROBLEM_JSON: {"schema": problem.clone()}}}
            }
        });
        if let Some(params) = path_parameters(s.path) {
            op["parameters"] = params;
        }
        paths.entry(s.path).or_default().insert("get".into(), op);
    }
    let schemas = generator.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Vigil API",
            "version": version,
            "description": "Security operations with a human in the loop. Errors are RFC 7807 \
                `application/problem+json` documents with a stable `type`. Every route also answers \
                `HEAD` (as `GET`) and `OPTIONS` (204 with `Allow`); an unknown path is a 404 and \
                a wrong method a 405 with `Allow`."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA)",
                           "description": "An access token: EdDSA (Ed25519) JWT, 15 minutes."}
            },
            "schemas": schemas
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_readable_and_distinct() {
        fn h(_: &mut crate::Ctx) -> Result<spin_sdk::http::Response, vigil_core::ApiError> {
            unreachable!()
        }
        let a = Route::new("GET", "/api/auth/users", Access::Public, h);
        let b = Route::new("GET", "/api/auth/users/{id}", Access::Public, h);
        let c = Route::new("GET", "/api/auth/jwks.json", Access::Public, h);
        assert_eq!(operation_id(&a), "get_auth_users");
        assert_eq!(operation_id(&b), "get_auth_users_id");
        assert_eq!(operation_id(&c), "get_auth_jwks_json");
    }
}
