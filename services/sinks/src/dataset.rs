//! Dataset declarations and rows: what is valid, and how it becomes SQL.
//!
//! A dataset lives in its tenant's schema `ds_<tenant>` as a table named
//! after it, with the declared columns followed by the provenance columns
//! `_job_id`, `_task_id`, `_attempt`, `_batch_seq` and `_row` (declared
//! names start with a letter, so they cannot collide). Every check here is
//! pure, so that a bad batch is refused before anything is written, with a
//! reason naming the row and the column.

use serde_json::{Map, Value};
use trace_common::api::Column;

/// The most decimal digits a `numeric` value may have (any 256-bit integer fits).
pub const NUMERIC_DIGITS: usize = 78;

/// A column's storage type, parsed from its declared `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int64,
    Float64,
    Boolean,
    Numeric,
    Timestamp,
}

impl Kind {
    /// The kind named `kind`, if it is one of the six.
    pub fn parse(kind: &str) -> Option<Self> {
        Some(match kind {
            "text" => Kind::Text,
            "int64" => Kind::Int64,
            "float64" => Kind::Float64,
            "boolean" => Kind::Boolean,
            "numeric" => Kind::Numeric,
            "timestamp" => Kind::Timestamp,
            _ => return None,
        })
    }

    /// The Postgres column type.
    pub fn sql_type(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Int64 => "bigint",
            Kind::Float64 => "double precision",
            Kind::Boolean => "boolean",
            Kind::Numeric => "numeric(78, 0)",
            Kind::Timestamp => "timestamptz",
        }
    }
}

/// One value of a row, checked against its column.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Exact integer decimal text.
    Numeric(String),
    Timestamp(chrono::DateTime<chrono::Utc>),
}

/// Whether `name` is a valid dataset or column name (`^[a-z][a-z0-9_]{0,62}$`).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

/// Checks a dataset declaration; returns the column kinds in order.
pub fn check_declaration(dataset: &str, columns: &[Column]) -> Result<Vec<Kind>, String> {
    if !valid_name(dataset) {
        return Err(format!(
            "dataset name `{dataset}` does not match ^[a-z][a-z0-9_]{{0,62}}$"
        ));
    }
    if columns.is_empty() {
        return Err(format!("dataset `{dataset}` declares no columns"));
    }
    let mut kinds = Vec::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        if !valid_name(&column.name) {
            return Err(format!(
                "column name `{}` does not match ^[a-z][a-z0-9_]{{0,62}}$",
                column.name
            ));
        }
        if columns[..i].iter().any(|c| c.name == column.name) {
            return Err(format!("column `{}` is declared twice", column.name));
        }
        let kind = Kind::parse(&column.kind).ok_or_else(|| {
            format!(
                "column `{}` has kind `{}`; expected text, int64, float64, boolean, numeric \
                 or timestamp",
                column.name, column.kind
            )
        })?;
        kinds.push(kind);
    }
    Ok(kinds)
}

/// Checks every row against the columns; returns the cells column by column.
pub fn check_rows(
    columns: &[Column],
    kinds: &[Kind],
    rows: &[Map<String, Value>],
) -> Result<Vec<Vec<Cell>>, String> {
    let mut cells: Vec<Vec<Cell>> = vec![Vec::with_capacity(rows.len()); columns.len()];
    for (r, row) in rows.iter().enumerate() {
        if let Some(key) = row.keys().find(|k| !columns.iter().any(|c| &c.name == *k)) {
            return Err(format!(
                "row {r}: key `{key}` is not a column of the dataset"
            ));
        }
        for (c, (column, kind)) in columns.iter().zip(kinds).enumerate() {
            let value = row.get(&column.name).unwrap_or(&Value::Null);
            let cell = cell_of(*kind, value)
                .map_err(|why| format!("row {r}, column `{}`: {why}", column.name))?;
            if cell == Cell::Null && !column.nullable {
                return Err(format!(
                    "row {r}, column `{}`: missing or null in a non-null column",
                    column.name
                ));
            }
            cells[c].push(cell);
        }
    }
    Ok(cells)
}

