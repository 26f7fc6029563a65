//! `ingest_blocks` over recorded blocks: counts, exact values, the lake
//! files and idempotence.

use arrow::datatypes::{DataType, TimeUnit};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use trace_platform_worker::{IngestError, IngestSummary, IngestTask, Tables, ingest_blocks};

use super::support::{Stack, hex_to_decimal, raw};

const BLOCKS: [u64; 2] = [15_537_393, 15_537_394];

fn task(blocks: &[u64], tables: Tables) -> IngestTask {
    IngestTask {
        chain_id: 1,
        from_block: blocks[0],
        to_block: *blocks.last().unwrap(),
        blocks: blocks.to_vec(),
        tables,
    }
}

fn raw_counts(blocks: &[u64]) -> IngestSummary {
    let mut counts = IngestSummary {
        blocks: blocks.len() as u64,
        ..Default::default()
    };
    for &n in blocks {
        counts.transactions += raw("blocks", n)["transactions"].as_array().unwrap().len() as u64;
        counts.logs += raw("logs", n).as_array().unwrap().len() as u64;
    }
    counts
}

async fn ingest(stack: &Stack, task: &IngestTask) -> Result<IngestSummary, IngestError> {
    let cancel = CancellationToken::new();
    ingest_blocks(
        &stack.rpc,
        &stack.data,
        stack.objects.as_ref(),
        task,
        &cancel,
    )
    .await
}

#[tokio::test]
async fn ingested_row_counts_equal_the_recorded_files() {
    let stack = Stack::start().await;
    let summary = ingest(&stack, &task(&BLOCKS, Tables::ALL)).await.unwrap();

    let want = raw_counts(&BLOCKS);
    assert_eq!(
        want.transactions,
        80 + raw("blocks", BLOCKS[0])["transactions"]
            .as_array()
            .unwrap()
            .len() as u64
    );
    assert_eq!(summary, want);
    assert_eq!(stack.count("blocks").await as u64, want.blocks);
    assert_eq!(stack.count("transactions").await as u64, want.transactions);
    assert_eq!(stack.count("logs").await as u64, want.logs);
}

#[tokio::test]
async fn quantities_hashes_and_timestamps_are_stored_exactly() {
    let stack = Stack::start().await;
    ingest(&stack, &task(&BLOCKS, Tables::ALL)).await.unwrap();
    let block = raw("blocks", BLOCKS[1]);

    let tx = block["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|t| u128::from_str_radix(&t["value"].as_str().unwrap()[2..], 16).unwrap())
        .unwrap();
    let (value, gas_price, to): (String, String, Option<String>) = sqlx::query_as(
        "select value::text, gas_price::text, to_address from chain.transactions where hash = $1",
    )
    .bind(tx["hash"].as_str().unwrap())
    .fetch_one(&stack.data)
    .await
    .unwrap();
    assert_ne!(value, "0");
    assert_eq!(value, hex_to_decimal(tx["value"].as_str().unwrap()));
    assert_eq!(gas_price, hex_to_decimal(tx["gasPrice"].as_str().unwrap()));
    assert_eq!(to.as_deref(), tx["to"].as_str());

    let (hash, epoch, base_fee, count): (String, i64, String, i32) = sqlx::query_as(
        "select hash, extract(epoch from timestamp)::int8, base_fee_per_gas::text,
                transaction_count
         from chain.blocks where chain_id = 1 and number = $1",
    )
    .bind(BLOCKS[1] as i64)
    .fetch_one(&stack.data)
    .await
    .unwrap();
    assert_eq!(hash, block["hash"].as_str().unwrap());
    assert_eq!(
        epoch.to_string(),
        hex_to_decimal(block["timestamp"].as_str().unwrap())
    );
    assert_eq!(
        base_fee,
        hex_to_decimal(block["baseFeePerGas"].as_str().unwrap())
    );
    assert_eq!(count, 80);

    let logs = raw("logs", BLOCKS[1]);
    let log = logs
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["topics"].as_array().unwrap().len() == 3);
    let log = log.unwrap();
    let index = i64::from_str_radix(&log["logIndex"].as_str().unwrap()[2..], 16).unwrap();
    let row: (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
    ) = sqlx::query_as(
        "select address, topic0, topic1, topic2, topic3, data from chain.logs
             where chain_id = 1 and block_number = $1 and log_index = $2",
    )
    .bind(BLOCKS[1] as i64)
    .bind(index as i32)
    .fetch_one(&stack.data)
    .await
    .unwrap();
    let topic = |i: usize| log["topics"][i].as_str().map(str::to_string);
    assert_eq!(row.0, log["address"].as_str().unwrap());
    assert_eq!(
        (row.1, row.2, row.3, row.4),
        (topic(0), topic(1), topic(2), None)
    );
    assert_eq!(row.5, log["data"].as_str().unwrap());
}

