//! Job endpoints: creating a job with its tasks and outbox rows, and reading
//! jobs back for their tenant.
//!
//! Creation is one transaction: the job, one task per planned chunk and one
//! outbox row per task commit together or not at all, so a task never exists
//! without its wake-up and a wake-up never names a task that does not exist.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use trace_common::ApiError;
use trace_common::api::{
    AttemptInfo, CreateJob, Job, JobKind, QUEUE_TASKS_INGEST, QUEUE_TASKS_UDF, TENANT_HEADER,
    TaskInfo,
};
use uuid::Uuid;

use crate::plan::plan;
use crate::routes::{body, parse_id};
use crate::rows::{AttemptRow, JOB_GROUP, JOB_SELECT, JobRow, TaskRow, name_of};
use crate::state::AppState;

/// `POST /v1/jobs`.
pub async fn create(
    State(state): State<AppState>,
    req: Result<Json<CreateJob>, JsonRejection>,
) -> Result<Json<Job>, ApiError> {
    let req = body(req)?;
    let plans = plan(&req)?;
    state
        .settings
        .maxima
        .admit(&req.limits)
        .map_err(|refusal| ApiError::bad_request(refusal.code(), refusal.to_string()))?;
    let id = Uuid::now_v7();
    let queue = match req.kind {
        JobKind::Udf => QUEUE_TASKS_UDF,
        JobKind::Ingest => QUEUE_TASKS_INGEST,
    };

    let mut tx = state.pool.begin().await?;
    let tenant: Option<(String,)> = sqlx::query_as("select id from tenants where id = $1")
        .bind(&req.tenant_id)
        .fetch_optional(&mut *tx)
        .await?;
    if tenant.is_none() {
        let msg = format!("tenant `{}` does not exist", req.tenant_id);
        return Err(ApiError::bad_request("unknown_tenant", msg));
    }

    let component = req.component.as_ref();
    sqlx::query(
        "insert into jobs (id, tenant_id, kind, component_name, component_version, \
         component_digest, params, chain_id, from_block, to_block, chunk_size, state, \
         max_attempts, limits, deterministic) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'running', $12, $13, $14)",
    )
    .bind(id)
    .bind(&req.tenant_id)
    .bind(name_of(&req.kind))
    .bind(component.map(|c| c.name.as_str()))
    .bind(component.map(|c| c.version.as_str()))
    .bind(component.map(|c| c.digest.as_str()))
    .bind(&req.params)
    .bind(req.chain_id as i64)
    .bind(req.from_block as i64)
    .bind(req.to_block as i64)
    .bind(req.chunk_size as i64)
    .bind(i32::try_from(state.settings.max_attempts).unwrap_or(i32::MAX))
    .bind(serde_json::to_value(req.limits).expect("limits always serialise"))
    .bind(req.deterministic)
    .execute(&mut *tx)
    .await?;

    insert_tasks(&mut tx, id, &plans).await?;
    sqlx::query(
        "insert into outbox (queue, body) \
         select $1, jsonb_build_object('task_id', id, 'job_id', job_id) \
         from tasks where job_id = $2 order by seq",
    )
    .bind(queue)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;

    state.wake_relay();
    tracing::info!(job = %id, tenant = %req.tenant_id, tasks = plans.len(), "job created");
    let job = fetch(&state, &req.tenant_id, id).await?;
    Ok(Json(job))
}

