//! Chain id, head, blocks and receipts against the raw files.

use serde_json::json;

use super::support::{Provider, hex, numbers, raw};

#[tokio::test]
async fn chain_id_is_mainnet_and_head_is_the_highest_recorded_block() {
    let p = Provider::start().await;
    assert_eq!(p.result("eth_chainId", json!([])).await, "0x1");

    let head = ["blocks", "receipts", "logs"]
        .iter()
        .flat_map(|k| numbers(k))
        .max()
        .unwrap();
    assert_eq!(p.result("eth_blockNumber", json!([])).await, hex(head));
}

#[tokio::test]
async fn full_blocks_are_answered_exactly_as_recorded() {
    let p = Provider::start().await;
    for n in [200_000, 15_537_394, 22_431_084] {
        let block = p
            .result("eth_getBlockByNumber", json!([hex(n), true]))
            .await;
        assert_eq!(block, raw("blocks", n), "block {n}");
    }
}

#[tokio::test]
async fn blocks_without_full_transactions_carry_only_the_hashes() {
    let p = Provider::start().await;
    let block = p
        .result("eth_getBlockByNumber", json!([hex(15_537_394), false]))
        .await;
    let recorded = raw("blocks", 15_537_394);
    let want: Vec<_> = recorded["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["hash"].clone())
        .collect();
    assert_eq!(want.len(), 80);
    assert_eq!(block["transactions"].as_array().unwrap(), &want);
    assert_eq!(block["hash"], recorded["hash"]);
}

#[tokio::test]
async fn latest_is_the_highest_recorded_full_block() {
    let p = Provider::start().await;
    let highest = *numbers("blocks").last().unwrap();
    let block = p
        .result("eth_getBlockByNumber", json!(["latest", false]))
        .await;
    assert_eq!(block["number"], hex(highest));
}

#[tokio::test]
async fn block_receipts_are_answered_as_recorded() {
    let p = Provider::start().await;
    let receipts = p
        .result("eth_getBlockReceipts", json!([hex(18_000_000)]))
        .await;
    assert_eq!(receipts, raw("receipts", 18_000_000));
    let recorded_block = raw("blocks", 18_000_000);
    let by_hash = p
        .result("eth_getBlockReceipts", json!([recorded_block["hash"]]))
        .await;
    assert_eq!(
        by_hash.as_array().unwrap().len(),
        receipts.as_array().unwrap().len()
    );
}

#[tokio::test]
async fn unrecorded_blocks_and_receipts_are_refused_with_not_recorded() {
    let p = Provider::start().await;
    let (code, message) = p
        .error("eth_getBlockByNumber", json!([hex(15_537_395), true]))
        .await;
    assert_eq!(code, -32001);
    assert!(
        message.contains("15537395") && message.contains("not recorded"),
        "{message}"
    );

    let (code, message) = p.error("eth_getBlockReceipts", json!([hex(200_000)])).await;
    assert_eq!(code, -32001);
    assert!(message.contains("200000"), "{message}");
}

#[tokio::test]
async fn bad_block_parameters_are_invalid_params() {
    let p = Provider::start().await;
    for params in [
        json!([]),
        json!(["0x10"]),
        json!(["0x01", true]),
        json!([17, true]),
    ] {
        let (code, _) = p.error("eth_getBlockByNumber", params.clone()).await;
        assert_eq!(code, -32602, "params {params}");
    }
}

#[tokio::test]
async fn recorded_blocks_lists_every_recorded_file() {
    let p = Provider::start().await;
    let recorded: trace_common::api::RecordedBlocks =
        serde_json::from_value(p.result("replay_recordedBlocks", json!([])).await).unwrap();
    assert_eq!(recorded.blocks, numbers("blocks"));
    assert_eq!(recorded.receipts, numbers("receipts"));
    assert_eq!(recorded.logs, numbers("logs"));
    assert_eq!(recorded.blocks.len(), 50);
}
