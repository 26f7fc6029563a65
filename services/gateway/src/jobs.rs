//! Jobs: submit one for a published component or for chain ingest, and
//! follow it.
//!
//! The gateway resolves `name@version` to a digest in the tenant's registry
//! and hands the job to the dispatcher, which validates and writes it. A
//! job's status joins the dispatcher's view (state, tasks) with the data
//! plane's (records and alerts the sinks applied, webhook deliveries).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use trace_common::ApiError;
use trace_common::api::{
    ComponentRef, CreateJob, DeliveryProgress, Job, JobKind, JobStatus, SinkProgress, SubmitJob,
};
use uuid::Uuid;

use crate::codes::upstream;
use crate::state::audit;
use crate::{AppState, Principal, components};

/// `POST /v1/jobs`.
pub(crate) async fn submit(
    principal: Principal,
    State(state): State<AppState>,
    Json(req): Json<SubmitJob>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let component = match (req.kind, &req.component) {
        (JobKind::Udf, Some(reference)) => {
            let found = components::resolve(&state, &principal.tenant, reference).await?;
            Some(ComponentRef {
                name: found.name,
                version: found.version,
                digest: found.digest,
            })
        }
        (JobKind::Udf, None) => {
            return Err(ApiError::bad_request(
                "missing_component",
                "a udf job needs `component` as `name@version`",
            ));
        }
        (JobKind::Ingest, Some(reference)) => {
            return Err(ApiError::bad_request(
                "unexpected_component",
                format!("an ingest job runs no component, but `{reference}` was given"),
            ));
        }
        (JobKind::Ingest, None) => {
            principal.require_admin("an ingest job")?;
            None
        }
    };

    let create = CreateJob {
        tenant_id: principal.tenant.clone(),
        kind: req.kind,
        component,
        params: req.params,
        chain_id: req.chain_id,
        from_block: req.from_block,
        to_block: req.to_block,
        chunk_size: req.chunk_size,
        blocks: req.blocks,
        limits: req.limits,
        deterministic: req.deterministic,
    };
    let job = state
        .dispatcher
        .create_job(&create)
        .await
        .map_err(upstream)?;

    let detail = serde_json::json!({
        "kind": job.kind,
        "component": req.component,
        "from_block": job.from_block,
        "to_block": job.to_block,
        "deterministic": req.deterministic,
    });
    audit(
        &state.pool,
        &principal,
        "job.create",
        &job.id.to_string(),
        detail,
    )
    .await?;
    tracing::info!(tenant = %principal.tenant, job = %job.id, kind = ?job.kind, "job created");
    Ok((StatusCode::CREATED, Json(job)))
}

/// `GET /v1/jobs`: the tenant's jobs.
pub(crate) async fn list(
    principal: Principal,
    State(state): State<AppState>,
) -> Result<Json<Vec<Job>>, ApiError> {
    let jobs = state
        .dispatcher
        .jobs(&principal.tenant)
        .await
        .map_err(upstream)?;
    Ok(Json(jobs))
}

/// `GET /v1/jobs/{id}`: the job, its tasks, and the data plane's progress.
pub(crate) async fn status(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobStatus>, ApiError> {
    let id = parse_job_id(&id)?;
    let job = state
        .dispatcher
        .job(&principal.tenant, id)
        .await
        .map_err(upstream)?;
    let tasks = state
        .dispatcher
        .tasks(&principal.tenant, id)
        .await
        .map_err(upstream)?;
    let path = format!("/v1/progress/{id}");
    let sunk: SinkProgress = state.sinks.get(&path).await.map_err(upstream)?;
    let delivery: DeliveryProgress = state.delivery.get(&path).await.map_err(upstream)?;
    Ok(Json(JobStatus {
        job,
        tasks,
        sunk,
        delivery,
    }))
}

/// A job id from the path, or 400 `invalid_job_id`.
pub(crate) fn parse_job_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| {
        ApiError::bad_request("invalid_job_id", format!("job id `{id}` is not a uuid"))
    })
}
