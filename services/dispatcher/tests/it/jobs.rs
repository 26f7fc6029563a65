//! Job creation, validation and reading jobs back.

use serde_json::json;
use trace_common::api::{JobState, TaskMessage};
use trace_common::queue::Queue;
use trace_common::queue::pg::PgQueue;

use super::support::{ingest, settings, start, task_ids, udf, unsent};

/// One `tasks` row as the tests read it: seq, from, to, explicit blocks, state, attempt.
type TaskRow = (i32, i64, i64, Option<Vec<i64>>, String, i32);

#[tokio::test]
async fn job_creation_writes_one_task_and_one_outbox_row_per_chunk() {
    let d = start(settings(30_000, 3)).await;
    let job = d.client.create_job(&ingest(100, 124, 10)).await.unwrap();
    assert_eq!(job.state, JobState::Running);
    assert_eq!((job.progress.total, job.progress.queued), (3, 3));

    let tasks: Vec<TaskRow> = sqlx::query_as(
        "select seq, from_block, to_block, blocks, state, attempt from tasks \
         where job_id = $1 order by seq",
    )
    .bind(job.id)
    .fetch_all(&d.pool)
    .await
    .unwrap();
    let queued = |seq, from, to| (seq, from, to, None, "queued".to_string(), 0);
    assert_eq!(
        tasks,
        vec![
            queued(0, 100, 109),
            queued(1, 110, 119),
            queued(2, 120, 124)
        ]
    );

    let outbox: Vec<(String, serde_json::Value)> =
        sqlx::query_as("select queue, body from outbox where sent_at is null order by id")
            .fetch_all(&d.pool)
            .await
            .unwrap();
    let ids = task_ids(&d.pool, job.id).await;
    let expected: Vec<_> = ids
        .iter()
        .map(|id| {
            (
                "tasks-ingest".to_string(),
                json!({ "task_id": id, "job_id": job.id }),
            )
        })
        .collect();
    assert_eq!(outbox, expected);
}

#[tokio::test]
async fn a_listed_blocks_job_stores_each_tasks_exact_blocks() {
    let d = start(settings(30_000, 3)).await;
    let mut req = udf(5, 20, 2);
    req.blocks = Some(vec![5, 7, 9, 11, 20]);
    let job = d.client.create_job(&req).await.unwrap();

    let tasks: Vec<(i64, i64, Option<Vec<i64>>)> = sqlx::query_as(
        "select from_block, to_block, blocks from tasks where job_id = $1 order by seq",
    )
    .bind(job.id)
    .fetch_all(&d.pool)
    .await
    .unwrap();
    assert_eq!(
        tasks,
        vec![
            (5, 7, Some(vec![5, 7])),
            (9, 11, Some(vec![9, 11])),
            (20, 20, Some(vec![20]))
        ]
    );
    let queues: Vec<String> = sqlx::query_scalar("select distinct queue from outbox")
        .fetch_all(&d.pool)
        .await
        .unwrap();
    assert_eq!(queues, vec!["tasks-udf".to_string()]);
    assert_eq!(job.component.unwrap().name, "transfers");
}

