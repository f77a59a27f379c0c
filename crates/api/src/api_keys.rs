//! Storing an API key from a component (the auth component's admins issue
//! keys; sensor registration mints the sensor's key), on the request's
//! connection. The rule is `vigil-core`'s ([`vigil_core::api_key::insert`]).

use spin_sdk::sqlite::Connection;
pub use vigil_core::api_key::NewApiKey;

use crate::ApiError;
use crate::db::{SpinSql, ready};

/// Insert `key` inside the caller's transaction.
pub fn insert(conn: &Connection, key: &NewApiKey, now: i64) -> Result<(), ApiError> {
    ready(vigil_core::api_key::insert(&SpinSql(conn), key, now))
}
