//! What the end of an attempt writes besides the task row: the wake-up of
//! its retry after a backoff, and the word to the sinks on whether its
//! records count.
//!
//! Everything here runs inside the transaction that ends the attempt, and
//! reaches queues only through the outbox, so the task's new state and the
//! messages that follow from it commit together or not at all.

use std::time::Duration;

use trace_common::api::{AttemptEnd, QUEUE_BUFFER, QUEUE_TASKS_INGEST, QUEUE_TASKS_UDF};
use uuid::Uuid;

/// The longest pause before a retry, whatever the attempt.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The pause before retrying a task that has used `used` attempts of its
/// budget: `base` doubled per attempt after the first, capped at
/// [`MAX_BACKOFF`], then scaled by `jitter` in `[0, 1)` into its upper half
/// (so retries of many tasks that failed together spread out, and none
/// comes back sooner than half its step).
pub fn backoff(base: Duration, used: u32, jitter: f64) -> Duration {
    let doublings = used.saturating_sub(1).min(16);
    let step = base.saturating_mul(1 << doublings).min(MAX_BACKOFF);
    step.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

/// The task queue of a job of `kind` (`udf` or `ingest`).
pub fn task_queue(kind: &str) -> &'static str {
    if kind == "udf" {
        QUEUE_TASKS_UDF
    } else {
        QUEUE_TASKS_INGEST
    }
}

/// Writes a wake-up for `task` to the outbox, relayed `after` from now.
pub async fn enqueue_wakeup(
    tx: &mut sqlx::PgConnection,
    queue: &str,
    task: Uuid,
    job: Uuid,
    after: Duration,
) -> Result<(), sqlx::Error> {
    let body = serde_json::json!({ "task_id": task, "job_id": job });
    sqlx::query(
        "insert into outbox (queue, body, not_before) \
         values ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind(queue)
    .bind(body)
    .bind(after.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Tells the sinks how attempt of a UDF task ended, through the outbox.
/// Ingest tasks write chain tables themselves and send nothing.
pub async fn tell_sinks(
    tx: &mut sqlx::PgConnection,
    kind: &str,
    end: &AttemptEnd,
) -> Result<(), sqlx::Error> {
    if kind != "udf" {
        return Ok(());
    }
    let body = serde_json::to_value(end).expect("an attempt end always serialises");
    sqlx::query("insert into outbox (queue, body) values ($1, $2)")
        .bind(QUEUE_BUFFER)
        .bind(body)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// A discard of `attempt` of `task`.
pub fn discard(tenant: &str, job: Uuid, task: Uuid, attempt: u32) -> AttemptEnd {
    AttemptEnd::Discard {
        tenant_id: tenant.to_string(),
        job_id: job,
        task_id: task,
        attempt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_per_attempt_up_to_its_cap() {
        let base = Duration::from_secs(1);
        assert!(backoff(base, 1, 0.999) < base);
        assert_eq!(backoff(base, 1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(base, 2, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(base, 3, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(base, 7, 0.0), Duration::from_secs(30));
        assert_eq!(backoff(base, 8, 0.0), Duration::from_secs(30));
        assert_eq!(backoff(base, 1000, 0.5), Duration::from_secs(45));
        assert_eq!(backoff(base, 0, 0.0), Duration::from_millis(500));
    }

    #[test]
    fn jitter_outside_its_range_is_clamped() {
        let base = Duration::from_secs(2);
        assert_eq!(backoff(base, 1, -3.0), Duration::from_secs(1));
        assert_eq!(backoff(base, 1, 7.0), Duration::from_secs(2));
    }
}
