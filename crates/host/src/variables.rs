//! `fermyon:spin/variables@2.0.0`: app variables, per-component templates and
//! the `SPIN_VARIABLE_*` environment provider.
//!
//! Semantics follow Spin's crates/expressions (templates, key validation,
//! error strings), crates/factor-variables (error mapping) and
//! crates/variables-env (the env provider, including the `.env` fallback).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::{Result, anyhow};

use crate::bindings::fermyon::spin::variables::Error as WitError;
use crate::manifest::Variable;

/// A variable-resolution error, with Spin's message shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    InvalidName(String),
    InvalidTemplate(String),
    Provider(String),
    Undefined(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidName(m) => write!(f, "invalid variable name: {m}"),
            Error::InvalidTemplate(m) => write!(f, "invalid variable template: {m}"),
            Error::Provider(m) => write!(f, "provider error: {m}"),
            Error::Undefined(m) => write!(f, "undefined variable: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for WitError {
    // crates/factor-variables/src/host.rs, `expressions_to_variables_err`.
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidName(m) => WitError::InvalidName(m),
            Error::Undefined(m) => WitError::Undefined(m),
            e @ Error::InvalidTemplate(_) => WitError::Other(e.to_string()),
            Error::Provider(m) => WitError::Provider(m),
        }
    }
}

/// A `{{ var }}` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    Expr(String),
}

pub fn parse_template(s: &str) -> Result<Vec<Part>, Error> {
    let mut parts = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(expr_rest) = rest.strip_prefix("{{") {
            let (expr, after) = expr_rest
                .split_once("}}")
                .ok_or_else(|| Error::InvalidTemplate("unmatched '{{' in template".into()))?;
            parts.push(Part::Expr(expr.trim().to_string()));
            rest = after;
        } else {
            let idx = rest.find("{{").unwrap_or(rest.len());
            parts.push(Part::Lit(rest[..idx].to_string()));
            rest = &rest[idx..];
        }
    }
    Ok(parts)
}

/// Spin's variable key rules (crates/expressions/src/lib.rs, `Key::validate`).
pub fn validate_key(key: &str) -> Result<(), Error> {
    let reason = if key.is_empty() {
        Some("must not be empty".to_string())
    } else if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        Some(format!(
            "invalid character {c:?}. Variable names may contain only lower-case letters, numbers, and underscores."
        ))
    } else if !key.as_bytes()[0].is_ascii_lowercase() {
        Some("must start with a lowercase ASCII letter".to_string())
    } else if !key.as_bytes()[key.len() - 1].is_ascii_alphanumeric() {
        Some("must end with a lowercase ASCII letter or digit".to_string())
    } else if key.contains("__") {
        Some("must not contain multiple consecutive underscores".to_string())
    } else {
        None
    };
    match reason {
        Some(r) => Err(Error::InvalidName(format!("{key:?}: {r}"))),
        None => Ok(()),
    }
}

/// Reads `SPIN_VARIABLE_<NAME>` from the process environment, then from `.env`
/// in the working directory (Spin's default env provider reads `.env` too).
#[derive(Debug, Default)]
pub struct EnvProvider {
    dotenv: HashMap<String, String>,
}

impl EnvProvider {
    pub fn from_process() -> Self {
        let dotenv = std::fs::File::open(PathBuf::from(".env"))
            .map(parse_dotenv)
            .unwrap_or_default();
        Self { dotenv }
    }

    pub fn get(&self, key: &str) -> Option<String> {
        let env_key = format!("SPIN_VARIABLE_{}", key.to_ascii_uppercase());
        std::env::var(&env_key)
            .ok()
            .or_else(|| self.dotenv.get(&env_key).cloned())
    }
}

/// `.env` as Spin reads it (with `dotenvy`: quotes, escapes, `export`,
/// comments, `${VAR}` substitution). A line it cannot read is reported and
/// skipped.
fn parse_dotenv(file: impl std::io::Read) -> HashMap<String, String> {
    dotenvy::from_read_iter(file)
        .filter_map(|entry| {
            entry
                .map_err(|e| eprintln!("warning: .env: {e}; that line is ignored"))
                .ok()
        })
        .collect()
}

/// A template with each `{{ name }}` replaced by `var(name)`.
fn render(parts: &[Part], var: impl Fn(&str) -> Result<String, Error>) -> Result<String, Error> {
    let mut out = String::new();
    for p in parts {
        match p {
            Part::Lit(l) => out.push_str(l),
            Part::Expr(name) => out.push_str(&var(name)?),
        }
    }
    Ok(out)
}

/// Resolves component variables; shared by all instances of the app.
#[derive(Debug)]
pub struct Resolver {
    variables: BTreeMap<String, Variable>,
    components: HashMap<String, HashMap<String, Vec<Part>>>,
    env: EnvProvider,
}

impl Resolver {
    pub fn new(variables: BTreeMap<String, Variable>, env: EnvProvider) -> Result<Self> {
        for key in variables.keys() {
            validate_key(key)?;
        }
        Ok(Self {
            variables,
            components: HashMap::new(),
            env,
        })
    }

