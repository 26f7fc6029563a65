//! Applying batches directly: exactly once, whole-batch rejects, exact numerics.
//! Each batch is attempt 1 of its task, made visible by committing that attempt.

use serde_json::json;
use sqlx::Row;
use trace_common::api::{Alert, BufferBatch, BufferPayload};
use trace_sinks::{Outcome, apply};
use uuid::Uuid;

use super::support::{column, commit, records, transfer_columns, value_rows};

const BLOCK: u64 = 10_000_000;

async fn count(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn applying_a_batch_twice_changes_nothing() {
    let (_state, data) = trace_common::db::testing::fresh_pools().await;
    let (job, task) = (Uuid::new_v4(), Uuid::new_v4());
    let rows = value_rows(BLOCK, 25);
    let batch = records(
        "acme",
        job,
        task,
        0,
        "transfers",
        transfer_columns(),
        rows.clone(),
    );

    assert_eq!(apply::apply(&data, &batch).await.unwrap(), Outcome::Staged);
    assert_eq!(
        apply::apply(&data, &batch).await.unwrap(),
        Outcome::Replayed
    );
    let done = commit(job, task, 1, 1);
    assert_eq!(
        apply::end(&data, &done).await.unwrap(),
        Outcome::Committed {
            batches: 1,
            rows: 25
        }
    );
    assert_eq!(apply::end(&data, &done).await.unwrap(), Outcome::Replayed);
    assert_eq!(
        apply::apply(&data, &batch).await.unwrap(),
        Outcome::Replayed
    );

    assert_eq!(
        count(&data, "select count(*) from ds_acme.transfers").await,
        25
    );
    assert_eq!(count(&data, "select count(*) from sink_batches").await, 1);
    let progress = apply::progress(&data, job).await.unwrap();
    assert_eq!(
        (progress.records, progress.alerts, progress.rejected_batches),
        (25, 0, 0)
    );

    let first = sqlx::query(
        "select block_number, log_index, token, _row, _batch_seq, _attempt, _job_id \
         from ds_acme.transfers order by _row limit 1",
    )
    .fetch_one(&data)
    .await
    .unwrap();
    assert_eq!(first.get::<i64, _>("block_number"), BLOCK as i64);
    assert_eq!(
        first.get::<i64, _>("log_index"),
        rows[0]["log_index"].as_i64().unwrap()
    );
    assert_eq!(
        first.get::<String, _>("token"),
        rows[0]["token"].as_str().unwrap()
    );
    assert_eq!(first.get::<i32, _>("_row"), 0);
    assert_eq!(first.get::<Uuid, _>("_job_id"), job);
}

#[tokio::test]
async fn numerics_keep_all_78_digits_of_a_real_256_bit_value() {
    let (_state, data) = trace_common::db::testing::fresh_pools().await;
    let rows = value_rows(BLOCK, 40);
    let max = rows
        .iter()
        .find(|r| r["is_max"] == json!(true))
        .expect("a max approval");
    let expected = max["value"].as_str().unwrap().to_string();
    assert_eq!(expected.len(), 78);

    let (job, task) = (Uuid::new_v4(), Uuid::new_v4());
    let batch = records("acme", job, task, 0, "transfers", transfer_columns(), rows);
    apply::apply(&data, &batch).await.unwrap();
    apply::end(&data, &commit(job, task, 1, 1)).await.unwrap();

    let stored: Vec<String> =
        sqlx::query_scalar("select value::text from ds_acme.transfers where is_max order by _row")
            .fetch_all(&data)
            .await
            .unwrap();
    assert!(!stored.is_empty());
    assert!(
        stored.iter().all(|v| *v == expected),
        "{stored:?} vs {expected}"
    );
}

#[tokio::test]
async fn a_bad_row_rejects_the_whole_batch_with_a_reason() {
    let (_state, data) = trace_common::db::testing::fresh_pools().await;
    let job = Uuid::new_v4();
    let mut rows = value_rows(BLOCK, 5);
    rows[3]["value"] = json!("12.5");
    let batch = records(
        "acme",
        job,
        Uuid::new_v4(),
        0,
        "transfers",
        transfer_columns(),
        rows,
    );

    let Outcome::Rejected { reason } = apply::apply(&data, &batch).await.unwrap() else {
        panic!("the batch was not rejected");
    };
    assert!(reason.contains("row 3, column `value`"), "{reason}");
    let stored: String = sqlx::query_scalar("select reason from sink_rejects where batch_id = $1")
        .bind(&batch.batch_id)
        .fetch_one(&data)
        .await
        .unwrap();
    assert_eq!(stored, reason);
    let state: String = sqlx::query_scalar("select state from sink_batches where batch_id = $1")
        .bind(&batch.batch_id)
        .fetch_one(&data)
        .await
        .unwrap();
    assert_eq!(state, "rejected");
    // The rejected batch counts as arrived: the commit completes without it.
    let done = commit(job, batch.task_id, 1, 1);
    assert_eq!(
        apply::end(&data, &done).await.unwrap(),
        Outcome::Committed {
            batches: 1,
            rows: 0
        }
    );
    assert_eq!(count(&data, "select count(*) from datasets").await, 0);
    assert_eq!(
        apply::progress(&data, job).await.unwrap().rejected_batches,
        1
    );
}

#[tokio::test]
async fn a_declaration_differing_from_the_stored_one_is_rejected() {
    let (_state, data) = trace_common::db::testing::fresh_pools().await;
    let job = Uuid::new_v4();
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let good = records(
        "acme",
        job,
        first,
        0,
        "t",
        vec![column("a", "text", false)],
        vec![json!({"a": "x"})],
    );
    apply::apply(&data, &good).await.unwrap();
    apply::end(&data, &commit(job, first, 1, 1)).await.unwrap();

    let other = records(
        "acme",
        job,
        second,
        0,
        "t",
        vec![column("a", "int64", false)],
        vec![json!({"a": 1})],
    );
    assert_eq!(apply::apply(&data, &other).await.unwrap(), Outcome::Staged);
    // Checked against the stored declaration when its attempt is committed.
    let outcome = apply::end(&data, &commit(job, second, 1, 1)).await.unwrap();
    assert_eq!(
        outcome,
        Outcome::Committed {
            batches: 1,
            rows: 0
        }
    );
    let reason: String = sqlx::query_scalar("select reason from sink_rejects where batch_id = $1")
        .bind(&other.batch_id)
        .fetch_one(&data)
        .await
        .unwrap();
    assert!(
        reason.contains("dataset `t` is declared with columns"),
        "{reason}"
    );
    assert_eq!(count(&data, "select count(*) from ds_acme.t").await, 1);
}

#[tokio::test]
async fn alerts_are_stored_once_by_id_across_batches() {
    let (_state, data) = trace_common::db::testing::fresh_pools().await;
    let (job, task) = (Uuid::new_v4(), Uuid::new_v4());
    let alerts: Vec<Alert> = (0..3)
        .map(|i| Alert {
            id: format!("{job}:k{i}"),
            key: format!("k{i}"),
            severity: "warning".into(),
            title: format!("alert {i}"),
            payload: json!({"i": i}),
        })
        .collect();
    let batch = |attempt: u32| BufferBatch {
        batch_id: format!("{task}:{attempt}:0"),
        tenant_id: "acme".into(),
        job_id: job,
        task_id: task,
        attempt,
        seq: 0,
        payload: BufferPayload::Alerts {
            alerts: alerts.clone(),
        },
    };

    // Two tasks of one job that publish alerts with the same keys.
    let other_task = Uuid::new_v4();
    let mut again = batch(1);
    again.task_id = other_task;
    again.batch_id = format!("{other_task}:1:0");
    for b in [batch(1), again] {
        assert_eq!(apply::apply(&data, &b).await.unwrap(), Outcome::Staged);
        assert_eq!(
            apply::end(&data, &commit(job, b.task_id, 1, 1))
                .await
                .unwrap(),
            Outcome::Committed {
                batches: 1,
                rows: 3
            }
        );
    }
    assert_eq!(count(&data, "select count(*) from alerts").await, 3);
    let payload: serde_json::Value =
        sqlx::query_scalar("select payload from alerts where key = 'k2'")
            .fetch_one(&data)
            .await
            .unwrap();
    assert_eq!(payload, json!({"i": 2}));
    assert_eq!(apply::progress(&data, job).await.unwrap().alerts, 3);
}
