//! The reaper: running tasks whose lease expired go back to the queue, or
//! die once their attempts are used up.
//!
//! The worker that held the lease may still be running; its attempt token is
//! now stale, so its heartbeat, complete and fail are refused and whatever it
//! published under that attempt never counts.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::completion::finish_job_if_done;
use crate::report::{enqueue_wakeup, finish_attempt};
use crate::state::AppState;

/// The most expired leases handled per transaction.
const BATCH: i64 = 200;

/// Returns one batch of expired leases; says how many tasks it touched.
pub async fn reap_once(state: &AppState) -> Result<u64, sqlx::Error> {
    let mut tx = state.pool.begin().await?;
    let expired: Vec<(Uuid, Uuid, i32, String, String)> = sqlx::query_as(
        "with expired as ( \
             select t.id from tasks t \
             where t.state = 'running' and t.lease_expires_at < now() \
             order by t.lease_expires_at limit $1 \
             for update of t skip locked \
         ) \
         update tasks t set \
             state = case \
                 when j.state = 'cancelled' then 'cancelled' \
                 when t.attempt >= j.max_attempts then 'dead' \
                 else 'queued' end, \
             error = 'the lease of attempt ' || t.attempt || ' expired', \
             error_class = 'transient', \
             lease_owner = null, lease_expires_at = null, updated_at = now() \
         from expired e, jobs j \
         where t.id = e.id and j.id = t.job_id \
         returning t.id, t.job_id, t.attempt, t.state, j.kind",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;

    for (task, job, attempt, next, kind) in &expired {
        let attempt = u32::try_from(*attempt).unwrap_or(0);
        let reason = "lease expired";
        finish_attempt(
            &mut tx,
            *task,
            attempt,
            "expired",
            Some(reason),
            Some("transient"),
        )
        .await?;
        if next == "queued" {
            let queue = if kind == "udf" {
                trace_common::api::QUEUE_TASKS_UDF
            } else {
                trace_common::api::QUEUE_TASKS_INGEST
            };
            enqueue_wakeup(&mut tx, queue, *task, *job).await?;
        } else {
            finish_job_if_done(&mut tx, *job).await?;
        }
        tracing::warn!(task = %task, attempt, next = %next, "lease expired");
    }
    tx.commit().await?;

    if expired.iter().any(|row| row.3 == "queued") {
        state.wake_relay();
    }
    Ok(expired.len() as u64)
}

/// Reaps every `every` until `shutdown`.
pub async fn run(state: AppState, every: Duration, shutdown: CancellationToken) {
    loop {
        if let Err(err) = reap_once(&state).await {
            tracing::warn!(error = %err, "reaper pass failed; will retry");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
