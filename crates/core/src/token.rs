//! Access tokens: compact JWS with `alg: EdDSA` (Ed25519), signed and verified
//! with `jsonwebtoken` against a JWKS-format public-key set by `kid`.
//!
//! Verification is strict on purpose: the header must name `EdDSA` (so `none`
//! and HMAC confusion are impossible), must not point elsewhere for keys
//! (`jku`, `x5u`, `x5c`, `jwk`) nor demand extensions (`crit`), the `kid` must
//! be in the key set, and `iss`, `aud`, `exp`, `iat`, `sub` and `jti` are
//! required. The times are checked here, against the caller's clock.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::access::{Permission, Principal, Role};

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: i64 = 30;
/// Lifetime of an access token, in seconds (15 minutes).
pub const ACCESS_TOKEN_TTL_SECS: i64 = 15 * 60;
/// Tokens longer than this are rejected before any parsing.
const MAX_TOKEN_LEN: usize = 8 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    Malformed(String),
    UnsupportedAlgorithm(String),
    UnknownKey,
    BadSignature,
    Expired,
    InvalidClaims(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Missing => write!(f, "no bearer token"),
            TokenError::Malformed(why) => write!(f, "malformed token: {why}"),
            TokenError::UnsupportedAlgorithm(alg) => write!(f, "unsupported algorithm {alg:?}"),
            TokenError::UnknownKey => write!(f, "unknown signing key"),
            TokenError::BadSignature => write!(f, "bad signature"),
            TokenError::Expired => write!(f, "token expired or not yet valid"),
            TokenError::InvalidClaims(why) => write!(f, "invalid claims: {why}"),
        }
    }
}

/// The claims of a Vigil access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Present for users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Present for API keys: their permissions by wire name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The session a user's token belongs to; ending the session ends the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// A step the user owes before anything else (see [`crate::access::Pending`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<crate::access::Pending>,
}

/// What a token must say about who issued it and for whom.
#[derive(Clone, Debug)]
pub struct Expectations {
    pub issuer: String,
    pub audience: String,
}

/// A token's payload as sent: every claim optional, so that a missing one
/// is refused by name rather than as unreadable JSON.
#[derive(Deserialize)]
struct Payload {
    iss: Option<String>,
    aud: Option<serde_json::Value>,
    sub: Option<String>,
    jti: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
    nbf: Option<i64>,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    pending: Option<crate::access::Pending>,
}

/// One entry of a JWKS document (`kty: OKP`, `crv: Ed25519`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub kid: String,
    /// The raw 32-byte public key, base64url without padding.
    pub x: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

/// A set of public keys indexed by `kid`, as served at the JWKS endpoint and
/// configured in the `jwt_public_keys` variable.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<(String, VerifyingKey)>,
}

/// A JWKS document: `{"keys": [...]}`.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Jwks")]
pub struct JwksDocument {
    pub keys: Vec<Jwk>,
}

impl KeySet {
    /// Parse a JWKS document. Every key must be a well-formed Ed25519 key;
    /// a bad entry is a configuration error, not something to skip.
    pub fn from_jwks(json: &str) -> Result<KeySet, String> {
        let doc: JwksDocument =
            serde_json::from_str(json).map_err(|e| format!("not a JWKS document: {e}"))?;
        if doc.keys.is_empty() {
            return Err("the key set is empty".into());
        }
        let mut keys = Vec::with_capacity(doc.keys.len());
        for jwk in doc.keys {
            if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
                return Err(format!("key {:?} is not an Ed25519 (OKP) key", jwk.kid));
            }
            let raw = B64
                .decode(&jwk.x)
                .map_err(|_| format!("key {:?}: x is not base64url", jwk.kid))?;
            let raw: [u8; 32] = raw
                .try_into()
                .map_err(|_| format!("key {:?}: x is not 32 bytes", jwk.kid))?;
            let key = VerifyingKey::from_bytes(&raw)
                .map_err(|_| format!("key {:?}: not a valid Ed25519 point", jwk.kid))?;
            keys.push((jwk.kid, key));
        }
        Ok(KeySet { keys })
    }

    /// The keys as JWKS entries (public material only).
    pub fn jwks(&self) -> Vec<Jwk> {
        self.keys
            .iter()
            .map(|(kid, key)| Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                kid: kid.clone(),
                x: B64.encode(key.to_bytes()),
                alg: Some("EdDSA".into()),
                use_: Some("sig".into()),
            })
            .collect()
    }

    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key)
    }
}

