//! Ending a job when its last task ends.
//!
//! Called in the same transaction as every change that can make a task
//! terminal, after locking the job row so that two tasks finishing at once
//! agree on who ends it. A job that was cancelled stays cancelled.

use uuid::Uuid;

/// Marks job `id` `succeeded` when all its tasks succeeded, or `failed` when
/// all are terminal and any failed, died or was cancelled; sets `finished_at`.
pub async fn finish_job_if_done(tx: &mut sqlx::PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    let job: Option<(String,)> = sqlx::query_as("select state from jobs where id = $1 for update")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    if job.map(|(state,)| state) != Some("running".to_string()) {
        return Ok(());
    }

    let (total, succeeded, unsuccessful): (i64, i64, i64) = sqlx::query_as(
        "select count(*), \
             count(*) filter (where state = 'succeeded'), \
             count(*) filter (where state in ('failed', 'dead', 'cancelled')) \
         from tasks where job_id = $1",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if succeeded + unsuccessful < total {
        return Ok(());
    }

    let state = if unsuccessful == 0 {
        "succeeded"
    } else {
        "failed"
    };
    sqlx::query("update jobs set state = $2, finished_at = now() where id = $1")
        .bind(id)
        .bind(state)
        .execute(&mut *tx)
        .await?;
    tracing::info!(job = %id, state, tasks = total, "job finished");
    Ok(())
}
