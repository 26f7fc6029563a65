//! Completing and failing tasks, fenced by the attempt token.
//!
//! Each report is one transaction: the task row is locked and checked to be
//! `running` under the reported attempt (else 409 `stale_lease`), then the
//! task, its attempt row, its logs, a possible retry wake-up (after a
//! backoff), the sinks' commit or discard of the attempt's records and the
//! job's end state are written together.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use trace_common::ApiError;
use trace_common::api::{
    AttemptEnd, CompleteRequest, FailRequest, FailureClass, LogLine, ReleaseRequest,
};
use uuid::Uuid;

use crate::attempts::{backoff, discard, enqueue_wakeup, task_queue, tell_sinks};
use crate::completion::finish_job_if_done;
use crate::routes::{body, parse_id};
use crate::state::AppState;
use crate::stored_text;
use crate::tasks::{attempt_param, stale};

/// The most log lines stored per report; later ones are dropped.
pub const MAX_LOG_LINES: usize = 1000;
/// The longest stored log message, in characters.
const MAX_LOG_MESSAGE: usize = 4096;
/// The longest stored failure reason, in characters.
const MAX_REASON: usize = 4096;
/// The largest stored summary, as JSON text; a larger one is replaced by a
/// note saying so, so that a component cannot fill the state database.
const MAX_SUMMARY_BYTES: usize = 64 * 1024;

/// The running task a report is about, locked for the transaction.
#[derive(Debug, sqlx::FromRow)]
struct Current {
    job_id: Uuid,
    tenant_id: String,
    kind: String,
    job_state: String,
    max_attempts: i32,
    attempt_base: i32,
}

