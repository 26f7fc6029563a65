//! The main job, end to end: ingest the recorded blocks, publish the
//! erc20-transfers example, run it over every block whose logs are recorded,
//! and check the datasets, the lake and the webhooks against values computed
//! straight from the recorded JSON.

use std::time::Duration;

use num_bigint::BigUint;
use serde_json::json;
use trace_common::api::{JobState, RecordedBlocks};
use trace_dev::{DevConfig, Ports};
use trace_tests::expected;

use super::client::{Gateway, count, ingest, wait_for_deliveries};

/// Raw amounts above this raise an alert: 10^27.
const THRESHOLD: &str = "1000000000000000000000000000";
const WETH: &str = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";
const USDT: &str = "0xdac17f958d2ee523a2206206994597c13d831ec7";
const USDC: &str = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";
const LIMIT: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_erc20_job_publishes_exactly_the_recorded_transfers_and_alerts() {
    let data_dir = trace_tests::data_dir();
    let home = tempfile::tempdir().unwrap();
    let mut config = DevConfig::new(home.path(), &data_dir);
    config.ports = Ports::Ephemeral;
    let dev = trace_dev::start(config).await.expect("trace dev starts");
    let gw = Gateway::new(&dev.urls.gateway, &dev.api_key);
    let clock = std::time::Instant::now();
    let lap = |what: &str| eprintln!("[{:>6.1} s] {what}", clock.elapsed().as_secs_f64());
    lap("platform started");

    // Ingest: the blocks with full bodies, and every block with complete logs.
    let recorded: RecordedBlocks =
        serde_json::from_value(gw.get("/v1/chains/1/recorded").await).unwrap();
    assert_eq!(recorded.logs, expected::recorded_log_blocks(&data_dir));
    let bodies = ingest(&gw, &recorded.blocks, &["blocks", "transactions"]).await;
    let logs = ingest(&gw, &recorded.logs, &["logs"]).await;
    for job in [&bodies, &logs] {
        let status = gw.wait(job, LIMIT).await;
        assert_eq!(
            status.job.state,
            JobState::Succeeded,
            "ingest job: {status:?}"
        );
    }
    lap("ingest done");
    let (blocks, txs) = expected::recorded_blocks_and_transactions(&data_dir);
    assert_eq!(
        count(&gw, "select count(*) from blocks").await,
        blocks as u64
    );
    assert_eq!(
        count(&gw, "select count(*) from transactions").await,
        txs as u64
    );
    assert_eq!(
        count(&gw, "select count(*) from logs").await,
        expected::recorded_logs(&data_dir) as u64
    );

    // The Postgres and the Parquet copies of the logs hold the same rows.
    let sql = "select block_number, log_index, address, topic1, data from logs \
               where topic0 = $1 order by block_number, log_index";
    let topic = vec![json!(expected::TRANSFER_TOPIC)];
    let pg = gw.query(sql, topic.clone(), false).await.unwrap();
    let lake = gw.query(sql, topic, true).await.unwrap();
    assert!(
        pg.len() > 10_000,
        "transfer-topic logs in Postgres: {}",
        pg.len()
    );
    assert_eq!(pg, lake);

    lap("lake compared");
    // Build and publish the example; the same version with other bytes is refused.
    let example = trace_tests::repo_root().join("examples/udfs/erc20-transfers");
    let built = trace_cli::udf::build_project(&example).expect("the example builds");
    let bytes = std::fs::read(&built.path).unwrap();
    let published = gw
        .put_bytes("/v1/components/erc20-transfers/0.1.0", bytes.clone())
        .await
        .expect("publish");
    assert_eq!(published["digest"], json!(built.sha256));
    let mut other = bytes.clone();
    other.extend_from_slice(&[0, 2, 1, b'x']); // a custom section: still a component
    let refused = gw
        .put_bytes("/v1/components/erc20-transfers/0.1.0", other)
        .await
        .unwrap_err();
    assert_eq!(
        (refused.status, refused.code.as_str()),
        (409, "version_exists")
    );

    lap("published");
    // Run it over every block whose logs are recorded.
    let (from, to) = (recorded.logs[0], *recorded.logs.last().unwrap());
    let job = gw
        .post(
            "/v1/jobs",
            &json!({
                "kind": "udf",
                "component": "erc20-transfers@0.1.0",
                "params": {"threshold": THRESHOLD},
                "from_block": from,
                "to_block": to,
                "chunk_size": 2_000_000,
            }),
        )
        .await
        .expect("job accepted");
    let job_id = job["id"].as_str().unwrap().to_string();
    let status = gw.wait(&job_id, LIMIT).await;
    assert_eq!(status.job.state, JobState::Succeeded, "udf job: {status:?}");
    let tasks = (to - from) / 2_000_000 + 1;
    assert_eq!(status.job.progress.total, tasks);
    assert_eq!(status.job.progress.succeeded, tasks);

    lap("udf job done");
    // The dataset holds exactly the recorded transfers.
    let transfers = expected::transfers(&data_dir, from, to);
    let sums = expected::sums_by_token(&transfers);
    assert_eq!(status.job.records_published, transfers.len() as u64);
    assert_eq!(
        count(&gw, "select count(*) from erc20_transfers").await,
        transfers.len() as u64
    );
    for token in [WETH, USDT, USDC] {
        let rows = gw
            .query(
                "select count(*), sum(amount)::text from erc20_transfers where token = $1",
                vec![json!(token)],
                false,
            )
            .await
            .unwrap();
        let (n, sum) = &sums[token];
        assert_eq!(
            rows,
            vec![vec![n.to_string(), sum.to_string()]],
            "token {token}"
        );
    }

    // Every alert above the threshold reached the receiver, verified, once.
    let threshold: BigUint = THRESHOLD.parse().unwrap();
    let alerts = expected::above(&transfers, &threshold) as u64;
    assert!(alerts > 0);
    assert_eq!(status.job.alerts_published, alerts);
    let stats = wait_for_deliveries(&dev.urls.webhook_receiver, alerts).await;
    assert_eq!(stats["unique_ids"], json!(alerts));
    assert_eq!(stats["rejected"], json!(0));

    lap("alerts verified");
    bad_input(&gw).await;
    dev.shutdown().await;
}

