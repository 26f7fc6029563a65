//! Claims, heartbeats, reports, the reaper and the broker's lease check.

use std::time::Duration;

use trace_common::api::{CompleteRequest, FailRequest, FailureClass, JobState, LogLine};

use super::support::{ingest, settings, start, task_ids, task_state, unsent};

fn log(message: &str) -> LogLine {
    LogLine {
        level: "info".into(),
        message: message.into(),
        fields: Default::default(),
    }
}

fn failure(attempt: u32, class: FailureClass, reason: &str) -> FailRequest {
    FailRequest {
        attempt,
        reason: reason.into(),
        class,
        logs: vec![log(reason)],
    }
}

#[tokio::test]
async fn claim_heartbeat_complete_runs_a_task_to_success_and_ends_the_job() {
    let d = start(settings(30_000, 3)).await;
    let job = d.client.create_job(&ingest(50, 59, 10)).await.unwrap();
    let task = task_ids(&d.pool, job.id).await[0];

    let lease = d
        .client
        .claim(task, "w1")
        .await
        .unwrap()
        .expect("claimable");
    assert_eq!(
        (lease.attempt, lease.from_block, lease.to_block),
        (1, 50, 59)
    );
    assert_eq!((lease.job_id, lease.tenant_id.as_str()), (job.id, "acme"));
    let owner: (String, i32) =
        sqlx::query_as("select worker_id, attempt from task_attempts where task_id = $1")
            .bind(task)
            .fetch_one(&d.pool)
            .await
            .unwrap();
    assert_eq!(owner, ("w1".to_string(), 1));
    assert!(d.client.claim(task, "w2").await.unwrap().is_none());

    tokio::time::sleep(Duration::from_millis(20)).await;
    let beat = d.client.heartbeat(task, 1).await.unwrap();
    assert!(beat.expires_at > lease.expires_at);
    assert!(!beat.cancelled);
    assert!(d.client.lease(task, 1).await.unwrap().live);

    let done = CompleteRequest {
        attempt: 1,
        summary: serde_json::json!({ "blocks": 10 }),
        records_published: 5,
        alerts_published: 2,
        batches: 0,
        logs: vec![log("first"), log("second")],
    };
    d.client.complete(task, &done).await.unwrap();

    let job = d.client.job("acme", job.id).await.unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!((job.records_published, job.alerts_published), (5, 2));
    assert!(job.finished_at.is_some());
    let logs: Vec<String> =
        sqlx::query_scalar("select message from task_logs where task_id = $1 order by id")
            .bind(task)
            .fetch_all(&d.pool)
            .await
            .unwrap();
    assert_eq!(logs, vec!["first".to_string(), "second".to_string()]);
    let info = &d.client.tasks("acme", job.id).await.unwrap()[0];
    assert_eq!(info.summary, Some(serde_json::json!({ "blocks": 10 })));

    let again = d.client.complete(task, &done).await.unwrap_err();
    assert_eq!(
        (again.status(), again.code()),
        (Some(409), Some("stale_lease"))
    );
    assert!(!d.client.lease(task, 1).await.unwrap().live);
}

