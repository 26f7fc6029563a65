//! The worker loop both worker kinds share: receive a wake-up, claim the task,
//! run it under a heartbeated lease, report the outcome, delete the message.
//!
//! A queue message only says "look at this task"; the claim decides. A
//! message whose task cannot be claimed (someone else holds it, it is done,
//! its job ended) is deleted. While the handler runs, the loop heartbeats and
//! cancels the handler's token when the job is cancelled or the lease turned
//! stale (the reaper gave the task to someone else). Calls to the dispatcher
//! that fail in transport are retried with backoff. On shutdown the loop
//! stops receiving and gives running tasks [`WorkerOptions::shutdown_grace`]
//! to finish; those still running then are stopped and released back to the
//! dispatcher, which queues them at once without counting the attempt.

use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument as _;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::api::{CompleteRequest, FailRequest, FailureClass, Lease, LogLine, TaskMessage};
use crate::dispatcher_client::{DispatcherClient, STALE_LEASE};
use crate::http::ClientError;
use crate::queue::{Queue, Received};

/// The longest a receive waits for a message before looking at shutdown again.
const RECEIVE_WAIT: Duration = Duration::from_secs(5);
/// The first pause after a failed call; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How many times a report (complete or fail) is tried before it is given up;
/// the reaper then returns the task when its lease expires.
const REPORT_TRIES: u32 = 12;

/// Runs one claimed task.
#[async_trait::async_trait]
pub trait TaskHandler: Send + Sync + 'static {
    /// Runs the task of `lease`; `cancel` fires when the job is cancelled or
    /// the lease was lost, and the handler should then stop soon.
    async fn run(
        &self,
        lease: Lease,
        cancel: CancellationToken,
    ) -> Result<TaskOutcome, TaskFailure>;
}

/// What a task that succeeded reports.
#[derive(Debug, Clone, Default)]
pub struct TaskOutcome {
    pub summary: serde_json::Value,
    pub records_published: u64,
    pub alerts_published: u64,
    /// Buffer batches the attempt sent; the sinks wait for all of them.
    pub batches: u32,
    pub logs: Vec<LogLine>,
}

/// What a task that failed reports.
#[derive(Debug, Clone)]
pub struct TaskFailure {
    pub reason: String,
    pub class: FailureClass,
    pub logs: Vec<LogLine>,
}

impl TaskFailure {
    /// A failure that running again may fix.
    pub fn transient(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            class: FailureClass::Transient,
            logs: Vec::new(),
        }
    }

    /// A failure that running again repeats.
    pub fn deterministic(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            class: FailureClass::Deterministic,
            logs: Vec::new(),
        }
    }
}

/// How a worker loop runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The task queue to receive from (`tasks-udf` or `tasks-ingest`).
    pub queue_name: String,
    /// This worker's id, recorded as the lease owner.
    pub worker_id: String,
    /// How many tasks run at once.
    pub concurrency: usize,
    /// How long a received message stays invisible to other workers.
    pub visibility: Duration,
    /// How often a running task's lease is extended.
    pub heartbeat_every: Duration,
    /// How long running tasks may go on after shutdown before they are
    /// stopped and released.
    pub shutdown_grace: Duration,
}

impl WorkerOptions {
    /// Options for `queue_name` with one task at a time, a 60 s visibility
    /// a heartbeat every 5 s (well inside the dispatcher's 30 s lease) and
    /// 20 s of grace at shutdown (inside Kubernetes' default 30 s).
    pub fn new(queue_name: impl Into<String>, worker_id: impl Into<String>) -> Self {
        Self {
            queue_name: queue_name.into(),
            worker_id: worker_id.into(),
            concurrency: 1,
            visibility: Duration::from_secs(60),
            heartbeat_every: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// Runs a worker process's loop over the queue endpoint at `dispatcher_url`
/// (the embedded queue lives with the dispatcher) and serves its health
/// route on `listener`, until `shutdown`; running tasks finish first.
pub async fn serve_worker(
    listener: tokio::net::TcpListener,
    dispatcher_url: &str,
    handler: Arc<dyn TaskHandler>,
    options: WorkerOptions,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let queue = Arc::new(crate::queue::http::HttpQueue::new(dispatcher_url));
    let dispatcher = DispatcherClient::new(dispatcher_url);
    let worker = tokio::spawn(run_worker(
        queue,
        dispatcher,
        handler,
        options,
        shutdown.clone(),
    ));
    let health = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
    let stop = shutdown.clone();
    let served = crate::http::serve(listener, health, async move { stop.cancelled().await }).await;
    shutdown.cancel();
    let _ = worker.await;
    served
}

/// Runs the worker loop until `shutdown`, then waits for running tasks.
pub async fn run_worker(
    queue: Arc<dyn Queue>,
    dispatcher: DispatcherClient,
    handler: Arc<dyn TaskHandler>,
    options: WorkerOptions,
    shutdown: CancellationToken,
) {
    let worker = Arc::new(Worker {
        queue,
        dispatcher,
        handler,
        options,
        release: CancellationToken::new(),
    });
    let slots = Arc::new(Semaphore::new(worker.options.concurrency.max(1)));
    let tracker = TaskTracker::new();
    let mut backoff = FIRST_BACKOFF;
    tracing::info!(queue = %worker.options.queue_name, worker = %worker.options.worker_id,
        "worker loop started");

    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let received = tokio::select! {
            _ = shutdown.cancelled() => break,
            received = worker.receive(1) => received,
        };
        match received {
            Ok(mut messages) => {
                backoff = FIRST_BACKOFF;
                if let Some(message) = messages.pop() {
                    let worker = worker.clone();
                    tracker.spawn(async move {
                        worker.process(message).await;
                        drop(permit);
                    });
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, queue = %worker.options.queue_name,
                    "receive failed; retrying");
                sleep_or_shutdown(backoff, &shutdown).await;
                backoff = next_backoff(backoff);
            }
        }
    }

    tracker.close();
    let grace = worker.options.shutdown_grace;
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::info!(
            grace_ms = grace.as_millis() as u64,
            "tasks still running after the shutdown grace; releasing them"
        );
        worker.release.cancel();
        tracker.wait().await;
    }
    tracing::info!(queue = %worker.options.queue_name, "worker loop stopped");
}

struct Worker {
    queue: Arc<dyn Queue>,
    dispatcher: DispatcherClient,
    handler: Arc<dyn TaskHandler>,
    options: WorkerOptions,
    /// Fires when the shutdown grace ran out: stop and release every task.
    release: CancellationToken,
}

/// How a heartbeat loop ended a task early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancelled,
    Stale,
}

