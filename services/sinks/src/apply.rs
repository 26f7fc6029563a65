//! Exactly once per completed attempt: staging batches, and committing or
//! discarding attempts.
//!
//! A UDF worker sends an attempt's records and alerts as numbered batches;
//! the dispatcher, in the transaction that ends the attempt, sends the
//! sinks an [`AttemptEnd`]: a commit naming how many batches the attempt
//! sent, or a discard. Batches and ends arrive in any order, any number of
//! times, on any sink. Each is handled in one data-database transaction
//! that first locks the task's `sink_tasks` row (creating it if need be),
//! so that everything about one task happens in one order:
//!
//! - a batch of an attempt known not to count is dropped; a batch seen
//!   before (by `batch_id`) changes nothing; a batch failing the checks is
//!   recorded as rejected with its reason; any other is staged;
//! - a discard drops the attempt's staged batches (and those of every
//!   earlier attempt) and marks it so later arrivals are dropped;
//! - once a commit is recorded and every one of its batches has arrived,
//!   the staged batches are written to their datasets and the alerts table
//!   in `seq` order, in that same transaction, and the task is marked
//!   committed: nothing of any other attempt of the task can follow.
//!
//! A sink killed halfway through any of this leaves its transaction
//! uncommitted and the message undeleted; the redelivery finds the state
//! as it was before.

use serde_json::Value;
use sqlx::{PgPool, Postgres, Row, Transaction};
use trace_common::api::{AttemptEnd, BufferBatch, BufferPayload};
use uuid::Uuid;

use crate::write;

/// What handling a batch or an attempt end did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The batch is staged until its attempt is committed.
    Staged,
    /// The commit is recorded; this many of its batches have not arrived.
    Waiting { missing: u32 },
    /// The attempt's batches became visible: this many rows and alerts.
    Committed { batches: u32, rows: u64 },
    /// The attempt will never count; what it had staged is dropped.
    Discarded,
    /// Seen before; nothing changed.
    Replayed,
    /// The batch was refused and recorded in `sink_rejects`.
    Rejected { reason: String },
}

/// A batch or an attempt end that could not be handled now; handling it
/// again may work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The data database failed.
    #[error("data database failed handling `{what}`")]
    Database {
        what: String,
        #[source]
        source: sqlx::Error,
    },
}

/// The lock and state of one task in `sink_tasks`.
#[derive(Debug, sqlx::FromRow)]
struct TaskRow {
    commit_attempt: Option<i32>,
    commit_batches: Option<i32>,
    committed: bool,
    discarded_through: i32,
}

impl TaskRow {
    /// Whether batches of `attempt` can never become visible.
    fn excludes(&self, attempt: i32) -> bool {
        self.committed
            || attempt <= self.discarded_through
            || self.commit_attempt.is_some_and(|c| c != attempt)
    }
}

/// Handles one batch in one transaction on `pool`.
pub async fn apply(pool: &PgPool, batch: &BufferBatch) -> Result<Outcome, ApplyError> {
    let db = |source| ApplyError::Database {
        what: format!("batch `{}`", batch.batch_id),
        source,
    };
    let mut tx = pool.begin().await.map_err(db)?;
    let outcome = stage(&mut tx, batch).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(outcome)
}

/// Handles one attempt end in one transaction on `pool`.
pub async fn end(pool: &PgPool, end: &AttemptEnd) -> Result<Outcome, ApplyError> {
    let (task, attempt) = match end {
        AttemptEnd::Commit {
            task_id, attempt, ..
        }
        | AttemptEnd::Discard {
            task_id, attempt, ..
        } => (*task_id, *attempt),
    };
    let db = |source| ApplyError::Database {
        what: format!("the end of attempt {attempt} of task `{task}`"),
        source,
    };
    let mut tx = pool.begin().await.map_err(db)?;
    let outcome = match end {
        AttemptEnd::Commit {
            tenant_id,
            job_id,
            batches,
            ..
        } => commit(&mut tx, tenant_id, *job_id, task, attempt, *batches).await,
        AttemptEnd::Discard {
            tenant_id, job_id, ..
        } => discard(&mut tx, tenant_id, *job_id, task, attempt).await,
    }
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(outcome)
}

