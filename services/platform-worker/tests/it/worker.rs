//! The whole loop: an ingest job on the real dispatcher, woken through its
//! queue endpoint, claimed and run by `serve`, completed with a summary.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use trace_common::api::{CreateJob, JobKind, JobState};
use trace_common::dispatcher_client::DispatcherClient;

use super::support::{chain_gateway, count, raw};

async fn listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

#[tokio::test]
async fn an_ingest_job_runs_to_success_through_the_worker_loop() {
    let (state_url, data_url) = trace_common::db::testing::fresh_databases().await;
    let state = trace_common::db::connect(&state_url, 2).await.unwrap();
    sqlx::query("insert into tenants (id, name) values ('acme', 'Acme')")
        .execute(&state)
        .await
        .unwrap();
    let shutdown = CancellationToken::new();

    let (dispatcher_listener, dispatcher_url) = listener().await;
    let mut dispatcher_config = trace_dispatcher::Config::new(state_url);
    dispatcher_config.relay_interval_ms = 100;
    tokio::spawn(trace_dispatcher::serve(
        dispatcher_config,
        dispatcher_listener,
        shutdown.clone(),
    ));

    let objects = tempfile::tempdir().unwrap();
    let config = trace_platform_worker::Config {
        rpc_url: chain_gateway().await,
        dispatcher_url: dispatcher_url.clone(),
        data_database_url: data_url.clone(),
        objects_dir: objects.path().to_path_buf(),
        objects_bucket: None,
        worker_id: "platform-worker-test".into(),
        concurrency: 2,
    };
    let (health_listener, health_url) = listener().await;
    let worker = tokio::spawn(trace_platform_worker::serve(
        config,
        health_listener,
        shutdown.clone(),
    ));

    let dispatcher = DispatcherClient::new(dispatcher_url);
    let job = dispatcher
        .create_job(&CreateJob {
            tenant_id: "acme".into(),
            kind: JobKind::Ingest,
            component: None,
            params: json!({"tables": ["blocks", "transactions", "logs"]}),
            chain_id: 1,
            from_block: 15_537_393,
            to_block: 15_537_394,
            chunk_size: 1,
            blocks: None,
            limits: Default::default(),
            deterministic: false,
        })
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(90);
    let job = loop {
        let job = dispatcher.job("acme", job.id).await.unwrap();
        if job.state != JobState::Running || Instant::now() > deadline {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    assert_eq!(job.progress.succeeded, 2);

    let blocks = [15_537_393, 15_537_394];
    let txs: i64 = blocks
        .iter()
        .map(|&n| raw("blocks", n)["transactions"].as_array().unwrap().len() as i64)
        .sum();
    let logs: i64 = blocks
        .iter()
        .map(|&n| raw("logs", n).as_array().unwrap().len() as i64)
        .sum();
    let data = trace_common::db::connect(&data_url, 2).await.unwrap();
    assert_eq!(count(&data, "blocks").await, 2);
    assert_eq!(count(&data, "transactions").await, txs);
    assert_eq!(count(&data, "logs").await, logs);

    let tasks = dispatcher.tasks("acme", job.id).await.unwrap();
    let summed: i64 = tasks
        .iter()
        .map(|t| t.summary.as_ref().unwrap()["logs"].as_i64().unwrap())
        .sum();
    assert_eq!(summed, logs);
    let file = objects
        .path()
        .join("lake/chain=1/logs/000015537394-000015537394.parquet");
    assert!(file.is_file());

    let health = reqwest::get(format!("{health_url}/healthz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(health, "ok");
    shutdown.cancel();
    worker.await.unwrap().unwrap();
}
