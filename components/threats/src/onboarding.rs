//! Sensor onboarding: an admin makes a single-use, expiring token (also as a
//! QR code to scan at the sensor); the sensor registers with it once and gets
//! its id and its API key (shown that one time, stored hashed).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Response;
use vigil_api::api_keys::NewApiKey;
use vigil_api::db::{Columns, Named, Value};
use vigil_api::{ApiError, Ctx, db, response};
use vigil_core::access::Permission;
use vigil_core::api_key;
use vigil_core::id::new_id;
use vigil_core::login::{new_secret, secret_hash};
use vigil_core::time::{now_millis, rfc3339};
use vigil_ingest::sensor::SensorKind;

use crate::sensors::{self, NewSensor, Sensor};

const TOKEN_PREFIX: &str = "vot_";
const DEFAULT_TTL_MINUTES: i64 = 60;
const MAX_TTL_MINUTES: i64 = 7 * 24 * 60;

#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// How long the token lasts: 5 minutes to 7 days (default 60).
    #[schemars(range(min = 5, max = 10080))]
    ttl_minutes: Option<i64>,
    /// What the token is for (shown in the audit log).
    #[schemars(length(max = 200))]
    note: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct OnboardingToken {
    #[schemars(extend("format" = "uuid"))]
    id: String,
    /// Shown once; single use.
    token: String,
    #[schemars(extend("format" = "date-time"))]
    expires_at: String,
    /// Where the sensor registers.
    register_url: String,
    /// The token and `register_url` as JSON in a QR code (SVG), for a sensor to scan.
    qr_svg: String,
}

/// `POST /api/sensors/onboarding-tokens` (admin).
pub fn create_token(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let request: TokenRequest = if ctx.body.is_empty() {
        TokenRequest::default()
    } else {
        ctx.json()?
    };
    let ttl = request.ttl_minutes.unwrap_or(DEFAULT_TTL_MINUTES);
    if !(5..=MAX_TTL_MINUTES).contains(&ttl) {
        return Err(ApiError::invalid_field(
            "ttl_minutes",
            "is 5-10080 (7 days)",
        ));
    }
    let note = request
        .note
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(ApiError::invalid_field(
            "note",
            "must be at most 200 characters",
        ));
    }
    // Where the sensor registers comes from the operator, never from the
    // request's Host (which a client, or a proxy, chooses).
    let register_url = format!(
        "{}/api/sensors/register",
        crate::settings::get()?
            .public_base_url
            .as_deref()
            .ok_or_else(|| {
                vigil_api::settings::refuse(
                    crate::settings::PUBLIC_BASE_URL,
                    "is not set: onboarding tokens need the URL sensors reach the app at",
                )
            })?
    );
    let token = format!("{TOKEN_PREFIX}{}", new_secret());
    let id = new_id();
    let now = now_millis();
    let expires_at = now + ttl * 60_000;
    let conn = db::open()?;
    db::transaction(conn, |conn| {
        db::query(
            conn,
            "INSERT INTO sensor_onboarding_tokens (id, token_hash, note, created_by, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[
                Value::Text(id.clone()),
                Value::Text(secret_hash(&token)),
                db::opt_text(note.as_deref()),
                Value::Text(ctx.principal().subject.clone()),
                Value::Integer(now),
                Value::Integer(expires_at),
            ],
        )?;
        let mut entry = ctx.audit_entry(
            "sensor.onboarding_token_created",
            "onboarding_token",
            &id,
            now,
        );
        entry.after =
            Some(serde_json::json!({"expires_at": rfc3339(expires_at), "note": note}).to_string());
        vigil_api::audit::append(conn, &entry)
    })?;
    let scanned = serde_json::json!({"register_url": register_url, "token": token}).to_string();
    let qr_svg = qrcode::QrCode::new(scanned.as_bytes())
        .map_err(|_| ApiError::internal())?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .build();
    Ok(response::json(
        201,
        &OnboardingToken {
            id,
            token,
            expires_at: rfc3339(expires_at),
            register_url,
            qr_svg,
        },
    ))
}

/// An onboarding token as admins see it afterwards: never the token itself.
#[derive(Serialize, JsonSchema)]
pub struct TokenRecord {
    #[schemars(extend("format" = "uuid"))]
    id: String,
    note: Option<String>,
    created_by: String,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
    #[schemars(extend("format" = "date-time"))]
    expires_at: String,
    /// `unused`, `used`, `expired` or `revoked`.
    state: String,
    /// The sensor it registered, once used.
    sensor_id: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct TokenList {
    tokens: Vec<TokenRecord>,
}

static TOKEN_COLUMNS: Columns =
    Columns::new("id, note, created_by, created_at, expires_at, used_at, revoked_at, sensor_id");

/// What became of a token, from its row (`TOKEN_COLUMNS`).
fn state_of(r: &Named, now: i64) -> &'static str {
    if r.int("used_at").is_some() {
        "used"
    } else if r.int("revoked_at").is_some() {
        "revoked"
    } else if r.int("expires_at").is_some_and(|at| at <= now) {
        "expired"
    } else {
        "unused"
    }
}

fn token_record(row: &[Value], now: i64) -> Option<TokenRecord> {
    let r = TOKEN_COLUMNS.row(row);
    Some(TokenRecord {
        id: r.text("id")?,
        note: r.text("note"),
        created_by: r.text("created_by")?,
        created_at: rfc3339(r.int("created_at")?),
        expires_at: rfc3339(r.int("expires_at")?),
        state: state_of(&r, now).into(),
        sensor_id: r.text("sensor_id"),
    })
}