/// Locks task `task`'s row, creating it on first sight.
async fn lock_task(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &str,
    job: Uuid,
    task: Uuid,
) -> Result<TaskRow, sqlx::Error> {
    // `do update` takes the row lock even when the row exists, and a second
    // transaction waits on it and then sees the first one's changes.
    sqlx::query_as(
        "insert into sink_tasks (task_id, tenant_id, job_id) values ($1, $2, $3) \
         on conflict (task_id) do update set task_id = excluded.task_id \
         returning commit_attempt, commit_batches, committed_at is not null as committed, \
             discarded_through",
    )
    .bind(task)
    .bind(tenant)
    .bind(job)
    .fetch_one(&mut **tx)
    .await
}

async fn stage(
    tx: &mut Transaction<'_, Postgres>,
    batch: &BufferBatch,
) -> Result<Outcome, sqlx::Error> {
    let task = lock_task(tx, &batch.tenant_id, batch.job_id, batch.task_id).await?;
    let attempt = attempt_param(batch.attempt);
    if task.excludes(attempt) {
        let seen: Option<String> =
            sqlx::query_scalar("select state from sink_batches where batch_id = $1")
                .bind(&batch.batch_id)
                .fetch_optional(&mut **tx)
                .await?;
        return Ok(if seen.is_some() {
            Outcome::Replayed
        } else {
            tracing::debug!(batch_id = %batch.batch_id, "batch of an attempt that does not count");
            Outcome::Discarded
        });
    }

    let checked = write::check(batch);
    let state = if checked.is_ok() {
        "staged"
    } else {
        "rejected"
    };
    if !record_batch(tx, batch, state).await? {
        return Ok(Outcome::Replayed);
    }
    if let Err(reason) = checked {
        reject(tx, batch, &reason).await?;
        return Ok(match task.commit_attempt {
            Some(_) => promote_if_complete(tx, &task, batch.task_id, attempt).await?,
            None => Outcome::Rejected { reason },
        });
    }
    sqlx::query(
        "insert into sink_staged (batch_id, task_id, attempt, seq, body) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(&batch.batch_id)
    .bind(batch.task_id)
    .bind(attempt)
    .bind(seq_param(batch.seq))
    .bind(serde_json::to_value(batch).expect("a batch always serialises"))
    .execute(&mut **tx)
    .await?;
    match task.commit_attempt {
        Some(_) => promote_if_complete(tx, &task, batch.task_id, attempt).await,
        None => Ok(Outcome::Staged),
    }
}

/// Records `batch` in `sink_batches` as `state`; false when it was there.
async fn record_batch(
    tx: &mut Transaction<'_, Postgres>,
    batch: &BufferBatch,
    state: &str,
) -> Result<bool, sqlx::Error> {
    let (kind, dataset, rows) = match &batch.payload {
        BufferPayload::Records { dataset, rows, .. } => ("records", Some(dataset), rows.len()),
        BufferPayload::Alerts { alerts } => ("alerts", None, alerts.len()),
    };
    let recorded = sqlx::query(
        "insert into sink_batches \
         (batch_id, tenant_id, job_id, task_id, attempt, kind, dataset, rows, state) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) on conflict (batch_id) do nothing",
    )
    .bind(&batch.batch_id)
    .bind(&batch.tenant_id)
    .bind(batch.job_id)
    .bind(batch.task_id)
    .bind(attempt_param(batch.attempt))
    .bind(kind)
    .bind(dataset)
    .bind(i32::try_from(rows).unwrap_or(i32::MAX))
    .bind(state)
    .execute(&mut **tx)
    .await?;
    Ok(recorded.rows_affected() == 1)
}

async fn commit(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &str,
    job: Uuid,
    task: Uuid,
    attempt: u32,
    batches: u32,
) -> Result<Outcome, sqlx::Error> {
    let row = lock_task(tx, tenant, job, task).await?;
    let attempt = attempt_param(attempt);
    if row.committed {
        return Ok(Outcome::Replayed);
    }
    if let Some(other) = row.commit_attempt.filter(|&c| c != attempt) {
        // The dispatcher completes a task once; a second commit is a bug
        // upstream, and the first one stands.
        tracing::error!(task = %task, attempt, committed = other,
            "a second attempt of one task was committed; keeping the first");
        return Ok(Outcome::Replayed);
    }
    if attempt <= row.discarded_through {
        tracing::error!(task = %task, attempt, "a discarded attempt was committed; ignoring it");
        return Ok(Outcome::Replayed);
    }
    let want = i32::try_from(batches).unwrap_or(i32::MAX);
    sqlx::query(
        "update sink_tasks set commit_attempt = $2, commit_batches = $3 where task_id = $1",
    )
    .bind(task)
    .bind(attempt)
    .bind(want)
    .execute(&mut **tx)
    .await?;
    drop_attempts(tx, task, "attempt <> $2", attempt).await?;
    let row = TaskRow {
        commit_attempt: Some(attempt),
        commit_batches: Some(want),
        ..row
    };
    promote_if_complete(tx, &row, task, attempt).await
}

async fn discard(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &str,
    job: Uuid,
    task: Uuid,
    attempt: u32,
) -> Result<Outcome, sqlx::Error> {
    let row = lock_task(tx, tenant, job, task).await?;
    let attempt = attempt_param(attempt);
    if row.commit_attempt == Some(attempt) {
        tracing::error!(task = %task, attempt, "a committed attempt was discarded; ignoring it");
        return Ok(Outcome::Replayed);
    }
    if row.committed || attempt <= row.discarded_through {
        // Committing dropped every other attempt already.
        return Ok(Outcome::Replayed);
    }
    sqlx::query("update sink_tasks set discarded_through = $2 where task_id = $1")
        .bind(task)
        .bind(attempt)
        .execute(&mut **tx)
        .await?;
    drop_attempts(tx, task, "attempt <= $2", attempt).await?;
    Ok(Outcome::Discarded)
}

/// Drops the staged batches of `task` whose attempt matches `which` (a
/// condition on `attempt` and `$2`) and marks them discarded.
async fn drop_attempts(
    tx: &mut Transaction<'_, Postgres>,
    task: Uuid,
    which: &str,
    attempt: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "with dropped as (delete from sink_staged where task_id = $1 and {which} \
             returning batch_id) \
         update sink_batches b set state = 'discarded' from dropped d \
         where b.batch_id = d.batch_id"
    ))
    .bind(task)
    .bind(attempt)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Makes the committed attempt visible if all its batches are here.