/// A private signing key with its `kid`. Does not print its secret.
pub struct TokenSigner {
    kid: String,
    key: SigningKey,
    jwt: EncodingKey,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    fn new(kid: &str, key: SigningKey) -> TokenSigner {
        let der = key
            .to_pkcs8_der()
            .expect("an Ed25519 key encodes as PKCS#8");
        let jwt = EncodingKey::from_ed_der(der.as_bytes());
        TokenSigner {
            kid: kid.to_string(),
            key,
            jwt,
        }
    }

    /// A fresh random key (from the OS / WASI random source).
    pub fn generate(kid: &str) -> TokenSigner {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the platform has a random source");
        TokenSigner::new(kid, SigningKey::from_bytes(&seed))
    }

    /// From the 32-byte seed, base64url encoded (how the signing-key variable holds it).
    pub fn from_seed_b64(kid: &str, seed: &str) -> Result<TokenSigner, String> {
        let raw = B64
            .decode(seed.trim())
            .map_err(|_| "signing key is not base64url".to_string())?;
        let raw: [u8; 32] = raw
            .try_into()
            .map_err(|_| "signing key is not 32 bytes".to_string())?;
        Ok(TokenSigner::new(kid, SigningKey::from_bytes(&raw)))
    }

    pub fn seed_b64(&self) -> String {
        B64.encode(self.key.to_bytes())
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_jwk(&self) -> Jwk {
        KeySet {
            keys: vec![(self.kid.clone(), self.key.verifying_key())],
        }
        .jwks()
        .remove(0)
    }

    /// Sign any claims as a compact JWS (Vigil's own [`Claims`], or another
    /// service's, such as a libSQL server's `{"a": "rw"}`). The header is
    /// `{"alg":"EdDSA","typ":"JWT","kid":…}`; the payload is `claims` as is.
    pub fn sign<C: Serialize>(&self, claims: &C) -> String {
        use_ed25519_only();
        let header = Header {
            typ: Some("JWT".into()),
            kid: Some(self.kid.clone()),
            ..Header::new(Algorithm::EdDSA)
        };
        jsonwebtoken::encode(&header, claims, &self.jwt).expect("claims serialize")
    }
}

/// `jsonwebtoken`'s cryptography for Vigil: Ed25519 and nothing else, through
/// ed25519-dalek (strict verification: no malleable or small-order
/// signatures). Installed before each use; the first install stands.
static ED25519_ONLY: CryptoProvider = CryptoProvider {
    signer_factory: |alg, key| match alg {
        Algorithm::EdDSA => Ok(Box::new(Ed25519Signer(
            SigningKey::from_pkcs8_der(key.as_bytes()).map_err(|_| ErrorKind::InvalidEddsaKey)?,
        ))),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    },
    verifier_factory: |alg, key| match alg {
        Algorithm::EdDSA => {
            let raw: &[u8; 32] = key
                .try_get_as_bytes()?
                .try_into()
                .map_err(|_| ErrorKind::InvalidEddsaKey)?;
            Ok(Box::new(Ed25519Verifier(
                VerifyingKey::from_bytes(raw).map_err(|_| ErrorKind::InvalidEddsaKey)?,
            )))
        }
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    },
    key_utils: KeyUtils::new_unimplemented(),
};

fn use_ed25519_only() {
    // Err only when a provider is installed already: ours, as nothing else installs one.
    let _ = ED25519_ONLY.install_default();
}

struct Ed25519Signer(SigningKey);

impl signature::Signer<Vec<u8>> for Ed25519Signer {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.0.sign(msg).to_bytes().to_vec())
    }
}

impl JwtSigner for Ed25519Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

