//! The task state machine: every transition, every refusal, the races the
//! design must win, and what each end of an attempt tells the sinks.

use std::time::Duration;

use serde_json::Value;
use trace_common::api::{AttemptEnd, CompleteRequest, FailRequest, FailureClass, JobState};
use trace_dispatcher::{reaper, relay};
use uuid::Uuid;

use super::support::{Dispatcher, settings, start, task_ids, task_state, udf};

fn done(attempt: u32, batches: u32) -> CompleteRequest {
    CompleteRequest {
        attempt,
        summary: serde_json::json!({}),
        records_published: 0,
        alerts_published: 0,
        batches,
        logs: vec![],
    }
}

fn failed(attempt: u32, class: FailureClass) -> FailRequest {
    FailRequest {
        attempt,
        reason: format!("attempt {attempt} broke"),
        class,
        logs: vec![],
    }
}

/// The attempt ends written to the outbox for the sinks, oldest first.
async fn sink_messages(d: &Dispatcher, task: Uuid) -> Vec<AttemptEnd> {
    let bodies: Vec<Value> = sqlx::query_scalar(
        "select body from outbox where queue = 'buffer-records' and body->>'task_id' = $1 \
         order by id",
    )
    .bind(task.to_string())
    .fetch_all(&d.pool)
    .await
    .unwrap();
    bodies
        .into_iter()
        .map(|b| serde_json::from_value(b).unwrap())
        .collect()
}

/// How many wake-ups for `task` wait in the outbox, and whether all of them
/// wait at least `at_least` before they may be relayed.
async fn wakeups(d: &Dispatcher, task: Uuid, at_least: Duration) -> (i64, bool) {
    sqlx::query_as(
        "select count(*), coalesce(bool_and(not_before >= now() + make_interval(secs => $2) \
             - interval '50 milliseconds'), true) \
         from outbox where queue like 'tasks-%' and body->>'task_id' = $1 and sent_at is null",
    )
    .bind(task.to_string())
    .bind(at_least.as_secs_f64())
    .fetch_one(&d.pool)
    .await
    .unwrap()
}

async fn one_task_job(d: &Dispatcher) -> (Uuid, Uuid) {
    let job = d.client.create_job(&udf(1, 1, 1)).await.unwrap();
    let task = task_ids(&d.pool, job.id).await[0];
    relay::relay_once(&d.state).await.unwrap();
    (job.id, task)
}

fn commit(job: Uuid, task: Uuid, attempt: u32, batches: u32) -> AttemptEnd {
    AttemptEnd::Commit {
        tenant_id: "acme".into(),
        job_id: job,
        task_id: task,
        attempt,
        batches,
    }
}

fn discard(job: Uuid, task: Uuid, attempt: u32) -> AttemptEnd {
    AttemptEnd::Discard {
        tenant_id: "acme".into(),
        job_id: job,
        task_id: task,
        attempt,
    }
}

#[tokio::test]
async fn a_completed_attempt_is_committed_to_the_sinks_with_its_batch_count() {
    let d = start(settings(30_000, 3)).await;
    let (job, task) = one_task_job(&d).await;
    let lease = d.client.claim(task, "w").await.unwrap().unwrap();

    d.client
        .complete(task, &done(lease.attempt, 7))
        .await
        .unwrap();

    assert_eq!(task_state(&d.pool, task).await, ("succeeded".into(), 1));
    assert_eq!(sink_messages(&d, task).await, [commit(job, task, 1, 7)]);
    // A second report of the same attempt is refused: the task is no longer running.
    let err = d.client.complete(task, &done(1, 7)).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("stale_lease")));
    let err = d
        .client
        .fail(task, &failed(1, FailureClass::Transient))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("stale_lease"));
    assert_eq!(sink_messages(&d, task).await.len(), 1);
    // A finished task cannot be claimed again.
    assert!(d.client.claim(task, "w2").await.unwrap().is_none());
}

