//! API keys for sensors and services (admin): created with their scopes
//! (limited by kind: `vigil_core::api_key::scope_refusal`) and an optional
//! expiry, shown once, listed without secrets (with when each was last
//! used, to the minute), revoked. `platform` accepts them as
//! `Authorization: Bearer vgk_…` for their scopes only, until they expire.

use crate::input;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Response;
use vigil_api::api_keys::NewApiKey;
use vigil_api::db::{Columns, Value};
use vigil_api::{ApiError, Ctx, FieldError, Permission, db, response};
use vigil_core::time::{now_millis, rfc3339};
use vigil_core::{api_key, id::new_id};

#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    Sensor,
    Service,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    #[schemars(length(min = 1, max = 100))]
    name: String,
    kind: KeyKind,
    /// Required for sensor keys: the sensor the key speaks for.
    #[schemars(length(min = 1, max = 64))]
    sensor_id: Option<String>,
    /// Permission wire names, e.g. `sensors:ingest`. A sensor key may hold
    /// only `sensors:ingest`; no key may hold `users:manage` or `api_keys:manage`.
    #[schemars(length(min = 1, max = 32))]
    scopes: Vec<String>,
    /// Days until the key stops working (1 to 365); without it, it works until revoked.
    #[schemars(range(min = 1, max = 365))]
    expires_in_days: Option<i64>,
}

#[derive(Serialize, JsonSchema)]
pub struct Key {
    #[schemars(extend("format" = "uuid"))]
    id: String,
    name: String,
    kind: KeyKind,
    sensor_id: Option<String>,
    /// Identifies the key in lists and logs; not secret.
    prefix: String,
    scopes: Vec<String>,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
    /// To the minute: it is written at most once a minute.
    #[schemars(extend("format" = "date-time"))]
    last_used_at: Option<String>,
    #[schemars(extend("format" = "date-time"))]
    expires_at: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    key: Key,
    /// The key itself: shown this once, stored only as a hash.
    secret: String,
}

#[derive(Serialize, JsonSchema)]
pub struct KeyList {
    api_keys: Vec<Key>,
}

impl NewKey {
    fn validate(&self) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty()
            || self.name.chars().count() > 100
            || self.name.chars().any(char::is_control)
        {
            errors.push(FieldError {
                field: "name".into(),
                message: "must be 1-100 characters without control characters".into(),
            });
        }
        match (self.kind, &self.sensor_id) {
            (KeyKind::Sensor, None) => errors.push(FieldError {
                field: "sensor_id".into(),
                message: "is required for a sensor key".into(),
            }),
            (KeyKind::Service, Some(_)) => errors.push(FieldError {
                field: "sensor_id".into(),
                message: "is only for sensor keys".into(),
            }),
            _ => {}
        }
        if self.scopes.is_empty() {
            errors.push(FieldError {
                field: "scopes".into(),
                message: "must name at least one permission".into(),
            });
        }
        let kind = match self.kind {
            KeyKind::Sensor => api_key::Kind::Sensor,
            KeyKind::Service => api_key::Kind::Service,
        };
        for (i, scope) in self.scopes.iter().enumerate() {
            let message = match Permission::parse(scope) {
                None => format!("{scope:?} is not a permission"),
                Some(p) => match api_key::scope_refusal(kind, p) {
                    Some(why) => why.to_string(),
                    None => continue,
                },
            };
            errors.push(FieldError {
                field: format!("scopes[{i}]"),
                message,
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(errors))
        }
    }
}

static KEY_COLUMNS: Columns =
    Columns::new("id, name, kind, sensor_id, prefix, scopes, created_at, last_used_at, expires_at");

fn key_from_row(row: &[Value]) -> Option<Key> {
    let r = KEY_COLUMNS.row(row);
    Some(Key {
        id: r.text("id")?,
        name: r.text("name")?,
        kind: if r.text("kind")? == "sensor" {
            KeyKind::Sensor
        } else {
            KeyKind::Service
        },
        sensor_id: r.text("sensor_id"),
        prefix: r.text("prefix")?,
        scopes: serde_json::from_str(&r.text("scopes")?).ok()?,
        created_at: rfc3339(r.int("created_at")?),
        last_used_at: r.int("last_used_at").map(rfc3339),
        expires_at: r.int("expires_at").map(rfc3339),
    })
}

/// `POST /api/auth/api-keys`.
pub fn create(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let new: NewKey = input::json(ctx)?;
    new.validate()?;
    let (secret, prefix, hash) = api_key::generate();
    let id = new_id();
    let now = now_millis();
    let conn = db::open()?;
    let key = db::transaction(conn, |conn| {
        // Validation tied `sensor_id` to the kind: a sensor key speaks for one.
        vigil_api::api_keys::insert(
            conn,
            &NewApiKey {
                id: &id,
                name: &new.name,
                sensor_id: new.sensor_id.as_deref(),
                prefix: &prefix,
                secret_hash: &hash,
                scopes: &new.scopes,
                created_by: Some(&ctx.principal().subject),
            },
            now,
        )?;
        if let Some(days) = new.expires_in_days {
            db::query(
                conn,
                "UPDATE api_keys SET expires_at = ?2 WHERE id = ?1",
                &[
                    Value::Text(id.clone()),
                    Value::Integer(now + days * 86_400_000),
                ],
            )?;
        }
        let rows = db::query(
            conn,
            &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"),
            &[Value::Text(id.clone())],
        )?;
        let key = rows
            .first()
            .and_then(|r| key_from_row(r))
            .ok_or_else(ApiError::internal)?;
        let mut entry = ctx.audit_entry("api_key.created", "api_key", &id, now);
        entry.after = Some(serde_json::to_string(&key).expect("key serializes"));
        vigil_api::audit::append(conn, &entry)?;
        Ok(key)
    })?;
    let mut response = response::json(201, &CreatedKey { key, secret });
    response.set_header("location", format!("/api/auth/api-keys/{id}"));
    Ok(response)
}

/// `GET /api/auth/api-keys`: keys not revoked (expired ones too, with
/// their `expires_at`), never their secrets.
pub fn list(_ctx: &mut Ctx) -> Result<Response, ApiError> {
    let conn = db::open()?;
    let rows = db::query(
        conn,
        &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at"),
        &[],
    )?;
    let api_keys = rows.iter().filter_map(|r| key_from_row(r)).collect();
    Ok(response::json(200, &KeyList { api_keys }))
}

/// `DELETE /api/auth/api-keys/{id}`: revoke; the key stops working at once.
pub fn revoke(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let id = ctx.param("id").to_string();
    let now = now_millis();
    let conn = db::open()?;
    db::transaction(conn, |conn| {
        let rows = db::query(
            conn,
            "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL RETURNING id",
            &[Value::Text(id.clone()), Value::Integer(now)],
        )?;
        if rows.is_empty() {
            return Err(ApiError::not_found());
        }
        vigil_api::audit::append(
            conn,
            &ctx.audit_entry("api_key.revoked", "api_key", &id, now),
        )
    })?;
    Ok(Response::builder().status(204).build())
}