struct Ed25519Verifier(VerifyingKey);

impl signature::Verifier<Vec<u8>> for Ed25519Verifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        let sig = Signature::from_slice(sig).map_err(|_| signature::Error::new())?;
        self.0
            .verify_strict(msg, &sig)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Ed25519Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

/// A JWKS document for the given public keys.
pub fn jwks_json(keys: &[Jwk]) -> String {
    serde_json::to_string(&JwksDocument {
        keys: keys.to_vec(),
    })
    .expect("jwks serialize")
}

/// Extract the token from an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, TokenError> {
    let value = header
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(TokenError::Missing)?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| TokenError::Malformed("expected `Bearer <token>`".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::Malformed("expected the Bearer scheme".into()));
    }
    Ok(token.trim())
}

/// Verify a compact JWS and return its claims. `now` is Unix seconds.
pub fn verify(
    token: &str,
    keys: &KeySet,
    expect: &Expectations,
    now: i64,
) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("token too long".into()));
    }
    use_ed25519_only();
    let header = jsonwebtoken::decode_header(token).map_err(|_| match named_algorithm(token) {
        Some(alg) if alg != "EdDSA" => TokenError::UnsupportedAlgorithm(alg),
        _ => TokenError::Malformed("the header is not base64url JSON".into()),
    })?;
    if header.alg != Algorithm::EdDSA {
        return Err(TokenError::UnsupportedAlgorithm(format!(
            "{:?}",
            header.alg
        )));
    }
    // Keys come from our configuration only, never from the token.
    if header.jku.is_some() || header.x5u.is_some() || header.x5c.is_some() || header.jwk.is_some()
    {
        return Err(TokenError::Malformed(
            "the header must not name keys (jku, x5u, x5c, jwk)".into(),
        ));
    }
    if header.crit.is_some_and(|crit| !crit.is_empty()) {
        return Err(TokenError::Malformed(
            "the header demands extensions (crit) we do not know".into(),
        ));
    }
    let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
    let key = keys.get(kid).ok_or(TokenError::UnknownKey)?;

    // The signature, issuer and audience by `jsonwebtoken`; the times below.
    let mut rules = Validation::new(Algorithm::EdDSA);
    rules.set_issuer(&[&expect.issuer]);
    rules.set_audience(&[&expect.audience]);
    rules.set_required_spec_claims(&["iss", "aud"]);
    rules.validate_exp = false;
    rules.validate_nbf = false;
    let payload =
        jsonwebtoken::decode::<Payload>(token, &DecodingKey::from_ed_der(key.as_bytes()), &rules)
            .map_err(why)?
            .claims;

    let required = |what: &str| TokenError::InvalidClaims(format!("{what} is required"));
    let claims = Claims {
        iss: payload.iss.ok_or_else(|| required("iss"))?,
        aud: match payload.aud {
            Some(serde_json::Value::String(aud)) => aud,
            _ => return Err(TokenError::InvalidClaims("audience".into())),
        },
        sub: payload
            .sub
            .filter(|s| !s.is_empty())
            .ok_or_else(|| required("sub"))?,
        jti: payload
            .jti
            .filter(|s| !s.is_empty())
            .ok_or_else(|| required("jti"))?,
        iat: payload.iat.ok_or_else(|| required("iat"))?,
        exp: payload.exp.ok_or_else(|| required("exp"))?,
        nbf: payload.nbf,
        role: payload.role,
        scopes: payload.scopes,
        sid: payload.sid,
        pending: payload.pending,
    };
    // Each time with the same leeway for clock skew: expired, not yet
    // valid, or issued in the future.
    let not_before = claims.nbf.map_or(claims.iat, |nbf| nbf.max(claims.iat));
    if now > claims.exp + LEEWAY_SECS || now < not_before - LEEWAY_SECS {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// The `alg` a header names as written, for refusing one that
/// `jsonwebtoken` has no name for (such as `none`).
fn named_algorithm(token: &str) -> Option<String> {
    let header = B64.decode(token.split('.').next()?).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&header).ok()?;
    header.get("alg")?.as_str().map(str::to_string)
}

