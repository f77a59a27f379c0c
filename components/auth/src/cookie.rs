//! Browser sessions: the refresh token in a cookie instead of the body.
//!
//! A login (`POST /api/auth/login`, `/api/auth/login/mfa`) with
//! `"session": "cookie"` answers without `refresh_token` in the body and sets
//! it as `vigil_refresh` (`HttpOnly; Secure; SameSite=Strict`, scoped to
//! `/api/auth/refresh`), so page scripts never hold it. A refresh without
//! `refresh_token` in the body uses the cookie and rotates it; it must carry
//! `X-Vigil-CSRF: 1`, a header no other site's page can send (a cross-origin
//! request with it needs a CORS preflight, and no origin is ever allowed
//! credentials). Logout clears the cookie.

use schemars::JsonSchema;
use serde::Deserialize;
use spin_sdk::http::Response;
use vigil_api::{ApiError, Ctx, response};

use crate::sessions::Tokens;

pub const COOKIE: &str = "vigil_refresh";
pub const PATH: &str = "/api/auth/refresh";
pub const CSRF_HEADER: &str = "x-vigil-csrf";

/// Where the refresh token of a new session goes.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum SessionMode {
    /// In the response body, `refresh_token` (API clients, the CLI).
    #[default]
    Body,
    /// In an `HttpOnly` cookie scoped to `/api/auth/refresh` (browsers).
    Cookie,
}

/// The answer that hands out `tokens`: the refresh token in the body, or
/// taken out of it and set as the cookie.
pub fn reply(mut tokens: Tokens, mode: SessionMode) -> Response {
    if mode == SessionMode::Body {
        return response::json(200, &tokens);
    }
    let secret = tokens.refresh_token.take().unwrap_or_default();
    let mut response = response::json(200, &tokens);
    response.set_header(
        "set-cookie",
        format!(
            "{COOKIE}={secret}; Path={PATH}; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
            tokens.refresh_token_max_age_secs
        ),
    );
    response.set_header("cache-control", "no-store");
    response
}

/// The `Set-Cookie` that removes the refresh cookie.
pub fn cleared() -> String {
    format!("{COOKIE}=; Path={PATH}; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

/// The refresh token of a cookie-mode refresh: 403 without the CSRF header,
/// `None` when there is no cookie.
pub fn refresh_token(ctx: &Ctx) -> Result<Option<String>, ApiError> {
    if ctx.header(CSRF_HEADER).is_none_or(|v| v.trim().is_empty()) {
        return Err(
            ApiError::new(403, "csrf-header-missing", "CSRF header required").with_detail(
                "a refresh with the session cookie must carry the X-Vigil-CSRF header",
            ),
        );
    }
    Ok(ctx
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then(|| value.to_string())
        }))
}
