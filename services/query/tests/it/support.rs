//! Shared fixtures: recorded logs into Postgres and the lake, a running
//! service, and an Arrow-decoding client.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use trace_common::ErrorBody;

/// The recorded block the fixtures use.
pub const BLOCK: u64 = 10_000_000;

/// The ERC-20 `Transfer(address,address,uint256)` topic.
pub const TRANSFER: &str = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

/// How many of the block's logs the fixtures load.
pub const LOADED: usize = 60;

/// The recorded mainnet data directory.
pub fn data_dir() -> PathBuf {
    std::env::var_os("TRACE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mainnet")
        })
}

/// The first [`LOADED`] logs of [`BLOCK`], as recorded.
pub fn logs() -> Vec<Value> {
    let path = data_dir().join(format!("logs/{BLOCK}.json.gz"));
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let logs: Vec<Value> =
        serde_json::from_reader(flate2::read::GzDecoder::new(file)).expect("logs json");
    logs.into_iter().take(LOADED).collect()
}

/// A `0x` quantity as i64.
pub fn quantity(value: &Value) -> i64 {
    i64::from_str_radix(value.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn topic(log: &Value, i: usize) -> Option<String> {
    log["topics"]
        .get(i)
        .and_then(Value::as_str)
        .map(String::from)
}

/// A running query service over fresh databases and a temporary lake.
pub struct Service {
    pub base: String,
    pub data: sqlx::PgPool,
    pub _lake: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts the service with `tune` applied to its config, the fixture logs
/// loaded into `chain.logs` and written to the lake.
pub async fn start(tune: impl FnOnce(&mut trace_query::Config)) -> Service {
    let (_state_url, data_url) = trace_common::db::testing::fresh_databases().await;
    let data = trace_common::db::connect(&data_url, 3).await.unwrap();
    let lake = tempfile::tempdir().unwrap();
    let logs = logs();
    load_postgres(&data, &logs).await;
    write_lake(lake.path(), &logs);

    let mut config = trace_query::Config {
        data_database_url: data_url,
        objects_dir: lake.path().to_path_buf(),
        ..Default::default()
    };
    tune(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(trace_query::serve(config, listener, shutdown.clone()));
    Service {
        base,
        data,
        _lake: lake,
        shutdown,
    }
}

async fn load_postgres(pool: &sqlx::PgPool, logs: &[Value]) {
    for log in logs {
        sqlx::query(
            "insert into chain.logs (chain_id, block_number, block_hash, transaction_hash, \
             transaction_index, log_index, address, topic0, topic1, topic2, topic3, data) \
             values (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(quantity(&log["blockNumber"]))
        .bind(log["blockHash"].as_str())
        .bind(log["transactionHash"].as_str())
        .bind(quantity(&log["transactionIndex"]) as i32)
        .bind(quantity(&log["logIndex"]) as i32)
        .bind(log["address"].as_str())
        .bind(topic(log, 0))
        .bind(topic(log, 1))
        .bind(topic(log, 2))
        .bind(topic(log, 3))
        .bind(log["data"].as_str())
        .execute(pool)
        .await
        .unwrap();
    }
}

fn write_lake(objects: &std::path::Path, logs: &[Value]) {
    let dir = objects.join("lake/chain=1/logs");
    std::fs::create_dir_all(&dir).unwrap();
    let text = |f: &dyn Fn(&Value) -> Option<String>| -> ArrayRef {
        Arc::new(logs.iter().map(f).collect::<StringArray>())
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("chain_id", DataType::Int64, false),
        Field::new("block_number", DataType::Int64, false),
        Field::new("block_hash", DataType::Utf8, false),
        Field::new("transaction_hash", DataType::Utf8, false),
        Field::new("transaction_index", DataType::Int32, false),
        Field::new("log_index", DataType::Int32, false),
        Field::new("address", DataType::Utf8, false),
        Field::new("topic0", DataType::Utf8, true),
        Field::new("topic1", DataType::Utf8, true),
        Field::new("topic2", DataType::Utf8, true),
        Field::new("topic3", DataType::Utf8, true),
        Field::new("data", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1; logs.len()])),
        Arc::new(
            logs.iter()
                .map(|l| quantity(&l["blockNumber"]))
                .collect::<Int64Array>(),
        ),
        text(&|l| l["blockHash"].as_str().map(String::from)),
        text(&|l| l["transactionHash"].as_str().map(String::from)),
        Arc::new(
            logs.iter()
                .map(|l| quantity(&l["transactionIndex"]) as i32)
                .collect::<Int32Array>(),
        ),
        Arc::new(
            logs.iter()
                .map(|l| quantity(&l["logIndex"]) as i32)
                .collect::<Int32Array>(),
        ),
        text(&|l| l["address"].as_str().map(String::from)),
        text(&|l| topic(l, 0)),
        text(&|l| topic(l, 1)),
        text(&|l| topic(l, 2)),
        text(&|l| topic(l, 3)),
        text(&|l| l["data"].as_str().map(String::from)),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let file = std::fs::File::create(dir.join(format!("{BLOCK}-{BLOCK}.parquet"))).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// What a query answered: one batch of all rows, or the error's status and body.
pub type Answer = Result<RecordBatch, (u16, ErrorBody)>;

/// Posts a query as `tenant`.
pub async fn query(base: &str, tenant: &str, sql: &str, params: Value, lake: bool) -> Answer {
    query_limited(base, tenant, sql, params, lake, serde_json::json!({})).await
}

/// Like [`query`], asking for `limits` (the request's `limits` object).
pub async fn query_limited(
    base: &str,
    tenant: &str,
    sql: &str,
    params: Value,
    lake: bool,
    limits: Value,
) -> Answer {
    let body = serde_json::json!({
        "sql": sql,
        "params": params,
        "source": if lake { "lake" } else { "postgres" },
        "limits": limits,
    });
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/query"))
        .header("x-trace-tenant", tenant)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status != 200 {
        return Err((status, response.json().await.unwrap()));
    }
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(content_type, trace_common::api::ARROW_STREAM);
    let bytes = response.bytes().await.unwrap();
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    Ok(arrow::compute::concat_batches(&schema, &batches).unwrap())
}

/// The error code of a refused query.
pub fn code(answer: &Answer) -> (u16, String) {
    match answer {
        Ok(batch) => panic!("expected a refusal, got {} rows", batch.num_rows()),
        Err((status, body)) => (*status, body.error.code.clone()),
    }
}

/// The error message of a refused query.
pub fn message(answer: &Answer) -> String {
    match answer {
        Ok(_) => panic!("expected a refusal"),
        Err((_, body)) => body.error.message.clone(),
    }
}
