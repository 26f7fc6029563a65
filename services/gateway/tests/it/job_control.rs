//! Cancelling and retrying jobs through the gateway, and the attempts a
//! job's detail shows, against a real dispatcher driven as a worker would.

use trace_common::api::{FailRequest, FailureClass};
use uuid::Uuid;

use super::platform::{Platform, principal_of};

fn failure(attempt: u32, class: FailureClass, reason: &str) -> FailRequest {
    FailRequest {
        attempt,
        reason: reason.into(),
        class,
        logs: Vec::new(),
    }
}

fn time(value: &serde_json::Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap()).unwrap()
}

/// The `state` of each task in the gateway's job detail, in block order.
async fn task_states(p: &Platform, key: &str, job: Uuid) -> Vec<String> {
    let detail = p.gw.get(key, &format!("/v1/jobs/{job}")).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    let mut tasks = detail.body["tasks"].as_array().unwrap().clone();
    tasks.sort_by_key(|t| t["seq"].as_u64());
    let states = tasks
        .iter()
        .map(|t| t["state"].as_str().unwrap().to_string());
    states.collect()
}

/// A job of two tasks over blocks 1..=20 that both ended badly, with
/// `max_attempts` 2: task 0 failed deterministically on its first attempt
/// (worker w1); task 1 failed transiently twice (w1, then w2) and is dead.
async fn failed_job(p: &Platform, key: &str) -> (Uuid, Vec<Uuid>) {
    let job = p.udf_job(key, 1, 20, 10).await;
    let tasks = p.task_ids("acme", job).await;
    let bad_params = "param `threshold` is not a number";
    let timeout = "the rpc-gateway timed out";

    assert_eq!(p.claim(tasks[0], "w1").await, 1);
    let deterministic = failure(1, FailureClass::Deterministic, bad_params);
    p.dispatcher.fail(tasks[0], &deterministic).await.unwrap();
    for (attempt, worker) in [(1, "w1"), (2, "w2")] {
        assert_eq!(p.claim(tasks[1], worker).await, attempt);
        let transient = failure(attempt, FailureClass::Transient, timeout);
        p.dispatcher.fail(tasks[1], &transient).await.unwrap();
    }
    (job, tasks)
}

#[tokio::test]
async fn cancelling_a_running_job_cancels_its_queued_tasks_and_ends_it() {
    let p = Platform::start(3).await;
    let key = p.gw.key("acme", "member").await;
    let job = p.udf_job(&key, 1, 30, 10).await;
    let tasks = p.task_ids("acme", job).await;
    assert_eq!(tasks.len(), 3);
    assert_eq!(p.claim(tasks[0], "w1").await, 1);

    let cancelled = p.gw.act(&key, &format!("/v1/jobs/{job}/cancel")).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["id"], job.to_string());
    assert_eq!(cancelled.body["state"], "cancelled");
    let progress = &cancelled.body["progress"];
    assert_eq!(
        (progress["cancelled"].as_u64(), progress["running"].as_u64()),
        (Some(2), Some(1))
    );
    assert!(cancelled.body["finished_at"].is_string());
    assert_eq!(
        task_states(&p, &key, job).await,
        ["running", "cancelled", "cancelled"]
    );

    // The running task learns of it at its next heartbeat and stops.
    assert!(p.dispatcher.heartbeat(tasks[0], 1).await.unwrap().cancelled);
    let stopped = failure(1, FailureClass::Transient, "stopped: the job was cancelled");
    p.dispatcher.fail(tasks[0], &stopped).await.unwrap();
    assert_eq!(
        task_states(&p, &key, job).await,
        ["cancelled", "cancelled", "cancelled"]
    );

    let again = p.gw.act(&key, &format!("/v1/jobs/{job}/cancel")).await;
    assert_eq!((again.status, again.code()), (409, "job_finished"));
    assert!(
        again.message().contains(&job.to_string()),
        "{}",
        again.message()
    );

    let audit = p.job_audit("acme", &principal_of(&key)).await;
    let actions: Vec<&str> = audit.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        ["job.create", "job.cancel"],
        "a refused cancel is not audited"
    );
    assert_eq!(audit[1].target, job.to_string());
    assert_eq!(audit[1].detail["state"], "cancelled");
    assert_eq!(audit[1].detail["cancelled_tasks"], 2);
}

#[tokio::test]
async fn another_tenant_cannot_see_cancel_or_retry_a_job() {
    let p = Platform::start(3).await;
    let key = p.gw.key("acme", "member").await;
    let job = p.udf_job(&key, 1, 10, 10).await;
    let stranger = p.gw.key("globex", "admin").await;

    for action in ["cancel", "retry"] {
        let refused =
            p.gw.act(&stranger, &format!("/v1/jobs/{job}/{action}"))
                .await;
        assert_eq!(
            (refused.status, refused.code()),
            (404, "job_not_found"),
            "{action}"
        );
    }
    assert_eq!(task_states(&p, &key, job).await, ["queued"]);
    assert!(
        p.job_audit("globex", &principal_of(&stranger))
            .await
            .is_empty()
    );

    let bad_id = p.gw.act(&key, "/v1/jobs/not-a-uuid/cancel").await;
    assert_eq!((bad_id.status, bad_id.code()), (400, "invalid_job_id"));
}

