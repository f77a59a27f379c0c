//! Evidence packs: build one (`POST /api/export/packs`), list them, download
//! one (the stored bytes, exactly as built and signed), and the public keys
//! that verify them. Every build and download is audited.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Response;
use spin_sdk::sqlite::Connection;
use vigil_api::audit::Audited;
use vigil_api::db::{self, Columns, SpinSql, Value, ready};
use vigil_api::listing::{self, Filters};
use vigil_api::{ApiError, Ctx, response};
use vigil_core::time::{now_millis, rfc3339};
use vigil_core::token::JwksDocument;
use vigil_evidence::pack::{self, PackMeta};
use vigil_evidence::scope::{self, SubjectKind};

use crate::settings;

/// What to pack.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackRequest {
    /// `alert`, `decision`, `threat` or `sensor`.
    pub subject: SubjectKind,
    /// The subject's id.
    #[schemars(length(min = 1, max = 200))]
    pub id: String,
}

#[derive(Serialize, JsonSchema)]
pub struct PackSubject {
    kind: String,
    id: String,
}

/// A stored pack, as listed.
#[derive(Serialize, JsonSchema)]
pub struct Pack {
    #[schemars(extend("format" = "uuid"))]
    id: String,
    subject: PackSubject,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
    /// Who built it.
    created_by: String,
    /// The key that signed its manifest.
    kid: String,
    /// SHA-256 (hex) of its `manifest.json`.
    manifest_sha256: String,
    /// Content files listed in the manifest.
    files: i64,
    events: i64,
    /// Bytes of the ZIP.
    size: i64,
    /// Where to download it.
    download: String,
    #[serde(skip)]
    created_ms: i64,
}

#[derive(Serialize, JsonSchema)]
pub struct PackPage {
    packs: Vec<Pack>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

static PACK_COLUMNS: Columns = Columns::new(
    "id, subject_kind, subject_id, created_at, created_by, kid, manifest_sha256, files, events, size",
);

fn pack(row: &[Value]) -> Option<Pack> {
    let r = PACK_COLUMNS.row(row);
    let id = r.text("id")?;
    Some(Pack {
        download: format!("/api/export/packs/{id}"),
        id,
        subject: PackSubject {
            kind: r.text("subject_kind")?,
            id: r.text("subject_id")?,
        },
        created_at: rfc3339(r.int("created_at")?),
        created_by: r.text("created_by")?,
        kid: r.text("kid")?,
        manifest_sha256: r.text("manifest_sha256")?,
        files: r.int("files")?,
        events: r.int("events")?,
        size: r.int("size")?,
        created_ms: r.int("created_at")?,
    })
}

/// Run `body` in one read transaction, so every statement sees one state.
fn snapshot<T>(
    conn: &Connection,
    body: impl FnOnce(&Connection) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    db::query(conn, "BEGIN", &[])?;
    let result = body(conn);
    let _ = conn.execute(if result.is_ok() { "COMMIT" } else { "ROLLBACK" }, &[]);
    result
}

/// `POST /api/export/packs`: build, sign and store a pack; answers its listing.
pub fn create(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let req: PackRequest = ctx.json()?;
    if req.id.is_empty() || req.id.len() > 200 {
        return Err(ApiError::invalid_field("id", "is 1-200 characters"));
    }
    let signer = settings::signer()?;
    let limit = settings::max_events()?;
    let conn = db::open()?;
    let sql = SpinSql(conn);
    let meta = PackMeta {
        pack_id: vigil_core::id::new_id(),
        created_at: now_millis(),
        created_by: ctx.principal().subject.clone(),
        vigil_version: ctx.component.version.to_string(),
    };
    let built = snapshot(conn, |_| {
        let subject = ready(scope::resolve(&sql, req.subject, &req.id))?.ok_or_else(|| {
            ApiError::not_found().with_detail(format!("no {} {}", req.subject.as_str(), req.id))
        })?;
        let events = ready(subject.count_events(&sql))?;
        if events > limit {
            return Err(settings::too_large("events", events, limit));
        }
        ready(pack::build(&sql, &subject, &meta, &signer))
    })?;
    let size = built.bytes.len() as i64;
    let files = built.manifest.files.len() as i64;
    let summary = serde_json::json!({
        "pack_id": meta.pack_id,
        "subject": {"kind": req.subject.as_str(), "id": req.id},
        "manifest_sha256": built.manifest_sha256,
        "kid": signer.kid(),
        "files": files,
        "events": built.events,
        "size": size,
    });
    db::transaction(conn, |conn| {
        db::query(
            conn,
            "INSERT INTO export_packs (id, subject_kind, subject_id, created_at, created_by, kid,
                                       manifest_sha256, files, events, size, content)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            &[
                Value::Text(meta.pack_id.clone()),
                Value::Text(req.subject.as_str().into()),
                Value::Text(req.id.clone()),
                Value::Integer(meta.created_at),
                Value::Text(meta.created_by.clone()),
                Value::Text(signer.kid().into()),
                Value::Text(built.manifest_sha256.clone()),
                Value::Integer(files),
                Value::Integer(built.events as i64),
                Value::Integer(size),
                Value::Blob(built.bytes.clone()),
            ],
        )?;
        let entry = ctx.audit_entry(
            "export.pack_created",
            "export_pack",
            &meta.pack_id,
            meta.created_at,
        );
        let audited = Audited::new(entry)
            .after(&summary)
            .publish("export.pack_created", summary.clone());
        vigil_api::audit::record(conn, &audited)
    })?;
    let rows = db::query(
        conn,
        &format!("SELECT {PACK_COLUMNS} FROM export_packs WHERE id = ?1"),
        &[Value::Text(meta.pack_id)],
    )?;
    let listed = rows
        .first()
        .and_then(|r| pack(r))
        .ok_or_else(ApiError::internal)?;
    let mut response = response::json(201, &listed);
    response.set_header("location", listed.download.clone());
    Ok(response)
}