/// Our error for one of `jsonwebtoken`'s.
fn why(error: jsonwebtoken::errors::Error) -> TokenError {
    match error.kind() {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidIssuer => TokenError::InvalidClaims("issuer".into()),
        ErrorKind::InvalidAudience => TokenError::InvalidClaims("audience".into()),
        ErrorKind::MissingRequiredClaim(claim) => {
            TokenError::InvalidClaims(format!("{claim} is required"))
        }
        ErrorKind::InvalidToken => TokenError::Malformed("not three base64url parts".into()),
        ErrorKind::Json(_) | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
            TokenError::Malformed("not a compact JWS with a JSON payload".into())
        }
        other => TokenError::Malformed(format!("{other:?}")),
    }
}

impl Claims {
    /// A user's access token for session `sid`, valid for
    /// [`ACCESS_TOKEN_TTL_SECS`] from `now` (Unix seconds).
    pub fn user_access(
        issuer: &str,
        audience: &str,
        subject: &str,
        role: Role,
        sid: &str,
        now: i64,
    ) -> Claims {
        Claims {
            sid: Some(sid.into()),
            pending: None,
            iss: issuer.into(),
            aud: audience.into(),
            sub: subject.into(),
            jti: crate::id::new_id(),
            iat: now,
            exp: now + ACCESS_TOKEN_TTL_SECS,
            nbf: None,
            role: Some(role),
            scopes: vec![],
        }
    }

