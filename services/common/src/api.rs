//! Request and response bodies exchanged between services over HTTP.
//!
//! These types are the wire contract: each service serves some of them and
//! calls others with them. Field names are snake_case JSON.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::limits::JobLimits;

/// Queue that carries UDF task wake-ups.
pub const QUEUE_TASKS_UDF: &str = "tasks-udf";
/// Queue that carries ingest task wake-ups.
pub const QUEUE_TASKS_INGEST: &str = "tasks-ingest";
/// Queue that buffers published records and alerts on their way to the sinks.
pub const QUEUE_BUFFER: &str = "buffer-records";

/// Header by which the gateway passes the authenticated tenant to internal services.
pub const TENANT_HEADER: &str = "x-trace-tenant";

/// What a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// A user component over a block range.
    Udf,
    /// Platform chain ingest.
    Ingest,
}

/// A job's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// A task's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Dead,
    Cancelled,
}

/// The component a UDF job runs, resolved by the gateway from the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentRef {
    pub name: String,
    pub version: String,
    /// `sha256:<hex>` of the component bytes.
    pub digest: String,
}

/// `POST /v1/jobs` on the dispatcher.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateJob {
    pub tenant_id: String,
    pub kind: JobKind,
    /// Required for [`JobKind::Udf`], absent for ingest.
    pub component: Option<ComponentRef>,
    /// The job's parameters, a JSON object handed to every task.
    #[serde(default = "empty_object")]
    pub params: serde_json::Value,
    pub chain_id: u64,
    pub from_block: u64,
    pub to_block: u64,
    pub chunk_size: u64,
    /// For ingest of a recorded, non-contiguous set: exactly these blocks,
    /// all within `from_block..=to_block`, chunked `chunk_size` blocks a task.
    pub blocks: Option<Vec<u64>>,
    /// Limits below the deployment's that every task of the job runs under.
    #[serde(default)]
    pub limits: JobLimits,
    /// Run every task reproducibly: bounded by fuel, with clocks and random
    /// bytes fixed by the task (see docs/security.md, "Determinism").
    #[serde(default)]
    pub deterministic: bool,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// Counts of a job's tasks by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub total: u64,
    pub queued: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub dead: u64,
    pub cancelled: u64,
}

/// A job as the dispatcher reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: Uuid,
    pub tenant_id: String,
    pub kind: JobKind,
    pub component: Option<ComponentRef>,
    pub params: serde_json::Value,
    pub chain_id: u64,
    pub from_block: u64,
    pub to_block: u64,
    pub chunk_size: u64,
    /// What the job asked for below the deployment's limits.
    #[serde(default)]
    pub limits: JobLimits,
    /// Whether its tasks run deterministically.
    #[serde(default)]
    pub deterministic: bool,
    pub state: JobState,
    pub progress: Progress,
    /// Records that completed tasks published, summed over the job.
    pub records_published: u64,
    /// Alerts that completed tasks published, summed over the job.
    pub alerts_published: u64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One task as the dispatcher reports it in a job's detail.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskInfo {
    pub id: Uuid,
    pub seq: u32,
    pub from_block: u64,
    pub to_block: u64,
    pub state: TaskState,
    pub attempt: u32,
    pub error: Option<String>,
    pub error_class: Option<String>,
    pub summary: Option<serde_json::Value>,
    /// Every attempt so far, oldest first.
    #[serde(default)]
    pub attempts: Vec<AttemptInfo>,
}

/// One attempt at a task: who ran it, how it ended and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptInfo {
    pub attempt: u32,
    pub worker_id: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `succeeded`, `failed`, `expired` or `released`; absent while it runs.
    pub outcome: Option<String>,
    pub reason: Option<String>,
    /// `deterministic` or `transient`, for an attempt that did not succeed.
    pub class: Option<String>,
}

/// What `POST /v1/jobs/{id}/retry` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetryOutcome {
    /// Tasks that were dead, failed or cancelled and are queued again.
    pub requeued: u64,
    pub job: Job,
}

/// The body of a task wake-up message on a task queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskMessage {
    pub task_id: Uuid,
    pub job_id: Uuid,
}

/// `POST /v1/tasks/{id}/claim` on the dispatcher.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimRequest {
    pub worker_id: String,
}

