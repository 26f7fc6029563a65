//! The shared worker loop against a real dispatcher and its queue endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use trace_common::api::{JobState, Lease};
use trace_common::queue::http::HttpQueue;
use trace_common::worker::{TaskFailure, TaskHandler, TaskOutcome, WorkerOptions, run_worker};

use super::support::{Dispatcher, ingest, settings, start_with_loops};

/// Publishes one record per block; fails the first attempt of every task
/// when `flaky`, and waits for cancellation when `stall`.
struct Blocks {
    flaky: bool,
    stall: bool,
    runs: AtomicU32,
}

#[async_trait::async_trait]
impl TaskHandler for Blocks {
    async fn run(
        &self,
        lease: Lease,
        cancel: CancellationToken,
    ) -> Result<TaskOutcome, TaskFailure> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if self.stall {
            cancel.cancelled().await;
            return Err(TaskFailure::transient("cancelled"));
        }
        if self.flaky && lease.attempt == 1 {
            return Err(TaskFailure::transient("first attempts fail"));
        }
        let blocks = lease.to_block - lease.from_block + 1;
        Ok(TaskOutcome {
            summary: serde_json::json!({ "blocks": blocks }),
            records_published: blocks,
            alerts_published: 0,
            batches: 0,
            logs: vec![],
        })
    }
}

fn spawn_worker(
    d: &Dispatcher,
    handler: Arc<Blocks>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    spawn_named(d, handler, "test-worker")
}

fn spawn_named(
    d: &Dispatcher,
    handler: Arc<Blocks>,
    name: &str,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let queue = Arc::new(HttpQueue::new(d.base.clone()));
    let mut options = WorkerOptions::new("tasks-ingest", name);
    options.concurrency = 3;
    options.heartbeat_every = Duration::from_millis(100);
    options.shutdown_grace = Duration::from_millis(300);
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(run_worker(
        queue,
        d.client.clone(),
        handler,
        options,
        shutdown.clone(),
    ));
    (shutdown, handle)
}

async fn wait_for_end(d: &Dispatcher, job: uuid::Uuid) -> trace_common::api::Job {
    for _ in 0..200 {
        let job = d.client.job("acme", job).await.unwrap();
        if job.state != JobState::Running {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {job} did not end");
}

async fn messages_left(d: &Dispatcher) -> i64 {
    sqlx::query_scalar("select count(*) from queue_messages")
        .fetch_one(&d.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_worker_loop_runs_every_task_of_a_job_to_success() {
    let d = start_with_loops(settings(30_000, 3)).await;
    let handler = Arc::new(Blocks {
        flaky: false,
        stall: false,
        runs: AtomicU32::new(0),
    });
    let (shutdown, handle) = spawn_worker(&d, handler.clone());
    let job = d.client.create_job(&ingest(1000, 1024, 10)).await.unwrap();

    let job = wait_for_end(&d, job.id).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.records_published, 25);
    assert_eq!(handler.runs.load(Ordering::SeqCst), 3);
    shutdown.cancel();
    handle.await.unwrap();
    assert_eq!(messages_left(&d).await, 0, "every wake-up was deleted");
}

#[tokio::test]
async fn a_transient_failure_is_retried_by_the_worker_loop() {
    let d = start_with_loops(settings(30_000, 3)).await;
    let handler = Arc::new(Blocks {
        flaky: true,
        stall: false,
        runs: AtomicU32::new(0),
    });
    let (shutdown, handle) = spawn_worker(&d, handler.clone());
    let job = d.client.create_job(&ingest(1, 4, 2)).await.unwrap();

    let job = wait_for_end(&d, job.id).await;
    assert_eq!((job.state, job.records_published), (JobState::Succeeded, 4));
    assert_eq!(handler.runs.load(Ordering::SeqCst), 4);
    let tasks = d.client.tasks("acme", job.id).await.unwrap();
    assert!(tasks.iter().all(|t| t.attempt == 2));
    shutdown.cancel();
    handle.await.unwrap();
}

#[tokio::test]
async fn a_cancelled_job_cancels_its_running_handler() {
    let d = start_with_loops(settings(30_000, 3)).await;
    let handler = Arc::new(Blocks {
        flaky: false,
        stall: true,
        runs: AtomicU32::new(0),
    });
    let (shutdown, handle) = spawn_worker(&d, handler.clone());
    let job = d.client.create_job(&ingest(1, 1, 1)).await.unwrap();
    for _ in 0..100 {
        if handler.runs.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sqlx::query("update jobs set state = 'cancelled' where id = $1")
        .bind(job.id)
        .execute(&d.pool)
        .await
        .unwrap();

    let mut state = String::new();
    for _ in 0..100 {
        state = sqlx::query_scalar("select state from tasks where job_id = $1")
            .bind(job.id)
            .fetch_one(&d.pool)
            .await
            .unwrap();
        if state == "cancelled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "cancelled");
    shutdown.cancel();
    handle.await.unwrap();
}

#[tokio::test]
async fn a_worker_shut_down_mid_task_releases_it_to_the_next_without_using_an_attempt() {
    let d = start_with_loops(settings(30_000, 1)).await;
    let stuck = Arc::new(Blocks {
        flaky: false,
        stall: true,
        runs: AtomicU32::new(0),
    });
    let (shutdown, handle) = spawn_named(&d, stuck.clone(), "leaving");
    let job = d.client.create_job(&ingest(1, 2, 1)).await.unwrap();
    for _ in 0..100 {
        if stuck.runs.load(Ordering::SeqCst) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stuck.runs.load(Ordering::SeqCst), 2);

    // SIGTERM: the grace runs out, both tasks are given back at once.
    let stopped = std::time::Instant::now();
    shutdown.cancel();
    handle.await.unwrap();
    assert!(stopped.elapsed() < Duration::from_secs(5));
    let states: Vec<(String, i32)> =
        sqlx::query_as("select state, attempt from tasks where job_id = $1 order by seq")
            .bind(job.id)
            .fetch_all(&d.pool)
            .await
            .unwrap();
    assert_eq!(
        states,
        [("queued".to_string(), 1), ("queued".to_string(), 1)]
    );

    // A budget of one attempt, yet the next worker gets attempt 2 and succeeds.
    let healthy = Arc::new(Blocks {
        flaky: false,
        stall: false,
        runs: AtomicU32::new(0),
    });
    let (shutdown, handle) = spawn_named(&d, healthy.clone(), "arriving");
    let job = wait_for_end(&d, job.id).await;
    assert_eq!((job.state, job.records_published), (JobState::Succeeded, 2));
    let tasks = d.client.tasks("acme", job.id).await.unwrap();
    for task in &tasks {
        let seen: Vec<(String, Option<String>)> = task
            .attempts
            .iter()
            .map(|a| (a.worker_id.clone(), a.outcome.clone()))
            .collect();
        let released = ("leaving".to_string(), Some("released".to_string()));
        let succeeded = ("arriving".to_string(), Some("succeeded".to_string()));
        assert_eq!(seen, [released, succeeded]);
    }
    shutdown.cancel();
    handle.await.unwrap();
}
