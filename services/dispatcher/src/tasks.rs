//! Lease endpoints: claim, heartbeat and the broker's liveness check.
//!
//! A claim is a single conditional `update`: only a `queued` task of a
//! `running` job matches, so of two concurrent claims the second finds the
//! row no longer queued and gets 409 `not_claimable`. The attempt number it
//! increments is the lease's fencing token.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use sqlx::FromRow;
use trace_common::ApiError;
use trace_common::api::{
    ClaimRequest, ComponentRef, HeartbeatRequest, HeartbeatResponse, Lease, LeaseStatus,
};
use trace_common::limits::{JobLimits, TaskLimits};
use uuid::Uuid;

use crate::routes::{body, parse_id};
use crate::rows::{count, parse_name};
use crate::state::AppState;

/// The columns a claim returns.
#[derive(Debug, FromRow)]
struct ClaimedRow {
    job_id: Uuid,
    tenant_id: String,
    kind: String,
    attempt: i32,
    lease_expires_at: chrono::DateTime<chrono::Utc>,
    component_name: Option<String>,
    component_version: Option<String>,
    component_digest: Option<String>,
    params: serde_json::Value,
    chain_id: i64,
    from_block: i64,
    to_block: i64,
    blocks: Option<Vec<i64>>,
    limits: serde_json::Value,
    deterministic: bool,
}

/// `POST /v1/tasks/{id}/claim`.
pub async fn claim(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Result<Json<ClaimRequest>, JsonRejection>,
) -> Result<Json<Lease>, ApiError> {
    let id = parse_id(&id)?;
    let req = body(req)?;
    let mut tx = state.pool.begin().await?;
    let row: Option<ClaimedRow> = sqlx::query_as(
        "update tasks t set state = 'running', attempt = t.attempt + 1, lease_owner = $2, \
             lease_expires_at = now() + make_interval(secs => $3), updated_at = now() \
         from jobs j \
         where t.id = $1 and j.id = t.job_id and t.state = 'queued' and j.state = 'running' \
         returning t.job_id, j.tenant_id, j.kind, t.attempt, t.lease_expires_at, \
             j.component_name, j.component_version, j.component_digest, j.params, \
             j.chain_id, t.from_block, t.to_block, t.blocks, j.limits, j.deterministic",
    )
    .bind(id)
    .bind(&req.worker_id)
    .bind(state.settings.lease.as_secs_f64())
    .fetch_optional(&mut *tx)
    .await?;

    let Some(row) = row else {
        drop(tx);
        return Err(not_claimable(&state, id).await);
    };
    sqlx::query("insert into task_attempts (task_id, attempt, worker_id) values ($1, $2, $3)")
        .bind(id)
        .bind(row.attempt)
        .bind(&req.worker_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    tracing::info!(task = %id, attempt = row.attempt, worker = %req.worker_id, "task claimed");
    Ok(Json(lease_of(id, row, &state.settings.maxima)?))
}

/// The lease of a claimed row. Its limits are the job's request filled in
/// with the deployment's maxima, every one set, so that a worker
/// configured above the maxima still runs the task under them.
fn lease_of(task_id: Uuid, row: ClaimedRow, maxima: &TaskLimits) -> Result<Lease, ApiError> {
    let asked: JobLimits = serde_json::from_value(row.limits)
        .map_err(|err| ApiError::internal(format!("stored job limits: {err}")))?;
    let component = match (
        row.component_name,
        row.component_version,
        row.component_digest,
    ) {
        (Some(name), Some(version), Some(digest)) => Some(ComponentRef {
            name,
            version,
            digest,
        }),
        _ => None,
    };
    Ok(Lease {
        task_id,
        job_id: row.job_id,
        tenant_id: row.tenant_id,
        kind: parse_name(&row.kind)?,
        attempt: u32::try_from(row.attempt).unwrap_or(0),
        expires_at: row.lease_expires_at,
        component,
        params: row.params,
        chain_id: count(row.chain_id),
        from_block: count(row.from_block),
        to_block: count(row.to_block),
        blocks: row.blocks.map(|b| b.into_iter().map(count).collect()),
        limits: maxima.narrowed(&asked).as_job_limits(),
        deterministic: row.deterministic,
    })
}

/// 404 for an unknown task, 409 `not_claimable` for one that exists.
async fn not_claimable(state: &AppState, id: Uuid) -> ApiError {
    let exists = sqlx::query_as::<_, (String,)>("select state from tasks where id = $1")
        .bind(id)
        .fetch_optional(&state.pool)
        .await;
    match exists {
        Ok(Some((task_state,))) => ApiError::conflict(
            "not_claimable",
            format!("task `{id}` is `{task_state}` or its job is not running"),
        ),
        Ok(None) => ApiError::not_found("task_not_found", format!("no task `{id}`")),
        Err(err) => ApiError::internal(err),
    }
}

/// `POST /v1/tasks/{id}/heartbeat`.
pub async fn heartbeat(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Result<Json<HeartbeatRequest>, JsonRejection>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    let id = parse_id(&id)?;
    let req = body(req)?;
    let row: Option<(chrono::DateTime<chrono::Utc>, String)> = sqlx::query_as(
        "update tasks t set lease_expires_at = now() + make_interval(secs => $3), \
             updated_at = now() \
         from jobs j \
         where t.id = $1 and t.attempt = $2 and t.state = 'running' and j.id = t.job_id \
         returning t.lease_expires_at, j.state",
    )
    .bind(id)
    .bind(attempt_param(req.attempt))
    .bind(state.settings.lease.as_secs_f64())
    .fetch_optional(&state.pool)
    .await?;
    match row {
        Some((expires_at, job_state)) => Ok(Json(HeartbeatResponse {
            expires_at,
            cancelled: job_state == "cancelled",
        })),
        None => Err(stale(id, req.attempt)),
    }
}

/// The query of `GET /v1/tasks/{id}/lease`.
#[derive(Debug, Deserialize)]
pub struct LeaseQuery {
    attempt: u32,
}

/// `GET /v1/tasks/{id}/lease?attempt=N`: whether that attempt holds a live lease.
pub async fn lease(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<LeaseQuery>,
) -> Result<Json<LeaseStatus>, ApiError> {
    let id = parse_id(&id)?;
    let row: Option<(String, Uuid, bool, Option<chrono::DateTime<chrono::Utc>>)> = sqlx::query_as(
        "select j.tenant_id, j.id, \
                 (t.state = 'running' and t.attempt = $2 and j.state = 'running' \
                     and t.lease_expires_at > now()) as live, \
                 t.lease_expires_at \
             from tasks t join jobs j on j.id = t.job_id where t.id = $1",
    )
    .bind(id)
    .bind(attempt_param(query.attempt))
    .fetch_optional(&state.pool)
    .await?;
    let Some((tenant_id, job_id, live, expires_at)) = row else {
        return Err(ApiError::not_found(
            "task_not_found",
            format!("no task `{id}`"),
        ));
    };
    let expires_at = if live { expires_at } else { None };
    Ok(Json(LeaseStatus {
        live,
        tenant_id,
        job_id,
        expires_at,
    }))
}

/// 409 `stale_lease` for `attempt` of task `id`.
pub fn stale(id: Uuid, attempt: u32) -> ApiError {
    let msg = format!("attempt `{attempt}` of task `{id}` does not hold the lease");
    ApiError::conflict("stale_lease", msg)
}

/// An attempt number as the `integer` column holds it (out of range never matches).
pub fn attempt_param(attempt: u32) -> i32 {
    i32::try_from(attempt).unwrap_or(-1)
}
