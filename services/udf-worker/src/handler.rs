//! The [`UdfHandler`]: one claimed UDF task, from component bytes to outcome.
//!
//! For each task it reads the component from object storage by digest,
//! loads it with the shared [`Host`] (which checks the digest and the
//! imports, and compiles once per engine: a job that asked for deterministic
//! execution gets the host's deterministic one), asks the broker for the
//! task's credentials (objects then go through the broker's endpoint, or
//! straight to S3 when the broker answered with STS credentials), and runs
//! the component on a blocking thread. Whatever the component does
//! (returns an error, traps, breaks a limit) ends as a [`TaskFailure`] with
//! the host's failure class; the worker itself goes on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::{ObjectStore, ObjectStoreExt};
use tokio_util::sync::CancellationToken;
use trace_broker::client::BrokerClient;
use trace_common::api::{CredentialRequest, FailureClass, Lease, QueryLimits};
use trace_common::http::ServiceClient;
use trace_common::limits::TaskLimits;
use trace_common::queue::http::HttpQueue;
use trace_common::queue::{Queue, QueueError};
use trace_common::worker::{TaskFailure, TaskHandler, TaskOutcome};
use trace_host::{Capabilities, Execution, Host, Loaded, RunOutput, TaskInput};

use crate::bridge::Bridge;
use crate::log::CollectedLog;
use crate::objects::BrokerObjects;
use crate::objects_s3::S3Objects;
use crate::query::HttpQuery;
use crate::records::{PublishLimits, Publisher, RecordsCap, send_batches};
use crate::{Config, Error};

/// Runs UDF tasks; one per worker, shared by its concurrent tasks.
pub struct UdfHandler {
    host: Arc<Host>,
    objects: Arc<dyn ObjectStore>,
    buffer: Arc<dyn Queue>,
    query: ServiceClient,
    broker: BrokerClient,
    worker_id: String,
    /// The most a task gets here; each runs under these narrowed to its job's.
    maxima: TaskLimits,
    /// The AWS SDK's settings (region, endpoint), loaded the first time the
    /// broker hands out STS credentials.
    aws: tokio::sync::OnceCell<aws_config::SdkConfig>,
}

impl UdfHandler {
    /// A handler for `config`: its host, object store and service clients.
    pub async fn from_config(config: &Config) -> Result<Self, Error> {
        let bucket = config.objects_bucket.as_deref();
        let objects = trace_common::objects::open(&config.objects_dir, bucket).await?;
        Ok(Self {
            host: Arc::new(crate::host(config)?),
            objects,
            buffer: Arc::new(HttpQueue::new(config.dispatcher_url.clone())),
            query: ServiceClient::new(config.query_url.clone()),
            broker: BrokerClient::new(config.broker_url.clone()),
            worker_id: config.worker_id.clone(),
            maxima: config.maxima(),
            aws: tokio::sync::OnceCell::new(),
        })
    }

    /// Reaches S3 with `sdk`'s region and endpoint when the broker hands
    /// out STS credentials, instead of the settings from the environment.
    pub fn with_aws(mut self, sdk: aws_config::SdkConfig) -> Self {
        self.aws = tokio::sync::OnceCell::new_with(Some(sdk));
        self
    }

    /// Uses `queue` for the record buffer instead of the dispatcher's queue
    /// endpoint, as trace-dev and the tests do in one process.
    pub fn with_buffer(mut self, queue: Arc<dyn Queue>) -> Self {
        self.buffer = queue;
        self
    }

    /// The loaded component of `lease`, read and compiled if need be, for
    /// the execution its job asked for.
    async fn load(&self, lease: &Lease) -> Result<Loaded, TaskFailure> {
        let Some(component) = &lease.component else {
            return Err(TaskFailure::deterministic(
                "the task's job names no component",
            ));
        };
        let digest = component.digest.clone();
        let key = object_store::path::Path::from(trace_common::objects::component_key(&digest));
        let bytes = match self.objects.get(&key).await {
            Ok(got) => got.bytes().await,
            Err(err) => Err(err),
        };
        let bytes = bytes.map_err(|err| match err {
            object_store::Error::NotFound { .. } => {
                TaskFailure::deterministic(format!("component `{digest}` is not in object storage"))
            }
            err => {
                tracing::warn!(error = %err, digest, "reading the component failed");
                TaskFailure::transient("the component could not be read from object storage")
            }
        })?;
        let execution = if lease.deterministic {
            Execution::Deterministic
        } else {
            Execution::Normal
        };
        let host = self.host.clone();
        let loaded =
            tokio::task::spawn_blocking(move || host.load_for(&digest, &bytes, execution)).await;
        match loaded {
            Ok(Ok(loaded)) => Ok(loaded),
            Ok(Err(err)) => Err(failure(error_chain(&err), err.class())),
            Err(join) => Err(TaskFailure::transient(format!(
                "loading the component failed: {join}"
            ))),
        }
    }
}

