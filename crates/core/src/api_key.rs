//! API keys for sensors and services: `vgk_<prefix>_<secret>`. The prefix
//! (8 hex characters, unique) finds the key; the secret (256 random bits) is
//! stored only as its SHA-256 and compared in constant time.
//!
//! What a key may hold follows from its kind ([`scope_refusal`]): a sensor
//! key ingests its sensor's events and heartbeats and nothing else; a
//! service key may hold any permission but the two that make identities
//! (`users:manage`, `api_keys:manage`), which stay with people (sessions,
//! 2FA). A key may expire; `last_used_at` is kept at most once a minute per
//! key ([`TOUCH_INTERVAL_MS`]), so authentication stays a read.

use crate::ApiError;
use crate::access::{Permission, Principal};
use crate::login::{new_secret, secret_hash};
use crate::sql::{Columns, Sql, Value, opt_text};
use subtle::ConstantTimeEq;

const SCHEME: &str = "vgk_";

/// `last_used_at` is written at most this often per key.
pub const TOUCH_INTERVAL_MS: i64 = 60_000;
/// The longest lifetime a key can be given at creation (a year); no expiry at all is allowed too.
pub const MAX_EXPIRY_DAYS: i64 = 365;

/// What a key is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Speaks for one sensor: its events and heartbeats.
    Sensor,
    /// A program acting on its own (an engine, an executor, a scraper).
    Service,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Sensor => "sensor",
            Kind::Service => "service",
        }
    }
}

/// Why a key of `kind` may not hold `scope`, if it may not.
pub fn scope_refusal(kind: Kind, scope: Permission) -> Option<&'static str> {
    match (kind, scope) {
        (Kind::Sensor, Permission::SensorsIngest) => None,
        (Kind::Sensor, _) => {
            Some("a sensor key may only hold sensors:ingest (its events and heartbeats)")
        }
        (Kind::Service, Permission::UsersManage | Permission::ApiKeysManage) => {
            Some("no API key may manage users or API keys: that stays with people")
        }
        (Kind::Service, _) => None,
    }
}

/// Whether a key with `expires_at` is past it at `now`.
pub fn is_expired(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_some_and(|at| at <= now)
}

/// Whether a key last used at `last_used_at` should have it written at `now`.
pub fn needs_touch(last_used_at: Option<i64>, now: i64) -> bool {
    last_used_at.is_none_or(|at| now - at >= TOUCH_INTERVAL_MS)
}

/// Whether a bearer credential is an API key rather than a JWT.
pub fn looks_like(credential: &str) -> bool {
    credential.starts_with(SCHEME)
}

/// `(prefix, secret)` of a presented key.
pub fn parse(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(SCHEME)?;
    let (prefix, secret) = rest.split_once('_')?;
    let ok =
        prefix.len() == 8 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) && secret.len() == 43;
    ok.then_some((prefix, secret))
}

/// A new key: `(presented form, prefix, secret hash)`. The presented form is shown once.
pub fn generate() -> (String, String, String) {
    let mut raw = [0u8; 4];
    getrandom::fill(&mut raw).expect("the platform has a random source");
    let prefix = hex::encode(raw);
    let secret = new_secret();
    (
        format!("{SCHEME}{prefix}_{secret}"),
        prefix,
        secret_hash(&secret),
    )
}

/// Constant-time comparison of a presented secret with the stored hash.
pub fn secret_matches(secret: &str, stored_hash: &str) -> bool {
    secret_hash(secret)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

/// The principal of key `id` with its stored scopes (a JSON array of wire names).
pub fn principal(id: &str, scopes_json: &str) -> Option<Principal> {
    let names: Vec<String> = serde_json::from_str(scopes_json).ok()?;
    let scopes = names
        .iter()
        .map(|n| Permission::parse(n))
        .collect::<Option<Vec<_>>>()?;
    Some(principal_with(id, scopes))
}

/// The principal of key `id` of `kind`: of its stored scopes, only those its
/// kind may hold (a key stored before the rule loses the others).
pub fn principal_of_kind(id: &str, kind: Kind, scopes_json: &str) -> Option<Principal> {
    let mut p = principal(id, scopes_json)?;
    p.scopes.retain(|s| scope_refusal(kind, *s).is_none());
    Some(p)
}

fn principal_with(id: &str, scopes: Vec<Permission>) -> Principal {
    Principal {
        subject: format!("key:{id}"),
        role: None,
        scopes,
        token_id: id.to_string(),
        session: None,
        pending: None,
    }
}

/// The principal of a presented key (prefix and secret, as [`parse`] splits
/// it), if the key exists, is neither revoked nor expired, and its secret
/// matches. One statement, plus at most one write a minute per key for
/// `last_used_at`: the components and the relay authenticate keys alike.
pub async fn authenticate(
    db: &impl Sql,
    prefix: &str,
    secret: &str,
) -> Result<Option<Principal>, ApiError> {
    static PRESENTED: Columns =
        Columns::new("id, secret_hash, scopes, expires_at, last_used_at, kind");
    let now = crate::time::now_millis();
    let rows = db
        .query(
            &format!("SELECT {PRESENTED} FROM api_keys WHERE prefix = ?1 AND revoked_at IS NULL"),
            &[Value::Text(prefix.into())],
        )
        .await?;
    let Some(row) = rows.first().map(|r| PRESENTED.row(r)) else {
        return Ok(None);
    };
    let (Some(id), Some(hash), Some(scopes)) =
        (row.text("id"), row.text("secret_hash"), row.text("scopes"))
    else {
        return Ok(None);
    };
    if !secret_matches(secret, &hash) || is_expired(row.int("expires_at"), now) {
        return Ok(None);
    }
    if needs_touch(row.int("last_used_at"), now) {
        // Guarded, so concurrent requests write it once.
        db.query(
            "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1
                AND (last_used_at IS NULL OR last_used_at <= ?3)",
            &[
                Value::Text(id.clone()),
                Value::Integer(now),
                Value::Integer(now - TOUCH_INTERVAL_MS),
            ],
        )
        .await?;
    }
    let kind = match row.text("kind").as_deref() {
        Some("sensor") => Kind::Sensor,
        _ => Kind::Service,
    };
    Ok(principal_of_kind(&id, kind, &scopes))
}

/// A key to store: only its prefix and secret hash (from [`generate`]).
pub struct NewApiKey<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// The sensor a sensor key speaks for; `None` for a service key.
    pub sensor_id: Option<&'a str>,
    pub prefix: &'a str,
    pub secret_hash: &'a str,
    /// Permission wire names.
    pub scopes: &'a [String],
    /// Who issued it; `None` when an onboarding token minted it.
    pub created_by: Option<&'a str>,
}