/// Writes the planned tasks of job `id` in one statement.
async fn insert_tasks(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    plans: &[crate::plan::TaskPlan],
) -> Result<(), ApiError> {
    let rows: Vec<serde_json::Value> = plans
        .iter()
        .map(|p| {
            serde_json::json!({
                "id": Uuid::new_v4(),
                "seq": p.seq,
                "from_block": p.from_block,
                "to_block": p.to_block,
                "blocks": p.blocks,
            })
        })
        .collect();
    sqlx::query(
        "insert into tasks (id, job_id, seq, from_block, to_block, blocks, state) \
         select t.id, $1, t.seq, t.from_block, t.to_block, \
             case when jsonb_typeof(t.blocks) = 'array' then array( \
                 select b.value::bigint from jsonb_array_elements_text(t.blocks) \
                     with ordinality as b(value, n) order by b.n) end, \
             'queued' \
         from jsonb_to_recordset($2) as t(id uuid, seq integer, from_block bigint, \
             to_block bigint, blocks jsonb)",
    )
    .bind(id)
    .bind(serde_json::Value::Array(rows))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// `GET /v1/jobs/{id}` with the tenant in `x-trace-tenant`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Job>, ApiError> {
    let tenant = tenant_header(&headers)?;
    let id = parse_id(&id)?;
    Ok(Json(fetch(&state, &tenant, id).await?))
}

/// `GET /v1/jobs/{id}/tasks` with the tenant in `x-trace-tenant`.
pub async fn tasks(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Vec<TaskInfo>>, ApiError> {
    let tenant = tenant_header(&headers)?;
    let id = parse_id(&id)?;
    fetch(&state, &tenant, id).await?;
    let rows: Vec<TaskRow> = sqlx::query_as(
        "select id, seq, from_block, to_block, state, attempt, error, error_class, summary \
         from tasks where job_id = $1 order by seq",
    )
    .bind(id)
    .fetch_all(&state.pool)
    .await?;
    let attempts: Vec<AttemptRow> = sqlx::query_as(
        "select a.task_id, a.attempt, a.worker_id, a.started_at, a.finished_at, a.outcome, \
             a.reason, a.class \
         from task_attempts a join tasks t on t.id = a.task_id \
         where t.job_id = $1 order by a.task_id, a.attempt",
    )
    .bind(id)
    .fetch_all(&state.pool)
    .await?;
    let mut by_task: HashMap<Uuid, Vec<AttemptInfo>> = HashMap::new();
    for row in attempts {
        by_task
            .entry(row.task_id)
            .or_default()
            .push(row.into_info());
    }
    let tasks = rows
        .into_iter()
        .map(|row| {
            let attempts = by_task.remove(&row.id).unwrap_or_default();
            row.into_info().map(|info| TaskInfo { attempts, ..info })
        })
        .collect::<Result<_, _>>()?;
    Ok(Json(tasks))
}

/// The query of `GET /v1/jobs`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    tenant: Option<String>,
}

/// `GET /v1/jobs?tenant=`: the tenant's jobs, newest first.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Json<Vec<Job>>, ApiError> {
    let tenant = match query.tenant {
        Some(tenant) => tenant,
        None => tenant_header(&headers)?,
    };
    let sql = format!("{JOB_SELECT} where j.tenant_id = $1 {JOB_GROUP}");
    let rows: Vec<JobRow> = sqlx::query_as(&sql)
        .bind(&tenant)
        .fetch_all(&state.pool)
        .await?;
    let jobs = rows
        .into_iter()
        .map(JobRow::into_job)
        .collect::<Result<_, _>>()?;
    Ok(Json(jobs))
}

/// Job `id` of `tenant`; 404 when it does not exist or is another tenant's.
pub async fn fetch(state: &AppState, tenant: &str, id: Uuid) -> Result<Job, ApiError> {
    let sql = format!("{JOB_SELECT} where j.id = $1 and j.tenant_id = $2 {JOB_GROUP}");
    let row: Option<JobRow> = sqlx::query_as(&sql)
        .bind(id)
        .bind(tenant)
        .fetch_optional(&state.pool)
        .await?;
    match row {
        Some(row) => row.into_job(),
        None => Err(ApiError::not_found(
            "job_not_found",
            format!("no job `{id}`"),
        )),
    }
}

pub(crate) fn tenant_header(headers: &HeaderMap) -> Result<String, ApiError> {
    let tenant = headers
        .get(TENANT_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if tenant.is_empty() {
        let msg = format!("the `{TENANT_HEADER}` header is required");
        return Err(ApiError::bad_request("missing_tenant", msg));
    }
    Ok(tenant.to_string())
}