#[tokio::test]
async fn a_transient_failure_is_discarded_and_retried_after_a_backoff() {
    let backoff = Duration::from_millis(800);
    let mut s = settings(30_000, 3);
    s.retry_backoff = backoff;
    let d = start(s).await;
    let (job, task) = one_task_job(&d).await;

    let first = d.client.claim(task, "w").await.unwrap().unwrap();
    d.client
        .fail(task, &failed(first.attempt, FailureClass::Transient))
        .await
        .unwrap();
    assert_eq!(task_state(&d.pool, task).await, ("queued".into(), 1));
    assert_eq!(sink_messages(&d, task).await, [discard(job, task, 1)]);
    // The first retry waits between half and all of the base backoff.
    assert_eq!(wakeups(&d, task, backoff / 2).await, (1, true));
    assert_eq!(
        relay::relay_once(&d.state).await.unwrap(),
        1,
        "only the discard"
    );
    tokio::time::sleep(backoff).await;
    assert_eq!(relay::relay_once(&d.state).await.unwrap(), 1, "the wake-up");

    let second = d.client.claim(task, "w").await.unwrap().unwrap();
    assert_eq!(second.attempt, 2);
    d.client
        .fail(task, &failed(2, FailureClass::Transient))
        .await
        .unwrap();
    // The second retry waits at least the whole base backoff (it doubled).
    assert_eq!(wakeups(&d, task, backoff).await, (1, true));
}

#[tokio::test]
async fn every_way_an_attempt_ends_short_of_success_is_discarded() {
    let d = start(settings(200, 2)).await;
    // Deterministic failure: failed at once, no retry.
    let (job, task) = one_task_job(&d).await;
    d.client.claim(task, "w").await.unwrap().unwrap();
    d.client
        .fail(task, &failed(1, FailureClass::Deterministic))
        .await
        .unwrap();
    assert_eq!(task_state(&d.pool, task).await, ("failed".into(), 1));
    assert_eq!(wakeups(&d, task, Duration::ZERO).await.0, 0);
    assert_eq!(sink_messages(&d, task).await, [discard(job, task, 1)]);
    let job_now = d.client.job("acme", job).await.unwrap();
    assert_eq!(job_now.state, JobState::Failed);

    // Lease expiry twice with a budget of two: queued, then dead.
    let (job, task) = one_task_job(&d).await;
    for attempt in 1..=2 {
        let lease = d.client.claim(task, "w").await.unwrap().unwrap();
        assert_eq!(lease.attempt, attempt);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(reaper::reap_once(&d.state).await.unwrap(), 1);
    }
    assert_eq!(task_state(&d.pool, task).await, ("dead".into(), 2));
    assert_eq!(
        sink_messages(&d, task).await,
        [discard(job, task, 1), discard(job, task, 2)]
    );
    let reasons: Vec<(i32, Option<String>, Option<String>)> = sqlx::query_as(
        "select attempt, outcome, class from task_attempts where task_id = $1 order by attempt",
    )
    .bind(task)
    .fetch_all(&d.pool)
    .await
    .unwrap();
    let expired = (Some("expired".to_string()), Some("transient".to_string()));
    assert_eq!(
        reasons,
        [
            (1, expired.0.clone(), expired.1.clone()),
            (2, expired.0, expired.1)
        ]
    );
}

#[tokio::test]
async fn cancel_stops_queued_tasks_at_once_and_running_ones_at_their_heartbeat() {
    let d = start(settings(30_000, 3)).await;
    let job = d.client.create_job(&udf(1, 3, 1)).await.unwrap();
    let tasks = task_ids(&d.pool, job.id).await;
    let running = d.client.claim(tasks[0], "w").await.unwrap().unwrap();

    let err = d.client.cancel_job("other", job.id).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(404), Some("job_not_found"))
    );
    let cancelled = d.client.cancel_job("acme", job.id).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert_eq!(cancelled.progress.cancelled, 2);
    assert_eq!(cancelled.progress.running, 1);
    assert!(cancelled.finished_at.is_some());
    assert!(d.client.claim(tasks[1], "w").await.unwrap().is_none());

    let beat = d.client.heartbeat(tasks[0], running.attempt).await.unwrap();
    assert!(beat.cancelled);
    d.client
        .fail(tasks[0], &failed(1, FailureClass::Transient))
        .await
        .unwrap();
    assert_eq!(task_state(&d.pool, tasks[0]).await, ("cancelled".into(), 1));
    assert_eq!(
        sink_messages(&d, tasks[0]).await,
        [discard(job.id, tasks[0], 1)]
    );
    assert_eq!(
        wakeups(&d, tasks[0], Duration::ZERO).await.0,
        1,
        "only its first"
    );

    let err = d.client.cancel_job("acme", job.id).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(409), Some("job_finished"))
    );
}