/// Bad input gets a clear error and stores nothing.
async fn bad_input(gw: &Gateway) {
    let garbage = gw
        .put_bytes("/v1/components/junk/0.1.0", b"not wasm".to_vec())
        .await;
    let refused = garbage.unwrap_err();
    assert_eq!(
        (refused.status, refused.code.as_str()),
        (400, "invalid_component")
    );
    let listed = gw.get("/v1/components").await;
    assert!(
        !listed.to_string().contains("junk"),
        "nothing stored: {listed}"
    );

    let unknown = json!({"kind": "udf", "component": "nope@1.0.0", "from_block": 1,
                         "to_block": 2, "chunk_size": 1});
    let refused = gw.post("/v1/jobs", &unknown).await.unwrap_err();
    assert_eq!(
        (refused.status, refused.code.as_str()),
        (404, "unknown_component")
    );
    assert!(
        refused.message.contains("nope@1.0.0"),
        "{}",
        refused.message
    );

    let reversed = json!({"kind": "udf", "component": "erc20-transfers@0.1.0",
                          "from_block": 10, "to_block": 9, "chunk_size": 1});
    let refused = gw.post("/v1/jobs", &reversed).await.unwrap_err();
    assert_eq!(refused.status, 400, "{refused:?}");

    let refused = gw
        .query("selec count(*) from logs", vec![], false)
        .await
        .unwrap_err();
    assert_eq!(
        (refused.status, refused.code.as_str()),
        (400, "invalid_query")
    );
    let refused = gw
        .query("delete from logs", vec![], false)
        .await
        .unwrap_err();
    assert_eq!((refused.status, refused.code.as_str()), (403, "denied"));

    // SQL run from text by a function cannot switch to the service's role.
    let escalate = "select current_user::text from ts_stat(\
                    'select to_tsvector(set_config(''role'', ''postgres'', true))')";
    let refused = gw.query(escalate, vec![], false).await.unwrap_err();
    assert_eq!(refused.status, 403, "{refused:?}");
    // A long operator chain is refused, and the platform stays up.
    let chain = format!("select 1{}", "+1".repeat(2_000));
    let refused = gw.query(&chain, vec![], false).await.unwrap_err();
    assert_eq!(
        (refused.status, refused.code.as_str()),
        (422, "limit_exceeded")
    );
    let lake_chain = format!("select 1{} as n", "+1".repeat(250));
    let rows = gw.query(&lake_chain, vec![], true).await.unwrap();
    assert_eq!(rows, vec![vec!["251".to_string()]]);
    let (blocks, _) = expected::recorded_blocks_and_transactions(&trace_tests::data_dir());
    assert_eq!(
        count(gw, "select count(*) from blocks").await,
        blocks as u64
    );
}