async fn promote_if_complete(
    tx: &mut Transaction<'_, Postgres>,
    row: &TaskRow,
    task: Uuid,
    attempt: i32,
) -> Result<Outcome, sqlx::Error> {
    let want = row.commit_batches.unwrap_or(0);
    let have: i64 = sqlx::query_scalar(
        "select count(*) from sink_batches where task_id = $1 and attempt = $2 \
             and state in ('staged', 'rejected')",
    )
    .bind(task)
    .bind(attempt)
    .fetch_one(&mut **tx)
    .await?;
    if have < i64::from(want) {
        let missing = u32::try_from(i64::from(want) - have).unwrap_or(u32::MAX);
        return Ok(Outcome::Waiting { missing });
    }

    let staged: Vec<(String, Value)> = sqlx::query_as(
        "select batch_id, body from sink_staged where task_id = $1 and attempt = $2 \
         order by seq",
    )
    .bind(task)
    .bind(attempt)
    .fetch_all(&mut **tx)
    .await?;
    let mut rows = 0;
    for (batch_id, body) in staged {
        let batch: BufferBatch = match serde_json::from_value(body) {
            Ok(batch) => batch,
            Err(err) => {
                // Staged bodies were serialised from a parsed batch.
                tracing::error!(batch_id, error = %err, "a staged batch does not parse");
                continue;
            }
        };
        let mut savepoint = sqlx::Acquire::begin(&mut **tx).await?;
        let written = match write::write(&mut savepoint, &batch).await {
            Ok(written) => written,
            Err(sqlx::Error::Database(err)) if is_data_error(err.code().as_deref()) => {
                Err(format!("the database refused the batch: {}", err.message()))
            }
            Err(err) => return Err(err),
        };
        match written {
            Ok(n) => {
                savepoint.commit().await?;
                rows += n;
                mark(tx, &batch_id, "applied").await?;
            }
            Err(reason) => {
                savepoint.rollback().await?;
                reject(tx, &batch, &reason).await?;
                mark(tx, &batch_id, "rejected").await?;
            }
        }
    }
    sqlx::query("delete from sink_staged where task_id = $1")
        .bind(task)
        .execute(&mut **tx)
        .await?;
    sqlx::query("update sink_tasks set committed_at = now() where task_id = $1")
        .bind(task)
        .execute(&mut **tx)
        .await?;
    let batches = u32::try_from(want).unwrap_or(0);
    tracing::info!(task = %task, attempt, batches, rows, "attempt committed");
    Ok(Outcome::Committed { batches, rows })
}

