//! The JSON-RPC envelope: batches, ids and protocol errors.

use serde_json::{Value, json};

use super::support::{Provider, hex, raw};

#[tokio::test]
async fn a_batch_answers_every_request_with_its_own_id() {
    let p = Provider::start().await;
    let body = json!([
        {"jsonrpc": "2.0", "id": "a", "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_getBlockByNumber",
         "params": [hex(15_537_393), false]},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_sendRawTransaction", "params": ["0x00"]},
        {"jsonrpc": "2.0", "id": 4, "method": "eth_getLogs",
         "params": [{"fromBlock": hex(4_000_000), "toBlock": hex(4_000_000)}]},
    ]);
    let (status, answer) = p.post_raw(&body.to_string()).await;
    assert_eq!(status, 200);
    let answers = answer.as_array().unwrap();
    assert_eq!(answers.len(), 4);
    assert!(answers.iter().all(|a| a["jsonrpc"] == "2.0"));

    assert_eq!(answers[0]["id"], "a");
    assert_eq!(answers[0]["result"], "0x1");
    assert_eq!(answers[1]["id"], 2);
    assert_eq!(
        answers[1]["result"]["hash"],
        raw("blocks", 15_537_393)["hash"]
    );
    assert_eq!(answers[2]["id"], 3);
    assert_eq!(answers[2]["error"]["code"], -32601);
    assert_eq!(answers[3]["id"], 4);
    assert_eq!(answers[3]["result"].as_array().unwrap().len(), 61);
}

#[tokio::test]
async fn bodies_that_are_not_json_are_parse_errors() {
    let p = Provider::start().await;
    let (status, answer) = p.post_raw("{\"jsonrpc\": ").await;
    assert_eq!(status, 200);
    assert_eq!(answer["error"]["code"], -32700);
    assert_eq!(answer["id"], Value::Null);
}

#[tokio::test]
async fn malformed_requests_are_invalid_requests() {
    let p = Provider::start().await;
    let cases = [
        json!([]),
        json!(5),
        json!({"id": 1, "method": "eth_chainId"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": 12}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": 3}),
    ];
    for body in cases {
        let (_, answer) = p.post_raw(&body.to_string()).await;
        assert_eq!(answer["error"]["code"], -32600, "body {body}");
    }
    let (_, answer) = p
        .post_raw(&json!([1, {"jsonrpc": "2.0", "id": 9}]).to_string())
        .await;
    let answers = answer.as_array().unwrap();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[1]["id"], 9);
    assert!(answers.iter().all(|a| a["error"]["code"] == -32600));
}

#[tokio::test]
async fn unknown_methods_are_method_not_found() {
    let p = Provider::start().await;
    let (code, message) = p.error("eth_call", json!([])).await;
    assert_eq!(code, -32601);
    assert!(message.contains("`eth_call`"), "{message}");
}

#[tokio::test]
async fn the_health_check_answers_ok() {
    let p = Provider::start().await;
    let text = reqwest::get(format!("{}healthz", p.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "ok");
}