/// `GET /api/export/packs`: newest first; `subject`, `subject_id`, `limit`, `cursor`.
pub fn list(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let mut f = Filters::default();
    if let Some(kind) = ctx.query_param("subject") {
        SubjectKind::parse(&kind).ok_or_else(|| {
            ApiError::invalid_field("subject", "must be one of alert, decision, threat, sensor")
        })?;
        f.add("subject_kind = ?", vec![Value::Text(kind)]);
    }
    if let Some(id) = ctx.query_param("subject_id") {
        f.add("subject_id = ?", vec![Value::Text(id)]);
    }
    let limit = listing::limit(ctx)?;
    listing::newest_first_after(ctx, &mut f, "created_at")?;
    let sql = format!(
        "SELECT {PACK_COLUMNS} FROM export_packs {} ORDER BY created_at DESC, id DESC LIMIT {}",
        f.where_clause(),
        f.limit_placeholder(limit + 1)
    );
    let conn = db::open()?;
    let mut packs: Vec<Pack> = db::query(conn, &sql, &f.params)?
        .iter()
        .filter_map(|r| pack(r))
        .collect();
    let next_cursor = listing::page(&mut packs, limit, |p| {
        vec![p.created_ms.to_string(), p.id.clone()]
    });
    Ok(response::json(200, &PackPage { packs, next_cursor }))
}

/// `GET /api/export/packs/{id}`: the stored ZIP; the download is audited.
pub fn download(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let id = ctx.param("id").to_string();
    let conn = db::open()?;
    // The ZIP is a blob, taken out of the row rather than copied.
    let rows = db::query(
        conn,
        "SELECT manifest_sha256, content FROM export_packs WHERE id = ?1",
        &[Value::Text(id.clone())],
    )?;
    let row = rows.into_iter().next().ok_or_else(ApiError::not_found)?;
    let Ok([Value::Text(manifest_sha256), Value::Blob(content)]) = <[Value; 2]>::try_from(row)
    else {
        return Err(ApiError::internal());
    };
    let now = now_millis();
    db::transaction(conn, |conn| {
        let mut entry = ctx.audit_entry("export.pack_downloaded", "export_pack", &id, now);
        entry.after = Some(
            serde_json::json!({"manifest_sha256": manifest_sha256, "size": content.len()})
                .to_string(),
        );
        vigil_api::audit::append(conn, &entry)
    })?;
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/zip")
        .header(
            "content-disposition",
            format!("attachment; filename=\"vigil-evidence-{id}.zip\""),
        )
        .header("x-vigil-manifest-sha256", manifest_sha256)
        .header("cache-control", "no-store")
        .body(content)
        .build())
}

/// `GET /api/export/keys`: the public keys that verify packs and heads.
pub fn keys(_ctx: &mut Ctx) -> Result<Response, ApiError> {
    Ok(response::json(
        200,
        &JwksDocument {
            keys: settings::public_keys()?,
        },
    ))
}
