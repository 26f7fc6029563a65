//! The reaper: running tasks whose lease expired go back to the queue, or
//! die once their attempts are used up; and the reconciler: queued tasks that
//! waited too long get a fresh wake-up, so a lost message costs latency,
//! never work.
//!
//! The worker that held the lease may still be running; its attempt token is
//! now stale, so its heartbeat, complete and fail are refused and whatever it
//! published under that attempt never counts: the sinks are told to discard
//! it in the same transaction, and a retry waits out its backoff.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::attempts::{backoff, discard, enqueue_wakeup, task_queue, tell_sinks};
use crate::completion::finish_job_if_done;
use crate::report::finish_attempt;
use crate::state::AppState;

/// The most expired leases handled per transaction.
const BATCH: i64 = 200;
/// How long a queued task of a running job waits before it is woken again.
/// A task merely waiting behind a long queue is woken again too; the extra
/// message finds it claimed or claims it, either way harmlessly.
pub const RECONCILE_AFTER: Duration = Duration::from_secs(300);

/// A task whose lease the reaper took back, with what became of it.
#[derive(Debug, sqlx::FromRow)]
struct Expired {
    id: Uuid,
    job_id: Uuid,
    tenant_id: String,
    attempt: i32,
    attempt_base: i32,
    /// `queued`, `dead` or `cancelled`.
    state: String,
    kind: String,
}

/// Returns one batch of expired leases; says how many tasks it touched.
pub async fn reap_once(state: &AppState) -> Result<u64, sqlx::Error> {
    let mut tx = state.pool.begin().await?;
    let expired: Vec<Expired> = sqlx::query_as(
        "with expired as ( \
             select t.id from tasks t \
             where t.state = 'running' and t.lease_expires_at < now() \
             order by t.lease_expires_at limit $1 \
             for update of t skip locked \
         ) \
         update tasks t set \
             state = case \
                 when j.state = 'cancelled' then 'cancelled' \
                 when t.attempt - t.attempt_base >= j.max_attempts then 'dead' \
                 else 'queued' end, \
             error = 'the lease of attempt ' || t.attempt || ' expired', \
             error_class = 'transient', \
             lease_owner = null, lease_expires_at = null, updated_at = now() \
         from expired e, jobs j \
         where t.id = e.id and j.id = t.job_id \
         returning t.id, t.job_id, j.tenant_id, t.attempt, t.attempt_base, t.state, j.kind",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;

    for row in &expired {
        let attempt = u32::try_from(row.attempt).unwrap_or(0);
        let reason = "lease expired";
        finish_attempt(
            &mut tx,
            row.id,
            attempt,
            "expired",
            Some(reason),
            Some("transient"),
        )
        .await?;
        let end = discard(&row.tenant_id, row.job_id, row.id, attempt);
        tell_sinks(&mut tx, &row.kind, &end).await?;
        if row.state == "queued" {
            let used = u32::try_from(row.attempt - row.attempt_base).unwrap_or(1);
            let delay = backoff(state.settings.retry_backoff, used, rand::random());
            enqueue_wakeup(&mut tx, task_queue(&row.kind), row.id, row.job_id, delay).await?;
        } else {
            finish_job_if_done(&mut tx, row.job_id).await?;
        }
        tracing::warn!(task = %row.id, attempt, next = %row.state, "lease expired");
    }
    tx.commit().await?;

    if !expired.is_empty() {
        state.wake_relay();
    }
    Ok(expired.len() as u64)
}

/// Writes a new wake-up for up to one batch of queued tasks of running jobs
/// that have not changed for `waited`; says how many.
pub async fn reconcile_once(state: &AppState, waited: Duration) -> Result<u64, sqlx::Error> {
    let woken = sqlx::query(
        "with stale as ( \
             select t.id, t.job_id, j.kind from tasks t join jobs j on j.id = t.job_id \
             where t.state = 'queued' and j.state = 'running' \
                 and t.updated_at < now() - make_interval(secs => $1) \
             order by t.updated_at limit $2 \
             for update of t skip locked \
         ), touched as ( \
             update tasks t set updated_at = now() from stale s where t.id = s.id \
         ) \
         insert into outbox (queue, body) \
         select case when s.kind = 'udf' then $3 else $4 end, \
             jsonb_build_object('task_id', s.id, 'job_id', s.job_id) \
         from stale s",
    )
    .bind(waited.as_secs_f64())
    .bind(BATCH)
    .bind(trace_common::api::QUEUE_TASKS_UDF)
    .bind(trace_common::api::QUEUE_TASKS_INGEST)
    .execute(&state.pool)
    .await?
    .rows_affected();
    if woken > 0 {
        tracing::info!(woken, "queued tasks woken again");
        state.wake_relay();
    }
    Ok(woken)
}

/// How many tasks of a kind are queued, and how long the oldest of them
/// has been queued (seconds; 0 when none is).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueDepth {
    /// `udf` or `ingest`.
    pub kind: String,
    /// How many are queued.
    pub queued: i64,
    /// Since when the longest-queued of them has been queued.
    pub oldest_seconds: f64,
}

/// The queued tasks of each kind that has any, from the state database:
/// the truth whichever backend carries the wake-ups.
pub async fn queue_depths(state: &AppState) -> Result<Vec<QueueDepth>, sqlx::Error> {
    let rows: Vec<(String, i64, f64)> = sqlx::query_as(
        "select j.kind, count(*), \
         coalesce(extract(epoch from now() - min(t.queued_at)), 0)::float8 \
         from tasks t join jobs j on j.id = t.job_id where t.state = 'queued' group by j.kind",
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(kind, queued, oldest_seconds)| QueueDepth {
            kind,
            queued,
            oldest_seconds,
        })
        .collect())
}

/// Sets the queue gauges ([`queue_depths`]) for both kinds.
pub async fn sample_queues(state: &AppState) -> Result<(), sqlx::Error> {
    let depths = queue_depths(state).await?;
    for kind in ["udf", "ingest"] {
        let (depth, age) = depths
            .iter()
            .find(|d| d.kind == kind)
            .map_or((0.0, 0.0), |d| (d.queued as f64, d.oldest_seconds));
        trace_common::metrics::gauge!("trace_tasks_queued", "kind" => kind).set(depth);
        trace_common::metrics::gauge!("trace_tasks_queued_oldest_seconds", "kind" => kind).set(age);
    }
    Ok(())
}

/// Reaps and reconciles every `every` until `shutdown`, sampling the
/// queue gauges on each pass.
pub async fn run(state: AppState, every: Duration, shutdown: CancellationToken) {
    loop {
        if let Err(err) = reap_once(&state).await {
            tracing::warn!(error = %err, "reaper pass failed; will retry");
        }
        if let Err(err) = reconcile_once(&state, RECONCILE_AFTER).await {
            tracing::warn!(error = %err, "reconciler pass failed; will retry");
        }
        if let Err(err) = sample_queues(&state).await {
            tracing::warn!(error = %err, "sampling the queues failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