/// SQLSTATE class 22 (data exception) and 23 (integrity constraint): the
/// batch's own values, which writing it again cannot fix.
fn is_data_error(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.starts_with("22") || c.starts_with("23"))
}

async fn mark(
    tx: &mut Transaction<'_, Postgres>,
    batch_id: &str,
    state: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("update sink_batches set state = $2 where batch_id = $1")
        .bind(batch_id)
        .bind(state)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn reject(
    tx: &mut Transaction<'_, Postgres>,
    batch: &BufferBatch,
    reason: &str,
) -> Result<(), sqlx::Error> {
    tracing::info!(batch_id = %batch.batch_id, tenant = %batch.tenant_id, reason,
        "batch rejected");
    sqlx::query(
        "insert into sink_rejects (batch_id, tenant_id, job_id, task_id, attempt, reason) \
         values ($1, $2, $3, $4, $5, $6) on conflict (batch_id) do nothing",
    )
    .bind(&batch.batch_id)
    .bind(&batch.tenant_id)
    .bind(batch.job_id)
    .bind(batch.task_id)
    .bind(attempt_param(batch.attempt))
    .bind(reason)
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// An attempt number as the `integer` column holds it.
fn attempt_param(attempt: u32) -> i32 {
    i32::try_from(attempt).unwrap_or(i32::MAX)
}

fn seq_param(seq: u32) -> i32 {
    i32::try_from(seq).unwrap_or(i32::MAX)
}

/// Progress of a job as the sinks see it: `records` sums the rows of its
/// applied records batches (committed attempts only, so each task counts
/// once), `staged` those still waiting for their attempt's commit, `alerts`
/// counts its stored alerts, and `rejected_batches` its rows in
/// `sink_rejects`.
pub async fn progress(
    pool: &PgPool,
    job: Uuid,
) -> Result<trace_common::api::SinkProgress, sqlx::Error> {
    let row = sqlx::query(
        "select \
           coalesce((select sum(rows) from sink_batches \
                     where job_id = $1 and kind = 'records' and state = 'applied'), 0)::bigint \
               as records, \
           coalesce((select sum(rows) from sink_batches \
                     where job_id = $1 and kind = 'records' and state = 'staged'), 0)::bigint \
               as staged, \
           (select count(*) from alerts where job_id = $1)::bigint as alerts, \
           (select count(*) from sink_rejects where job_id = $1)::bigint as rejected",
    )
    .bind(job)
    .fetch_one(pool)
    .await?;
    Ok(trace_common::api::SinkProgress {
        records: row.get::<i64, _>("records") as u64,
        staged: row.get::<i64, _>("staged") as u64,
        alerts: row.get::<i64, _>("alerts") as u64,
        rejected_batches: row.get::<i64, _>("rejected") as u64,
    })
}
