//! Checks of dataset declarations, records and alerts before they are buffered.
//!
//! The sinks check again when they apply a batch; checking here lets the
//! component learn of a bad record at the call that published it, with the
//! record's position and column named.

use serde_json::{Map, Value};
use trace_common::api::Column;
use trace_host::records::{Column as WitColumn, ColumnType};

/// The longest dataset or column name, Postgres's identifier limit.
const MAX_NAME: usize = 63;
/// The most columns a dataset may have.
const MAX_COLUMNS: usize = 200;
/// The most digits of a `numeric` value: any 256-bit integer fits.
const MAX_NUMERIC_DIGITS: usize = 78;

/// Checks a name: lower-case letters, digits and `_`, starting with a letter.
pub fn name(what: &str, name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let starts = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !starts || !rest || name.len() > MAX_NAME {
        return Err(format!(
            "{what} name `{name}` must be 1 to {MAX_NAME} lower-case letters, digits and `_`, \
             starting with a letter"
        ));
    }
    Ok(())
}

/// Checks a dataset declaration and turns its columns into wire columns.
pub fn dataset(dataset: &str, columns: &[WitColumn]) -> Result<Vec<Column>, String> {
    name("dataset", dataset)?;
    if columns.is_empty() || columns.len() > MAX_COLUMNS {
        return Err(format!(
            "dataset `{dataset}` must have 1 to {MAX_COLUMNS} columns"
        ));
    }
    let mut out: Vec<Column> = Vec::with_capacity(columns.len());
    for column in columns {
        name("column", &column.name)?;
        if out.iter().any(|c| c.name == column.name) {
            return Err(format!("column `{}` is declared twice", column.name));
        }
        out.push(Column {
            name: column.name.clone(),
            kind: kind_name(column.kind).to_string(),
            nullable: column.nullable,
        });
    }
    Ok(out)
}

/// Parses and checks the record at `index` against `columns`.
pub fn record(index: usize, text: &str, columns: &[Column]) -> Result<Map<String, Value>, String> {
    let at = |msg: String| format!("record {index}: {msg}");
    let value: Value = serde_json::from_str(text).map_err(|e| at(format!("not JSON: {e}")))?;
    let Value::Object(row) = value else {
        return Err(at("not a JSON object".to_string()));
    };
    if row.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)) {
        return Err(at(
            "holds a NUL character (U+0000), which no dataset can store".into(),
        ));
    }
    if let Some(key) = row.keys().find(|k| !columns.iter().any(|c| &c.name == *k)) {
        return Err(at(format!("column `{key}` is not declared")));
    }
    for column in columns {
        match row.get(&column.name) {
            None | Some(Value::Null) if column.nullable => {}
            None | Some(Value::Null) => {
                return Err(at(format!("column `{}` may not be null", column.name)));
            }
            Some(value) => {
                check_value(&column.kind, value)
                    .map_err(|msg| at(format!("column `{}`: {msg}", column.name)))?;
            }
        }
    }
    Ok(row)
}

/// Parses an alert's payload, which must be a JSON object.
pub fn payload(index: usize, text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(value) if holds_nul(&value) => Err(format!(
            "alert {index}: payload holds a NUL character (U+0000), which cannot be stored"
        )),
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(format!("alert {index}: payload is not a JSON object")),
        Err(e) => Err(format!("alert {index}: payload is not JSON: {e}")),
    }
}

/// Checks an alert's key and title: text without NULs.
pub fn alert_text(index: usize, key: &str, title: &str) -> Result<(), String> {
    if key.contains('\0') || title.contains('\0') {
        return Err(format!(
            "alert {index}: the key or title holds a NUL character (U+0000), which cannot be stored"
        ));
    }
    Ok(())
}

/// Whether any string or key in `value` holds U+0000, which Postgres text
/// and jsonb refuse: such a value is the component's error, refused where it
/// is published rather than failing a write later.
pub fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// The wire name of a column type.
pub fn kind_name(kind: ColumnType) -> &'static str {
    match kind {
        ColumnType::Text => "text",
        ColumnType::Int64 => "int64",
        ColumnType::Float64 => "float64",
        ColumnType::Boolean => "boolean",
        ColumnType::Numeric => "numeric",
        ColumnType::Timestamp => "timestamp",
    }
}

fn check_value(kind: &str, value: &Value) -> Result<(), String> {
    let ok = match kind {
        "text" => value.is_string(),
        "int64" => value.is_i64(),
        "float64" => value.is_number(),
        "boolean" => value.is_boolean(),
        "numeric" => value.as_str().is_some_and(is_decimal) || value.is_i64() || value.is_u64(),
        "timestamp" => value
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {}", expected(kind)))
    }
}

fn expected(kind: &str) -> &'static str {
    match kind {
        "text" => "a string",
        "int64" => "a 64-bit integer",
        "float64" => "a number",
        "boolean" => "true or false",
        "numeric" => "a string of up to 78 decimal digits",
        _ => "an RFC 3339 timestamp string",
    }
}

fn is_decimal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.len() <= MAX_NUMERIC_DIGITS
        && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Vec<Column> {
        let column = |name: &str, kind: &str, nullable| Column {
            name: name.into(),
            kind: kind.into(),
            nullable,
        };
        vec![
            column("block", "int64", false),
            column("value", "numeric", false),
            column("at", "timestamp", true),
        ]
    }

    #[test]
    fn a_matching_record_passes() {
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        let row = record(0, &format!(r#"{{"block":1,"value":"{max}"}}"#), &columns());
        assert_eq!(row.unwrap().len(), 2);
    }

    #[test]
    fn a_bad_record_is_named_by_position_and_column() {
        let err = record(3, r#"{"block":1,"value":"12x"}"#, &columns()).unwrap_err();
        assert_eq!(
            err,
            "record 3: column `value`: expected a string of up to 78 decimal digits"
        );
        let err = record(0, r#"{"value":"1"}"#, &columns()).unwrap_err();
        assert_eq!(err, "record 0: column `block` may not be null");
        let err = record(1, r#"{"block":1,"value":"1","extra":2}"#, &columns()).unwrap_err();
        assert_eq!(err, "record 1: column `extra` is not declared");
        let err = record(2, r#"{"block":1,"value":"1","at":"yesterday"}"#, &columns()).unwrap_err();
        assert_eq!(
            err,
            "record 2: column `at`: expected an RFC 3339 timestamp string"
        );
    }

    #[test]
    fn a_nul_anywhere_in_a_record_or_payload_is_refused() {
        let err = record(4, r#"{"block":1,"value":"1","at":"\u0000"}"#, &columns()).unwrap_err();
        assert!(err.starts_with("record 4: holds a NUL character"), "{err}");
        let err = payload(2, r#"{"deep":[{"k\u0000":1}]}"#).unwrap_err();
        assert!(err.starts_with("alert 2: payload holds a NUL"), "{err}");
        assert!(payload(0, r#"{"deep":[{"k":"\u0001"}]}"#).is_ok());
    }

    #[test]
    fn names_must_be_lower_case_identifiers() {
        assert!(name("dataset", "erc20_transfers").is_ok());
        assert!(name("dataset", "Transfers").is_err());
        assert!(name("dataset", "1x").is_err());
        assert!(name("dataset", "").is_err());
        assert!(name("dataset", &"a".repeat(64)).is_err());
    }
}
