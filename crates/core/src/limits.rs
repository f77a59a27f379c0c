//! Enforcing a request's documented limits from its JSON Schema: the same
//! schema (derived by `schemars` from the request type's attributes) that the
//! OpenAPI document publishes, so a `#[schemars(length(max = 64))]` is a
//! rule, not a comment.
//!
//! Checked: `minLength`/`maxLength` (in characters, as JSON Schema counts),
//! `minimum`/`maximum` and their exclusive forms, `minItems`/`maxItems`,
//! through `properties`, `items`, `$ref` into `$defs`, and `anyOf`/`oneOf`
//! (an optional field's schema). Types, required and unknown fields are
//! serde's to refuse; patterns are each field's own rule.

use serde_json::Value;

use crate::FieldError;

/// Every documented limit `value` breaks, each naming its field the way the
/// deserializer names fields (`name`, `a.b`, `scopes[0]`).
pub fn violations(schema: &Value, value: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    walk(schema, schema, value, "", &mut out);
    out
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix("#/$defs/")
            .and_then(|name| root.get("$defs")?.get(name))
            .unwrap_or(schema),
        None => schema,
    }
}

fn field(path: &str) -> String {
    if path.is_empty() {
        "$".into()
    } else {
        path.into()
    }
}

fn walk(root: &Value, schema: &Value, value: &Value, path: &str, out: &mut Vec<FieldError>) {
    let schema = resolve(root, schema);
    let mut push = |message: String| {
        out.push(FieldError {
            field: field(path),
            message,
        })
    };
    let limit = |key: &str| schema.get(key).and_then(Value::as_f64);
    match value {
        Value::String(s) => {
            let n = s.chars().count() as f64;
            if let Some(min) = limit("minLength").filter(|min| n < *min) {
                push(format!("must be at least {min} characters"));
            }
            if let Some(max) = limit("maxLength").filter(|max| n > *max) {
                push(format!("must be at most {max} characters"));
            }
        }
        Value::Number(number) => {
            // JSON numbers are finite: every comparison below is decided.
            let x = number.as_f64().unwrap_or(0.0);
            if let Some(min) = limit("minimum").filter(|min| x < *min) {
                push(format!("must be at least {min}"));
            }
            if let Some(max) = limit("maximum").filter(|max| x > *max) {
                push(format!("must be at most {max}"));
            }
            if let Some(min) = limit("exclusiveMinimum").filter(|min| x <= *min) {
                push(format!("must be more than {min}"));
            }
            if let Some(max) = limit("exclusiveMaximum").filter(|max| x >= *max) {
                push(format!("must be less than {max}"));
            }
        }
        Value::Array(items) => {
            let n = items.len() as f64;
            if let Some(min) = limit("minItems").filter(|min| n < *min) {
                push(format!("must have at least {min} items"));
            }
            if let Some(max) = limit("maxItems").filter(|max| n > *max) {
                push(format!("must have at most {max} items"));
            }
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk(root, item, v, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::Object(members) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, v) in members {
                    if let Some(sub) = props.get(name) {
                        let sub_path = if path.is_empty() {
                            name.clone()
                        } else {
                            format!("{path}.{name}")
                        };
                        walk(root, sub, v, &sub_path, out);
                    }
                }
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
    for key in ["allOf"] {
        for sub in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            walk(root, sub, value, path, out);
        }
    }
    // An optional field: the first branch the value satisfies decides; if
    // none does, the first non-null branch's complaints stand.
    for key in ["anyOf", "oneOf"] {
        let Some(branches) = schema.get(key).and_then(Value::as_array) else {
            continue;
        };
        let mut first = None;
        for branch in branches {
            if resolve(root, branch).get("type").and_then(Value::as_str) == Some("null") {
                continue;
            }
            let mut errors = Vec::new();
            walk(root, branch, value, path, &mut errors);
            if errors.is_empty() {
                first = None;
                break;
            }
            first.get_or_insert(errors);
        }
        out.extend(first.into_iter().flatten());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemars::JsonSchema;
    use serde_json::json;

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Inner {
        #[schemars(range(min = 1, max = 720))]
        hours: Option<i64>,
    }

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Request {
        #[schemars(length(min = 3, max = 5))]
        username: String,
        #[schemars(length(max = 2))]
        note: Option<String>,
        #[schemars(length(min = 1, max = 2))]
        scopes: Vec<String>,
        inner: Option<Inner>,
        nested: Vec<Inner>,
    }

    fn check(value: serde_json::Value) -> Vec<(String, String)> {
        let schema = serde_json::to_value(schemars::schema_for!(Request)).unwrap();
        violations(&schema, &value)
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    #[test]
    fn documented_lengths_and_ranges_are_enforced_and_named() {
        assert!(check(json!({"username": "abc", "scopes": ["x"], "nested": []})).is_empty());
        assert!(
            check(json!({"username": "éééé", "note": null, "scopes": ["x", "y"], "inner": {"hours": 720}, "nested": [{"hours": 1}]}))
                .is_empty(),
            "characters, not bytes; null for an optional field"
        );
        let errors = check(json!({
            "username": "x".repeat(1 << 20),
            "note": "abc",
            "scopes": [],
            "inner": {"hours": 0},
            "nested": [{"hours": 721}],
        }));
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "inner.hours",
                "nested[0].hours",
                "note",
                "scopes",
                "username"
            ],
            "{errors:?}"
        );
        assert_eq!(errors[4].1, "must be at most 5 characters");
        assert_eq!(
            check(json!({"username": "ab", "scopes": ["a", "b", "c"], "nested": []})).len(),
            2
        );
    }
}
