//! Cases against the capabilities: object keys out of scope, malformed and
//! oversized records, and statements that are not one read-only query.

use crate::sandbox::refused_or_escaped;
use crate::trace::udf::objects::{self, ObjectError};
use crate::trace::udf::query::{self, QueryError, Source};
use crate::trace::udf::records::{self, Alert, Column, ColumnType, RecordsError, Severity};
use crate::{Summary, UdfError, summary};

/// The dataset the record cases declare: a non-null `block` and a nullable
/// `note`.
const DATASET: &str = "hostile";

/// The object keys each `way` of `object-key` tries.
fn hostile_key(way: &str) -> Option<String> {
    Some(match way {
        "traversal" => "../x".into(),
        "deep-traversal" => "a/../../../other-task/x".into(),
        "dot-dot" => "..".into(),
        "dot" => ".".into(),
        "absolute" => "/x".into(),
        "backslash" => "..\\x".into(),
        "nul" => "a\0b".into(),
        "newline" => "a\nb".into(),
        "long" => "k".repeat(513),
        "empty" => String::new(),
        _ => return None,
    })
}

/// Tries get, put, delete and list (the key as a prefix) on the key of `way`.
pub fn object_key(way: &str) -> Result<Summary, UdfError> {
    let Some(key) = hostile_key(way) else {
        return Err(UdfError::InvalidParams(format!("unknown way `{way}`")));
    };
    let text = |e: ObjectError| object_error(&e);
    let mut attempts = vec![
        (
            "get",
            objects::get(&key).map(|o| format!("{o:?}")).map_err(text),
        ),
        (
            "put",
            objects::put(&key, b"hostile")
                .map(|()| "stored".into())
                .map_err(text),
        ),
        (
            "delete",
            objects::delete(&key)
                .map(|()| "deleted".into())
                .map_err(text),
        ),
    ];
    // The empty prefix lists the task's own keys, which is allowed.
    if !key.is_empty() {
        attempts.push((
            "list",
            objects::list(&key).map(|k| format!("{k:?}")).map_err(text),
        ));
    }
    refused_or_escaped(attempts.into_iter())
}

/// Writes 16-byte objects under new keys until a write is refused.
pub fn objects_flood() -> Result<Summary, UdfError> {
    for n in 0u64.. {
        if let Err(err) = objects::put(&format!("flood/{n}"), b"0123456789abcdef") {
            return Err(host(format!("after {n} objects: {}", object_error(&err))));
        }
    }
    unreachable!("the loop only ends by returning")
}

/// Writes one object of 32 MiB.
pub fn giant_object() -> Result<Summary, UdfError> {
    match objects::put("giant", &vec![7u8; 32 << 20]) {
        Ok(()) => summary("stored a 32 MiB object"),
        Err(err) => Err(host(object_error(&err))),
    }
}

fn object_error(err: &ObjectError) -> String {
    match err {
        ObjectError::InvalidKey(m) => format!("invalid-key: {m}"),
        ObjectError::TooLarge(n) => format!("too-large: {n}"),
        ObjectError::Denied(m) => format!("denied: {m}"),
        ObjectError::Unavailable(m) => format!("unavailable: {m}"),
    }
}

/// Declares [`DATASET`] and publishes the malformed record of `way`.
pub fn malformed_record(way: &str) -> Result<Summary, UdfError> {
    let (dataset, record) = match way {
        "not-json" => (DATASET, "{\"block\": 1,"),
        "not-object" => (DATASET, "[1, 2]"),
        "wrong-type" => (DATASET, "{\"block\":\"one\"}"),
        "missing-column" => (DATASET, "{\"note\":\"no block\"}"),
        "undeclared-column" => (DATASET, "{\"block\":1,\"extra\":true}"),
        "undeclared-dataset" => ("nowhere", "{\"block\":1}"),
        _ => return Err(UdfError::InvalidParams(format!("unknown way `{way}`"))),
    };
    define()?;
    match records::publish(dataset, &[record.to_string()]) {
        Ok(()) => summary(format!("published `{record}` to `{dataset}`")),
        Err(err) => Err(host(records_error(&err))),
    }
}

