//! What a run leaves behind, read straight from the data database and the
//! webhook receiver: a job's dataset rows without their bookkeeping, the
//! rows of attempts that did not complete, and the alerts stored and
//! received.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// The columns every dataset row carries that say which attempt wrote it.
const BOOKKEEPING: [&str; 5] = ["_job_id", "_task_id", "_attempt", "_batch_seq", "_row"];

/// The schema-qualified `erc20_transfers` table of the run's tenant.
async fn transfers_table(data: &PgPool) -> String {
    let schema: String = sqlx::query_scalar(
        "select schemaname::text from pg_tables where tablename = 'erc20_transfers'",
    )
    .fetch_one(data)
    .await
    .expect("the dataset table exists");
    format!("{schema}.erc20_transfers")
}

/// Every row of `job` in the dataset, all user columns as one JSON text
/// each, sorted: a multiset that two jobs over the same blocks must share.
pub async fn user_rows(data: &PgPool, job: Uuid) -> Vec<String> {
    let sql = format!(
        "select (to_jsonb(t) - $2::text[])::text from {} t where _job_id = $1",
        transfers_table(data).await
    );
    let mut rows: Vec<String> = sqlx::query_scalar(&sql)
        .bind(job)
        .bind(BOOKKEEPING.as_slice())
        .fetch_all(data)
        .await
        .unwrap();
    rows.sort_unstable();
    rows
}

/// Rows with how many times each occurs.
pub type Counted = Vec<(String, i64)>;

/// How two multisets of rows differ: rows of `clean` missing from `chaos`,
/// and rows of `chaos` beyond `clean`, each with how many times.
pub fn difference(clean: &[String], chaos: &[String]) -> (Counted, Counted) {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for row in clean {
        *counts.entry(row).or_default() += 1;
    }
    for row in chaos {
        *counts.entry(row).or_default() -= 1;
    }
    let missing = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(row, n)| (row.to_string(), *n))
        .collect();
    let extra = counts
        .iter()
        .filter(|(_, n)| **n < 0)
        .map(|(row, n)| (row.to_string(), -n))
        .collect();
    (missing, extra)
}

/// Rows of `job` per `(task, attempt)` whose attempt is not the one that
/// completed its task: records that must never be visible.
pub async fn rows_of_other_attempts(
    state: &PgPool,
    data: &PgPool,
    job: Uuid,
) -> Vec<(Uuid, i32, i64)> {
    let completed: BTreeSet<(Uuid, i32)> = sqlx::query_as(
        "select a.task_id, a.attempt from task_attempts a join tasks t on t.id = a.task_id \
         where t.job_id = $1 and a.outcome = 'succeeded'",
    )
    .bind(job)
    .fetch_all(state)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let sql = format!(
        "select _task_id, _attempt, count(*) from {} where _job_id = $1 \
         group by 1, 2 order by 1, 2",
        transfers_table(data).await
    );
    let written: Vec<(Uuid, i32, i64)> = sqlx::query_as(&sql)
        .bind(job)
        .fetch_all(data)
        .await
        .unwrap();
    written
        .into_iter()
        .filter(|(task, attempt, _)| !completed.contains(&(*task, *attempt)))
        .collect()
}

/// The ids of the alerts stored for `job`.
pub async fn stored_alerts(data: &PgPool, job: Uuid) -> BTreeSet<String> {
    sqlx::query_scalar("select id from alerts where job_id = $1")
        .bind(job)
        .fetch_all(data)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// How many times the receiver verified each alert id of `job`.
pub async fn received_alerts(receiver: &str, job: Uuid) -> BTreeMap<String, u64> {
    let bodies: Vec<Value> = reqwest::get(format!("{receiver}/alerts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job = job.to_string();
    let mut ids = BTreeMap::new();
    for body in bodies {
        if body["data"]["job_id"].as_str() == Some(job.as_str()) {
            let id = body["data"]["id"]
                .as_str()
                .expect("an alert body has an id");
            *ids.entry(id.to_string()).or_default() += 1;
        }
    }
    ids
}
