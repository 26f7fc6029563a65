//! Forwarding, the method allow-list, unknown chains and timeouts.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use trace_rpc_gateway::{Config, ProviderSpec};

fn data_dir() -> PathBuf {
    std::env::var_os("TRACE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mainnet")
        })
}

fn raw_block(number: u64) -> Value {
    let path = data_dir().join("blocks").join(format!("{number}.json.gz"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn spawn(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn replay_provider() -> String {
    let store = trace_replay_provider::Store::load(&data_dir()).unwrap();
    spawn(trace_replay_provider::router(Arc::new(store))).await + "/"
}

async fn gateway(providers: Vec<ProviderSpec>, timeout_ms: u64) -> String {
    let config = Config {
        providers,
        timeout_ms,
    };
    spawn(trace_rpc_gateway::router(&config).unwrap()).await
}

async fn gateway_to_replay() -> String {
    let url = replay_provider().await;
    gateway(vec![ProviderSpec { chain_id: 1, url }], 10_000).await
}

async fn post(url: &str, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn call(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

#[tokio::test]
async fn a_single_request_is_forwarded_and_answered_by_the_provider() {
    let gw = gateway_to_replay().await;
    let req = call(1, "eth_getBlockByNumber", json!(["0xed14f2", true]));
    let (status, answer) = post(&format!("{gw}/rpc/1"), &req).await;
    assert_eq!(status, 200);
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"], raw_block(15_537_394));
}

#[tokio::test]
async fn a_batch_keeps_its_order_and_refuses_disallowed_methods_in_place() {
    let gw = gateway_to_replay().await;
    let batch = json!([
        call(10, "eth_chainId", json!([])),
        call(11, "eth_sendRawTransaction", json!(["0x00"])),
        call(12, "eth_getBlockByNumber", json!(["0x30d40", false])),
        call(13, "replay_recordedBlocks", json!([])),
        call(14, "debug_traceTransaction", json!([])),
    ]);
    let (status, answer) = post(&format!("{gw}/rpc/1"), &batch).await;
    assert_eq!(status, 200);
    let answers = answer.as_array().unwrap();
    let ids: Vec<u64> = answers.iter().map(|a| a["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [10, 11, 12, 13, 14]);
    assert_eq!(answers[0]["result"], "0x1");
    assert_eq!(answers[1]["error"]["code"], -32601);
    assert_eq!(answers[2]["result"]["hash"], raw_block(200_000)["hash"]);
    assert_eq!(answers[3]["result"]["blocks"].as_array().unwrap().len(), 50);
    assert_eq!(answers[4]["error"]["code"], -32601);
}

#[tokio::test]
async fn disallowed_methods_are_refused_without_reaching_the_provider() {
    // Nothing listens on the provider's port: an allowed method fails to
    // reach it, a disallowed one is answered by the gateway alone.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let gw = gateway(vec![ProviderSpec { chain_id: 1, url }], 2_000).await;

    let (status, answer) = post(&format!("{gw}/rpc/1"), &call(1, "eth_call", json!([]))).await;
    assert_eq!(status, 200);
    assert_eq!(answer["error"]["code"], -32601);
    assert_eq!(answer["id"], 1);

    let (status, answer) = post(&format!("{gw}/rpc/1"), &call(2, "eth_chainId", json!([]))).await;
    assert_eq!(status, 502);
    assert_eq!(answer["error"]["code"], "provider_unavailable");
}

#[tokio::test]
async fn an_unknown_chain_is_not_found() {
    let gw = gateway_to_replay().await;
    for chain in ["5", "mainnet"] {
        let (status, answer) = post(
            &format!("{gw}/rpc/{chain}"),
            &call(1, "eth_chainId", json!([])),
        )
        .await;
        assert_eq!(status, 404);
        assert_eq!(answer["error"]["code"], "unknown_chain");
    }
}

#[tokio::test]
async fn a_provider_that_does_not_answer_in_time_is_a_gateway_timeout() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let gw = gateway(vec![ProviderSpec { chain_id: 1, url }], 300).await;

    let (status, answer) = post(&format!("{gw}/rpc/1"), &call(1, "eth_chainId", json!([]))).await;
    assert_eq!(status, 504);
    assert_eq!(answer["error"]["code"], "provider_timeout");
    held.abort();
}

#[tokio::test]
async fn provider_errors_and_parse_errors_come_back_as_json_rpc() {
    let gw = gateway_to_replay().await;
    let req = call(3, "eth_getBlockByNumber", json!(["0x1", true]));
    let (_, answer) = post(&format!("{gw}/rpc/1"), &req).await;
    assert_eq!(answer["error"]["code"], -32001);

    let resp = reqwest::Client::new()
        .post(format!("{gw}/rpc/1"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["error"]["code"], -32700);
}

#[tokio::test]
async fn the_health_check_answers_ok() {
    let gw = gateway_to_replay().await;
    let text = reqwest::get(format!("{gw}/healthz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "ok");
}