/// Publishes batches of 1000 records until the host refuses one.
pub fn records_flood() -> Result<Summary, UdfError> {
    define()?;
    let batch: Vec<String> = (0..1000).map(|b| format!("{{\"block\":{b}}}")).collect();
    for sent in 0u64.. {
        if let Err(err) = records::publish(DATASET, &batch) {
            return Err(host(format!(
                "after {sent} batches: {}",
                records_error(&err)
            )));
        }
    }
    unreachable!("the loop only ends by returning")
}

/// Publishes batches of 1000 alerts until the host refuses one.
pub fn alerts_flood() -> Result<Summary, UdfError> {
    let batch: Vec<Alert> = (0..1000)
        .map(|i| Alert {
            key: format!("flood-{i}"),
            severity: Severity::Info,
            title: "flood".into(),
            payload: "{}".into(),
        })
        .collect();
    for sent in 0u64.. {
        if let Err(err) = records::publish_alerts(&batch) {
            return Err(host(format!(
                "after {sent} batches: {}",
                records_error(&err)
            )));
        }
    }
    unreachable!("the loop only ends by returning")
}

/// Publishes one record whose `note` is 16 MiB of text.
pub fn giant_record() -> Result<Summary, UdfError> {
    define()?;
    // Built in one allocation: the 64 MiB default memory holds it easily.
    let mut record = String::with_capacity((16 << 20) + 32);
    record.push_str("{\"block\":1,\"note\":\"");
    record.extend(std::iter::repeat_n('x', 16 << 20));
    record.push_str("\"}");
    match records::publish(DATASET, &[record]) {
        Ok(()) => summary("published a 16 MiB record"),
        Err(err) => Err(host(records_error(&err))),
    }
}

fn define() -> Result<(), UdfError> {
    let columns = [
        Column {
            name: "block".into(),
            kind: ColumnType::Int64,
            nullable: false,
        },
        Column {
            name: "note".into(),
            kind: ColumnType::Text,
            nullable: true,
        },
    ];
    records::define_dataset(DATASET, &columns).map_err(|e| host(records_error(&e)))
}

fn records_error(err: &RecordsError) -> String {
    match err {
        RecordsError::InvalidDataset(m) => format!("invalid-dataset: {m}"),
        RecordsError::InvalidRecord(m) => format!("invalid-record: {m}"),
        RecordsError::Limit(m) => format!("limit: {m}"),
        RecordsError::Unavailable(m) => format!("unavailable: {m}"),
    }
}

/// Runs the statement of `way`; the cross-tenant one reads the dataset of
/// the tenant `globex`, which the test creates.
pub fn sql(way: &str) -> Result<Summary, UdfError> {
    let sql = match way {
        "insert" => "insert into logs (block_number) values (1)",
        "delete-in-cte" => "with d as (delete from logs returning 1) select count(*) from d",
        "ddl" => "create table hostile (x int)",
        "drop" => "drop table logs",
        "multiple" => "select 1; drop table logs",
        "cross-tenant" => "select * from ds_globex.secrets",
        "set-role" => "set role trace_reader_globex",
        "set-config" => "select set_config('role', 'trace_reader_globex', true)",
        "sleep" => "select pg_sleep(60)",
        "read-file" => "select pg_read_file('/etc/passwd')",
        "large-object" => "select lo_get(1)",
        _ => return Err(UdfError::InvalidParams(format!("unknown way `{way}`"))),
    };
    match query::execute(sql, &[], Source::Postgres) {
        Ok(bytes) => summary(format!("ran, {} bytes back", bytes.len())),
        Err(err) => Err(host(query_error(&err))),
    }
}

fn query_error(err: &QueryError) -> String {
    match err {
        QueryError::Invalid(m) => format!("invalid: {m}"),
        QueryError::Denied(m) => format!("denied: {m}"),
        QueryError::Limit(m) => format!("limit: {m}"),
        QueryError::Unavailable(m) => format!("unavailable: {m}"),
    }
}

fn host(message: String) -> UdfError {
    UdfError::Host(message)
}
