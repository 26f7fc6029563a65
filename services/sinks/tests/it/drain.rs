//! The drain loop over a real `PgQueue`, and the progress endpoint.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use trace_common::api::{QUEUE_BUFFER, SinkProgress};
use trace_common::queue::Queue;
use trace_common::queue::pg::PgQueue;
use uuid::Uuid;

use super::support::{commit, records, transfer_columns, value_rows};

#[tokio::test]
async fn queued_batches_are_applied_once_and_reported_by_progress() {
    let (state, data) = trace_common::db::testing::fresh_pools().await;
    let queue: Arc<dyn Queue> = Arc::new(PgQueue::new(state.clone()));
    let (job, task) = (Uuid::new_v4(), Uuid::new_v4());
    let rows = value_rows(10_000_000, 30);
    let mut bodies = Vec::new();
    for (seq, chunk) in rows.chunks(10).enumerate() {
        let batch = records(
            "acme",
            job,
            task,
            seq as u32,
            "transfers",
            transfer_columns(),
            chunk.to_vec(),
        );
        bodies.push(serde_json::to_value(&batch).unwrap());
    }
    // The last batch twice (a duplicate delivery), and the commit of the
    // attempt ahead of the batch it waits for.
    bodies.push(bodies[2].clone());
    bodies.insert(2, serde_json::to_value(commit(job, task, 1, 3)).unwrap());
    queue.send(QUEUE_BUFFER, &bodies).await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let config = trace_sinks::Config {
        wait_ms: 100,
        ..Default::default()
    };
    let server = tokio::spawn(trace_sinks::run(
        config,
        data.clone(),
        queue.clone(),
        listener,
        shutdown.clone(),
    ));

    let url = format!("{base}/v1/progress/{job}");
    let mut progress = SinkProgress::default();
    for _ in 0..100 {
        progress = reqwest::get(&url).await.unwrap().json().await.unwrap();
        let left: i64 = sqlx::query_scalar("select count(*) from queue_messages")
            .fetch_one(&state)
            .await
            .unwrap();
        if progress.records == 30 && left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        (progress.records, progress.alerts, progress.rejected_batches),
        (30, 0, 0)
    );
    let stored: i64 = sqlx::query_scalar("select count(*) from ds_acme.transfers")
        .fetch_one(&data)
        .await
        .unwrap();
    assert_eq!(stored, 30);
    let left: i64 = sqlx::query_scalar("select count(*) from queue_messages")
        .fetch_one(&state)
        .await
        .unwrap();
    assert_eq!(left, 0, "applied messages are deleted");

    shutdown.cancel();
    server.await.unwrap().unwrap();
}