impl Worker {
    async fn receive(&self, max: u32) -> Result<Vec<Received>, crate::queue::QueueError> {
        let queue = &self.options.queue_name;
        self.queue
            .receive(queue, max, RECEIVE_WAIT, self.options.visibility)
            .await
    }

    /// Handles one message from claim to delete.
    async fn process(&self, message: Received) {
        let task: TaskMessage = match serde_json::from_value(message.body.clone()) {
            Ok(task) => task,
            Err(err) => {
                tracing::warn!(error = %err, "dropping a message that is not a task wake-up");
                self.delete(&message.receipt).await;
                return;
            }
        };
        let trace = crate::telemetry::task_trace(task.task_id);
        let span = tracing::info_span!(parent: None, "task", trace_id = %trace,
            task = %task.task_id);
        crate::telemetry::root_span(&span, &trace);
        crate::telemetry::with_trace(trace, async {
            if let Some(lease) = self.claim(task.task_id).await {
                self.run(lease).await;
            }
        })
        .instrument(span)
        .await;
        self.delete(&message.receipt).await;
    }

    /// Claims `task`, retrying transport and server errors; `None` when it
    /// is not claimable or the dispatcher refuses it.
    async fn claim(&self, task: Uuid) -> Option<Lease> {
        let mut backoff = FIRST_BACKOFF;
        for _ in 0..REPORT_TRIES {
            match self.dispatcher.claim(task, &self.options.worker_id).await {
                Ok(Some(lease)) => return Some(lease),
                Ok(None) => {
                    tracing::debug!(task = %task, "task not claimable; dropping its message");
                    return None;
                }
                Err(err) if is_refusal(&err) => {
                    tracing::warn!(task = %task, error = %err, "claim refused");
                    return None;
                }
                Err(err) => {
                    tracing::warn!(task = %task, error = %err, "claim failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = next_backoff(backoff);
                }
            }
        }
        None
    }

    /// Runs the handler under a heartbeated lease and reports the result.
    async fn run(&self, lease: Lease) {
        let (task, attempt) = (lease.task_id, lease.attempt);
        tracing::info!(task = %task, attempt, job = %lease.job_id, "task claimed");
        let cancel = CancellationToken::new();
        let handler = self.handler.clone();
        let token = cancel.clone();
        let trace = crate::telemetry::task_trace(task);
        let run =
            crate::telemetry::with_trace(trace, async move { handler.run(lease, token).await });
        let mut run = tokio::spawn(run.instrument(tracing::Span::current()));

        let done = CancellationToken::new();
        let beats = self.heartbeat(task, attempt, cancel.clone(), done.clone());
        let mut released = false;
        let (result, stop) = tokio::join!(
            async {
                let result = tokio::select! {
                    result = &mut run => result,
                    _ = self.release.cancelled() => {
                        released = true;
                        cancel.cancel();
                        (&mut run).await
                    }
                };
                done.cancel();
                result
            },
            beats
        );

        let result = match result {
            Ok(result) => result,
            Err(err) => {
                tracing::error!(task = %task, attempt, error = %err, "task handler panicked");
                Err(TaskFailure::transient("the task handler panicked"))
            }
        };
        if stop == Some(Stop::Stale) {
            tracing::warn!(task = %task, attempt, "lease lost while running; result dropped");
            return;
        }
        if released && result.is_err() {
            self.give_back(task, attempt).await;
            return;
        }
        self.report(task, attempt, result).await;
    }

    /// Heartbeats until `done`; cancels `cancel` and says why when the job
    /// was cancelled or the lease is stale.
    async fn heartbeat(
        &self,
        task: Uuid,
        attempt: u32,
        cancel: CancellationToken,
        done: CancellationToken,
    ) -> Option<Stop> {
        let mut stop = None;
        loop {
            tokio::select! {
                _ = done.cancelled() => return stop,
                _ = tokio::time::sleep(self.options.heartbeat_every) => {}
            }
            match self.dispatcher.heartbeat(task, attempt).await {
                Ok(resp) if resp.cancelled => {
                    if stop.is_none() {
                        tracing::info!(task = %task, attempt, "job cancelled; stopping task");
                    }
                    stop = Some(Stop::Cancelled);
                    cancel.cancel();
                }
                Ok(_) => {}
                Err(err) if err.code() == Some(STALE_LEASE) => {
                    tracing::warn!(task = %task, attempt, "lease is stale; stopping task");
                    cancel.cancel();
                    // Wait for the handler to return; nothing more to extend.
                    done.cancelled().await;
                    return Some(Stop::Stale);
                }
                Err(err) => tracing::warn!(task = %task, attempt, error = %err, "heartbeat failed"),
            }
        }
    }

    /// Completes or fails the task, retrying transport errors. A completion
    /// the dispatcher refuses for what it holds (400, 413 or 422; not a
    /// stale lease) is reported as a deterministic failure naming the
    /// refusal, so that the task ends now rather than when its lease runs
    /// out.
    async fn report(&self, task: Uuid, attempt: u32, result: Result<TaskOutcome, TaskFailure>) {
        let mut result = result;
        let mut backoff = FIRST_BACKOFF;
        let mut tries = 0;
        while tries < REPORT_TRIES {
            let sent = match &result {
                Ok(outcome) => {
                    let req = CompleteRequest {
                        attempt,
                        summary: outcome.summary.clone(),
                        records_published: outcome.records_published,
                        alerts_published: outcome.alerts_published,
                        batches: outcome.batches,
                        logs: outcome.logs.clone(),
                    };
                    self.dispatcher.complete(task, &req).await
                }
                Err(failure) => {
                    let req = FailRequest {
                        attempt,
                        reason: failure.reason.clone(),
                        class: failure.class,
                        logs: failure.logs.clone(),
                    };
                    self.dispatcher.fail(task, &req).await
                }
            };
            match sent {
                Ok(()) => {
                    let ok = result.is_ok();
                    tracing::info!(task = %task, attempt, succeeded = ok, "task reported");
                    return;
                }
                // The completion itself is unacceptable (malformed, too
                // large, a value that cannot be stored): report a failure
                // instead, once, without using up a try.
                Err(err) if result.is_ok() && matches!(err.status(), Some(400 | 413 | 422)) => {
                    tracing::warn!(task = %task, attempt, error = %err, "completion refused");
                    let logs = result.map(|o| o.logs).unwrap_or_default();
                    result = Err(TaskFailure {
                        reason: format!("the dispatcher refused the task's completion: {err}"),
                        class: FailureClass::Deterministic,
                        logs,
                    });
                    continue;
                }
                Err(err) if is_refusal(&err) => {
                    tracing::warn!(task = %task, attempt, error = %err, "report refused");
                    return;
                }
                Err(err) => {
                    tracing::warn!(task = %task, attempt, error = %err, "report failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = next_backoff(backoff);
                }
            }
            tries += 1;
        }
        tracing::error!(task = %task, attempt, "report given up; the reaper will return the task");
    }

    /// Releases a task stopped by shutdown; if the dispatcher cannot be
    /// reached the reaper returns it when the lease expires.
    async fn give_back(&self, task: Uuid, attempt: u32) {
        let mut backoff = FIRST_BACKOFF;
        for _ in 0..4 {
            match self.dispatcher.release(task, attempt).await {
                Ok(()) => {
                    tracing::info!(task = %task, attempt, "task released at shutdown");
                    return;
                }
                Err(err) if is_refusal(&err) => {
                    tracing::warn!(task = %task, attempt, error = %err, "release refused");
                    return;
                }
                Err(err) => {
                    tracing::warn!(task = %task, attempt, error = %err, "release failed");
                    tokio::time::sleep(backoff).await;
                    backoff = next_backoff(backoff);
                }
            }
        }
    }

    /// Deletes a message, retrying a few times; a message left behind is only
    /// a redundant wake-up.
    async fn delete(&self, receipt: &str) {
        let receipts = [receipt.to_string()];
        let mut backoff = FIRST_BACKOFF;
        for _ in 0..4 {
            match self.queue.delete(&self.options.queue_name, &receipts).await {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "message delete failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = next_backoff(backoff);
                }
            }
        }
    }
}

/// A 4xx answer: the dispatcher understood and said no; retrying repeats
/// it. A timeout (408) or throttling (429) on the way is worth retrying.
fn is_refusal(err: &ClientError) -> bool {
    match err.status() {
        Some(408 | 429) | None => false,
        Some(status) => (400..500).contains(&status),
    }
}

fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(MAX_BACKOFF)
}

async fn sleep_or_shutdown(pause: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(pause) => {}
    }
}