#[async_trait::async_trait]
impl TaskHandler for UdfHandler {
    /// Runs the task under its limits, within its wall-clock budget.
    async fn run(
        &self,
        lease: Lease,
        cancel: CancellationToken,
    ) -> Result<TaskOutcome, TaskFailure> {
        let limits = self.maxima.narrowed(&lease.limits);
        let wall = Duration::from_secs(limits.task_wall_secs);
        let budget = cancel.child_token();
        let timer = {
            let budget = budget.clone();
            tokio::spawn(async move {
                tokio::time::sleep(wall).await;
                budget.cancel();
            })
        };
        let result = self.run_within(lease, &limits, budget.clone()).await;
        timer.abort();
        if result.is_err() && budget.is_cancelled() && !cancel.is_cancelled() {
            return Err(TaskFailure::deterministic(format!(
                "the task exceeded its wall-clock budget of {}s (task_wall_secs)",
                wall.as_secs()
            )));
        }
        result
    }
}

impl UdfHandler {
    async fn run_within(
        &self,
        lease: Lease,
        task_limits: &TaskLimits,
        cancel: CancellationToken,
    ) -> Result<TaskOutcome, TaskFailure> {
        let loaded = self.load(&lease).await?;
        let request = CredentialRequest {
            task_id: lease.task_id,
            attempt: lease.attempt,
            worker_id: self.worker_id.clone(),
        };
        let credentials = self.broker.credentials(&request).await.map_err(|err| {
            tracing::warn!(error = %err, task = %lease.task_id, "no credentials for the task");
            TaskFailure::transient("the broker gave no credentials for the task")
        })?;

        let bridge = Bridge::current(cancel.clone());
        let log = CollectedLog::default();
        let publish = PublishLimits {
            max_records: task_limits.max_records,
            max_record_bytes: task_limits.max_record_bytes,
            max_alerts: task_limits.max_alerts,
        };
        let publisher = Arc::new(Mutex::new(Publisher::new(
            self.buffer.clone(),
            lease.clone(),
            publish,
        )));
        let caps = Capabilities {
            query: Box::new(HttpQuery::new(
                self.query.clone(),
                &lease.tenant_id,
                bridge.clone(),
                QueryLimits {
                    max_rows: Some(task_limits.max_query_rows),
                    max_bytes: Some(task_limits.max_query_bytes),
                    timeout_ms: Some(task_limits.query_timeout_secs.saturating_mul(1000)),
                },
            )),
            objects: match &credentials.aws {
                Some(aws) => {
                    let sdk = self.aws.get_or_init(trace_common::aws::sdk_config).await;
                    let prefix = credentials.prefix.clone();
                    let refresh = (self.broker.clone(), request.clone());
                    Box::new(S3Objects::new(sdk, aws, refresh, prefix, bridge.clone()))
                }
                None => Box::new(BrokerObjects::new(
                    self.broker.clone(),
                    credentials.token,
                    bridge.clone(),
                )),
            },
            records: Box::new(RecordsCap::new(publisher.clone(), bridge)),
            log: Box::new(log.clone()),
        };

        let host = self.host.clone();
        let limits = crate::run_limits(task_limits);
        let task = task_input(&lease);
        let started = std::time::Instant::now();
        let flag = Arc::new(AtomicBool::new(false));
        let watcher = tokio::spawn(raise_on_cancel(cancel.clone(), flag.clone()));
        let ran = tokio::task::spawn_blocking(move || {
            host.run_cancellable(&loaded, task, caps, &limits, &flag)
        })
        .await;
        watcher.abort();
        tracing::info!(task = %lease.task_id, elapsed_ms = started.elapsed().as_millis() as u64,
            ok = matches!(ran, Ok(Ok(_))), "component ran");

        let output = match ran {
            Ok(Ok(output)) => {
                let timing = output.timing;
                trace_common::metrics::histogram!("trace_udf_instantiate_seconds")
                    .record(timing.instantiate.as_secs_f64());
                trace_common::metrics::histogram!("trace_udf_call_seconds")
                    .record(timing.call.as_secs_f64());
                output
            }
            Ok(Err(err)) => return Err(failure_with(err.to_string(), err.class(), &log)),
            Err(join) => {
                let reason = format!("the component's thread failed: {join}");
                return Err(failure_with(reason, FailureClass::Transient, &log));
            }
        };
        if cancel.is_cancelled() {
            let reason = "the task was cancelled while it ran".to_string();
            return Err(failure_with(reason, FailureClass::Transient, &log));
        }

        let (queue, batches, records, alerts, sent) = {
            let mut p = publisher.lock().unwrap_or_else(|p| p.into_inner());
            if p.lost_batch() {
                let reason = "a batch of records could not be sent to the buffer".to_string();
                return Err(failure_with(reason, FailureClass::Transient, &log));
            }
            let batches = p.take_all();
            (
                p.queue(),
                batches,
                p.records_published(),
                p.alerts_published(),
                p.batches(),
            )
        };
        match send_batches(queue.as_ref(), &batches).await {
            Ok(()) => {}
            Err(QueueError::TooLarge(message)) => {
                let reason = format!(
                    "component broke a limit: a batch of records is too large for the record \
                     buffer: {message}"
                );
                return Err(failure_with(reason, FailureClass::Deterministic, &log));
            }
            Err(err) => {
                tracing::warn!(error = %err, task = %lease.task_id, "buffer queue send failed");
                let reason = "the record buffer is unavailable".to_string();
                return Err(failure_with(reason, FailureClass::Transient, &log));
            }
        }
        Ok(TaskOutcome {
            summary: summary_json(&output),
            records_published: records,
            alerts_published: alerts,
            batches: sent,
            logs: log.take(),
        })
    }
}

