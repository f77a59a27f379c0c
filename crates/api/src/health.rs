//! `GET /api/<area>/health`: proves the component runs and reaches its
//! database, and says which build and schema it is.

use serde::Serialize;
use spin_sdk::http::Response;
use vigil_core::ApiError;

use crate::{Ctx, db, response};

#[derive(Serialize)]
struct Health {
    status: &'static str,
    component: &'static str,
    version: &'static str,
    schema_version: i64,
}

pub fn handle(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let conn = db::open()?;
    let schema_version = db::schema_version(&conn)?;
    if schema_version == 0 {
        return Err(ApiError::unavailable(
            "the database is not migrated; run `vigil migrate`",
        ));
    }
    Ok(response::json(
        200,
        &Health {
            status: "ok",
            component: ctx.component.name,
            version: ctx.component.version,
            schema_version,
        },
    ))
}
