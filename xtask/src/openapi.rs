//! Writing the OpenAPI document from the components' route tables (linked
//! here natively), before the console that serves it is built.

use std::path::PathBuf;

use anyhow::Result;
use vigil_api::openapi::{StaticOperation, document};

use crate::root;

/// Every API component's route table, in the order of `spin.toml`.
pub fn components() -> [&'static vigil_api::Component; 5] {
    [
        &vigil_auth::COMPONENT,
        &vigil_decisions::COMPONENT,
        &vigil_threats::COMPONENT,
        &vigil_metrics::COMPONENT,
        &vigil_export::COMPONENT,
    ]
}

/// What the console serves (`components/console`: static files and this document).
pub const CONSOLE: &[StaticOperation] = &[
    StaticOperation {
        path: "/api/openapi.json",
        summary: "This OpenAPI document",
        content_type: "application/json",
    },
    StaticOperation {
        path: "/config.json",
        summary: "The console's settings: `relay_url`, the relay's WebSocket URL (null when unset)",
        content_type: "application/json",
    },
    StaticOperation {
        path: "/",
        summary: "The web console",
        content_type: "text/html",
    },
    StaticOperation {
        path: "/{file}",
        summary: "A file of the web console (`static/`)",
        content_type: "*/*",
    },
];

pub fn path() -> PathBuf {
    root().join("target/vigil/openapi.json")
}

pub fn generate() -> serde_json::Value {
    document(env!("CARGO_PKG_VERSION"), &components(), CONSOLE)
}

/// Write the document where the console's build embeds it.
pub fn write() -> Result<PathBuf> {
    let path = path();
    std::fs::create_dir_all(path.parent().unwrap())?;
    let text = serde_json::to_string_pretty(&generate())? + "\n";
    crate::files::write_if_changed(&path, text.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document lists exactly the routes of the tables, each with its
    /// method, permission and the error statuses the dispatcher can produce.
    #[test]
    fn document_matches_the_route_tables() {
        let doc = generate();
        let paths = doc["paths"].as_object().unwrap();
        let mut from_tables = 0;
        for component in components() {
            for route in component.routes {
                from_tables += 1;
                let op = &paths[route.path][route.method.to_lowercase()];
                assert!(
                    op.is_object(),
                    "{} {} is not documented",
                    route.method,
                    route.path
                );
                for status in route.error_statuses() {
                    assert!(
                        op["responses"][status.to_string()].is_object(),
                        "{} {} lacks {status}",
                        route.method,
                        route.path
                    );
                }
                match route.access {
                    vigil_api::Access::Needs(p) => assert_eq!(op["x-vigil-permission"], p.as_str()),
                    vigil_api::Access::Public => assert_eq!(op["security"], serde_json::json!([])),
                    vigil_api::Access::Authenticated => {
                        assert_eq!(op["x-vigil-permission"], "authenticated")
                    }
                }
            }
        }
        let documented: usize = paths
            .values()
            .map(|ops| ops.as_object().unwrap().len())
            .sum();
        assert_eq!(
            documented,
            from_tables + CONSOLE.len(),
            "the document lists a route no component serves"
        );
    }
}
