//! The statement-level database interface both halves of Vigil speak: the
//! components through Spin's SQLite interface (`vigil_api::db`), the relay
//! and the CLI through the `libsql` crate (`vigil_db`). What both must write
//! the same way (the audit chain, the outbox, ingestion) is written once
//! against [`Sql`], and each side supplies the connection.

use std::future::Future;
use std::sync::OnceLock;

use crate::ApiError;

/// A parameter or a column value, as SQLite types them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// One result row, its columns in the statement's order.
pub type Row = Vec<Value>;

/// A connection that runs one statement at a time. Transactions are the
/// caller's: it opens one (`BEGIN IMMEDIATE`) around the calls that must
/// commit together.
pub trait Sql {
    /// Run one statement with positional parameters (`?1`, `?2` … or `?`)
    /// and return its rows; a failure is a 503 problem, logged by the
    /// implementation with the statement.
    fn query(
        &self,
        sql: &str,
        params: &[Value],
    ) -> impl Future<Output = Result<Vec<Row>, ApiError>>;
}

/// Text or NULL.
pub fn opt_text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |s| Value::Text(s.to_string()))
}

/// An integer or NULL.
pub fn opt_int(value: Option<impl Into<i64>>) -> Value {
    value.map_or(Value::Null, |n| Value::Integer(n.into()))
}

/// Column `i` of a row as text, if it is text.
pub fn text(row: &[Value], i: usize) -> Option<String> {
    match row.get(i) {
        Some(Value::Text(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Column `i` of a row as an integer, if it is one.
pub fn int(row: &[Value], i: usize) -> Option<i64> {
    match row.get(i) {
        Some(Value::Integer(n)) => Some(*n),
        _ => None,
    }
}

/// Column `i` of a row as a float (SQLite may hand back a whole number as an integer).
pub fn real(row: &[Value], i: usize) -> Option<f64> {
    match row.get(i) {
        Some(Value::Real(x)) => Some(*x),
        Some(Value::Integer(n)) => Some(*n as f64),
        _ => None,
    }
}

/// A statement's select list, read by column name: a reader says which
/// column it means, so a column added to or moved in the list cannot shift
/// what it reads. A name may be an expression's `AS` alias. Declared as a
/// `static` next to its reader, so the list is split into names once, not
/// once per row (an export reads 100,000); it prints as the list itself, for
/// `format!("SELECT {COLUMNS} FROM …")`.
pub struct Columns {
    list: &'static str,
    names: OnceLock<Vec<&'static str>>,
}

impl Columns {
    /// The select list `list` (`"id, name, coalesce(a, b) AS c"`).
    pub const fn new(list: &'static str) -> Self {
        Columns {
            list,
            names: OnceLock::new(),
        }
    }

    /// `row`, a result of a statement that selected these columns.
    pub fn row<'a>(&'a self, row: &'a [Value]) -> Named<'a> {
        Named { columns: self, row }
    }

    /// The position of `name` in the list. A name that is not there is a bug
    /// in the reader, not bad data: it panics, naming both.
    fn index(&self, name: &str) -> usize {
        self.names
            .get_or_init(|| select_names(self.list).collect())
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {:?}", self.list))
    }
}

impl std::fmt::Display for Columns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.list)
    }
}

/// One result row of a statement whose select list is [`Columns`].
#[derive(Clone, Copy)]
pub struct Named<'a> {
    columns: &'a Columns,
    row: &'a [Value],
}

impl Named<'_> {
    pub fn text(&self, name: &str) -> Option<String> {
        text(self.row, self.columns.index(name))
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        int(self.row, self.columns.index(name))
    }

    pub fn real(&self, name: &str) -> Option<f64> {
        real(self.row, self.columns.index(name))
    }

    /// A stored JSON text, checked and kept as it is (never parsed into a
    /// tree and printed again); `None` when it is not JSON.
    pub fn json(&self, name: &str) -> Option<Box<serde_json::value::RawValue>> {
        self.text(name)
            .and_then(|t| serde_json::value::RawValue::from_string(t).ok())
    }
}

/// The names of a select list, in order: each column's alias after `AS`,
/// else the expression itself; commas inside parentheses do not split.
fn select_names(columns: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0u32;
    let mut start = 0;
    let mut items = Vec::new();
    for (i, c) in columns.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&columns[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&columns[start..]);
    items.into_iter().map(|item| {
        let item = item.trim();
        match item
            .rsplit_once(" AS ")
            .or_else(|| item.rsplit_once(" as "))
        {
            Some((_, alias)) => alias.trim(),
            None => item,
        }
    })
}

/// Run `insert` (ending in `VALUES `) over `rows` (all of one width), as
/// many rows per statement as keep the parameter count far below SQLite's
/// and libSQL's limits: a batch costs a handful of statements, which matters
/// where every statement is a network round trip.
pub async fn insert_rows(db: &impl Sql, insert: &str, rows: Vec<Row>) -> Result<(), ApiError> {
    insert_rows_then(db, insert, rows, "").await
}

/// [`insert_rows`] with `tail` after the values of each statement (an
/// `ON CONFLICT … DO UPDATE` clause, for upserts).
pub async fn insert_rows_then(
    db: &impl Sql,
    insert: &str,
    rows: Vec<Row>,
    tail: &str,
) -> Result<(), ApiError> {
    const MAX_PARAMS: usize = 2400;
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    let tuple = format!("({})", vec!["?"; width].join(", "));
    for chunk in rows.chunks((MAX_PARAMS / width.max(1)).max(1)) {
        // Anonymous `?` marks number themselves in order.
        let sql = format!(
            "{insert}{}{tail}",
            vec![tuple.as_str(); chunk.len()].join(", ")
        );
        let params: Vec<Value> = chunk.iter().flatten().cloned().collect();
        db.query(&sql, &params).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_by_name() {
        let row = vec![
            Value::Text("a-1".into()),
            Value::Integer(3),
            Value::Null,
            Value::Real(0.5),
        ];
        static COLUMNS: Columns = Columns::new("id, version, coalesce(x, y) AS note, score");
        let r = COLUMNS.row(&row);
        assert_eq!(r.text("id").as_deref(), Some("a-1"));
        assert_eq!(r.int("version"), Some(3));
        assert_eq!(r.text("note"), None);
        assert_eq!(r.real("score"), Some(0.5));
        assert_eq!(r.real("version"), Some(3.0));
    }

    #[test]
    fn select_list_names() {
        let names: Vec<&str> = select_names(
            "id,  name\n , coalesce(opened_severity, severity) AS severity, max(a, b)",
        )
        .collect();
        assert_eq!(names, ["id", "name", "severity", "max(a, b)"]);
    }

    #[test]
    #[should_panic(expected = "no column \"nme\"")]
    fn a_misspelt_name_is_a_bug() {
        Columns::new("id, name").row(&[]).text("nme");
    }
}