    pub fn add_component(&mut self, id: &str, vars: &BTreeMap<String, String>) -> Result<()> {
        let mut templates = HashMap::new();
        for (key, value) in vars {
            validate_key(key)?;
            let parts = parse_template(value)?;
            for p in &parts {
                if let Part::Expr(v) = p
                    && !self.variables.contains_key(v)
                {
                    return Err(Error::InvalidTemplate(format!("unknown variable {v:?}")).into());
                }
            }
            templates.insert(key.clone(), parts);
        }
        self.components.insert(id.to_string(), templates);
        Ok(())
    }

    /// Fails like `spin up` when a required variable has no value anywhere
    /// (crates/expressions/src/lib.rs, `ensure_required_variables_resolvable`).
    pub fn ensure_required_resolvable(&self) -> Result<()> {
        let missing: Vec<String> = self
            .variables
            .iter()
            .filter(|(name, v)| v.default.is_none() && self.env.get(name).is_none())
            .map(|(name, _)| format!("Key({name:?})"))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(anyhow!(Error::Provider(format!(
                "no provider resolved required variable(s): [{}]",
                missing.join(", ")
            ))))
        }
    }

    /// `variables.get(name)` for component `component`.
    pub fn resolve(&self, component: &str, key: &str) -> Result<String, Error> {
        validate_key(key)?;
        let templates = self
            .components
            .get(component)
            .ok_or_else(|| Error::Undefined(format!("no variable for component {component:?}")))?;
        let parts = templates
            .get(key)
            .ok_or_else(|| Error::Undefined(format!("no variable for {component:?}.{key:?}")))?;
        self.resolve_template(parts)
    }

    /// Resolves an app-level template (no component scope): providers, then
    /// defaults — what Spin's `PreparedResolver::resolve_template` does for
    /// `allowed_outbound_hosts` at request time.
    pub fn resolve_template(&self, parts: &[Part]) -> Result<String, Error> {
        render(parts, |name| self.resolve_variable(name))
    }

    /// Resolves an app-level template from the manifest's DEFAULTS only (no
    /// provider): the resolver Spin's loader validates `allowed_outbound_hosts`
    /// with at start-up (crates/loader/src/local.rs, `load_component`).
    pub fn resolve_template_defaults(&self, parts: &[Part]) -> Result<String, Error> {
        render(parts, |name| {
            let var = self
                .variables
                .get(name)
                .ok_or_else(|| Error::InvalidName(name.to_string()))?;
            var.default.clone().ok_or_else(|| {
                Error::Provider(format!("no provider resolved required variable {name:?}"))
            })
        })
    }

    fn resolve_variable(&self, name: &str) -> Result<String, Error> {
        if let Some(v) = self.env.get(name) {
            return Ok(v);
        }
        let var = self
            .variables
            .get(name)
            .ok_or_else(|| Error::InvalidName(name.to_string()))?;
        var.default.clone().ok_or_else(|| {
            Error::Provider(format!("no provider resolved required variable {name:?}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_files_read_as_spin_reads_them() {
        let file = "# comment\n\
                    SPIN_VARIABLE_A=plain\n\
                    export SPIN_VARIABLE_B=\"double # not a comment\"\n\
                    SPIN_VARIABLE_C='single'\n\
                    SPIN_VARIABLE_D=\"line\\nbreak\"\n\
                    SPIN_VARIABLE_E=${SPIN_VARIABLE_A}-too\n";
        let vars = parse_dotenv(file.as_bytes());
        assert_eq!(vars["SPIN_VARIABLE_A"], "plain");
        assert_eq!(vars["SPIN_VARIABLE_B"], "double # not a comment");
        assert_eq!(vars["SPIN_VARIABLE_C"], "single");
        assert_eq!(vars["SPIN_VARIABLE_D"], "line\nbreak");
        assert_eq!(vars["SPIN_VARIABLE_E"], "plain-too");
        assert_eq!(vars.len(), 5);
    }

    #[test]
    fn templates() {
        assert_eq!(parse_template("").unwrap(), vec![]);
        assert_eq!(
            parse_template("a-{{ x }}-b").unwrap(),
            vec![
                Part::Lit("a-".into()),
                Part::Expr("x".into()),
                Part::Lit("-b".into())
            ]
        );
        assert!(parse_template("{{ ok }} {{ open").is_err());
    }

    #[test]
    fn keys() {
        for k in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3"] {
            validate_key(k).unwrap();
        }
        for k in ["", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y"] {
            assert!(validate_key(k).is_err(), "{k}");
        }
    }

    #[test]
    fn resolution_and_errors() {
        let mut vars = BTreeMap::new();
        vars.insert(
            "greeting".to_string(),
            Variable {
                description: None,
                required: false,
                default: Some("hi".into()),
                secret: false,
            },
        );
        let mut r = Resolver::new(vars, EnvProvider::default()).unwrap();
        let mut cv = BTreeMap::new();
        cv.insert("msg".to_string(), "{{ greeting }}, you".to_string());
        r.add_component("c", &cv).unwrap();
        assert_eq!(r.resolve("c", "msg").unwrap(), "hi, you");
        assert_eq!(
            r.resolve("c", "other").unwrap_err(),
            Error::Undefined("no variable for \"c\".\"other\"".into())
        );
        assert!(matches!(r.resolve("c", "Bad"), Err(Error::InvalidName(_))));
        let mut bad = BTreeMap::new();
        bad.insert("x".to_string(), "{{ nope }}".to_string());
        assert!(r.add_component("d", &bad).is_err());
    }
}