/// What a worker needs to run a claimed task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lease {
    pub task_id: Uuid,
    pub job_id: Uuid,
    pub tenant_id: String,
    pub kind: JobKind,
    /// The fencing token: heartbeat, complete and fail must carry it.
    pub attempt: u32,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub component: Option<ComponentRef>,
    pub params: serde_json::Value,
    pub chain_id: u64,
    pub from_block: u64,
    pub to_block: u64,
    pub blocks: Option<Vec<u64>>,
    /// What the job asked for; the worker narrows its own limits to them.
    #[serde(default)]
    pub limits: JobLimits,
    /// The job asked for deterministic execution.
    #[serde(default)]
    pub deterministic: bool,
}

/// `POST /v1/tasks/{id}/heartbeat` on the dispatcher.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    pub attempt: u32,
}

/// Answer to a heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// The job was cancelled: stop and release the task.
    pub cancelled: bool,
}

/// A structured log line from a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLine {
    pub level: String,
    pub message: String,
    #[serde(default)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// `POST /v1/tasks/{id}/complete` on the dispatcher.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompleteRequest {
    pub attempt: u32,
    pub summary: serde_json::Value,
    pub records_published: u64,
    pub alerts_published: u64,
    /// How many buffer batches this attempt sent (`seq` ran `0..batches`):
    /// the sinks make the attempt visible once all of them arrived.
    pub batches: u32,
    #[serde(default)]
    pub logs: Vec<LogLine>,
}

/// How a failure should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Running it again gives the same failure: the task fails.
    Deterministic,
    /// Running it again may work: the task is retried.
    Transient,
}

/// `POST /v1/tasks/{id}/fail` on the dispatcher.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailRequest {
    pub attempt: u32,
    pub reason: String,
    pub class: FailureClass,
    #[serde(default)]
    pub logs: Vec<LogLine>,
}

/// `POST /v1/tasks/{id}/release` on the dispatcher: a worker that is shutting
/// down gives back a task it could not finish.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseRequest {
    pub attempt: u32,
}

/// `GET /v1/tasks/{id}/lease?attempt=N` on the dispatcher: is this lease live?
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseStatus {
    pub live: bool,
    pub tenant_id: String,
    pub job_id: Uuid,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// `POST /v1/credentials` on the broker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialRequest {
    pub task_id: Uuid,
    pub attempt: u32,
    pub worker_id: String,
}

/// Task-scoped object-storage credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    /// Bearer token for the broker's object endpoint (embedded mode).
    pub token: String,
    /// The prefix every key of this task is stored under.
    pub prefix: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// In AWS mode, STS credentials limited to the prefix of the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsCredentials>,
}

/// Temporary AWS credentials from STS for one task attempt.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// The bucket the prefix is in.
    pub bucket: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for AwsCredentials {
    /// Keeps the secret and the session token out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("bucket", &self.bucket)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Where a query runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuerySource {
    #[default]
    Postgres,
    Lake,
}

/// `POST /v1/query` on the query service (and on the gateway, without the tenant).
///
/// The answer is an Arrow IPC stream (`application/vnd.apache.arrow.stream`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryRequest {
    pub sql: String,
    /// Bound to `$1`, `$2`, ...: JSON null, bool, number or string.
    #[serde(default)]
    pub params: Vec<serde_json::Value>,
    #[serde(default)]
    pub source: QuerySource,
    /// Lower bounds than the service's own for this one query (a task's
    /// job asked for them); the service never goes above its own.
    #[serde(default)]
    pub limits: QueryLimits,
}

/// Bounds a query request may lower; each absent one is the service's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryLimits {
    /// Most rows of the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
    /// Most bytes of the result, as Arrow holds the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// The statement timeout, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// Content type of Arrow IPC stream bodies.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// A dataset column declaration, as records carry it to the sinks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// One of `text`, `int64`, `float64`, `boolean`, `numeric`, `timestamp`.
    pub kind: String,
    pub nullable: bool,
}

/// An alert as a task published it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alert {
    /// Stable id: derived from the job and the alert's key.
    pub id: String,
    pub key: String,
    pub severity: String,
    pub title: String,
    pub payload: serde_json::Value,
}