#[tokio::test]
async fn every_invalid_job_is_refused_with_a_clear_code_and_nothing_written() {
    let d = start(settings(30_000, 3)).await;
    let base = serde_json::to_value(ingest(10, 20, 5)).unwrap();
    let udf_base = serde_json::to_value(udf(10, 20, 5)).unwrap();
    let with = |base: &serde_json::Value, key: &str, value: serde_json::Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let cases = vec![
        (with(&base, "to_block", json!(9)), "invalid_range"),
        (with(&base, "chunk_size", json!(0)), "invalid_chunk_size"),
        (
            with(&base, "component", udf_base["component"].clone()),
            "unexpected_component",
        ),
        (
            with(&udf_base, "component", json!(null)),
            "missing_component",
        ),
        (with(&base, "blocks", json!([])), "invalid_blocks"),
        (with(&base, "blocks", json!([9, 10])), "invalid_blocks"),
        (with(&base, "blocks", json!([10, 21])), "invalid_blocks"),
        (with(&base, "blocks", json!([12, 11])), "invalid_blocks"),
        (
            with(
                &with(&base, "to_block", json!(200_000)),
                "chunk_size",
                json!(1),
            ),
            "too_many_tasks",
        ),
        (with(&base, "tenant_id", json!("nobody")), "unknown_tenant"),
        (with(&base, "params", json!([1])), "invalid_params"),
        (json!({ "tenant_id": "acme" }), "invalid_body"),
        (
            with(&udf_base, "limits", json!({ "memory_mib": 65 })),
            "limit_too_high",
        ),
        (
            with(&udf_base, "limits", json!({ "max_records": 0 })),
            "invalid_limit",
        ),
        (
            with(&udf_base, "limits", json!({ "fuel": 1 })),
            "invalid_body",
        ),
    ];

    let http = reqwest::Client::new();
    for (body, code) in cases {
        let resp = http
            .post(format!("{}/v1/jobs", d.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{body}");
        let answer: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(answer["error"]["code"], code, "{body}");
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }
    let jobs: i64 = sqlx::query_scalar("select count(*) from jobs")
        .fetch_one(&d.pool)
        .await
        .unwrap();
    let tasks: i64 = sqlx::query_scalar("select count(*) from tasks")
        .fetch_one(&d.pool)
        .await
        .unwrap();
    assert_eq!((jobs, tasks, unsent(&d.pool).await), (0, 0, 0));
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_jobs() {
    let d = start(settings(30_000, 3)).await;
    let mine = d.client.create_job(&ingest(1, 10, 5)).await.unwrap();
    let mut theirs = ingest(1, 10, 5);
    theirs.tenant_id = "other".into();
    let theirs = d.client.create_job(&theirs).await.unwrap();

    assert_eq!(d.client.job("acme", mine.id).await.unwrap().id, mine.id);
    let err = d.client.job("acme", theirs.id).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(404), Some("job_not_found"))
    );
    let err = d.client.tasks("acme", theirs.id).await.unwrap_err();
    assert_eq!(err.status(), Some(404));

    let listed: Vec<_> = d
        .client
        .jobs("acme")
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(listed, vec![mine.id]);
    let tasks = d.client.tasks("acme", mine.id).await.unwrap();
    let spans: Vec<_> = tasks
        .iter()
        .map(|t| (t.seq, t.from_block, t.to_block))
        .collect();
    assert_eq!(spans, vec![(0, 1, 5), (1, 6, 10)]);
}

#[tokio::test]
async fn the_relay_sends_outbox_rows_to_their_queue_and_marks_them_sent() {
    let d = start(settings(30_000, 3)).await;
    let job = d.client.create_job(&ingest(1, 30, 10)).await.unwrap();
    assert_eq!(
        trace_dispatcher::relay::relay_once(&d.state).await.unwrap(),
        3
    );
    assert_eq!(unsent(&d.pool).await, 0);
    assert_eq!(
        trace_dispatcher::relay::relay_once(&d.state).await.unwrap(),
        0
    );

    let queue = PgQueue::new(d.pool.clone());
    let wait = std::time::Duration::ZERO;
    let visibility = std::time::Duration::from_secs(30);
    let got = queue
        .receive("tasks-ingest", 10, wait, visibility)
        .await
        .unwrap();
    let woken: Vec<_> = got
        .into_iter()
        .map(|m| serde_json::from_value::<TaskMessage>(m.body).unwrap())
        .inspect(|m| assert_eq!(m.job_id, job.id))
        .map(|m| m.task_id)
        .collect();
    assert_eq!(woken, task_ids(&d.pool, job.id).await);
}

#[tokio::test]
async fn the_limits_a_job_asks_for_reach_its_leases() {
    let d = start(settings(30_000, 3)).await;
    let mut req = udf(1, 1, 1);
    req.limits.memory_mib = Some(16);
    req.limits.max_records = Some(7);
    let job = d.client.create_job(&req).await.unwrap();
    let task = super::support::task_ids(&d.pool, job.id).await[0];

    let lease = d.client.claim(task, "w").await.unwrap().unwrap();

    // What the job asked for, and the deployment's maxima for the rest.
    let maxima = trace_common::limits::TaskLimits::default();
    assert_eq!(lease.limits.memory_mib, Some(16));
    assert_eq!(lease.limits.max_records, Some(7));
    assert_eq!(lease.limits.max_alerts, Some(maxima.max_alerts));
    assert_eq!(lease.limits, maxima.narrowed(&req.limits).as_job_limits());
    // The job itself still shows what it asked for.
    let job = d.client.job("acme", job.id).await.unwrap();
    assert_eq!(job.limits, req.limits);
}

#[tokio::test]
async fn a_deployment_configures_the_maxima_jobs_are_checked_against() {
    let mut config = trace_dispatcher::Config::new("postgres://unused");
    config.limit_maxima = vec!["memory_mib=128".into(), "max_alerts=5".into()];
    let d = start(config.settings().unwrap()).await;

    let mut req = udf(1, 1, 1);
    req.limits.memory_mib = Some(100);
    let job = d.client.create_job(&req).await.unwrap();
    // A limit the job left unset reaches the lease at the maximum, so a
    // worker configured above it still runs the task under it.
    let task = task_ids(&d.pool, job.id).await[0];
    let lease = d.client.claim(task, "w").await.unwrap().unwrap();
    assert_eq!(
        (lease.limits.memory_mib, lease.limits.max_alerts),
        (Some(100), Some(5))
    );
    req.limits.max_alerts = Some(6);
    let err = d.client.create_job(&req).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(400), Some("limit_too_high"))
    );
    assert!(
        err.to_string()
            .contains("`max_alerts` of 6 is above the maximum of 5"),
        "{err}"
    );

    config.limit_maxima = vec!["memory=1".into()];
    let err = config.settings().unwrap_err().to_string();
    assert!(
        err.starts_with("invalid --limit-maximum: unknown field `memory`"),
        "{err}"
    );
    config.limit_maxima = vec!["max_alerts=0".into()];
    let err = config.settings().unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid --limit-maximum: limit `max_alerts` must be at least 1"
    );
}
