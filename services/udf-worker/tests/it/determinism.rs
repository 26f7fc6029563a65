//! Deterministic jobs through the real dispatcher and worker: the flag
//! travels from the job to the lease to the host, and two runs of the same
//! range publish byte-identical records.

use std::collections::BTreeMap;
use std::time::Duration;

use trace_common::api::{
    AttemptEnd, BufferBatch, BufferPayload, ComponentRef, CreateJob, Job, JobKind, JobState,
    QUEUE_BUFFER, TaskState,
};
use trace_common::queue::Queue;
use trace_common::queue::pg::PgQueue;

use super::support::{Platform, TENANT, start};

/// Creates a job of `component` over `from..=to` in tasks of `chunk` blocks.
async fn job(
    platform: &Platform,
    component: &ComponentRef,
    (from, to, chunk): (u64, u64, u64),
    deterministic: bool,
) -> Job {
    let req = CreateJob {
        tenant_id: TENANT.into(),
        kind: JobKind::Udf,
        component: Some(component.clone()),
        params: serde_json::json!({}),
        chain_id: 1,
        from_block: from,
        to_block: to,
        chunk_size: chunk,
        blocks: None,
        limits: Default::default(),
        deterministic,
    };
    let job = platform.dispatcher.create_job(&req).await.unwrap();
    platform.finished(&job).await
}

/// Every record batch on the buffer queue, once `ends` attempt ends have
/// arrived (or after 10 s): by job, then by task seq and batch seq, the
/// payload as JSON text.
async fn published(
    platform: &Platform,
    ends: usize,
) -> BTreeMap<uuid::Uuid, BTreeMap<(u64, u32), String>> {
    let queue = PgQueue::new(platform.state.clone());
    let mut batches = Vec::new();
    let mut told = 0;
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
        if got.is_empty() && (told >= ends || std::time::Instant::now() > deadline) {
            break;
        }
        for message in got {
            if AttemptEnd::is_attempt_end(&message.body) {
                told += 1;
            } else {
                batches.push(serde_json::from_value::<BufferBatch>(message.body).unwrap());
            }
        }
    }

    let mut out: BTreeMap<_, BTreeMap<_, _>> = BTreeMap::new();
    for batch in batches {
        let tasks = platform
            .dispatcher
            .tasks(TENANT, batch.job_id)
            .await
            .unwrap();
        let task = tasks.iter().find(|t| t.id == batch.task_id).unwrap();
        let payload = serde_json::to_string(&batch.payload).unwrap();
        out.entry(batch.job_id)
            .or_default()
            .insert((task.from_block, batch.seq), payload);
    }
    out
}

/// The `value` of the observation `what` in a payload of the determinism
/// guest.
fn observation(payload: &str, what: &str) -> String {
    let payload: BufferPayload = serde_json::from_str(payload).unwrap();
    let BufferPayload::Records { rows, .. } = payload else {
        panic!("not records: {payload:?}");
    };
    let row = rows.iter().find(|r| r["what"] == what).unwrap();
    row["value"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deterministic_runs_of_the_same_range_publish_byte_identical_records() {
    let platform = start(30).await;
    let guest = platform.publish("determinism");

    let first = job(&platform, &guest, (18_000_000, 18_000_009, 5), true).await;
    let second = job(&platform, &guest, (18_000_000, 18_000_009, 5), true).await;
    let normal = job(&platform, &guest, (18_000_000, 18_000_009, 5), false).await;
    for job in [&first, &second, &normal] {
        assert_eq!(job.state, JobState::Succeeded, "{job:?}");
        assert_eq!(job.records_published, 2 * 22);
    }
    let published = published(&platform, 6).await;

    let (a, b, c) = (
        &published[&first.id],
        &published[&second.id],
        &published[&normal.id],
    );
    let keys: Vec<_> = a.keys().copied().collect();
    assert_eq!(keys, [(18_000_000, 0), (18_000_005, 0)]);
    assert_eq!(a, b, "the same tasks published different bytes");
    for (key, payload) in a {
        assert_eq!(
            observation(payload, "wall_clock.0"),
            format!("{}.000000000", key.0)
        );
        assert_eq!(
            observation(payload, "nan.f64.zero_over_zero"),
            "7ff8000000000000"
        );
        assert_ne!(
            observation(payload, "random.bytes"),
            observation(&c[key], "random.bytes")
        );
    }
    // The two tasks of one job are two tasks: their bytes differ.
    let tasks: Vec<&String> = a.values().collect();
    assert_ne!(
        observation(tasks[0], "random.bytes"),
        observation(tasks[1], "random.bytes")
    );

    // Both jobs' tasks used the same fuel; a normal task reports none.
    let used = fuel(&platform, &first).await;
    assert!(used.iter().all(|f| f.is_some_and(|f| f > 0)), "{used:?}");
    assert_eq!(fuel(&platform, &second).await, used);
    assert_eq!(fuel(&platform, &normal).await, vec![None, None]);
}

/// The fuel each task of `job` reported in its summary, in task order.
async fn fuel(platform: &Platform, job: &Job) -> Vec<Option<u64>> {
    let tasks = platform.dispatcher.tasks(TENANT, job.id).await.unwrap();
    tasks
        .iter()
        .map(|t| t.summary.as_ref().unwrap()["fuel"].as_u64())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_in_a_deterministic_job_fails_by_fuel_before_its_deadline() {
    let platform = start(30).await;
    let spin = platform.publish("spin");
    let echo = platform.publish("echo");

    let started = std::time::Instant::now();
    let spinning = job(&platform, &spin, (1, 1, 1), true).await;
    let took = started.elapsed();
    let fine = job(&platform, &echo, (7, 8, 2), true).await;

    assert_eq!(spinning.state, JobState::Failed);
    let tasks = platform
        .dispatcher
        .tasks(TENANT, spinning.id)
        .await
        .unwrap();
    assert_eq!(tasks[0].state, TaskState::Failed);
    assert_eq!(
        tasks[0].attempt, 1,
        "a deterministic failure is not retried"
    );
    assert_eq!(tasks[0].error_class.as_deref(), Some("deterministic"));
    assert_eq!(
        tasks[0].error.as_deref(),
        Some("component ran out of fuel: a call may use at most 10000000000 units (fuel)")
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert_eq!(fine.state, JobState::Succeeded);
    assert_eq!(fine.records_published, 2);
}
