//! Request bodies, parsed by `Ctx::json` and then held to every length and
//! range their type documents (`vigil_core::limits`), from the very schema
//! the OpenAPI document publishes: no documented limit is a comment only.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use vigil_api::{ApiError, Ctx};

/// Parse the body as `T` (415, 400 and 422 as `Ctx::json` answers), then
/// refuse with 422, naming each field, any value past a documented limit.
pub fn json<T: DeserializeOwned + JsonSchema>(ctx: &Ctx) -> Result<T, ApiError> {
    let value: T = ctx.json()?;
    let raw: serde_json::Value = ctx.json()?;
    let schema =
        serde_json::to_value(schemars::schema_for!(T)).map_err(|_| ApiError::internal())?;
    let errors = vigil_core::limits::violations(&schema, &raw);
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(ApiError::validation(errors))
    }
}
