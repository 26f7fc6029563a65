//! Jobs through the real control plane and the worker, end to end.

use std::collections::BTreeMap;
use std::time::Duration;

use sha2::{Digest, Sha256};
use trace_common::api::{
    AttemptEnd, BufferBatch, BufferPayload, JobState, QUEUE_BUFFER, TaskState,
};
use trace_common::queue::Queue;
use trace_common::queue::pg::PgQueue;

use super::support::{TENANT, start};

/// Every batch on the buffer queue by batch id, and the dispatcher's
/// attempt ends, once `ends` of them have arrived (or after 10 s).
async fn buffered(
    queue: &PgQueue,
    ends: usize,
) -> (BTreeMap<String, BufferBatch>, Vec<AttemptEnd>) {
    let mut out = BTreeMap::new();
    let mut told = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = queue
            .receive(
                QUEUE_BUFFER,
                100,
                Duration::from_millis(200),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        if got.is_empty() && (told.len() >= ends || std::time::Instant::now() > deadline) {
            return (out, told);
        }
        for message in got {
            if AttemptEnd::is_attempt_end(&message.body) {
                told.push(serde_json::from_value(message.body).unwrap());
                continue;
            }
            let batch: BufferBatch = serde_json::from_value(message.body).unwrap();
            out.insert(batch.batch_id.clone(), batch);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udf_job_runs_every_task_and_buffers_its_records_and_alerts() {
    let platform = start(30).await;
    let echo = platform.publish("echo");

    let job = platform
        .job(echo, serde_json::json!({}), (100, 104, 2))
        .await;
    let job = platform.finished(&job).await;

    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.records_published, 5);
    assert_eq!(job.alerts_published, 3);
    let tasks = platform.dispatcher.tasks(TENANT, job.id).await.unwrap();
    assert_eq!(tasks.len(), 3);
    assert!(
        tasks
            .iter()
            .all(|t| t.state == TaskState::Succeeded && t.attempt == 1)
    );

    // The summary carries the component's counters: the query went through
    // the query service and came back as Arrow bytes.
    let summary = tasks[0].summary.clone().unwrap();
    assert_eq!(summary["message"], "echoed 2 blocks");
    assert_eq!(summary["counters"]["rows"], 2);
    assert!(
        summary["counters"]["query_bytes"].as_u64().unwrap() > 100,
        "{summary}"
    );
    assert_eq!(summary["query_calls"], 1);

    let (batches, ends) = buffered(&PgQueue::new(platform.state.clone()), 3).await;
    // Each task's one attempt is committed with the two batches it sent.
    let mut committed: Vec<AttemptEnd> = tasks
        .iter()
        .map(|t| AttemptEnd::Commit {
            tenant_id: TENANT.into(),
            job_id: job.id,
            task_id: t.id,
            attempt: 1,
            batches: 2,
        })
        .collect();
    let mut ends = ends;
    let key = |e: &AttemptEnd| format!("{e:?}");
    committed.sort_by_key(key);
    ends.sort_by_key(key);
    assert_eq!(ends, committed);
    let mut blocks = Vec::new();
    let mut alert_keys = Vec::new();
    for task in &tasks {
        for seq in 0..2 {
            let id = format!("{}:1:{seq}", task.id);
            let batch = batches
                .get(&id)
                .unwrap_or_else(|| panic!("batch {id} missing"));
            assert_eq!(
                (batch.tenant_id.as_str(), batch.job_id, batch.attempt),
                (TENANT, job.id, 1)
            );
            match &batch.payload {
                BufferPayload::Records {
                    dataset,
                    columns,
                    rows,
                } => {
                    assert_eq!(dataset, "echo");
                    assert_eq!(columns[0].kind, "int64");
                    for row in rows {
                        assert_eq!(row["task"], task.id.to_string());
                        blocks.push(row["block"].as_u64().unwrap());
                    }
                }
                BufferPayload::Alerts { alerts } => {
                    let key = format!("block-{}", task.from_block);
                    let id = hex::encode(Sha256::digest(format!("{}:{key}", job.id)));
                    assert_eq!(
                        (alerts[0].key.as_str(), alerts[0].id.as_str()),
                        (key.as_str(), id.as_str())
                    );
                    assert_eq!(alerts[0].payload["from"], task.from_block);
                    alert_keys.push(alerts[0].key.clone());
                }
            }
        }
    }
    assert_eq!(batches.len(), 6);
    blocks.sort();
    assert_eq!(blocks, vec![100, 101, 102, 103, 104]);
    assert_eq!(alert_keys.len(), 3);

    // The guest's log line and its standard output reached the task's logs.
    let logs: Vec<(String, String)> =
        sqlx::query_as("select level, message from task_logs where task_id = $1 order by id")
            .bind(tasks[0].id)
            .fetch_all(&platform.state)
            .await
            .unwrap();
    let expected = [("info", "echo ran"), ("info", "echo stdout line")];
    let expected: Vec<_> = expected
        .iter()
        .map(|(l, m)| (l.to_string(), m.to_string()))
        .collect();
    assert_eq!(logs, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_failures_fail_their_tasks_deterministically_and_the_worker_goes_on() {
    let platform = start(1).await;
    let echo = platform.publish("echo");
    let spin = platform.publish("spin");
    let sockets = platform.publish("sockets");

    let params = serde_json::json!({"fail": "no token"});
    let failing = platform.job(echo.clone(), params, (1, 1, 1)).await;
    let failing = platform.finished(&failing).await;
    let spinning = platform.job(spin, serde_json::json!({}), (1, 1, 1)).await;
    let spinning = platform.finished(&spinning).await;
    let refused = platform
        .job(sockets, serde_json::json!({}), (1, 1, 1))
        .await;
    let refused = platform.finished(&refused).await;
    let fine = platform.job(echo, serde_json::json!({}), (7, 7, 1)).await;
    let fine = platform.finished(&fine).await;

    for (job, reason) in [
        (&failing, "component failed: invalid parameters: no token"),
        (
            &spinning,
            "component exceeded its epoch deadline of 1s and was interrupted",
        ),
        (&refused, "which the trace:udf world does not provide"),
    ] {
        assert_eq!(job.state, JobState::Failed);
        let tasks = platform.dispatcher.tasks(TENANT, job.id).await.unwrap();
        assert_eq!(tasks[0].state, TaskState::Failed, "{:?}", tasks[0]);
        assert_eq!(
            tasks[0].attempt, 1,
            "a deterministic failure is not retried"
        );
        assert_eq!(tasks[0].error_class.as_deref(), Some("deterministic"));
        let error = tasks[0].error.clone().unwrap();
        assert!(error.contains(reason), "{error}");
    }
    assert_eq!(fine.state, JobState::Succeeded);
    assert_eq!(fine.records_published, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_missing_from_object_storage_fails_its_task() {
    let platform = start(30).await;
    let mut echo = platform.publish("echo");
    echo.digest = format!("sha256:{}", "0".repeat(64));

    let job = platform
        .finished(&platform.job(echo, serde_json::json!({}), (1, 1, 1)).await)
        .await;

    assert_eq!(job.state, JobState::Failed);
    let tasks = platform.dispatcher.tasks(TENANT, job.id).await.unwrap();
    let error = tasks[0].error.clone().unwrap();
    assert_eq!(
        error,
        format!(
            "component `sha256:{}` is not in object storage",
            "0".repeat(64)
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_asking_for_less_gets_less_and_fails_by_the_limit_it_broke() {
    let platform = start(30).await;
    let echo = platform.publish("echo");
    let one_record = trace_common::api::JobLimits {
        max_records: Some(1),
        ..Default::default()
    };

    // Echo publishes one record per block: two blocks break a limit of one.
    let job = platform
        .job_limited(echo.clone(), serde_json::json!({}), (5, 6, 2), one_record)
        .await;
    let job = platform.finished(&job).await;
    let fine = platform
        .job_limited(echo, serde_json::json!({}), (5, 5, 1), one_record)
        .await;
    let fine = platform.finished(&fine).await;

    assert_eq!(job.state, JobState::Failed);
    let tasks = platform.dispatcher.tasks(TENANT, job.id).await.unwrap();
    assert_eq!(tasks[0].error_class.as_deref(), Some("deterministic"));
    assert_eq!(
        tasks[0].error.as_deref(),
        Some("component broke a limit: a task may publish at most 1 records (max_records)")
    );
    assert_eq!(tasks[0].attempt, 1);
    assert_eq!(
        (fine.state, fine.records_published),
        (JobState::Succeeded, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_may_lower_the_query_limits_and_fails_naming_the_one_broken() {
    let platform = start(30).await;
    let echo = platform.publish("echo");
    // Echo's one query answers one row of a bigint and a one-letter text:
    // more than one byte, and exactly one row.
    let tiny = trace_common::api::JobLimits {
        max_query_bytes: Some(1),
        ..Default::default()
    };
    let one_row = trace_common::api::JobLimits {
        max_query_rows: Some(1),
        ..Default::default()
    };

    let job = platform
        .job_limited(echo.clone(), serde_json::json!({}), (5, 5, 1), tiny)
        .await;
    let job = platform.finished(&job).await;
    let fine = platform
        .job_limited(echo, serde_json::json!({}), (5, 5, 1), one_row)
        .await;
    let fine = platform.finished(&fine).await;

    assert_eq!(job.state, JobState::Failed);
    let tasks = platform.dispatcher.tasks(TENANT, job.id).await.unwrap();
    assert_eq!(tasks[0].error_class.as_deref(), Some("deterministic"));
    let error = tasks[0].error.clone().unwrap();
    assert!(
        error.starts_with("component broke a limit: ")
            && error.contains("byte limit of `1` bytes (max_query_bytes)"),
        "{error}"
    );
    assert_eq!(fine.state, JobState::Succeeded);
}