#[tokio::test]
async fn a_stale_token_is_refused_after_the_reaper_returns_the_task() {
    let d = start(settings(300, 3)).await;
    let job = d.client.create_job(&ingest(1, 1, 1)).await.unwrap();
    let task = task_ids(&d.pool, job.id).await[0];
    trace_dispatcher::relay::relay_once(&d.state).await.unwrap();

    let first = d.client.claim(task, "slow").await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!d.client.lease(task, first.attempt).await.unwrap().live);
    assert_eq!(
        trace_dispatcher::reaper::reap_once(&d.state).await.unwrap(),
        1
    );
    assert_eq!(task_state(&d.pool, task).await, ("queued".to_string(), 1));
    assert_eq!(
        unsent(&d.pool).await,
        1,
        "the returned task gets a new wake-up"
    );

    let second = d.client.claim(task, "fast").await.unwrap().unwrap();
    assert_eq!(second.attempt, 2);
    let err = d.client.heartbeat(task, 1).await.unwrap_err();
    assert_eq!(err.code(), Some("stale_lease"));
    let done = CompleteRequest {
        attempt: 1,
        summary: serde_json::json!({}),
        records_published: 1,
        alerts_published: 0,
        batches: 0,
        logs: vec![],
    };
    let err = d.client.complete(task, &done).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("stale_lease")));
    let err = d
        .client
        .fail(task, &failure(1, FailureClass::Transient, "x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("stale_lease"));

    let status = d.client.lease(task, 2).await.unwrap();
    assert!(status.live && status.expires_at.is_some());
    assert_eq!(status.job_id, job.id);
    let outcome: (Option<String>, Option<String>) = sqlx::query_as(
        "select outcome, reason from task_attempts where task_id = $1 and attempt = 1",
    )
    .bind(task)
    .fetch_one(&d.pool)
    .await
    .unwrap();
    assert_eq!(
        outcome,
        (
            Some("expired".to_string()),
            Some("lease expired".to_string())
        )
    );
}

#[tokio::test]
async fn the_reaper_kills_a_task_whose_attempts_are_used_up() {
    let d = start(settings(100, 1)).await;
    let job = d.client.create_job(&ingest(1, 1, 1)).await.unwrap();
    let task = task_ids(&d.pool, job.id).await[0];
    d.client.claim(task, "w").await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert_eq!(
        trace_dispatcher::reaper::reap_once(&d.state).await.unwrap(),
        1
    );
    assert_eq!(task_state(&d.pool, task).await, ("dead".to_string(), 1));
    let job = d.client.job("acme", job.id).await.unwrap();
    assert_eq!((job.state, job.progress.dead), (JobState::Failed, 1));
    assert_eq!(
        unsent(&d.pool).await,
        1,
        "only the creation wake-up, no new one"
    );
}

#[tokio::test]
async fn of_two_concurrent_claims_on_one_task_exactly_one_wins() {
    let d = start(settings(30_000, 3)).await;
    let job = d.client.create_job(&ingest(1, 20, 1)).await.unwrap();
    for task in task_ids(&d.pool, job.id).await {
        let (a, b) = tokio::join!(d.client.claim(task, "a"), d.client.claim(task, "b"));
        let winners = [a.unwrap(), b.unwrap()].into_iter().flatten().count();
        assert_eq!(winners, 1, "task {task}");
        assert_eq!(task_state(&d.pool, task).await, ("running".to_string(), 1));
    }
}

#[tokio::test]
async fn a_transient_failure_requeues_and_a_deterministic_one_fails() {
    let d = start(settings(30_000, 2)).await;
    let job = d.client.create_job(&ingest(1, 2, 1)).await.unwrap();
    let ids = task_ids(&d.pool, job.id).await;
    trace_dispatcher::relay::relay_once(&d.state).await.unwrap();

    d.client.claim(ids[0], "w").await.unwrap().unwrap();
    d.client
        .fail(ids[0], &failure(1, FailureClass::Transient, "rpc timeout"))
        .await
        .unwrap();
    assert_eq!(task_state(&d.pool, ids[0]).await, ("queued".to_string(), 1));
    assert_eq!(unsent(&d.pool).await, 1);
    let attempt: (String, String, String) = sqlx::query_as(
        "select outcome, reason, class from task_attempts where task_id = $1 and attempt = 1",
    )
    .bind(ids[0])
    .fetch_one(&d.pool)
    .await
    .unwrap();
    assert_eq!(
        attempt,
        ("failed".into(), "rpc timeout".into(), "transient".into())
    );

    let retry = d.client.claim(ids[0], "w").await.unwrap().unwrap();
    assert_eq!(retry.attempt, 2);
    d.client
        .fail(ids[0], &failure(2, FailureClass::Transient, "rpc timeout"))
        .await
        .unwrap();
    assert_eq!(task_state(&d.pool, ids[0]).await, ("dead".to_string(), 2));

    d.client.claim(ids[1], "w").await.unwrap().unwrap();
    d.client
        .fail(ids[1], &failure(1, FailureClass::Deterministic, "bad abi"))
        .await
        .unwrap();
    assert_eq!(task_state(&d.pool, ids[1]).await, ("failed".to_string(), 1));

    let job = d.client.job("acme", job.id).await.unwrap();
    assert_eq!(
        (job.state, job.progress.dead, job.progress.failed),
        (JobState::Failed, 1, 1)
    );
    let tasks = d.client.tasks("acme", job.id).await.unwrap();
    assert_eq!(tasks[1].error.as_deref(), Some("bad abi"));
    assert_eq!(tasks[1].error_class.as_deref(), Some("deterministic"));
    let logs: i64 = sqlx::query_scalar("select count(*) from task_logs")
        .fetch_one(&d.pool)
        .await
        .unwrap();
    assert_eq!(logs, 3);
}

#[tokio::test]
async fn a_cancelled_job_is_reported_by_heartbeats_and_its_tasks_cannot_be_claimed() {
    let d = start(settings(30_000, 3)).await;
    let job = d.client.create_job(&ingest(1, 2, 1)).await.unwrap();
    let ids = task_ids(&d.pool, job.id).await;
    d.client.claim(ids[0], "w").await.unwrap().unwrap();
    sqlx::query("update jobs set state = 'cancelled' where id = $1")
        .bind(job.id)
        .execute(&d.pool)
        .await
        .unwrap();

    assert!(d.client.heartbeat(ids[0], 1).await.unwrap().cancelled);
    assert!(!d.client.lease(ids[0], 1).await.unwrap().live);
    assert!(d.client.claim(ids[1], "w").await.unwrap().is_none());
    d.client
        .fail(ids[0], &failure(1, FailureClass::Transient, "cancelled"))
        .await
        .unwrap();
    assert_eq!(task_state(&d.pool, ids[0]).await.0, "cancelled");
}

#[tokio::test]
async fn an_unknown_task_is_not_found() {
    let d = start(settings(30_000, 3)).await;
    let err = d.client.claim(uuid::Uuid::new_v4(), "w").await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(404), Some("task_not_found"))
    );
    let err = d.client.lease(uuid::Uuid::new_v4(), 1).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn a_task_left_queued_too_long_is_woken_again_once() {
    let d = start(settings(30_000, 3)).await;
    let job = d.client.create_job(&ingest(1, 2, 1)).await.unwrap();
    let ids = task_ids(&d.pool, job.id).await;
    trace_dispatcher::relay::relay_once(&d.state).await.unwrap();
    d.client.claim(ids[1], "w").await.unwrap().unwrap();
    sqlx::query("update tasks set updated_at = now() - interval '10 minutes'")
        .execute(&d.pool)
        .await
        .unwrap();

    let waited = Duration::from_secs(300);
    assert_eq!(
        trace_dispatcher::reaper::reconcile_once(&d.state, waited)
            .await
            .unwrap(),
        1
    );
    let body: serde_json::Value =
        sqlx::query_scalar("select body from outbox where sent_at is null")
            .fetch_one(&d.pool)
            .await
            .unwrap();
    assert_eq!(
        body,
        serde_json::json!({ "task_id": ids[0], "job_id": job.id })
    );
    assert_eq!(
        trace_dispatcher::reaper::reconcile_once(&d.state, waited)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn the_oldest_queued_age_survives_re_sent_wake_ups_and_restarts_on_release() {
    let d = start(settings(30_000, 3)).await;
    let job = d.client.create_job(&ingest(1, 2, 1)).await.unwrap();
    let ids = task_ids(&d.pool, job.id).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // The reconciler re-sends both wake-ups, touching both tasks.
    let resent = trace_dispatcher::reaper::reconcile_once(&d.state, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(resent, 2);
    let depths = trace_dispatcher::reaper::queue_depths(&d.state)
        .await
        .unwrap();
    assert_eq!(depths.len(), 1, "{depths:?}");
    assert_eq!((depths[0].kind.as_str(), depths[0].queued), ("ingest", 2));
    assert!(depths[0].oldest_seconds >= 1.5, "{depths:?}");

    // Claimed and released, a task is queued anew; the other is still the oldest.
    trace_dispatcher::relay::relay_once(&d.state).await.unwrap();
    let lease = d.client.claim(ids[0], "w").await.unwrap().unwrap();
    let depths = trace_dispatcher::reaper::queue_depths(&d.state)
        .await
        .unwrap();
    assert_eq!(depths[0].queued, 1);
    d.client.release(ids[0], lease.attempt).await.unwrap();
    let (fresh,): (f64,) = sqlx::query_as(
        "select extract(epoch from now() - queued_at)::float8 from tasks where id = $1",
    )
    .bind(ids[0])
    .fetch_one(&d.pool)
    .await
    .unwrap();
    assert!(
        fresh < 1.0,
        "the released task was queued again just now: {fresh}"
    );
    let depths = trace_dispatcher::reaper::queue_depths(&d.state)
        .await
        .unwrap();
    assert_eq!(depths[0].queued, 2);
    assert!(depths[0].oldest_seconds >= 1.5, "{depths:?}");
}
