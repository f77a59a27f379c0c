//! Settings: Spin variables read into typed values, parsed once per request
//! (Spin instantiates a component per request, so a value cached in the
//! instance is read once for it), and loud when wrong. A variable that is
//! not mapped into the component, or whose value does not parse, is never
//! replaced by a default: every request that needs it is a 503 problem
//! naming the variable (in `errors[].field`), and the log says why.
//!
//! Each component keeps the one list of the variables it reads (its
//! `settings::VARIABLES`); a [`Reader`] reads only names on its list, and a
//! test (`xtask/tests/variables.rs`) checks that every name on a list is
//! mapped into the component in `spin.toml`.
//!
//! The variables every API component reads through this crate are
//! [`VARIABLES`]: the proxies whose `X-Forwarded-For` is believed, whether
//! the app is served over HTTPS (HSTS), and the browser origins allowed to
//! call it (CORS).

use std::sync::OnceLock;

use vigil_core::net::{Networks, Origins};
use vigil_core::{ApiError, FieldError};

/// `trusted_proxies`, `https_only`, `cors_allowed_origins`.
pub const TRUSTED_PROXIES: &str = "trusted_proxies";
pub const HTTPS_ONLY: &str = "https_only";
pub const CORS_ALLOWED_ORIGINS: &str = "cors_allowed_origins";

/// What every API component reads: this crate's settings and those of the
/// `platform` component it is composed with (token verification).
pub const VARIABLES: &[&str] = &[
    TRUSTED_PROXIES,
    HTTPS_ONLY,
    CORS_ALLOWED_ORIGINS,
    "jwt_public_keys",
    "jwt_issuer",
    "jwt_audience",
];

/// Reads the variables of one list, collecting every bad one.
pub struct Reader {
    list: &'static [&'static str],
    bad: Vec<FieldError>,
}

impl Reader {
    /// A reader of the variables on `list` (a component's `VARIABLES`).
    pub fn new(list: &'static [&'static str]) -> Reader {
        Reader { list, bad: vec![] }
    }

    /// Variable `name` as `parse` reads its text; `None` (and the reason
    /// noted) when it is not on the list, not mapped, or does not parse.
    pub fn read<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        if !self.list.contains(&name) {
            return self.note(name, "is not on this component's list of variables".into());
        }
        let text = match spin_sdk::variables::get(name) {
            Ok(text) => text,
            Err(e) => {
                return self.note(
                    name,
                    format!("is not available to this component (map it in spin.toml): {e}"),
                );
            }
        };
        match parse(&text) {
            Ok(value) => Some(value),
            Err(why) => self.note(name, why),
        }
    }

    fn note<T>(&mut self, name: &'static str, why: String) -> Option<T> {
        self.bad.push(FieldError {
            field: name.into(),
            message: why,
        });
        None
    }

    /// The refusal naming every bad variable read so far (logged once here).
    pub fn refusal(self) -> ApiError {
        for bad in &self.bad {
            log_bad(&bad.field, &bad.message);
        }
        misconfigured(self.bad)
    }
}

fn log_bad(name: &str, why: &str) {
    crate::log::line(serde_json::json!({
        "level": "error", "msg": "a setting is invalid; requests that need it are refused (503)",
        "variable": name, "why": why,
    }));
}

/// The refusal of a request that needs variable `name`, which is valid but
/// does not allow it (e.g. unset), logged.
pub fn refuse(name: &str, why: &str) -> ApiError {
    log_bad(name, why);
    misconfigured(vec![FieldError {
        field: name.into(),
        message: why.into(),
    }])
}

/// The 503 for bad settings, each named in `errors[].field`.
pub fn misconfigured(bad: Vec<FieldError>) -> ApiError {
    let names: Vec<&str> = bad.iter().map(|b| b.field.as_str()).collect();
    let mut err = ApiError::new(503, "misconfigured", "Server misconfigured").with_detail(format!(
        "the server's setting {} is invalid; an operator must correct it (see the server log and README)",
        names.join(", ")
    ));
    err.errors = bad;
    err
}

/// A whole number from `min` to `max`.
pub fn number(min: i64, max: i64) -> impl Fn(&str) -> Result<i64, String> {
    move |text| {
        text.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                format!(
                    "{:?} is not a whole number from {min} to {max}",
                    text.trim()
                )
            })
    }
}

/// `true` or `false` (any case).
pub fn boolean(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("{other:?} is not true or false")),
    }
}

/// Any text, as written.
pub fn text(text: &str) -> Result<String, String> {
    Ok(text.to_string())
}

/// The settings of this crate, for every request of every API component.
#[derive(Clone, Debug)]
pub struct Shared {
    /// `trusted_proxies` (CIDRs, none by default).
    pub trusted_proxies: Networks,
    /// `https_only` (default `false`): `true` adds `Strict-Transport-Security`.
    pub https_only: bool,
    /// `cors_allowed_origins` (none by default).
    pub cors_allowed_origins: Origins,
}

/// The shared settings, read once per request (503 naming any bad one).
pub fn shared() -> Result<&'static Shared, ApiError> {
    static SHARED: OnceLock<Result<Shared, ApiError>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let mut r = Reader::new(VARIABLES);
            match (
                r.read(TRUSTED_PROXIES, Networks::parse),
                r.read(HTTPS_ONLY, boolean),
                r.read(CORS_ALLOWED_ORIGINS, Origins::parse),
            ) {
                (Some(trusted_proxies), Some(https_only), Some(cors_allowed_origins)) => {
                    Ok(Shared {
                        trusted_proxies,
                        https_only,
                        cors_allowed_origins,
                    })
                }
                _ => Err(r.refusal()),
            }
        })
        .as_ref()
        .map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_or_say_why() {
        assert_eq!(number(1, 10)(" 7 "), Ok(7));
        for bad in ["", "0", "11", "abc", "1.5"] {
            assert!(number(1, 10)(bad).is_err(), "{bad}");
        }
        assert_eq!(boolean("TRUE"), Ok(true));
        assert_eq!(boolean("false"), Ok(false));
        assert!(boolean("yes").is_err());
        let err = misconfigured(vec![FieldError {
            field: "a_setting".into(),
            message: "why".into(),
        }]);
        assert_eq!((err.status, err.kind), (503, "misconfigured"));
        assert!(err.detail.unwrap().contains("a_setting"));
    }
}
