//! `POST /v1/credentials`: a token for a task's scratch prefix, only while
//! the asking attempt holds a live lease.
//!
//! The dispatcher is the judge of liveness. The token expires with the lease
//! as it stood when asked, or after the TTL cap if that comes first. Past
//! that expiry, and until the TTL cap after issuance, the object endpoint
//! still honours it while the dispatcher says the lease is live (heartbeats
//! extend leases, not tokens); a worker whose task outlives the cap asks
//! again. In AWS mode ([`crate::sts`]) the answer also carries STS
//! credentials limited to the same prefix, which expire on their own.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use trace_common::ApiError;
use trace_common::api::{CredentialRequest, Credentials};

use crate::state::BrokerState;
use crate::token::Claims;

/// The scratch prefix of a task.
pub fn scratch_prefix(tenant: &str, job: uuid::Uuid, task: uuid::Uuid) -> String {
    format!("scratch/{tenant}/{job}/{task}/")
}

/// `POST /v1/credentials`.
pub async fn issue(
    State(state): State<BrokerState>,
    req: Result<Json<CredentialRequest>, JsonRejection>,
) -> Result<Json<Credentials>, ApiError> {
    let Json(req) = req.map_err(|r| ApiError::bad_request("invalid_body", r.body_text()))?;
    let lease = match state.dispatcher.lease(req.task_id, req.attempt).await {
        Ok(lease) => lease,
        Err(err) if err.status() == Some(404) => {
            let msg = format!("no task `{}`", req.task_id);
            return Err(ApiError::not_found("task_not_found", msg));
        }
        Err(err) => return Err(ApiError::unavailable(err)),
    };
    let expires = match lease.expires_at {
        Some(expires) if lease.live => expires,
        _ => {
            let msg = format!(
                "attempt `{}` of task `{}` holds no live lease",
                req.attempt, req.task_id
            );
            return Err(ApiError::forbidden(msg));
        }
    };

    let now = chrono::Utc::now();
    let cap = now + state.token_ttl;
    let expires = expires.min(cap);
    let prefix = scratch_prefix(&lease.tenant_id, lease.job_id, req.task_id);
    let claims = Claims {
        tenant: lease.tenant_id,
        job: lease.job_id,
        task: req.task_id,
        attempt: req.attempt,
        prefix: prefix.clone(),
        exp: expires.timestamp(),
        renew_until: cap.timestamp(),
    };
    let token = state.signer.sign(&claims);
    let aws = match &state.sts {
        Some(sts) => Some(
            sts.assume(req.task_id, req.attempt, &prefix, expires)
                .await
                .map_err(ApiError::unavailable)?,
        ),
        None => None,
    };
    tracing::info!(task = %req.task_id, attempt = req.attempt, worker = %req.worker_id,
        "credentials issued");
    let mut expires_at = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or(expires);
    if let Some(aws) = &aws {
        expires_at = expires_at.min(aws.expires_at);
    }
    Ok(Json(Credentials {
        token,
        prefix,
        expires_at,
        aws,
    }))
}
