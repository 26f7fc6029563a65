//! What a report may hold: text a component wrote, stored safely, and a
//! completion that arrives after its job was cancelled.

use serde_json::{Value, json};
use trace_common::api::{AttemptEnd, CompleteRequest, FailRequest, FailureClass, LogLine};
use trace_dispatcher::relay;
use uuid::Uuid;

use super::support::{Dispatcher, settings, start, task_ids, task_state, udf};

async fn claimed_task(d: &Dispatcher) -> (Uuid, Uuid, u32) {
    let job = d.client.create_job(&udf(1, 1, 1)).await.unwrap();
    let task = task_ids(&d.pool, job.id).await[0];
    relay::relay_once(&d.state).await.unwrap();
    let lease = d.client.claim(task, "w").await.unwrap().unwrap();
    (job.id, task, lease.attempt)
}

fn nul_log() -> LogLine {
    let mut fields = serde_json::Map::new();
    fields.insert("k\u{0}".into(), json!(["v\u{0}"]));
    LogLine {
        level: "info".into(),
        message: "before\u{0}after".into(),
        fields,
    }
}

async fn stored_log(d: &Dispatcher, task: Uuid) -> (String, Value) {
    sqlx::query_as("select message, fields from task_logs where task_id = $1")
        .bind(task)
        .fetch_one(&d.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn nul_characters_in_a_completion_are_stored_as_replacement_characters() {
    let d = start(settings(30_000, 3)).await;
    let (_, task, attempt) = claimed_task(&d).await;
    let req = CompleteRequest {
        attempt,
        summary: json!({"message": "done\u{0}", "counters": {"n\u{0}": 1}}),
        records_published: 0,
        alerts_published: 0,
        batches: 0,
        logs: vec![nul_log()],
    };

    d.client.complete(task, &req).await.unwrap();

    assert_eq!(task_state(&d.pool, task).await, ("succeeded".into(), 1));
    let summary: Value = sqlx::query_scalar("select summary from tasks where id = $1")
        .bind(task)
        .fetch_one(&d.pool)
        .await
        .unwrap();
    assert_eq!(
        summary,
        json!({"message": "done\u{FFFD}", "counters": {"n\u{FFFD}": 1}})
    );
    let (message, fields) = stored_log(&d, task).await;
    assert_eq!(message, "before\u{FFFD}after");
    assert_eq!(fields, json!({"k\u{FFFD}": ["v\u{FFFD}"]}));
}

#[tokio::test]
async fn a_failure_reason_with_nuls_is_stored_and_an_oversized_summary_is_replaced() {
    let d = start(settings(30_000, 3)).await;
    let (_, task, attempt) = claimed_task(&d).await;
    let req = FailRequest {
        attempt,
        reason: "bad\u{0}input".into(),
        class: FailureClass::Deterministic,
        logs: vec![nul_log()],
    };
    d.client.fail(task, &req).await.unwrap();
    let (state, error): (String, String) =
        sqlx::query_as("select state, error from tasks where id = $1")
            .bind(task)
            .fetch_one(&d.pool)
            .await
            .unwrap();
    assert_eq!(
        (state.as_str(), error.as_str()),
        ("failed", "bad\u{FFFD}input")
    );

    let (_, task, attempt) = claimed_task(&d).await;
    let big = "x".repeat(100 * 1024);
    let req = CompleteRequest {
        attempt,
        summary: json!({ "message": big }),
        records_published: 0,
        alerts_published: 0,
        batches: 0,
        logs: vec![],
    };
    d.client.complete(task, &req).await.unwrap();
    let summary: Value = sqlx::query_scalar("select summary from tasks where id = $1")
        .bind(task)
        .fetch_one(&d.pool)
        .await
        .unwrap();
    let note = summary["truncated"].as_str().unwrap();
    assert!(note.contains("102414 bytes"), "{note}");
    assert!(summary.get("message").is_none());
}

#[tokio::test]
async fn a_completion_after_the_job_was_cancelled_ends_the_attempt_cancelled() {
    let d = start(settings(30_000, 3)).await;
    let (job, task, attempt) = claimed_task(&d).await;
    d.client.cancel_job("acme", job).await.unwrap();
    let req = CompleteRequest {
        attempt,
        summary: json!({}),
        records_published: 5,
        alerts_published: 0,
        batches: 1,
        logs: vec![],
    };

    d.client.complete(task, &req).await.unwrap();

    assert_eq!(task_state(&d.pool, task).await, ("cancelled".into(), 1));
    let outcome: String =
        sqlx::query_scalar("select outcome from task_attempts where task_id = $1")
            .bind(task)
            .fetch_one(&d.pool)
            .await
            .unwrap();
    assert_eq!(outcome, "cancelled");
    let ends: Vec<Value> = sqlx::query_scalar(
        "select body from outbox where queue = 'buffer-records' and body->>'task_id' = $1",
    )
    .bind(task.to_string())
    .fetch_all(&d.pool)
    .await
    .unwrap();
    let ends: Vec<AttemptEnd> = ends
        .into_iter()
        .map(|b| serde_json::from_value(b).unwrap())
        .collect();
    assert_eq!(
        ends,
        [AttemptEnd::Discard {
            tenant_id: "acme".into(),
            job_id: job,
            task_id: task,
            attempt,
        }]
    );
    let records: i64 = sqlx::query_scalar("select records_published from tasks where id = $1")
        .bind(task)
        .fetch_one(&d.pool)
        .await
        .unwrap();
    assert_eq!(records, 0, "nothing of the dropped attempt is counted");
}