/// What a buffer message carries from a UDF worker to the sinks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BufferPayload {
    Records {
        dataset: String,
        columns: Vec<Column>,
        rows: Vec<serde_json::Map<String, serde_json::Value>>,
    },
    Alerts {
        alerts: Vec<Alert>,
    },
}

/// A batch on the buffer queue, tagged with the attempt that produced it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BufferBatch {
    /// Unique per batch and stable across redelivery: `{task}:{attempt}:{seq}`.
    pub batch_id: String,
    pub tenant_id: String,
    pub job_id: Uuid,
    pub task_id: Uuid,
    pub attempt: u32,
    pub seq: u32,
    #[serde(flatten)]
    pub payload: BufferPayload,
}

/// The dispatcher's word to the sinks on how an attempt ended, sent through
/// the buffer queue from the outbox in the transaction that ended it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptEnd {
    /// The attempt completed: once its `batches` batches have arrived they
    /// become visible, together and exactly once, and no other attempt of the
    /// task ever will.
    Commit {
        tenant_id: String,
        job_id: Uuid,
        task_id: Uuid,
        attempt: u32,
        batches: u32,
    },
    /// The attempt will never complete: its batches, arrived or not, are
    /// dropped.
    Discard {
        tenant_id: String,
        job_id: Uuid,
        task_id: Uuid,
        attempt: u32,
    },
}

impl AttemptEnd {
    /// Whether a buffer message body is an [`AttemptEnd`] rather than a
    /// [`BufferBatch`]: by its `kind`.
    pub fn is_attempt_end(body: &serde_json::Value) -> bool {
        matches!(
            body.get("kind").and_then(serde_json::Value::as_str),
            Some("commit" | "discard")
        )
    }
}

/// `GET /v1/progress/{job}` on the sinks and on delivery.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SinkProgress {
    /// Records of completed attempts, visible in datasets.
    pub records: u64,
    /// Records that arrived but whose attempt has not been committed yet.
    #[serde(default)]
    pub staged: u64,
    /// Alerts stored for the job.
    pub alerts: u64,
    /// Batches refused, with reasons in `sink_rejects`.
    pub rejected_batches: u64,
}

/// `GET /v1/progress/{job}` on delivery.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeliveryProgress {
    pub delivered: u64,
    pub pending: u64,
    pub failed: u64,
}

/// A job as the gateway reports it: the dispatcher's view plus the data plane's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobStatus {
    #[serde(flatten)]
    pub job: Job,
    pub tasks: Vec<TaskInfo>,
    pub sunk: SinkProgress,
    pub delivery: DeliveryProgress,
}

/// A published component version, as the registry reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComponentVersion {
    pub name: String,
    pub version: String,
    pub digest: String,
    pub size_bytes: u64,
    pub world: String,
    pub imports: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// `POST /v1/jobs` on the gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmitJob {
    /// `name@version` of a published component; absent for ingest jobs.
    pub component: Option<String>,
    pub kind: JobKind,
    #[serde(default = "empty_object")]
    pub params: serde_json::Value,
    #[serde(default = "mainnet")]
    pub chain_id: u64,
    pub from_block: u64,
    pub to_block: u64,
    pub chunk_size: u64,
    pub blocks: Option<Vec<u64>>,
    /// Limits below the deployment's for every task (see [`JobLimits`]).
    #[serde(default)]
    pub limits: JobLimits,
    /// Run every task reproducibly (see [`CreateJob::deterministic`]).
    #[serde(default)]
    pub deterministic: bool,
}

fn mainnet() -> u64 {
    1
}

/// `POST /v1/webhooks` on the gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateWebhook {
    pub url: String,
    /// A `whsec_`-prefixed secret to use; one is generated when absent.
    pub secret: Option<String>,
}

/// A registered webhook endpoint; the secret is shown only when created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub secret: Option<String>,
}

/// What a replay provider recorded, from its `replay_recordedBlocks` method.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RecordedBlocks {
    /// Blocks with a full `eth_getBlockByNumber` object.
    pub blocks: Vec<u64>,
    /// Blocks with an `eth_getBlockReceipts` array.
    pub receipts: Vec<u64>,
    /// Blocks whose every log is recorded.
    pub logs: Vec<u64>,
}
