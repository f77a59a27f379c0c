//! `GET /api/<area>/health`: proves the component runs and reaches its
//! database, and says which build and schema it is.

use schemars::JsonSchema;
use serde::Serialize;
use spin_sdk::http::Response;
use vigil_core::ApiError;

use crate::router::{Reply, schema_of};
use crate::{Access, Ctx, Route, db, response};

#[derive(Serialize, JsonSchema)]
pub struct Health {
    /// Always `ok` when the component answers 200.
    status: &'static str,
    component: &'static str,
    version: &'static str,
    schema_version: i64,
}

const REPLIES: &[Reply] = &[Reply::json(
    200,
    "Up, with its version and schema version",
    schema_of::<Health>,
)];

/// The route every component mounts at `path`.
pub const fn route(path: &'static str) -> Route {
    Route::new("GET", path, Access::Public, handle)
        .summary("Health: the component runs and reaches its database")
        .replies(REPLIES)
        .errors(&[503])
}

pub fn handle(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let conn = db::open()?;
    let schema_version = db::schema_version(conn)?;
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