    /// The principal these (verified) claims describe. A token must carry
    /// either a role (a user) or scopes (an API key), never both.
    pub fn principal(&self) -> Result<Principal, TokenError> {
        let scopes = self
            .scopes
            .iter()
            .map(|s| {
                Permission::parse(s)
                    .ok_or_else(|| TokenError::InvalidClaims(format!("unknown scope {s:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        match (self.role, scopes.is_empty()) {
            (Some(_), false) => Err(TokenError::InvalidClaims(
                "role and scopes are exclusive".into(),
            )),
            (None, true) => Err(TokenError::InvalidClaims("neither role nor scopes".into())),
            (Some(_), true) if self.sid.is_none() => Err(TokenError::InvalidClaims(
                "a user's token must name its session".into(),
            )),
            (role, _) => Ok(Principal {
                subject: self.sub.clone(),
                role,
                scopes,
                token_id: self.jti.clone(),
                session: self.sid.clone(),
                pending: self.pending,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn expect() -> Expectations {
        Expectations {
            issuer: "vigil".into(),
            audience: "vigil".into(),
        }
    }

    fn claims() -> Claims {
        Claims {
            iss: "vigil".into(),
            aud: "vigil".into(),
            sub: "user-1".into(),
            jti: "j1".into(),
            iat: NOW,
            exp: NOW + ACCESS_TOKEN_TTL_SECS,
            nbf: None,
            role: Some(Role::Analyst),
            scopes: vec![],
            sid: Some("s1".into()),
            pending: None,
        }
    }

    fn setup() -> (TokenSigner, KeySet) {
        let signer = TokenSigner::generate("k1");
        let keys = KeySet::from_jwks(&jwks_json(&[signer.public_jwk()])).unwrap();
        (signer, keys)
    }

    #[test]
    fn a_signed_token_verifies_and_names_its_principal() {
        let (signer, keys) = setup();
        let token = signer.sign(&claims());
        let got = verify(&token, &keys, &expect(), NOW).unwrap();
        assert_eq!(got, claims());
        let who = got.principal().unwrap();
        assert_eq!(who.role, Some(Role::Analyst));
        assert_eq!(who.subject, "user-1");
    }

    #[test]
    fn expiry_has_a_small_leeway() {
        let (signer, keys) = setup();
        let token = signer.sign(&claims());
        let exp = claims().exp;
        assert!(verify(&token, &keys, &expect(), exp + LEEWAY_SECS).is_ok());
        assert_eq!(
            verify(&token, &keys, &expect(), exp + LEEWAY_SECS + 1),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn alg_none_and_hmac_are_rejected() {
        let (signer, keys) = setup();
        let token = signer.sign(&claims());
        let payload = token.split('.').nth(1).unwrap();
        for alg in ["none", "HS256", "RS256"] {
            let header = B64.encode(format!(r#"{{"alg":"{alg}","kid":"k1"}}"#));
            let forged = format!("{header}.{payload}.");
            assert_eq!(
                verify(&forged, &keys, &expect(), NOW),
                Err(TokenError::UnsupportedAlgorithm(alg.into()))
            );
        }
    }

    #[test]
    fn wrong_key_tampering_and_unknown_kid_are_rejected() {
        let (_, keys) = setup();
        let other = TokenSigner::generate("k1");
        assert_eq!(
            verify(&other.sign(&claims()), &keys, &expect(), NOW),
            Err(TokenError::BadSignature)
        );

        let (signer, keys) = setup();
        let token = signer.sign(&claims());
        let mut forged_claims = claims();
        forged_claims.role = Some(Role::Admin);
        let forged_payload = B64.encode(serde_json::to_vec(&forged_claims).unwrap());
        let parts: Vec<_> = token.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(
            verify(&forged, &keys, &expect(), NOW),
            Err(TokenError::BadSignature)
        );

        let stranger = TokenSigner::generate("k2");
        assert_eq!(
            verify(&stranger.sign(&claims()), &keys, &expect(), NOW),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn issuer_and_audience_must_match() {
        let (signer, keys) = setup();
        let mut c = claims();
        c.aud = "someone-else".into();
        assert!(matches!(
            verify(&signer.sign(&c), &keys, &expect(), NOW),
            Err(TokenError::InvalidClaims(_))
        ));
        let mut c = claims();
        c.iss = "evil".into();
        assert!(matches!(
            verify(&signer.sign(&c), &keys, &expect(), NOW),
            Err(TokenError::InvalidClaims(_))
        ));
    }

    #[test]
    fn garbage_is_malformed() {
        let (_, keys) = setup();
        for junk in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "!!!.???.***",
            &"x".repeat(10_000),
        ] {
            assert!(
                matches!(
                    verify(junk, &keys, &expect(), NOW),
                    Err(TokenError::Malformed(_))
                ),
                "{junk}"
            );
        }
    }

    /// Signs by hand, as tokens were signed before any JWT crate: those
    /// already issued must keep verifying.
    fn sign_by_hand(
        key: &SigningKey,
        header: &serde_json::Value,
        payload: &serde_json::Value,
    ) -> String {
        use ed25519_dalek::Signer;
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(payload.to_string())
        );
        format!(
            "{input}.{}",
            B64.encode(key.sign(input.as_bytes()).to_bytes())
        )
    }

    #[test]
    fn tokens_signed_before_keep_verifying_and_ours_have_the_same_shape() {
        let (signer, keys) = setup();
        let header = serde_json::json!({ "alg": "EdDSA", "typ": "JWT", "kid": "k1" });
        let payload = serde_json::to_value(claims()).unwrap();
        let old = sign_by_hand(&signer.key, &header, &payload);
        assert_eq!(verify(&old, &keys, &expect(), NOW), Ok(claims()));

        let new = signer.sign(&claims());
        let part = |token: &str, i: usize| -> serde_json::Value {
            serde_json::from_slice(&B64.decode(token.split('.').nth(i).unwrap()).unwrap()).unwrap()
        };
        assert_eq!(part(&new, 0), header);
        assert_eq!(part(&new, 1), payload);
    }

    #[test]
    fn other_services_claims_are_signed_as_they_are() {
        let (signer, _) = setup();
        let token = signer.sign(&serde_json::json!({ "a": "rw" }));
        let payload = B64.decode(token.split('.').nth(1).unwrap()).unwrap();
        assert_eq!(payload, br#"{"a":"rw"}"#);
    }

    #[test]
    fn not_before_and_issued_at_have_the_same_leeway() {
        let (signer, keys) = setup();
        let mut c = claims();
        c.nbf = Some(NOW + 100);
        let token = signer.sign(&c);
        assert!(verify(&token, &keys, &expect(), NOW + 100 - LEEWAY_SECS).is_ok());
        assert_eq!(
            verify(&token, &keys, &expect(), NOW + 100 - LEEWAY_SECS - 1),
            Err(TokenError::Expired)
        );
        let mut c = claims();
        c.iat = NOW + 100;
        assert_eq!(
            verify(&signer.sign(&c), &keys, &expect(), NOW),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_kid_is_required_and_the_header_cannot_name_keys_or_demand_extensions() {
        let (signer, keys) = setup();
        let payload = serde_json::to_value(claims()).unwrap();
        let no_kid = serde_json::json!({ "alg": "EdDSA", "typ": "JWT" });
        assert_eq!(
            verify(
                &sign_by_hand(&signer.key, &no_kid, &payload),
                &keys,
                &expect(),
                NOW
            ),
            Err(TokenError::UnknownKey)
        );
        for (name, value) in [
            ("jku", serde_json::json!("https://evil.example/jwks.json")),
            ("x5u", serde_json::json!("https://evil.example/cert.pem")),
            ("x5c", serde_json::json!(["MIIB"])),
            (
                "jwk",
                serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": B64.encode([1u8; 32]) }),
            ),
            ("crit", serde_json::json!(["exp"])),
        ] {
            let mut header = serde_json::json!({ "alg": "EdDSA", "typ": "JWT", "kid": "k1" });
            header[name] = value;
            assert!(
                matches!(
                    verify(
                        &sign_by_hand(&signer.key, &header, &payload),
                        &keys,
                        &expect(),
                        NOW
                    ),
                    Err(TokenError::Malformed(_))
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn registered_claims_are_required() {
        let (signer, keys) = setup();
        for claim in ["iss", "aud", "sub", "jti", "iat", "exp"] {
            let mut payload = serde_json::to_value(claims()).unwrap();
            payload.as_object_mut().unwrap().remove(claim);
            let header = serde_json::json!({ "alg": "EdDSA", "typ": "JWT", "kid": "k1" });
            let token = sign_by_hand(&signer.key, &header, &payload);
            assert!(
                matches!(
                    verify(&token, &keys, &expect(), NOW),
                    Err(TokenError::InvalidClaims(_))
                ),
                "{claim}"
            );
        }
    }

    #[test]
    fn oversized_tokens_are_rejected_before_parsing() {
        let (signer, keys) = setup();
        let mut c = claims();
        c.sub = "x".repeat(MAX_TOKEN_LEN);
        assert_eq!(
            verify(&signer.sign(&c), &keys, &expect(), NOW),
            Err(TokenError::Malformed("token too long".into()))
        );
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer(Some("bearer abc")), Ok("abc"));
        assert_eq!(bearer(None), Err(TokenError::Missing));
        assert!(matches!(
            bearer(Some("Basic dXNlcg==")),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(bearer(Some("abc")), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn key_sets_reject_bad_entries() {
        assert!(KeySet::from_jwks("not json").is_err());
        assert!(KeySet::from_jwks(r#"{"keys":[]}"#).is_err());
        assert!(
            KeySet::from_jwks(r#"{"keys":[{"kty":"RSA","crv":"Ed25519","kid":"a","x":"AA"}]}"#)
                .is_err()
        );
        assert!(
            KeySet::from_jwks(r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"AA"}]}"#)
                .is_err()
        );
    }

    #[test]
    fn scopes_and_roles_are_exclusive() {
        let mut c = claims();
        c.scopes = vec!["sensors:ingest".into()];
        assert!(c.principal().is_err());
        c.role = None;
        assert_eq!(
            c.principal().unwrap().scopes,
            vec![Permission::SensorsIngest]
        );
        c.scopes = vec!["root:everything".into()];
        assert!(c.principal().is_err());
    }

    #[test]
    fn a_users_token_must_name_its_session() {
        let mut c = claims();
        assert_eq!(c.principal().unwrap().session.as_deref(), Some("s1"));
        c.sid = None;
        assert!(matches!(c.principal(), Err(TokenError::InvalidClaims(_))));
    }
}
