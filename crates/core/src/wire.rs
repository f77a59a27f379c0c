//! Wire names: the snake_case names serde gives enum values, which are also
//! how they are stored in the database.

use serde::Serialize;

/// The snake_case wire name of a serde enum value (as stored in the database).
pub fn wire<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Parse a snake_case wire name.
pub fn parse_wire<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}
