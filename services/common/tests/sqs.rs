//! The SQS queue backend against the local AWS emulator: the semantics the
//! dispatcher and the workers rely on, through the real SDK.

use std::time::Duration;

use serde_json::json;
use trace_common::aws::testing as moto;
use trace_common::queue::http::HttpQueue;
use trace_common::queue::sqs::{MAX_BODY_BYTES, SqsQueue};
use trace_common::queue::{Queue, QueueError};

/// A queue `name` under the prefix `trace-test-` on a fresh emulator.
async fn queue(name: &str) -> (moto::Moto, SqsQueue) {
    let moto = moto::start().await;
    let sdk = moto::sdk_config(&moto).await;
    aws_sdk_sqs::Client::new(&sdk)
        .create_queue()
        .queue_name(format!("trace-test-{name}"))
        .send()
        .await
        .unwrap();
    (moto, SqsQueue::new(&sdk, "trace-test-"))
}

const NO_WAIT: Duration = Duration::ZERO;
const HIDE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn messages_go_round_trip_and_a_deleted_one_stays_gone() {
    let (_moto, q) = queue("tasks-udf").await;
    let bodies = [
        json!({"task_id": "a"}),
        json!({"task_id": "b", "n": [1, 2]}),
    ];

    q.send("tasks-udf", &bodies).await.unwrap();
    let got = q.receive("tasks-udf", 10, NO_WAIT, HIDE).await.unwrap();

    let mut seen: Vec<_> = got.iter().map(|m| m.body.clone()).collect();
    seen.sort_by_key(|b| b["task_id"].as_str().unwrap().to_string());
    assert_eq!(seen, bodies);
    assert!(got.iter().all(|m| m.receive_count == 1));
    let receipts: Vec<String> = got.iter().map(|m| m.receipt.clone()).collect();
    q.delete("tasks-udf", &receipts).await.unwrap();
    // Gone, and hidden messages are not handed out either.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        q.receive("tasks-udf", 10, NO_WAIT, HIDE)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_undeleted_message_comes_back_after_its_visibility_timeout() {
    let (_moto, q) = queue("buffer-records").await;
    q.send("buffer-records", &[json!({"batch": 1})])
        .await
        .unwrap();

    let first = q
        .receive("buffer-records", 1, NO_WAIT, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let hidden = q.receive("buffer-records", 1, NO_WAIT, HIDE).await.unwrap();
    assert!(hidden.is_empty(), "invisible while its timeout runs");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = q
        .receive("buffer-records", 1, Duration::from_secs(2), HIDE)
        .await
        .unwrap();

    assert_eq!(again.len(), 1);
    assert_eq!(again[0].body, json!({"batch": 1}));
    assert_eq!(again[0].receive_count, 2);
    assert_ne!(again[0].receipt, first[0].receipt);
    q.delete("buffer-records", &[again[0].receipt.clone()])
        .await
        .unwrap();
}

#[tokio::test]
async fn sends_and_deletes_beyond_ten_are_split_into_batches() {
    let (_moto, q) = queue("tasks-ingest").await;
    let bodies: Vec<_> = (0..25).map(|n| json!({ "n": n })).collect();

    q.send("tasks-ingest", &bodies).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..20 {
        let batch = q.receive("tasks-ingest", 50, NO_WAIT, HIDE).await.unwrap();
        assert!(batch.len() <= 10, "SQS hands out at most ten at once");
        got.extend(batch);
        if got.len() == bodies.len() {
            break;
        }
    }

    let mut numbers: Vec<i64> = got.iter().map(|m| m.body["n"].as_i64().unwrap()).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..25).collect::<Vec<_>>());
    let receipts: Vec<String> = got.iter().map(|m| m.receipt.clone()).collect();
    q.delete("tasks-ingest", &receipts).await.unwrap();
}

#[tokio::test]
async fn an_oversized_body_or_an_unknown_queue_is_an_error_naming_it() {
    let (_moto, q) = queue("tasks-udf").await;
    let big = json!({ "text": "x".repeat(MAX_BODY_BYTES) });

    let err = q
        .send("tasks-udf", &[json!({"ok": 1}), big.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, QueueError::TooLarge(m) if m.contains("over SQS's limit of 262144 bytes")),
        "{err}"
    );
    assert!(
        q.receive("tasks-udf", 10, NO_WAIT, HIDE)
            .await
            .unwrap()
            .is_empty(),
        "nothing of a refused send is enqueued"
    );

    let err = q.send("nowhere", &[json!({})]).await.unwrap_err();
    assert!(err.to_string().contains("trace-test-nowhere"), "{err}");

    // Through the queue endpoint every service uses, it stays too large
    // (413), not an outage.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = trace_common::queue::http::router(std::sync::Arc::new(q));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let err = HttpQueue::new(base)
        .send("tasks-udf", &[big])
        .await
        .unwrap_err();
    assert!(matches!(&err, QueueError::TooLarge(_)), "{err}");
}