/// Sets `flag` once `cancel` fires, so that the running component is
/// interrupted at its next epoch tick.
async fn raise_on_cancel(cancel: CancellationToken, flag: Arc<AtomicBool>) {
    cancel.cancelled().await;
    flag.store(true, Ordering::Relaxed);
}

/// The WIT task of a lease.
fn task_input(lease: &Lease) -> TaskInput {
    TaskInput {
        job_id: lease.job_id.to_string(),
        task_id: lease.task_id.to_string(),
        attempt: lease.attempt,
        chain_id: lease.chain_id,
        from_block: lease.from_block,
        to_block: lease.to_block,
        params: lease.params.to_string(),
    }
}

/// The summary stored with the task: the component's message and counters,
/// how long the run took and, for a deterministic run, the fuel it used.
fn summary_json(output: &RunOutput) -> serde_json::Value {
    let counters: serde_json::Map<String, serde_json::Value> = output
        .counters
        .iter()
        .map(|(k, v)| (k.clone(), (*v).into()))
        .collect();
    let mut summary = serde_json::json!({
        "message": output.message,
        "counters": counters,
        "query_calls": output.query_calls,
        "instantiate_us": output.timing.instantiate.as_micros() as u64,
        "run_ms": output.timing.call.as_millis() as u64,
    });
    if let Some(fuel) = output.fuel_consumed {
        summary["fuel"] = fuel.into();
    }
    summary
}

/// The longest failure reason sent, in characters: a component's own error
/// text can be of any length, and the dispatcher keeps no more than this.
const MAX_REASON_CHARS: usize = 4096;

fn failure(reason: String, class: FailureClass) -> TaskFailure {
    TaskFailure {
        reason: cut_reason(reason),
        class,
        logs: Vec::new(),
    }
}

fn failure_with(reason: String, class: FailureClass, log: &CollectedLog) -> TaskFailure {
    TaskFailure {
        reason: cut_reason(reason),
        class,
        logs: log.take(),
    }
}

fn cut_reason(reason: String) -> String {
    match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((end, _)) => format!("{}…", &reason[..end]),
        None => reason,
    }
}

/// An error and its sources, joined with `: `.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