#[tokio::test]
async fn each_table_gets_one_parquet_file_with_the_same_rows() {
    let stack = Stack::start().await;
    let summary = ingest(&stack, &task(&BLOCKS, Tables::ALL)).await.unwrap();

    let key = |table| format!("lake/chain=1/{table}/000015537393-000015537394.parquet");
    let (blocks, schema) = stack.parquet_rows(&key("blocks")).expect("blocks file");
    assert_eq!(blocks as u64, summary.blocks);
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    assert_eq!(
        schema.field_with_name("timestamp").unwrap().data_type(),
        &utc
    );
    assert_eq!(
        schema.field_with_name("number").unwrap().data_type(),
        &DataType::Int64
    );

    let (txs, schema) = stack
        .parquet_rows(&key("transactions"))
        .expect("transactions file");
    assert_eq!(txs as u64, summary.transactions);
    assert_eq!(
        schema.field_with_name("value").unwrap().data_type(),
        &DataType::Utf8
    );
    assert_eq!(
        schema.field_with_name("type").unwrap().data_type(),
        &DataType::Int32
    );

    let (logs, schema) = stack.parquet_rows(&key("logs")).expect("logs file");
    assert_eq!(logs as u64, summary.logs);
    assert!(schema.field_with_name("topic3").unwrap().is_nullable());
}

#[tokio::test]
async fn ingesting_the_same_blocks_again_leaves_the_same_rows() {
    let stack = Stack::start().await;
    let first = ingest(&stack, &task(&BLOCKS, Tables::ALL)).await.unwrap();
    let second = ingest(&stack, &task(&BLOCKS, Tables::ALL)).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(stack.count("blocks").await as u64, first.blocks);
    assert_eq!(stack.count("transactions").await as u64, first.transactions);
    assert_eq!(stack.count("logs").await as u64, first.logs);
}

#[tokio::test]
async fn only_the_requested_tables_are_written() {
    let stack = Stack::start().await;
    let n = 4_000_000;
    let logs_only = Tables::from_params(&json!({"tables": ["logs"]})).unwrap();
    let summary = ingest(&stack, &task(&[n], logs_only)).await.unwrap();

    assert_eq!(
        summary.logs,
        raw("logs", n).as_array().unwrap().len() as u64
    );
    assert_eq!((summary.blocks, summary.transactions), (0, 0));
    assert_eq!(stack.count("logs").await as u64, summary.logs);
    assert_eq!(stack.count("blocks").await, 0);
    let key = "lake/chain=1/blocks/000004000000-000004000000.parquet";
    assert!(stack.parquet_rows(key).is_none());
}

#[tokio::test]
async fn an_unrecorded_block_fails_deterministically_and_writes_nothing() {
    let stack = Stack::start().await;
    // 15537395 has neither a block nor logs recorded.
    let err = ingest(&stack, &task(&[15_537_394, 15_537_395], Tables::ALL))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(matches!(err, IngestError::Rpc(_)), "{err}");
    assert_eq!(stack.count("blocks").await, 0);
    assert_eq!(stack.count("logs").await, 0);
}

#[tokio::test]
async fn a_lease_with_explicit_blocks_ingests_exactly_those() {
    let lease: trace_common::api::Lease = serde_json::from_value(json!({
        "task_id": uuid::Uuid::new_v4(), "job_id": uuid::Uuid::new_v4(), "tenant_id": "t",
        "kind": "ingest", "attempt": 1, "expires_at": "2030-01-01T00:00:00Z",
        "component": null, "params": {"tables": ["blocks", "transactions"]},
        "chain_id": 1, "from_block": 22_431_080, "to_block": 22_431_090,
        "blocks": [22_431_084, 22_431_080, 22_431_084],
    }))
    .unwrap();
    let task = IngestTask::from_lease(&lease).unwrap();
    assert_eq!(task.blocks, [22_431_080, 22_431_084]);

    let stack = Stack::start().await;
    let summary = ingest(&stack, &task).await.unwrap();
    let txs: u64 = task
        .blocks
        .iter()
        .map(|&n| raw("blocks", n)["transactions"].as_array().unwrap().len() as u64)
        .sum();
    assert_eq!(
        summary,
        IngestSummary {
            blocks: 2,
            transactions: txs,
            logs: 0
        }
    );
    let numbers: Vec<i64> = sqlx::query_scalar("select number from chain.blocks order by number")
        .fetch_all(&stack.data)
        .await
        .unwrap();
    assert_eq!(numbers, [22_431_080, 22_431_084]);
    let key = "lake/chain=1/transactions/000022431080-000022431090.parquet";
    assert_eq!(stack.parquet_rows(key).unwrap().0 as u64, txs);
}
