//! Rows of the state database and their wire shapes.
//!
//! States are stored as the snake_case names of the API enums; the
//! conversions here are the one place that maps between the two.

use serde::de::DeserializeOwned;
use sqlx::FromRow;
use trace_common::ApiError;
use trace_common::api::{AttemptInfo, ComponentRef, Job, JobLimits, Progress, TaskInfo};
use uuid::Uuid;

/// The columns of a job with its task counts (see [`JOB_SELECT`]).
#[derive(Debug, FromRow)]
pub struct JobRow {
    pub id: Uuid,
    pub tenant_id: String,
    pub kind: String,
    pub component_name: Option<String>,
    pub component_version: Option<String>,
    pub component_digest: Option<String>,
    pub params: serde_json::Value,
    pub chain_id: i64,
    pub from_block: i64,
    pub to_block: i64,
    pub chunk_size: i64,
    pub limits: sqlx::types::Json<JobLimits>,
    pub deterministic: bool,
    pub state: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub total: i64,
    pub queued: i64,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub dead: i64,
    pub cancelled: i64,
    pub records_published: i64,
    pub alerts_published: i64,
}

/// Selects [`JobRow`]s; append a `where` on `j` and then [`JOB_GROUP`].
pub const JOB_SELECT: &str = "select j.id, j.tenant_id, j.kind, j.component_name, \
     j.component_version, j.component_digest, j.params, j.chain_id, j.from_block, j.to_block, \
     j.chunk_size, j.limits, j.deterministic, j.state, j.created_at, j.finished_at, \
     count(t.id) as total, \
     count(t.id) filter (where t.state = 'queued') as queued, \
     count(t.id) filter (where t.state = 'running') as running, \
     count(t.id) filter (where t.state = 'succeeded') as succeeded, \
     count(t.id) filter (where t.state = 'failed') as failed, \
     count(t.id) filter (where t.state = 'dead') as dead, \
     count(t.id) filter (where t.state = 'cancelled') as cancelled, \
     coalesce(sum(t.records_published) filter (where t.state = 'succeeded'), 0)::bigint \
         as records_published, \
     coalesce(sum(t.alerts_published) filter (where t.state = 'succeeded'), 0)::bigint \
         as alerts_published \
     from jobs j left join tasks t on t.job_id = j.id ";

/// Closes a [`JOB_SELECT`] query.
pub const JOB_GROUP: &str = " group by j.id order by j.created_at desc, j.id";

impl JobRow {
    /// The job as the API reports it.
    pub fn into_job(self) -> Result<Job, ApiError> {
        let component = match (
            self.component_name,
            self.component_version,
            self.component_digest,
        ) {
            (Some(name), Some(version), Some(digest)) => Some(ComponentRef {
                name,
                version,
                digest,
            }),
            _ => None,
        };
        let progress = Progress {
            total: count(self.total),
            queued: count(self.queued),
            running: count(self.running),
            succeeded: count(self.succeeded),
            failed: count(self.failed),
            dead: count(self.dead),
            cancelled: count(self.cancelled),
        };
        Ok(Job {
            id: self.id,
            tenant_id: self.tenant_id,
            kind: parse_name(&self.kind)?,
            component,
            params: self.params,
            chain_id: count(self.chain_id),
            from_block: count(self.from_block),
            to_block: count(self.to_block),
            chunk_size: count(self.chunk_size),
            limits: self.limits.0,
            deterministic: self.deterministic,
            state: parse_name(&self.state)?,
            progress,
            records_published: count(self.records_published),
            alerts_published: count(self.alerts_published),
            created_at: self.created_at,
            finished_at: self.finished_at,
        })
    }
}

/// The columns of a task as a job's detail shows it.
#[derive(Debug, FromRow)]
pub struct TaskRow {
    pub id: Uuid,
    pub seq: i32,
    pub from_block: i64,
    pub to_block: i64,
    pub state: String,
    pub attempt: i32,
    pub error: Option<String>,
    pub error_class: Option<String>,
    pub summary: Option<serde_json::Value>,
}

impl TaskRow {
    /// The task as the API reports it.
    pub fn into_info(self) -> Result<TaskInfo, ApiError> {
        Ok(TaskInfo {
            id: self.id,
            seq: u32::try_from(self.seq).unwrap_or(0),
            from_block: count(self.from_block),
            to_block: count(self.to_block),
            state: parse_name(&self.state)?,
            attempt: u32::try_from(self.attempt).unwrap_or(0),
            error: self.error,
            error_class: self.error_class,
            summary: self.summary,
            attempts: Vec::new(),
        })
    }
}

/// One row of `task_attempts`.
#[derive(Debug, FromRow)]
pub struct AttemptRow {
    pub task_id: Uuid,
    pub attempt: i32,
    pub worker_id: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub class: Option<String>,
}

impl AttemptRow {
    /// The attempt as the API reports it.
    pub fn into_info(self) -> AttemptInfo {
        AttemptInfo {
            attempt: u32::try_from(self.attempt).unwrap_or(0),
            worker_id: self.worker_id,
            started_at: self.started_at,
            finished_at: self.finished_at,
            outcome: self.outcome,
            reason: self.reason,
            class: self.class,
        }
    }
}

/// The stored snake_case name of an API enum value.
pub fn name_of<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// An API enum value from its stored name; an unknown name is a bug.
pub fn parse_name<T: DeserializeOwned>(name: &str) -> Result<T, ApiError> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| ApiError::internal(format!("unknown stored state `{name}`")))
}

/// A non-negative database integer as `u64`.
pub fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