#[tokio::test]
async fn retrying_requeues_the_failed_and_dead_tasks_and_runs_the_job_again() {
    let p = Platform::start(2).await;
    let key = p.gw.key("acme", "member").await;
    let (job, tasks) = failed_job(&p, &key).await;
    let before = p.gw.get(&key, &format!("/v1/jobs/{job}")).await;
    assert_eq!(
        before.body["state"], "failed",
        "the job detail has the job flattened"
    );
    assert_eq!(task_states(&p, &key, job).await, ["failed", "dead"]);

    let retried = p.gw.act(&key, &format!("/v1/jobs/{job}/retry")).await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(retried.body["requeued"], 2);
    assert_eq!(retried.body["job"]["state"], "running");
    assert!(retried.body["job"]["finished_at"].is_null());
    assert_eq!(retried.body["job"]["progress"]["queued"], 2);
    assert_eq!(task_states(&p, &key, job).await, ["queued", "queued"]);

    // A fresh budget: the dead task runs again under a new attempt number,
    // and one transient failure queues it instead of killing it.
    assert_eq!(p.claim(tasks[1], "w3").await, 3);
    let transient = failure(3, FailureClass::Transient, "the rpc-gateway timed out");
    p.dispatcher.fail(tasks[1], &transient).await.unwrap();
    assert_eq!(task_states(&p, &key, job).await, ["queued", "queued"]);

    let again = p.gw.act(&key, &format!("/v1/jobs/{job}/retry")).await;
    assert_eq!((again.status, again.code()), (409, "nothing_to_retry"));

    let audit = p.job_audit("acme", &principal_of(&key)).await;
    let actions: Vec<&str> = audit.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        ["job.create", "job.retry"],
        "a refused retry is not audited"
    );
    assert_eq!(audit[1].target, job.to_string());
    assert_eq!(audit[1].detail["requeued"], 2);
    assert_eq!(audit[1].detail["state"], "running");
}

#[tokio::test]
async fn the_job_detail_lists_every_attempt_with_its_worker_outcome_and_reason() {
    let p = Platform::start(2).await;
    let key = p.gw.key("acme", "member").await;
    let (job, _) = failed_job(&p, &key).await;

    let detail = p.gw.get(&key, &format!("/v1/jobs/{job}")).await;
    let mut tasks = detail.body["tasks"].as_array().unwrap().clone();
    tasks.sort_by_key(|t| t["seq"].as_u64());

    let failed = &tasks[0];
    assert_eq!(failed["error"], "param `threshold` is not a number");
    assert_eq!(failed["error_class"], "deterministic");
    let seen: Vec<_> = tasks
        .iter()
        .map(|task| {
            let attempts = task["attempts"].as_array().unwrap();
            let rows = attempts.iter().map(|a| {
                assert!(time(&a["finished_at"]) >= time(&a["started_at"]), "{a}");
                (
                    a["attempt"].as_u64().unwrap(),
                    a["worker_id"].as_str().unwrap(),
                    a["outcome"].as_str().unwrap(),
                    a["class"].as_str().unwrap(),
                    a["reason"].as_str().unwrap(),
                )
            });
            rows.collect::<Vec<_>>()
        })
        .collect();
    let bad_params = "param `threshold` is not a number";
    let timeout = "the rpc-gateway timed out";
    assert_eq!(
        seen,
        [
            vec![(1, "w1", "failed", "deterministic", bad_params)],
            vec![
                (1, "w1", "failed", "transient", timeout),
                (2, "w2", "failed", "transient", timeout),
            ],
        ]
    );
}

#[tokio::test]
async fn an_ingest_job_is_cancelled_only_with_an_admin_key() {
    let p = Platform::start(3).await;
    let admin = p.gw.key("acme", "admin").await;
    let member = p.gw.key("acme", "member").await;
    let submit = serde_json::json!({
        "kind": "ingest", "from_block": 1, "to_block": 10, "chunk_size": 10, "blocks": null,
    });
    let created = p.gw.post(&admin, "/v1/jobs", submit).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let job = created.body["id"].as_str().unwrap();

    for action in ["cancel", "retry"] {
        let refused = p.gw.act(&member, &format!("/v1/jobs/{job}/{action}")).await;
        assert_eq!(
            (refused.status, refused.code()),
            (403, "forbidden"),
            "{action}"
        );
    }
    let cancelled = p.gw.act(&admin, &format!("/v1/jobs/{job}/cancel")).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["state"], "cancelled");

    let retried = p.gw.act(&admin, &format!("/v1/jobs/{job}/retry")).await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(retried.body["requeued"], 1);
}
