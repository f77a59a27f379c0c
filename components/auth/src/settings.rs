//! The `auth` component's variables, parsed into typed values: the private
//! signing key (only this component holds it), token issuer and audience,
//! the session cap, the roles that must use 2FA, how long an admin reset's
//! one-time password lives, and the key that encrypts TOTP secrets (also
//! held by this component only).
//!
//! A bad value is never replaced by a default: the request fails with a 503
//! problem naming the variable, and a log line says what is wrong with it
//! (never the value of a secret).

use std::sync::OnceLock;

use vigil_api::ApiError;
use vigil_core::Role;
use vigil_core::secret_box::SecretBox;
use vigil_core::token::TokenSigner;

pub struct Signing {
    pub signer: TokenSigner,
    pub issuer: String,
    pub audience: String,
}

/// Every variable this component reads itself (besides those every API
/// component reads through `vigil_api`), each mapped to it in `spin.toml`.
pub const VARIABLES: &[&str] = &[
    "jwt_signing_key",
    "jwt_signing_kid",
    "jwt_issuer",
    "jwt_audience",
    "jwt_public_keys",
    "max_sessions_per_user",
    "mfa_required_roles",
    "password_reset_ttl_hours",
    "totp_encryption_key",
];

/// The 503 for a variable whose value cannot be used (named in
/// `errors[].field`), logged.
fn misconfigured(name: &str, why: &str) -> ApiError {
    vigil_api::log::line(serde_json::json!({
        "level": "error", "msg": "a setting is invalid; requests that need it are refused (503)",
        "variable": name, "why": why,
    }));
    let mut err = ApiError::new(503, "misconfigured", "Server misconfigured").with_detail(format!(
        "the server's setting {name} is invalid; an operator must correct it (see the server log and README)"
    ));
    err.errors = vec![vigil_core::FieldError {
        field: name.into(),
        message: why.into(),
    }];
    err
}

fn variable(name: &str) -> Result<String, ApiError> {
    debug_assert!(VARIABLES.contains(&name), "{name} is not on VARIABLES");
    spin_sdk::variables::get(name).map_err(|e| {
        misconfigured(
            name,
            &format!("is not available to this component (map it in spin.toml): {e}"),
        )
    })
}

/// The signing key (`jwt_signing_key`, a base64url Ed25519 seed) with its `kid`.
pub fn signing() -> Result<Signing, ApiError> {
    let kid = variable("jwt_signing_kid")?;
    let signer = TokenSigner::from_seed_b64(&kid, &variable("jwt_signing_key")?)
        // `why` describes the shape of the value, never the value.
        .map_err(|why| misconfigured("jwt_signing_key", &why))?;
    Ok(Signing {
        signer,
        issuer: variable("jwt_issuer")?,
        audience: variable("jwt_audience")?,
    })
}

/// The plain settings, parsed once per instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `max_sessions_per_user` (default 5): live sessions per user.
    pub max_sessions: i64,
    /// `mfa_required_roles` (default none).
    pub mfa_required_roles: Vec<Role>,
    /// `password_reset_ttl_hours` (default 24), in milliseconds.
    pub password_reset_ttl_ms: i64,
}

/// Parse the raw values; `Err((variable, why))` for the first bad one.
pub fn parse(
    max_sessions: &str,
    mfa_required_roles: &str,
    password_reset_ttl_hours: &str,
) -> Result<Settings, (&'static str, String)> {
    let max_sessions = max_sessions
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .ok_or((
            "max_sessions_per_user",
            "must be a whole number from 1 to 1000".into(),
        ))?;
    let mfa_required_roles = mfa_required_roles
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            Role::parse(r).ok_or((
                "mfa_required_roles",
                format!("{r:?} is not a role (viewer, analyst, supervisor, admin)"),
            ))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let hours = password_reset_ttl_hours
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=720).contains(n))
        .ok_or((
            "password_reset_ttl_hours",
            "must be a whole number of hours from 1 to 720".into(),
        ))?;
    Ok(Settings {
        max_sessions,
        mfa_required_roles,
        password_reset_ttl_ms: hours * 3600 * 1000,
    })
}

/// This component's settings (read and checked once per instance).
pub fn settings() -> Result<&'static Settings, ApiError> {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    if let Some(s) = SETTINGS.get() {
        return Ok(s);
    }
    let parsed = parse(
        &variable("max_sessions_per_user")?,
        &variable("mfa_required_roles")?,
        &variable("password_reset_ttl_hours")?,
    )
    .map_err(|(name, why)| misconfigured(name, &why))?;
    Ok(SETTINGS.get_or_init(|| parsed))
}

/// At most this many live sessions per user.
pub fn max_sessions() -> Result<i64, ApiError> {
    Ok(settings()?.max_sessions)
}

/// Whether `role` must use 2FA.
pub fn mfa_required(role: Role) -> Result<bool, ApiError> {
    Ok(settings()?.mfa_required_roles.contains(&role))
}

/// The key that encrypts TOTP secrets at rest (`totp_encryption_key`, secret:
/// base64url of 32 random bytes).
pub fn totp_box() -> Result<SecretBox, ApiError> {
    SecretBox::from_b64(&variable("totp_encryption_key")?)
        .map_err(|why| misconfigured("totp_encryption_key", why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_values_parse_into_types() {
        let s = parse(" 5 ", "admin, supervisor", "24").unwrap();
        assert_eq!(s.max_sessions, 5);
        assert_eq!(s.mfa_required_roles, vec![Role::Admin, Role::Supervisor]);
        assert_eq!(s.password_reset_ttl_ms, 24 * 3600 * 1000);
        assert!(parse("1", "", "1").unwrap().mfa_required_roles.is_empty());
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(
            parse("five", "", "24").unwrap_err().0,
            "max_sessions_per_user"
        );
        assert_eq!(parse("0", "", "24").unwrap_err().0, "max_sessions_per_user");
        assert_eq!(
            parse("5", "admin,root", "24").unwrap_err().0,
            "mfa_required_roles"
        );
        assert_eq!(
            parse("5", "Admin", "24").unwrap_err().0,
            "mfa_required_roles"
        );
        assert_eq!(
            parse("5", "", "0").unwrap_err().0,
            "password_reset_ttl_hours"
        );
        assert_eq!(
            parse("5", "", "1d").unwrap_err().0,
            "password_reset_ttl_hours"
        );
    }
}
