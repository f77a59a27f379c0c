//! Who a socket speaks for: an access token verified against the JWKS with
//! its session checked exactly as the components check it
//! (`vigil_core::login::session_is_live`), or an API key looked up as they
//! look it up (`vigil_core::api_key::authenticate`). The channels a socket may
//! read follow from the principal (`protocol::Channel::readable_by`).

use vigil_core::token::{self, LEEWAY_SECS, TokenError};
use vigil_core::{Principal, api_key, login};
use vigil_db::sql::LibsqlSql;

use super::config::Config;
use super::db::Pool;
use super::protocol::Channel;

#[derive(Debug)]
pub struct Authenticated {
    pub principal: Principal,
    pub channels: Vec<Channel>,
    /// When the token stops being valid (ms; `exp` plus the leeway the HTTP
    /// API allows); `None` for API keys, which do not expire.
    pub expires_at: Option<i64>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 4401: no valid credential, or its session has ended.
    Unauthenticated(String),
    /// 4403: valid, but it may read no channel.
    Forbidden(String),
    /// 1011: the database could not be asked.
    Unavailable,
}

pub async fn authenticate(
    credential: &str,
    config: &Config,
    pool: &Pool,
    now_ms: i64,
) -> Result<Authenticated, Refusal> {
    let (principal, expires_at) = if api_key::looks_like(credential) {
        let (prefix, secret) = api_key::parse(credential)
            .ok_or_else(|| Refusal::Unauthenticated("the API key is malformed".into()))?;
        let principal = pool
            .read(|conn| async move {
                api_key::authenticate(&LibsqlSql(&conn), prefix, secret)
                    .await
                    .map_err(unavailable)
            })
            .await
            .map_err(|_| Refusal::Unavailable)?
            .ok_or_else(|| Refusal::Unauthenticated("the API key is unknown or revoked".into()))?;
        (principal, None)
    } else {
        let claims = token::verify(credential, &config.keys, &config.expect, now_ms / 1000)
            .map_err(|e| Refusal::Unauthenticated(describe(&e)))?;
        let principal = claims
            .principal()
            .map_err(|e| Refusal::Unauthenticated(describe(&e)))?;
        // A token that names no session could never be ended: refused, as
        // the components refuse it (vigil_api::authz).
        let Some(session) = &principal.session else {
            return Err(Refusal::Unauthenticated(
                "the access token names no session (sid); log in again".into(),
            ));
        };
        let subject = &principal.subject;
        let live = pool
            .read(|conn| async move {
                login::session_is_live(&LibsqlSql(&conn), session, subject, now_ms)
                    .await
                    .map_err(unavailable)
            })
            .await
            .map_err(|_| Refusal::Unavailable)?;
        if !live {
            return Err(Refusal::Unauthenticated(
                "the session of this access token has ended; log in again".into(),
            ));
        }
        (principal, Some((claims.exp + LEEWAY_SECS) * 1000))
    };
    let channels = Channel::readable_by(&principal);
    if channels.is_empty() {
        return Err(Refusal::Forbidden(
            "this credential may read no channel (it needs a read permission such as alerts:read)"
                .into(),
        ));
    }
    Ok(Authenticated {
        principal,
        channels,
        expires_at,
    })
}

/// The shared functions' 503 (already logged with its statement) as an error.
fn unavailable(e: vigil_core::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}", e.detail.unwrap_or_default())
}

fn describe(e: &TokenError) -> String {
    match e {
        TokenError::Expired => "the access token has expired".into(),
        e => format!("the access token is not valid: {e}"),
    }
}

/// The token of a `Sec-WebSocket-Protocol` offer `vigil.v1, bearer.<token>`;
/// `None` unless both are offered. (A JWT and an API key are both valid
/// subprotocol tokens: base64url, dots, underscores.)
pub fn subprotocol_token<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut vigil = false;
    let mut token = None;
    for p in offered
        .into_iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
    {
        if p == super::PROTOCOL {
            vigil = true;
        } else if let Some(t) = p.strip_prefix("bearer.") {
            token = Some(t.to_string());
        }
    }
    token.filter(|_| vigil)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subprotocol_pair_carries_the_token() {
        assert_eq!(
            subprotocol_token(["vigil.v1, bearer.abc.def.ghi"]),
            Some("abc.def.ghi".into())
        );
        assert_eq!(
            subprotocol_token(["bearer.t", "vigil.v1"]),
            Some("t".into())
        );
        assert_eq!(subprotocol_token(["bearer.t"]), None);
        assert_eq!(subprotocol_token(["vigil.v1"]), None);
        assert_eq!(subprotocol_token([]), None);
    }
}
