//! Cancelling and retrying a job.
//!
//! The dispatcher owns task state and decides what a cancel or a retry does;
//! the gateway checks who asks, forwards, and writes the audit row once the
//! dispatcher has acted. A refusal (404 `job_not_found`, 409 `job_finished`,
//! 409 `nothing_to_retry`) reaches the client with the dispatcher's code and
//! status. Ingest jobs need an admin key to cancel or retry, as they do to
//! create.

use axum::Json;
use axum::extract::{Path, State};
use trace_common::ApiError;
use trace_common::api::{Job, JobKind, RetryOutcome};
use uuid::Uuid;

use crate::codes::upstream;
use crate::jobs::parse_job_id;
use crate::state::audit;
use crate::{AppState, Principal};

/// `POST /v1/jobs/{id}/cancel`: the cancelled job.
pub(crate) async fn cancel(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let id = parse_job_id(&id)?;
    authorize(&state, &principal, id, "cancelling an ingest job").await?;
    let job = state
        .dispatcher
        .cancel_job(&principal.tenant, id)
        .await
        .map_err(upstream)?;

    let detail = serde_json::json!({
        "state": job.state,
        "cancelled_tasks": job.progress.cancelled,
        "running_tasks": job.progress.running,
    });
    audit(
        &state.pool,
        &principal,
        "job.cancel",
        &id.to_string(),
        detail,
    )
    .await?;
    tracing::info!(tenant = %principal.tenant, job = %id, "job cancelled");
    Ok(Json(job))
}

/// `POST /v1/jobs/{id}/retry`: how many tasks were queued again, and the job.
pub(crate) async fn retry(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RetryOutcome>, ApiError> {
    let id = parse_job_id(&id)?;
    authorize(&state, &principal, id, "retrying an ingest job").await?;
    let outcome = state
        .dispatcher
        .retry_job(&principal.tenant, id)
        .await
        .map_err(upstream)?;

    let detail = serde_json::json!({
        "requeued": outcome.requeued,
        "state": outcome.job.state,
    });
    audit(
        &state.pool,
        &principal,
        "job.retry",
        &id.to_string(),
        detail,
    )
    .await?;
    tracing::info!(tenant = %principal.tenant, job = %id, requeued = outcome.requeued,
        "job retried");
    Ok(Json(outcome))
}

/// Refuses a member key acting on an ingest job; a job of another tenant is
/// the dispatcher's 404, as it is for every job route.
async fn authorize(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    what: &str,
) -> Result<(), ApiError> {
    let job = state
        .dispatcher
        .job(&principal.tenant, id)
        .await
        .map_err(upstream)?;
    if job.kind == JobKind::Ingest {
        principal.require_admin(what)?;
    }
    Ok(())
}
