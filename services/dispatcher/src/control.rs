//! Job control: cancelling a running job and retrying a job's dead tasks.
//!
//! Both lock the job row first, the same lock [`finish_job_if_done`] takes,
//! so a cancel or a retry never interleaves with a job ending on its own.
//! Cancel leaves running tasks to their workers: the next heartbeat says the
//! job was cancelled, the worker stops, and its report (or the reaper) ends
//! the task `cancelled`. Retry queues the task again with a fresh budget
//! that counts from its last attempt, never reusing an attempt number.
//!
//! [`finish_job_if_done`]: crate::completion::finish_job_if_done

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use trace_common::ApiError;
use trace_common::api::{Job, RetryOutcome};
use uuid::Uuid;

use crate::attempts::{enqueue_wakeup, task_queue};
use crate::jobs::{fetch, tenant_header};
use crate::routes::parse_id;
use crate::state::AppState;

/// `POST /v1/jobs/{id}/cancel` with the tenant in `x-trace-tenant`.
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Job>, ApiError> {
    let tenant = tenant_header(&headers)?;
    let id = parse_id(&id)?;
    let mut tx = state.pool.begin().await?;
    let job_state = lock_job(&mut tx, &tenant, id).await?;
    if job_state != "running" {
        let msg = format!("job `{id}` already ended `{job_state}`");
        return Err(ApiError::conflict("job_finished", msg));
    }
    sqlx::query("update jobs set state = 'cancelled', finished_at = now() where id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let cancelled = sqlx::query(
        "update tasks set state = 'cancelled', updated_at = now() \
         where job_id = $1 and state = 'queued'",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;

    tracing::info!(job = %id, tenant = %tenant, queued_cancelled = cancelled, "job cancelled");
    Ok(Json(fetch(&state, &tenant, id).await?))
}

/// `POST /v1/jobs/{id}/retry` with the tenant in `x-trace-tenant`.
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<RetryOutcome>, ApiError> {
    let tenant = tenant_header(&headers)?;
    let id = parse_id(&id)?;
    let mut tx = state.pool.begin().await?;
    lock_job(&mut tx, &tenant, id).await?;
    let requeued: Vec<(Uuid, String)> = sqlx::query_as(
        "update tasks t set state = 'queued', attempt_base = t.attempt, error = null, \
             error_class = null, updated_at = now() \
         from jobs j \
         where t.job_id = $1 and j.id = t.job_id \
             and t.state in ('dead', 'failed', 'cancelled') \
         returning t.id, j.kind",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    if requeued.is_empty() {
        let msg = format!("job `{id}` has no dead, failed or cancelled task");
        return Err(ApiError::conflict("nothing_to_retry", msg));
    }
    sqlx::query("update jobs set state = 'running', finished_at = null where id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    for (task, kind) in &requeued {
        let queue = task_queue(kind);
        enqueue_wakeup(&mut tx, queue, *task, id, std::time::Duration::ZERO).await?;
    }
    tx.commit().await?;
    state.wake_relay();

    let requeued = requeued.len() as u64;
    tracing::info!(job = %id, tenant = %tenant, requeued, "job retried");
    let job = fetch(&state, &tenant, id).await?;
    Ok(Json(RetryOutcome { requeued, job }))
}

/// Locks job `id` of `tenant` and returns its state; 404 when it does not
/// exist or is another tenant's.
async fn lock_job(tx: &mut sqlx::PgConnection, tenant: &str, id: Uuid) -> Result<String, ApiError> {
    let row: Option<(String,)> =
        sqlx::query_as("select state from jobs where id = $1 and tenant_id = $2 for update")
            .bind(id)
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await?;
    row.map(|(state,)| state)
        .ok_or_else(|| ApiError::not_found("job_not_found", format!("no job `{id}`")))
}