/// `GET /api/sensors/onboarding-tokens` (admin): the latest 200, newest first.
pub fn list_tokens(_ctx: &mut Ctx) -> Result<Response, ApiError> {
    let now = now_millis();
    let conn = db::open()?;
    let rows = db::query(
        conn,
        &format!(
            "SELECT {TOKEN_COLUMNS} FROM sensor_onboarding_tokens ORDER BY created_at DESC, id DESC LIMIT 200"
        ),
        &[],
    )?;
    let tokens = rows.iter().filter_map(|r| token_record(r, now)).collect();
    Ok(response::json(200, &TokenList { tokens }))
}

/// `DELETE /api/sensors/onboarding-tokens/{id}` (admin): an unused token
/// stops working; a used one is history and stays (409).
pub fn revoke_token(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let id = ctx.param("id").to_string();
    let now = now_millis();
    let conn = db::open()?;
    db::transaction(conn, |conn| {
        let rows = db::query(
            conn,
            &format!("SELECT {TOKEN_COLUMNS} FROM sensor_onboarding_tokens WHERE id = ?1"),
            &[Value::Text(id.clone())],
        )?;
        let row = rows.first().ok_or_else(ApiError::not_found)?;
        if state_of(&TOKEN_COLUMNS.row(row), now) == "used" {
            return Err(ApiError::conflict(
                "the token was used already; delete the sensor instead",
            ));
        }
        db::query(
            conn,
            "UPDATE sensor_onboarding_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
            &[Value::Text(id.clone()), Value::Integer(now)],
        )?;
        vigil_api::audit::append(
            conn,
            &ctx.audit_entry(
                "sensor.onboarding_token_revoked",
                "onboarding_token",
                &id,
                now,
            ),
        )
    })?;
    Ok(Response::builder().status(204).build())
}

/// `scheme://authority` of this request, from Spin's `spin-full-url`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The onboarding token.
    #[schemars(length(min = 1, max = 200))]
    token: String,
    #[schemars(length(min = 1, max = 100))]
    name: String,
    kind: SensorKind,
    #[schemars(length(max = 200))]
    location: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct Registered {
    sensor: Sensor,
    /// The sensor's API key (`vgk_…`, scope `sensors:ingest`): shown once.
    api_key: String,
}

/// `POST /api/sensors/register` (no login: the token is the credential).
pub fn register(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let reg: Registration = ctx.json()?;
    let new = NewSensor {
        id: None,
        name: reg.name,
        kind: reg.kind,
        location: reg.location,
        description: None,
    };
    new.validate()?;
    let now = now_millis();
    let sensor_id = sensors::new_sensor_id();
    let (presented, prefix, key_hash) = api_key::generate();
    let conn = db::open()?;
    let sensor = db::transaction(conn, |conn| {
        let rows = db::query(
            conn,
            &format!("SELECT {TOKEN_COLUMNS} FROM sensor_onboarding_tokens WHERE token_hash = ?1"),
            &[Value::Text(secret_hash(reg.token.trim()))],
        )?;
        let row = rows.first().ok_or_else(|| {
            ApiError::new(401, "invalid-onboarding-token", "Invalid onboarding token")
                .with_detail("this is not an onboarding token Vigil issued")
        })?;
        let row = TOKEN_COLUMNS.row(row);
        let token_id = row.text("id").ok_or_else(ApiError::internal)?;
        let gone = |why: &str| {
            ApiError::new(410, "onboarding-token-spent", "Onboarding token spent").with_detail(
                format!("the onboarding token {why}; ask an admin for a new one"),
            )
        };
        match state_of(&row, now) {
            "used" => return Err(gone("was already used")),
            "revoked" => return Err(gone("was revoked")),
            "expired" => return Err(gone("has expired")),
            _ => {}
        }
        db::query(
            conn,
            "UPDATE sensor_onboarding_tokens SET used_at = ?2, sensor_id = ?3 WHERE id = ?1",
            &[
                Value::Text(token_id.clone()),
                Value::Integer(now),
                Value::Text(sensor_id.clone()),
            ],
        )?;
        let subject = format!("onboarding-token:{token_id}");
        let sensor = sensors::insert(conn, ctx, &sensor_id, &new, &subject, now)?;
        let key_id = new_id();
        let scopes = [Permission::SensorsIngest.as_str().to_string()];
        vigil_api::api_keys::insert(
            conn,
            &NewApiKey {
                id: &key_id,
                name: &format!("sensor {sensor_id}"),
                sensor_id: Some(&sensor_id),
                prefix: &prefix,
                secret_hash: &key_hash,
                scopes: &scopes,
                created_by: None,
            },
            now,
        )?;
        let mut entry = ctx.audit_entry("api_key.created", "api_key", &key_id, now);
        entry.actor = subject;
        entry.after = Some(
            serde_json::json!({"kind": "sensor", "sensor_id": sensor_id, "prefix": prefix, "scopes": scopes})
                .to_string(),
        );
        vigil_api::audit::append(conn, &entry)?;
        Ok(sensor)
    })?;
    let mut response = response::json(
        201,
        &Registered {
            sensor,
            api_key: presented,
        },
    );
    response.set_header("location", format!("/api/sensors/{sensor_id}"));
    Ok(response)
}
