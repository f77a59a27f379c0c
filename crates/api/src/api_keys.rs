//! Storing an API key, shared by the auth component (admins issue keys) and
//! sensor registration (an onboarding token mints the sensor's key). The
//! presented form is made by `vigil_core::api_key::generate`; only its
//! prefix and secret hash are stored.

use crate::db::Value;
use spin_sdk::sqlite::Connection;

use crate::{ApiError, db};

pub struct NewApiKey<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// The sensor a sensor key speaks for; `None` for a service key.
    pub sensor_id: Option<&'a str>,
    pub prefix: &'a str,
    pub secret_hash: &'a str,
    /// Permission wire names.
    pub scopes: &'a [String],
    /// The user who issued it; `None` when an onboarding token minted it.
    pub created_by: Option<&'a str>,
}

/// Insert `key` inside the caller's transaction.
pub fn insert(conn: &Connection, key: &NewApiKey, now: i64) -> Result<(), ApiError> {
    let kind = if key.sensor_id.is_some() {
        "sensor"
    } else {
        "service"
    };
    db::query(
        conn,
        "INSERT INTO api_keys (id, name, kind, sensor_id, prefix, secret_hash, scopes, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        &[
            Value::Text(key.id.into()),
            Value::Text(key.name.into()),
            Value::Text(kind.into()),
            db::opt_text(key.sensor_id),
            Value::Text(key.prefix.into()),
            Value::Text(key.secret_hash.into()),
            Value::Text(serde_json::to_string(key.scopes).expect("strings serialize")),
            db::opt_text(key.created_by),
            Value::Integer(now),
        ],
    )?;
    Ok(())
}