/// `POST /v1/tasks/{id}/complete`.
pub async fn complete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Result<Json<CompleteRequest>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    let req = body(req)?;
    let mut tx = state.pool.begin().await?;
    let current = lock_current(&mut tx, id, req.attempt).await?;
    if current.job_state == "cancelled" {
        // The job was cancelled while the attempt ran: its output is
        // dropped like that of any other attempt the cancel stopped.
        cancel_attempt(&mut tx, id, req.attempt, &current, &req.logs).await?;
        tx.commit().await?;
        state.wake_relay();
        tracing::info!(task = %id, attempt = req.attempt, "completion after cancel dropped");
        return Ok(StatusCode::NO_CONTENT);
    }

    sqlx::query(
        "update tasks set state = 'succeeded', summary = $2, records_published = $3, \
             alerts_published = $4, error = null, error_class = null, lease_owner = null, \
             lease_expires_at = null, updated_at = now() \
         where id = $1",
    )
    .bind(id)
    .bind(storable_summary(&req.summary))
    .bind(i64::try_from(req.records_published).unwrap_or(i64::MAX))
    .bind(i64::try_from(req.alerts_published).unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await?;
    finish_attempt(&mut tx, id, req.attempt, "succeeded", None, None).await?;
    store_logs(&mut tx, id, req.attempt, &req.logs).await?;
    let commit = AttemptEnd::Commit {
        tenant_id: current.tenant_id.clone(),
        job_id: current.job_id,
        task_id: id,
        attempt: req.attempt,
        batches: req.batches,
    };
    tell_sinks(&mut tx, &current.kind, &commit).await?;
    finish_job_if_done(&mut tx, current.job_id).await?;
    tx.commit().await?;

    state.wake_relay();
    tracing::info!(task = %id, attempt = req.attempt, batches = req.batches, "task succeeded");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/tasks/{id}/fail`.
pub async fn fail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Result<Json<FailRequest>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    let req = body(req)?;
    let mut tx = state.pool.begin().await?;
    let current = lock_current(&mut tx, id, req.attempt).await?;

    let used = i64::from(req.attempt) - i64::from(current.attempt_base);
    let attempts_left = used < i64::from(current.max_attempts);
    let next = match req.class {
        _ if current.job_state == "cancelled" => "cancelled",
        FailureClass::Deterministic => "failed",
        FailureClass::Transient if attempts_left => "queued",
        FailureClass::Transient => "dead",
    };
    let class = crate::rows::name_of(&req.class);
    let reason = stored_text::text(&req.reason, MAX_REASON);

    sqlx::query(
        "update tasks set state = $2, error = $3, error_class = $4, lease_owner = null, \
             lease_expires_at = null, updated_at = now() \
         where id = $1",
    )
    .bind(id)
    .bind(next)
    .bind(&reason)
    .bind(&class)
    .execute(&mut *tx)
    .await?;
    // An attempt stopped because its job was cancelled did not fail.
    let outcome = if next == "cancelled" {
        "cancelled"
    } else {
        "failed"
    };
    finish_attempt(
        &mut tx,
        id,
        req.attempt,
        outcome,
        Some(&reason),
        Some(&class),
    )
    .await?;
    store_logs(&mut tx, id, req.attempt, &req.logs).await?;
    let end = discard(&current.tenant_id, current.job_id, id, req.attempt);
    tell_sinks(&mut tx, &current.kind, &end).await?;
    let mut delay = std::time::Duration::ZERO;
    if next == "queued" {
        let used = u32::try_from(used).unwrap_or(1);
        delay = backoff(state.settings.retry_backoff, used, rand::random());
        let queue = task_queue(&current.kind);
        enqueue_wakeup(&mut tx, queue, id, current.job_id, delay).await?;
    } else {
        finish_job_if_done(&mut tx, current.job_id).await?;
    }
    tx.commit().await?;

    state.wake_relay();
    tracing::info!(task = %id, attempt = req.attempt, class = %class, next,
        retry_in_ms = delay.as_millis() as u64, "task failed");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/tasks/{id}/release`: the worker gives the task back unfinished
/// (it is shutting down). The attempt ends `released` and does not count
/// against the budget; the task is queued at once, or cancelled when its
/// job was, and the sinks discard what the attempt published.
pub async fn release(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Result<Json<ReleaseRequest>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    let req = body(req)?;
    let mut tx = state.pool.begin().await?;
    let current = lock_current(&mut tx, id, req.attempt).await?;
    let next = if current.job_state == "cancelled" {
        "cancelled"
    } else {
        "queued"
    };
    sqlx::query(
        "update tasks set state = $2, attempt_base = attempt_base + 1, lease_owner = null, \
             lease_expires_at = null, updated_at = now() \
         where id = $1",
    )
    .bind(id)
    .bind(next)
    .execute(&mut *tx)
    .await?;
    let reason = "the worker shut down and gave the task back";
    finish_attempt(&mut tx, id, req.attempt, "released", Some(reason), None).await?;
    let end = discard(&current.tenant_id, current.job_id, id, req.attempt);
    tell_sinks(&mut tx, &current.kind, &end).await?;
    if next == "queued" {
        let queue = task_queue(&current.kind);
        enqueue_wakeup(
            &mut tx,
            queue,
            id,
            current.job_id,
            std::time::Duration::ZERO,
        )
        .await?;
    } else {
        finish_job_if_done(&mut tx, current.job_id).await?;
    }
    tx.commit().await?;

    state.wake_relay();
    tracing::info!(task = %id, attempt = req.attempt, next, "task released");
    Ok(StatusCode::NO_CONTENT)
}

/// Ends a running attempt whose job was cancelled: the task and the attempt
/// end `cancelled`, the sinks discard the attempt's records and the job is
/// finished if that was its last task.
async fn cancel_attempt(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    attempt: u32,
    current: &Current,
    logs: &[LogLine],
) -> Result<(), ApiError> {
    sqlx::query(
        "update tasks set state = 'cancelled', lease_owner = null, lease_expires_at = null, \
             updated_at = now() \
         where id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let reason = "the job was cancelled while the attempt ran";
    finish_attempt(tx, id, attempt, "cancelled", Some(reason), None).await?;
    store_logs(tx, id, attempt, logs).await?;
    let end = discard(&current.tenant_id, current.job_id, id, attempt);
    tell_sinks(tx, &current.kind, &end).await?;
    finish_job_if_done(tx, current.job_id).await?;
    Ok(())
}

/// The summary as stored: NULs replaced, and a note in place of one larger
/// than [`MAX_SUMMARY_BYTES`].
fn storable_summary(summary: &serde_json::Value) -> serde_json::Value {
    let bytes = summary.to_string().len();
    if bytes > MAX_SUMMARY_BYTES {
        return serde_json::json!({
            "truncated": format!(
                "the summary had {bytes} bytes; at most {MAX_SUMMARY_BYTES} are kept"
            ),
        });
    }
    stored_text::json(summary)
}

/// Locks task `id` if `attempt` holds its running lease, else 409.
async fn lock_current(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    attempt: u32,
) -> Result<Current, ApiError> {
    let current: Option<Current> = sqlx::query_as(
        "select t.job_id, j.tenant_id, j.kind, j.state as job_state, j.max_attempts, \
             t.attempt_base \
         from tasks t join jobs j on j.id = t.job_id \
         where t.id = $1 and t.attempt = $2 and t.state = 'running' \
         for update of t",
    )
    .bind(id)
    .bind(attempt_param(attempt))
    .fetch_optional(&mut *tx)
    .await?;
    current.ok_or_else(|| stale(id, attempt))
}

/// Records how an attempt ended.
pub async fn finish_attempt(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    attempt: u32,
    outcome: &str,
    reason: Option<&str>,
    class: Option<&str>,
) -> Result<(), sqlx::Error> {
    let ended: Option<(String, f64)> = sqlx::query_as(
        "update task_attempts a set finished_at = now(), outcome = $3, reason = $4, class = $5 \
         from tasks t join jobs j on j.id = t.job_id \
         where a.task_id = $1 and a.attempt = $2 and t.id = a.task_id \
         returning j.kind, extract(epoch from a.finished_at - a.started_at)::float8",
    )
    .bind(id)
    .bind(attempt_param(attempt))
    .bind(outcome)
    .bind(reason)
    .bind(class)
    .fetch_optional(&mut *tx)
    .await?;
    // Counted when the statement ran; a transaction rolled back after it
    // (rare: the commit failing) still counts here.
    if let Some((kind, secs)) = ended {
        let labels = [
            ("kind", kind),
            ("outcome", outcome.to_string()),
            ("class", class.unwrap_or("none").to_string()),
        ];
        trace_common::metrics::counter!("trace_task_attempts_total", &labels).increment(1);
        trace_common::metrics::histogram!("trace_task_attempt_duration_seconds", &labels)
            .record(secs);
    }
    Ok(())
}

/// Stores up to [`MAX_LOG_LINES`] log lines of an attempt.
async fn store_logs(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    attempt: u32,
    logs: &[LogLine],
) -> Result<(), sqlx::Error> {
    if logs.is_empty() {
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = logs
        .iter()
        .take(MAX_LOG_LINES)
        .map(|line| {
            let message = stored_text::text(&line.message, MAX_LOG_MESSAGE);
            let level = stored_text::text(&line.level, 16);
            let fields = stored_text::json(&serde_json::Value::Object(line.fields.clone()));
            serde_json::json!({ "level": level, "message": message, "fields": fields })
        })
        .collect();
    sqlx::query(
        "insert into task_logs (task_id, attempt, level, message, fields) \
         select $1, $2, l.level, l.message, coalesce(l.fields, '{}'::jsonb) \
         from rows from (jsonb_to_recordset($3) as (level text, message text, fields jsonb)) \
             with ordinality as l(level, message, fields, n) \
         order by l.n",
    )
    .bind(id)
    .bind(attempt_param(attempt))
    .bind(serde_json::Value::Array(rows))
    .execute(&mut *tx)
    .await?;
    Ok(())
}
