//! Building a filtered, paginated listing: numbered SQL parameters, the
//! `limit` query parameter, and opaque cursors (base64url of the sort key of
//! the last row served).

use crate::db::Value;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use vigil_core::ApiError;

use crate::Ctx;

/// `WHERE` clauses with their parameters, numbered as they are added.
#[derive(Default)]
pub struct Filters {
    clauses: Vec<String>,
    pub params: Vec<Value>,
}

impl Filters {
    /// Add a clause whose `?` marks take `values`, in order.
    pub fn add(&mut self, clause: &str, values: Vec<Value>) {
        let mut numbered = String::new();
        let mut pieces = clause.split('?');
        numbered.push_str(pieces.next().unwrap_or(""));
        for (piece, value) in pieces.zip(values) {
            self.params.push(value);
            numbered.push_str(&format!("?{}{piece}", self.params.len()));
        }
        self.clauses.push(numbered);
    }

    /// A clause without parameters.
    pub fn add_fixed(&mut self, clause: &str) {
        self.clauses.push(clause.to_string());
    }

    pub fn where_clause(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// The placeholder for a final `LIMIT` of `n`.
    pub fn limit_placeholder(&mut self, n: i64) -> String {
        self.params.push(Value::Integer(n));
        format!("?{}", self.params.len())
    }
}

/// `limit` (1–200, default 50).
pub fn limit(ctx: &Ctx) -> Result<i64, ApiError> {
    match ctx.query_param("limit") {
        None => Ok(50),
        Some(l) => l
            .parse()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| ApiError::invalid_field("limit", "is 1-200")),
    }
}

pub fn encode_cursor(parts: &[String]) -> String {
    B64.encode(parts.join("|"))
}

/// The `cursor` query parameter's `n` parts, if one was given; a cursor this
/// API did not make is a 400.
pub fn cursor(ctx: &Ctx, n: usize) -> Result<Option<Vec<String>>, ApiError> {
    let Some(cursor) = ctx.query_param("cursor") else {
        return Ok(None);
    };
    let bad = || ApiError::bad_request("the cursor is not one this API gave");
    let decoded = B64
        .decode(&cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let parts: Vec<String> = decoded.splitn(n, '|').map(str::to_string).collect();
    if parts.len() != n {
        return Err(bad());
    }
    Ok(Some(parts))
}

/// For a listing newest first on `(time_column, id)`: the clause that
/// starts after the `cursor`, when one was given.
pub fn newest_first_after(ctx: &Ctx, f: &mut Filters, time_column: &str) -> Result<(), ApiError> {
    if let Some(c) = cursor(ctx, 2)? {
        f.add(
            &format!("({time_column}, id) < (?, ?)"),
            vec![
                Value::Integer(cursor_int(&c[0])?),
                Value::Text(c[1].clone()),
            ],
        );
    }
    Ok(())
}

/// Cut `items` (fetched with `LIMIT limit + 1`) to a page, and return the
/// next page's cursor (the sort `key` of the last item kept), or `None` on
/// the last page.
pub fn page<T>(items: &mut Vec<T>, limit: i64, key: impl Fn(&T) -> Vec<String>) -> Option<String> {
    (items.len() as i64 > limit).then(|| {
        items.truncate(limit as usize);
        encode_cursor(&key(items.last().expect("a full page")))
    })
}

/// Parse one cursor part as an integer (400 when it is not).
pub fn cursor_int(part: &str) -> Result<i64, ApiError> {
    part.parse()
        .map_err(|_| ApiError::bad_request("the cursor is not one this API gave"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_are_numbered_in_order() {
        let mut f = Filters::default();
        f.add("status = ?", vec![Value::Text("open".into())]);
        f.add(
            "(a, b) > (?, ?)",
            vec![Value::Integer(1), Value::Integer(2)],
        );
        f.add_fixed("x IS NULL");
        assert_eq!(
            f.where_clause(),
            "WHERE status = ?1 AND (a, b) > (?2, ?3) AND x IS NULL"
        );
        assert_eq!(f.limit_placeholder(51), "?4");
        assert_eq!(f.params.len(), 4);
        assert_eq!(Filters::default().where_clause(), "");
    }
}
