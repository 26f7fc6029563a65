//! `eth_getLogs` semantics, with expected results computed from the raw
//! per-block log files by plain iteration here.

use serde_json::{Value, json};

use super::support::{Provider, hex, raw};

const TRANSFER: &str = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
const APPROVAL: &str = "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925";
const USDT: &str = "0xdac17f958d2ee523a2206206994597c13d831ec7";
const WETH: &str = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";

fn raw_logs(from: u64, to: u64) -> Vec<Value> {
    (from..=to)
        .flat_map(|n| raw("logs", n).as_array().unwrap().clone())
        .collect()
}

fn topic(log: &Value, i: usize) -> Option<&str> {
    log["topics"]
        .as_array()
        .and_then(|t| t.get(i))
        .and_then(Value::as_str)
}

#[tokio::test]
async fn a_single_block_answers_every_recorded_log_in_order() {
    let p = Provider::start().await;
    let n = 15_537_394;
    let logs = p
        .result(
            "eth_getLogs",
            json!([{"fromBlock": hex(n), "toBlock": hex(n)}]),
        )
        .await;
    let want = raw("logs", n);
    assert_eq!(want.as_array().unwrap().len(), 10_041);
    assert_eq!(logs, want);
}

#[tokio::test]
async fn a_topic_filter_over_a_range_matches_an_independent_scan() {
    let p = Provider::start().await;
    let (from, to) = (3_999_990, 4_000_000);
    let filter = json!({"fromBlock": hex(from), "toBlock": hex(to), "topics": [TRANSFER]});
    let logs = p.result("eth_getLogs", json!([filter])).await;

    let want: Vec<Value> = raw_logs(from, to)
        .into_iter()
        .filter(|l| topic(l, 0) == Some(TRANSFER))
        .collect();
    assert!(want.len() > 10, "the range holds Transfer logs");
    assert_eq!(logs.as_array().unwrap(), &want);

    let keys: Vec<(String, String)> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["blockNumber"].to_string(), l["logIndex"].to_string()))
        .collect();
    assert_eq!(keys.len(), want.len());
}

#[tokio::test]
async fn or_arrays_and_null_wildcards_select_by_position() {
    let p = Provider::start().await;
    let n = 18_000_000;
    let all = raw_logs(n, n);

    let filter = json!({"fromBlock": hex(n), "toBlock": hex(n), "topics": [[TRANSFER, APPROVAL]]});
    let logs = p.result("eth_getLogs", json!([filter])).await;
    let want: Vec<&Value> = all
        .iter()
        .filter(|l| matches!(topic(l, 0), Some(TRANSFER | APPROVAL)))
        .collect();
    assert!(want.iter().any(|l| topic(l, 0) == Some(APPROVAL)));
    assert_eq!(logs.as_array().unwrap().iter().collect::<Vec<_>>(), want);

    let first = all.iter().find(|l| topic(l, 0) == Some(TRANSFER)).unwrap();
    let to = topic(first, 2).unwrap();
    let filter = json!({"fromBlock": hex(n), "toBlock": hex(n), "topics": [null, null, to]});
    let logs = p.result("eth_getLogs", json!([filter])).await;
    let want: Vec<&Value> = all.iter().filter(|l| topic(l, 2) == Some(to)).collect();
    assert_eq!(logs.as_array().unwrap().iter().collect::<Vec<_>>(), want);
}

#[tokio::test]
async fn address_arrays_match_case_insensitively() {
    let p = Provider::start().await;
    let n = 18_000_000;
    let addresses = json!([USDT.to_uppercase().replace("0X", "0x"), WETH]);
    let filter = json!({"fromBlock": hex(n), "toBlock": hex(n), "address": addresses});
    let logs = p.result("eth_getLogs", json!([filter])).await;

    let want: Vec<Value> = raw_logs(n, n)
        .into_iter()
        .filter(|l| matches!(l["address"].as_str(), Some(USDT | WETH)))
        .collect();
    assert!(want.iter().any(|l| l["address"] == USDT));
    assert!(want.iter().any(|l| l["address"] == WETH));
    assert_eq!(logs.as_array().unwrap(), &want);
}

#[tokio::test]
async fn a_block_hash_filter_answers_that_block() {
    let p = Provider::start().await;
    let n = 17_034_870;
    let hash = raw("blocks", n)["hash"].clone();
    let logs = p
        .result(
            "eth_getLogs",
            json!([{"blockHash": hash, "topics": [TRANSFER]}]),
        )
        .await;
    let want: Vec<Value> = raw_logs(n, n)
        .into_iter()
        .filter(|l| topic(l, 0) == Some(TRANSFER))
        .collect();
    assert_eq!(logs.as_array().unwrap(), &want);

    let unknown = format!("0x{}", "ab".repeat(32));
    let (code, message) = p
        .error("eth_getLogs", json!([{"blockHash": unknown}]))
        .await;
    assert_eq!(code, -32001);
    assert!(message.contains(&unknown), "{message}");
}

#[tokio::test]
async fn a_range_over_an_unrecorded_block_names_the_first_gap() {
    let p = Provider::start().await;
    let filter = json!({"fromBlock": hex(3_999_999), "toBlock": hex(4_000_005)});
    let (code, message) = p.error("eth_getLogs", json!([filter])).await;
    assert_eq!(code, -32001);
    assert!(message.contains("`4000001`"), "{message}");

    let filter = json!({"fromBlock": hex(3_999_985), "toBlock": hex(3_999_995)});
    let (_, message) = p.error("eth_getLogs", json!([filter])).await;
    assert!(message.contains("`3999985`"), "{message}");
}

#[tokio::test]
async fn reversed_oversized_and_malformed_filters_are_invalid_params() {
    let p = Provider::start().await;
    let bad = [
        json!([{"fromBlock": hex(4_000_000), "toBlock": hex(3_999_990)}]),
        json!([{"fromBlock": hex(1), "toBlock": hex(20_000)}]),
        json!([{"fromBlock": hex(4_000_000), "toBlock": hex(4_000_000), "address": 5}]),
        json!([{"fromBlock": hex(4_000_000), "topics": "0x12"}]),
        json!([{"blockHash": TRANSFER, "fromBlock": hex(4_000_000)}]),
        json!(["latest"]),
    ];
    for params in bad {
        let (code, _) = p.error("eth_getLogs", params.clone()).await;
        assert_eq!(code, -32602, "params {params}");
    }
}
