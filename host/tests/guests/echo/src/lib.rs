//! Test guest: uses every capability once and reports what it saw.
//!
//! Queries once (binding the task's first block), declares a dataset and
//! publishes one record per block of the task, publishes one alert, logs a
//! line and prints one to standard output. Parameters steer failures:
//! `{"fail": "..."}` returns a `udf-error`, `{"panic": "..."}` panics;
//! `{"objects": "round-trip"}` also stores its records as an object, reads
//! it back, lists and deletes a second one, and says what it saw.

wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "trace:udf/udf" });

use trace::udf::log::{self, Level};
use trace::udf::objects;
use trace::udf::query::{self, Param, Source};
use trace::udf::records::{self, Alert, Column, ColumnType, Severity};

struct Echo;

impl Guest for Echo {
    fn run(task: Task) -> Result<Summary, UdfError> {
        if let Some(reason) = param(&task.params, "fail") {
            return Err(UdfError::InvalidParams(reason));
        }
        if let Some(reason) = param(&task.params, "panic") {
            panic!("{reason}");
        }
        let sql = "select $1::bigint as block, $2::text as note";
        let params = [Param::Int(task.from_block as i64), Param::Text("x".into())];
        let bytes = query::execute(sql, &params, Source::Postgres)
            .map_err(|e| UdfError::Host(format!("{e:?}")))?;

        let columns = [
            Column {
                name: "block".into(),
                kind: ColumnType::Int64,
                nullable: false,
            },
            Column {
                name: "task".into(),
                kind: ColumnType::Text,
                nullable: false,
            },
        ];
        records::define_dataset("echo", &columns).map_err(|e| UdfError::Host(format!("{e:?}")))?;
        let rows: Vec<String> = (task.from_block..=task.to_block)
            .map(|b| format!("{{\"block\":{b},\"task\":\"{}\"}}", task.task_id))
            .collect();
        records::publish("echo", &rows).map_err(|e| UdfError::Host(format!("{e:?}")))?;
        let alert = Alert {
            key: format!("block-{}", task.from_block),
            severity: Severity::Warning,
            title: "echo alert".into(),
            payload: format!("{{\"from\":{}}}", task.from_block),
        };
        records::publish_alerts(&[alert]).map_err(|e| UdfError::Host(format!("{e:?}")))?;

        log::write(
            Level::Info,
            "echo ran",
            &[("attempt".into(), task.attempt.to_string())],
        );
        println!("echo stdout line");
        let mut message = format!("echoed {} blocks", rows.len());
        if param(&task.params, "objects").as_deref() == Some("round-trip") {
            let key = format!("blocks/{}-{}.jsonl", task.from_block, task.to_block);
            message = format!("{message}; {}", round_trip(&key, rows.join("\n").as_bytes())?);
        }
        Ok(Summary {
            message,
            counters: vec![
                ("query_bytes".into(), bytes.len() as u64),
                ("rows".into(), rows.len() as u64),
            ],
        })
    }
}

/// Stores `body` under `key` (left in place) and a scratch object beside
/// it, reads `key` back, lists, deletes the scratch one and lists again.
fn round_trip(key: &str, body: &[u8]) -> Result<String, UdfError> {
    let err = |e: objects::ObjectError| UdfError::Host(format!("{e:?}"));
    objects::put(key, body).map_err(err)?;
    objects::put("tmp/scratch", b"scratch").map_err(err)?;
    let back = objects::get(key).map_err(err)?;
    if back.as_deref() != Some(body) {
        return Err(UdfError::Host(format!("`{key}` read back as {back:?}")));
    }
    let listed = objects::list("").map_err(err)?;
    objects::delete("tmp/scratch").map_err(err)?;
    let gone = objects::get("tmp/scratch").map_err(err)?;
    let after = objects::list("").map_err(err)?;
    Ok(format!(
        "stored {} bytes; listed {listed:?}; scratch after delete {gone:?}; listed {after:?}",
        body.len()
    ))
}

/// The string value of `"key": "value"` in the params JSON, found by hand to
/// keep the guest free of dependencies.
fn param(params: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\":\"");
    let start = params.find(&needle)? + needle.len();
    let end = params[start..].find('"')? + start;
    Some(params[start..end].to_string())
}

export!(Echo);
