//! The `export` component (`/api/export/...`): signed evidence packs, the
//! audit log's export, verification and signed head, and threats as CSV,
//! JSONL and STIX 2.1. The rules are `vigil-evidence`'s; this component
//! parses, reads and writes rows, and answers. It alone holds the export
//! signing key.
//!
//! - [`packs`]: building, listing and downloading packs; the public keys.
//! - [`audit`]: the audit log as JSONL, its chain walk, its signed head.
//! - [`threats`]: the threat export.
//! - [`settings`]: the component's variables.

mod audit;
mod packs;
mod settings;
mod threats;

use vigil_api::router::{DEFAULT_BODY_LIMIT, Reply, schema_of};
use vigil_api::{Access, Component, Permission, Route, health};

/// Every Spin variable this component reads (`xtask/tests/variables.rs`
/// checks each is mapped into it in `spin.toml`).
pub const VARIABLES: &[&[&str]] = &[vigil_api::settings::VARIABLES, settings::VARIABLES];

fn binary(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "contentMediaType": "application/zip"})
}

fn text(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string"})
}

const fn file(
    description: &'static str,
    content_type: &'static str,
    schema: vigil_api::router::SchemaFn,
) -> Reply {
    Reply {
        status: 200,
        description,
        content_type,
        schema: Some(schema),
    }
}

pub static COMPONENT: Component = Component {
    name: "export",
    version: env!("CARGO_PKG_VERSION"),
    routes: &[
        health::route("/api/export/health"),
        Route::new("GET", "/api/export/keys", Access::Public, packs::keys)
            .summary("The public keys (JWKS) that verify evidence packs and audit heads offline")
            .replies(&[Reply::json(200, "The key set", schema_of::<vigil_core::token::JwksDocument>)])
            .errors(&[503]),
        Route::new("POST", "/api/export/packs", Access::Needs(Permission::ExportCreate), packs::create)
            .summary("Build, sign and store an evidence pack about an alert, decision, threat or sensor (audited)")
            .request(schema_of::<packs::PackRequest>)
            .replies(&[Reply::json(201, "The stored pack; `Location` is its download", schema_of::<packs::Pack>)])
            .errors(&[404, 503]),
        Route::new("GET", "/api/export/packs", Access::Needs(Permission::ExportCreate), packs::list)
            .summary("Evidence packs, newest first: who built them, when, about what, their manifest hash (`subject`, `subject_id`; cursor)")
            .replies(&[Reply::json(200, "A page of packs", schema_of::<packs::PackPage>)])
            .errors(&[400, 422, 503]),
        Route::new("GET", "/api/export/packs/{id}", Access::Needs(Permission::ExportCreate), packs::download)
            .summary("Download a pack: the ZIP exactly as built and signed (audited)")
            .replies(&[file("The pack (ZIP)", "application/zip", binary)])
            .errors(&[404, 503]),
        Route::new("GET", "/api/export/audit", Access::Needs(Permission::AuditExport), audit::export)
            .summary("The audit log as JSONL with each entry's prev_hash and hash (`from`, `to`, `actor`, `action`; audited)")
            .replies(&[file("One stored entry a line, oldest first", "application/x-ndjson", text)])
            .errors(&[413, 422, 503]),
        Route::new("GET", "/api/export/audit/verify", Access::Needs(Permission::AuditExport), audit::verify)
            .summary("Re-walk the audit chain: ok, or the first broken link with the expected and stored hash")
            .replies(&[Reply::json(200, "The verdict", schema_of::<vigil_evidence::audit_log::ChainVerdict>)])
            .errors(&[503]),
        Route::new("GET", "/api/export/audit/head", Access::Needs(Permission::AuditExport), audit::head)
            .summary("The latest audit entry {id, hash, at} as a compact JWS signed by the export key (save it to anchor the log)")
            .replies(&[file("A compact JWS (EdDSA)", "application/jose", text)])
            .errors(&[404, 503]),
        Route::new("GET", "/api/export/threats", Access::Needs(Permission::ExportCreate), threats::export)
            .summary("Threat events as CSV, JSONL or a STIX 2.1 bundle (`format`, and the threat explorer's filters; audited)")
            .replies(&[
                file("CSV (RFC 4180), formula-safe", "text/csv", text),
                file("One event a line", "application/x-ndjson", text),
                file("A STIX 2.1 bundle", "application/stix+json", text),
            ])
            .errors(&[413, 422, 503]),
    ],
    body_limit: DEFAULT_BODY_LIMIT,
};

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest, out: spin_sdk::http::ResponseOutparam) {
    vigil_api::send(vigil_api::serve(&COMPONENT, req).await, out).await
}