fn cell_of(kind: Kind, value: &Value) -> Result<Cell, String> {
    if value.is_null() {
        return Ok(Cell::Null);
    }
    let wrong = || format!("expected {}, got `{}`", expected(kind), shorten(value));
    Ok(match kind {
        Kind::Text => Cell::Text(value.as_str().ok_or_else(wrong)?.to_string()),
        Kind::Int64 => Cell::Int(value.as_i64().ok_or_else(wrong)?),
        Kind::Float64 => Cell::Float(
            value
                .as_f64()
                .filter(|_| value.is_number())
                .ok_or_else(wrong)?,
        ),
        Kind::Boolean => Cell::Bool(value.as_bool().ok_or_else(wrong)?),
        Kind::Numeric => {
            let text = value.as_str().ok_or_else(wrong)?;
            let digits = text.strip_prefix('-').unwrap_or(text);
            let exact = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            if !exact || digits.len() > NUMERIC_DIGITS {
                return Err(wrong());
            }
            Cell::Numeric(text.to_string())
        }
        Kind::Timestamp => {
            let text = value.as_str().ok_or_else(wrong)?;
            let parsed = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| wrong())?;
            Cell::Timestamp(parsed.with_timezone(&chrono::Utc))
        }
    })
}

fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "a string",
        Kind::Int64 => "an integer that fits 64 bits",
        Kind::Float64 => "a number",
        Kind::Boolean => "a boolean",
        Kind::Numeric => "a string of at most 78 decimal digits (an exact integer)",
        Kind::Timestamp => "an RFC 3339 timestamp string",
    }
}

/// A value for an error message, cut to a readable length.
fn shorten(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(80) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}

/// `name` as a quoted SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The `create table` statement for a dataset in `schema`.
pub fn create_table_sql(schema: &str, dataset: &str, columns: &[Column], kinds: &[Kind]) -> String {
    let mut defs: Vec<String> = columns
        .iter()
        .zip(kinds)
        .map(|(c, k)| {
            let null = if c.nullable { "" } else { " not null" };
            format!("{} {}{null}", quote_ident(&c.name), k.sql_type())
        })
        .collect();
    defs.extend(
        [
            "_job_id uuid not null",
            "_task_id uuid not null",
            "_attempt integer not null",
            "_batch_seq integer not null",
            "_row integer not null",
            "unique (_task_id, _attempt, _batch_seq, _row)",
        ]
        .map(String::from),
    );
    format!(
        "create table if not exists {}.{} ({})",
        quote_ident(schema),
        quote_ident(dataset),
        defs.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, kind: &str, nullable: bool) -> Column {
        Column {
            name: name.into(),
            kind: kind.into(),
            nullable,
        }
    }

    fn row(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn names_follow_the_pattern() {
        assert!(valid_name("transfers_v2"));
        assert!(!valid_name("_job_id"));
        assert!(!valid_name("Transfers"));
        assert!(!valid_name(&"a".repeat(64)));
    }

    #[test]
    fn declarations_with_bad_kinds_or_duplicates_are_refused() {
        let err = check_declaration("t", &[column("a", "int32", false)]).unwrap_err();
        assert!(err.contains("`int32`"), "{err}");
        let err = check_declaration(
            "t",
            &[column("a", "text", false), column("a", "text", true)],
        );
        assert!(err.unwrap_err().contains("declared twice"));
    }

    #[test]
    fn row_errors_name_the_row_and_the_column() {
        let columns = [column("n", "numeric", false), column("note", "text", true)];
        let kinds = check_declaration("t", &columns).unwrap();
        let rows = [
            row(serde_json::json!({"n": "12"})),
            row(serde_json::json!({"n": "1.5"})),
        ];
        let err = check_rows(&columns, &kinds, &rows).unwrap_err();
        assert!(err.starts_with("row 1, column `n`"), "{err}");

        let rows = [row(serde_json::json!({"note": "x"}))];
        let err = check_rows(&columns, &kinds, &rows).unwrap_err();
        assert!(err.contains("row 0, column `n`: missing"), "{err}");

        let rows = [row(serde_json::json!({"n": "1", "extra": 1}))];
        let err = check_rows(&columns, &kinds, &rows).unwrap_err();
        assert!(err.contains("key `extra`"), "{err}");
    }

    #[test]
    fn numerics_take_up_to_78_digits_and_nothing_inexact() {
        let ok = "1".repeat(78);
        assert_eq!(
            cell_of(Kind::Numeric, &Value::from(ok.clone())),
            Ok(Cell::Numeric(ok))
        );
        assert!(cell_of(Kind::Numeric, &Value::from("1".repeat(79))).is_err());
        assert!(cell_of(Kind::Numeric, &Value::from("1e3")).is_err());
        assert!(cell_of(Kind::Numeric, &serde_json::json!(12)).is_err());
    }
}