#[tokio::test]
async fn retry_requeues_dead_failed_and_cancelled_tasks_with_fresh_attempts() {
    let d = start(settings(200, 1)).await;
    let job = d.client.create_job(&udf(1, 3, 1)).await.unwrap();
    let tasks = task_ids(&d.pool, job.id).await;
    relay::relay_once(&d.state).await.unwrap();
    let err = d.client.retry_job("acme", job.id).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(409), Some("nothing_to_retry"))
    );

    // Task 0 succeeds, task 1 fails deterministically, task 2 dies.
    d.client.claim(tasks[0], "w").await.unwrap().unwrap();
    d.client.complete(tasks[0], &done(1, 0)).await.unwrap();
    d.client.claim(tasks[1], "w").await.unwrap().unwrap();
    d.client
        .fail(tasks[1], &failed(1, FailureClass::Deterministic))
        .await
        .unwrap();
    d.client.claim(tasks[2], "w").await.unwrap().unwrap();
    d.client
        .fail(tasks[2], &failed(1, FailureClass::Transient))
        .await
        .unwrap();
    assert_eq!(task_state(&d.pool, tasks[2]).await, ("dead".into(), 1));
    assert_eq!(
        d.client.job("acme", job.id).await.unwrap().state,
        JobState::Failed
    );

    let err = d.client.retry_job("other", job.id).await.unwrap_err();
    assert_eq!(err.code(), Some("job_not_found"));
    let outcome = d.client.retry_job("acme", job.id).await.unwrap();
    assert_eq!(outcome.requeued, 2);
    assert_eq!(outcome.job.state, JobState::Running);
    assert_eq!(outcome.job.progress.queued, 2);
    assert!(outcome.job.finished_at.is_none());
    assert_eq!(task_state(&d.pool, tasks[0]).await, ("succeeded".into(), 1));

    // The retried task's next attempt is 2 (never reused), with a budget of
    // one attempt again, and the job ends succeeded once both succeed.
    for &task in &tasks[1..] {
        let lease = d.client.claim(task, "w").await.unwrap().unwrap();
        assert_eq!(lease.attempt, 2);
        d.client.complete(task, &done(2, 1)).await.unwrap();
    }
    assert_eq!(
        d.client.job("acme", job.id).await.unwrap().state,
        JobState::Succeeded
    );
    let detail = d.client.tasks("acme", job.id).await.unwrap();
    let attempts: Vec<Vec<Option<String>>> = detail
        .iter()
        .map(|t| t.attempts.iter().map(|a| a.outcome.clone()).collect())
        .collect();
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        attempts,
        [
            vec![s("succeeded")],
            vec![s("failed"), s("succeeded")],
            vec![s("failed"), s("succeeded")]
        ]
    );
    assert_eq!(detail[1].attempts[0].class, s("deterministic"));
    assert_eq!(detail[1].attempts[0].reason, s("attempt 1 broke"));
    assert_eq!(detail[1].attempts[0].worker_id, "w");
    let err = d.client.retry_job("acme", job.id).await.unwrap_err();
    assert_eq!(err.code(), Some("nothing_to_retry"));
}

#[tokio::test]
async fn a_complete_racing_the_reaper_ends_the_attempt_exactly_one_way() {
    let d = start(settings(150, 3)).await;
    let job = d.client.create_job(&udf(1, 24, 1)).await.unwrap();
    let tasks = task_ids(&d.pool, job.id).await;
    for &task in &tasks {
        d.client.claim(task, "w").await.unwrap().unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Every lease has expired: the completes and the reaper race for each task.
    let completes = tasks.iter().map(|&task| {
        let client = d.client.clone();
        tokio::spawn(async move { client.complete(task, &done(1, 2)).await.is_ok() })
    });
    let completes: Vec<_> = completes.collect();
    let state = d.state.clone();
    let reaping = tokio::spawn(async move {
        let mut reaped = 0;
        for _ in 0..5 {
            reaped += reaper::reap_once(&state).await.unwrap();
        }
        reaped
    });
    let mut won = Vec::new();
    for complete in completes {
        won.push(complete.await.unwrap());
    }
    let reaped = reaping.await.unwrap();

    assert_eq!(reaped as usize, won.iter().filter(|w| !**w).count());
    for (&task, &completed) in tasks.iter().zip(&won) {
        let (state, attempt) = task_state(&d.pool, task).await;
        let told = sink_messages(&d, task).await;
        if completed {
            assert_eq!((state.as_str(), attempt), ("succeeded", 1));
            assert_eq!(told, [commit(job.id, task, 1, 2)]);
        } else {
            assert_eq!((state.as_str(), attempt), ("queued", 1));
            assert_eq!(told, [discard(job.id, task, 1)]);
        }
    }
}