/// Insert `key` inside the caller's transaction (admins issuing keys,
/// sensor registration, `vigil simulate`'s sensors).
pub async fn insert(db: &impl Sql, key: &NewApiKey<'_>, now: i64) -> Result<(), ApiError> {
    let kind = if key.sensor_id.is_some() {
        "sensor"
    } else {
        "service"
    };
    db.query(
        "INSERT INTO api_keys (id, name, kind, sensor_id, prefix, secret_hash, scopes, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        &[
            Value::Text(key.id.into()),
            Value::Text(key.name.into()),
            Value::Text(kind.into()),
            opt_text(key.sensor_id),
            Value::Text(key.prefix.into()),
            Value::Text(key.secret_hash.into()),
            Value::Text(serde_json::to_string(key.scopes).expect("strings serialize")),
            opt_text(key.created_by),
            Value::Integer(now),
        ],
    )
    .await
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_match_only_their_secret() {
        let (presented, prefix, hash) = generate();
        assert!(looks_like(&presented));
        let (p, secret) = parse(&presented).unwrap();
        assert_eq!(p, prefix);
        assert!(secret_matches(secret, &hash));
        let (other, _, _) = generate();
        assert!(!secret_matches(parse(&other).unwrap().1, &hash));
        for bad in [
            "vgk_",
            "vgk_zzzzzzzz_x",
            "vgk_0123abcd",
            "eyJhbGciOi.x.y",
            "vgk_0123abcd_short",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn scopes_are_limited_by_kind() {
        assert_eq!(scope_refusal(Kind::Sensor, Permission::SensorsIngest), None);
        for p in Permission::ALL
            .iter()
            .filter(|p| **p != Permission::SensorsIngest)
        {
            assert!(scope_refusal(Kind::Sensor, *p).is_some(), "{p:?}");
        }
        assert!(scope_refusal(Kind::Service, Permission::UsersManage).is_some());
        assert!(scope_refusal(Kind::Service, Permission::ApiKeysManage).is_some());
        for p in [
            Permission::DecisionsSubmit,
            Permission::DecisionsReportOutcome,
            Permission::MetricsScrape,
            Permission::ThreatsRead,
            Permission::SensorsIngest,
        ] {
            assert_eq!(scope_refusal(Kind::Service, p), None, "{p:?}");
        }
    }

    #[test]
    fn expiry_and_the_once_a_minute_touch() {
        assert!(!is_expired(None, 10));
        assert!(!is_expired(Some(11), 10));
        assert!(is_expired(Some(10), 10));
        assert!(needs_touch(None, 0));
        assert!(!needs_touch(Some(1_000), 1_000 + TOUCH_INTERVAL_MS - 1));
        assert!(needs_touch(Some(1_000), 1_000 + TOUCH_INTERVAL_MS));
    }

    #[test]
    fn principals_carry_scopes_and_no_role() {
        let p = principal("k1", r#"["sensors:ingest"]"#).unwrap();
        assert_eq!(p.subject, "key:k1");
        assert!(p.may(Permission::SensorsIngest) && !p.may(Permission::ThreatsRead));
        assert!(principal("k1", r#"["root:all"]"#).is_none());
        // A sensor key stored with more than its kind may hold keeps only that.
        let old =
            principal_of_kind("k2", Kind::Sensor, r#"["sensors:ingest", "threats:read"]"#).unwrap();
        assert_eq!(old.scopes, vec![Permission::SensorsIngest]);
        let svc =
            principal_of_kind("k3", Kind::Service, r#"["users:manage", "threats:read"]"#).unwrap();
        assert_eq!(svc.scopes, vec![Permission::ThreatsRead]);
    }
}
