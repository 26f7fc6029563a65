//! Shared helpers: the recorded data directory and batch builders.

use std::path::PathBuf;

use serde_json::{Map, Value, json};
use trace_common::api::{AttemptEnd, BufferBatch, BufferPayload, Column};
use uuid::Uuid;

/// The recorded mainnet data: `$TRACE_DATA_DIR` or `../shared/data/mainnet`
/// beside the repository.
pub fn data_dir() -> PathBuf {
    std::env::var_os("TRACE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mainnet")
        })
}

/// The complete logs of block `n`, as recorded.
pub fn logs_of(n: u64) -> Vec<Value> {
    let path = data_dir().join(format!("logs/{n}.json.gz"));
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_reader(flate2::read::GzDecoder::new(file)).expect("logs json")
}

/// A `0x` quantity as u64.
pub fn quantity(value: &Value) -> u64 {
    u64::from_str_radix(value.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// A column declaration.
pub fn column(name: &str, kind: &str, nullable: bool) -> Column {
    Column {
        name: name.into(),
        kind: kind.into(),
        nullable,
    }
}

/// A records batch of `rows` for `tenant`'s `dataset`, as attempt 1, seq `seq`.
pub fn records(
    tenant: &str,
    job: Uuid,
    task: Uuid,
    seq: u32,
    dataset: &str,
    columns: Vec<Column>,
    rows: Vec<Value>,
) -> BufferBatch {
    let rows: Vec<Map<String, Value>> = rows
        .into_iter()
        .map(|r| r.as_object().unwrap().clone())
        .collect();
    BufferBatch {
        batch_id: format!("{task}:1:{seq}"),
        tenant_id: tenant.into(),
        job_id: job,
        task_id: task,
        attempt: 1,
        seq,
        payload: BufferPayload::Records {
            dataset: dataset.into(),
            columns,
            rows,
        },
    }
}

/// The transfer-shaped dataset the tests publish to.
pub fn transfer_columns() -> Vec<Column> {
    vec![
        column("block_number", "int64", false),
        column("log_index", "int64", false),
        column("token", "text", false),
        column("value", "numeric", false),
        column("seen_at", "timestamp", true),
        column("is_max", "boolean", true),
        column("ratio", "float64", true),
    ]
}

/// Rows of the transfer dataset from the Transfer and Approval logs of a
/// recorded block, with `value` the decimal of the log's 256-bit data.
pub fn value_rows(block: u64, limit: usize) -> Vec<Value> {
    let transfer = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
    let approval = "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925";
    logs_of(block)
        .iter()
        .filter(|l| {
            let t0 = l["topics"][0].as_str().unwrap_or("");
            (t0 == transfer || t0 == approval) && l["data"].as_str().unwrap().len() == 66
        })
        .take(limit)
        .map(|l| {
            let data = l["data"].as_str().unwrap();
            let value = num_bigint::BigUint::parse_bytes(&data.as_bytes()[2..], 16).unwrap();
            json!({
                "block_number": quantity(&l["blockNumber"]),
                "log_index": quantity(&l["logIndex"]),
                "token": l["address"],
                "value": value.to_string(),
                "seen_at": "2020-05-04T13:42:22Z",
                "is_max": data == format!("0x{}", "f".repeat(64)),
                "ratio": null,
            })
        })
        .collect()
}

/// `batch` as attempt `attempt` of its task, with its id to match.
pub fn at_attempt(mut batch: BufferBatch, attempt: u32) -> BufferBatch {
    batch.attempt = attempt;
    batch.batch_id = format!("{}:{attempt}:{}", batch.task_id, batch.seq);
    batch
}

/// The dispatcher's commit of `attempt` of `task` with `batches` batches.
pub fn commit(job: Uuid, task: Uuid, attempt: u32, batches: u32) -> AttemptEnd {
    AttemptEnd::Commit {
        tenant_id: "acme".into(),
        job_id: job,
        task_id: task,
        attempt,
        batches,
    }
}

/// The dispatcher's discard of `attempt` of `task`.
pub fn discard(job: Uuid, task: Uuid, attempt: u32) -> AttemptEnd {
    AttemptEnd::Discard {
        tenant_id: "acme".into(),
        job_id: job,
        task_id: task,
        attempt,
    }
}
