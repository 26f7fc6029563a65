//! The commit protocol: only the committed attempt of a task becomes
//! visible, once, whatever the order and number of deliveries.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::Value;
use sqlx::PgPool;
use trace_common::api::{AttemptEnd, BufferBatch};
use trace_sinks::{Outcome, apply};
use uuid::Uuid;

use super::support::{at_attempt, commit, discard, records, transfer_columns, value_rows};

const BLOCK: u64 = 10_000_000;

/// Attempt `attempt` of `task`: the recorded block's rows in batches of 10.
fn attempt_batches(job: Uuid, task: Uuid, attempt: u32, rows: &[Value]) -> Vec<BufferBatch> {
    rows.chunks(10)
        .enumerate()
        .map(|(seq, chunk)| {
            let batch = records(
                "acme",
                job,
                task,
                seq as u32,
                "transfers",
                transfer_columns(),
                chunk.to_vec(),
            );
            at_attempt(batch, attempt)
        })
        .collect()
}

/// Rows visible for `task`, by attempt.
async fn visible(data: &PgPool, task: Uuid) -> Vec<(i32, i64)> {
    let exists: Option<String> =
        sqlx::query_scalar("select to_regclass('ds_acme.transfers')::text")
            .fetch_one(data)
            .await
            .unwrap();
    if exists.is_none() {
        return Vec::new();
    }
    sqlx::query_as(
        "select _attempt, count(*) from ds_acme.transfers where _task_id = $1 \
         group by _attempt order by _attempt",
    )
    .bind(task)
    .fetch_all(data)
    .await
    .unwrap()
}

#[tokio::test]
async fn nothing_is_visible_before_the_commit_and_all_of_it_after() {
    let (_state, data) = trace_common::db::testing::fresh_pools().await;
    let (job, task) = (Uuid::new_v4(), Uuid::new_v4());
    let rows = value_rows(BLOCK, 35);
    let batches = attempt_batches(job, task, 1, &rows);
    assert_eq!(batches.len(), 4);

    for batch in &batches[..3] {
        assert_eq!(apply::apply(&data, batch).await.unwrap(), Outcome::Staged);
    }
    assert_eq!(visible(&data, task).await, []);
    let progress = apply::progress(&data, job).await.unwrap();
    assert_eq!((progress.records, progress.staged), (0, 30));

    // The commit arrives before the last batch: it waits for it.
    let done = commit(job, task, 1, 4);
    assert_eq!(
        apply::end(&data, &done).await.unwrap(),
        Outcome::Waiting { missing: 1 }
    );
    assert_eq!(visible(&data, task).await, []);
    assert_eq!(
        apply::apply(&data, &batches[3]).await.unwrap(),
        Outcome::Committed {
            batches: 4,
            rows: 35
        }
    );
    assert_eq!(visible(&data, task).await, [(1, 35)]);
    let progress = apply::progress(&data, job).await.unwrap();
    assert_eq!((progress.records, progress.staged), (35, 0));
    let left: i64 = sqlx::query_scalar("select count(*) from sink_staged")
        .fetch_one(&data)
        .await
        .unwrap();
    assert_eq!(left, 0, "staged bodies are dropped once committed");
}

#[tokio::test]
async fn failed_and_stale_attempts_never_become_visible() {
    let (_state, data) = trace_common::db::testing::fresh_pools().await;
    let (job, task) = (Uuid::new_v4(), Uuid::new_v4());
    let rows = value_rows(BLOCK, 30);
    let first = attempt_batches(job, task, 1, &rows);
    let second = attempt_batches(job, task, 2, &rows[..20]);
    let third = attempt_batches(job, task, 3, &rows);

    // Attempt 1 sends two batches, then its lease expires: discarded.
    for batch in &first[..2] {
        apply::apply(&data, batch).await.unwrap();
    }
    assert_eq!(
        apply::end(&data, &discard(job, task, 1)).await.unwrap(),
        Outcome::Discarded
    );
    // Its worker did not know and sends its last batch afterwards.
    assert_eq!(
        apply::apply(&data, &first[2]).await.unwrap(),
        Outcome::Discarded
    );
    // Attempt 2 stages everything; attempt 3 runs and is committed.
    for batch in &second {
        apply::apply(&data, batch).await.unwrap();
    }
    for batch in &third {
        apply::apply(&data, batch).await.unwrap();
    }
    let outcome = apply::end(&data, &commit(job, task, 3, 3)).await.unwrap();
    assert_eq!(
        outcome,
        Outcome::Committed {
            batches: 3,
            rows: 30
        }
    );
    // Attempt 2's discard arrives late; a duplicate of attempt 2's batch too.
    assert_eq!(
        apply::end(&data, &discard(job, task, 2)).await.unwrap(),
        Outcome::Replayed
    );
    assert_eq!(
        apply::apply(&data, &second[0]).await.unwrap(),
        Outcome::Replayed
    );

    assert_eq!(visible(&data, task).await, [(3, 30)]);
    let states: Vec<(i32, String, i64)> = sqlx::query_as(
        "select attempt, state, count(*) from sink_batches where task_id = $1 \
         group by attempt, state order by attempt, state",
    )
    .bind(task)
    .fetch_all(&data)
    .await
    .unwrap();
    assert_eq!(
        states,
        [
            (1, "discarded".to_string(), 2),
            (2, "discarded".to_string(), 2),
            (3, "applied".to_string(), 3)
        ]
    );
}

#[tokio::test]
async fn any_order_and_any_duplicates_give_the_same_dataset() {
    let (_state, data) = trace_common::db::testing::fresh_pools().await;
    let job = Uuid::new_v4();
    let rows = value_rows(BLOCK, 40);
    let tasks: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();

    // Per task: a discarded attempt 1 and a committed attempt 2, every
    // message twice, all shuffled, then sent by four concurrent sinks.
    enum Msg {
        Batch(BufferBatch),
        End(AttemptEnd),
    }
    let mut messages = Vec::new();
    for &task in &tasks {
        for batch in attempt_batches(job, task, 1, &rows[..25]) {
            messages.push(Msg::Batch(batch.clone()));
            messages.push(Msg::Batch(batch));
        }
        for batch in attempt_batches(job, task, 2, &rows) {
            messages.push(Msg::Batch(batch.clone()));
            messages.push(Msg::Batch(batch));
        }
        for _ in 0..2 {
            messages.push(Msg::End(discard(job, task, 1)));
            messages.push(Msg::End(commit(job, task, 2, 4)));
        }
    }
    messages.shuffle(&mut rand::rngs::StdRng::seed_from_u64(11));
    let mut lanes: Vec<Vec<Msg>> = (0..4).map(|_| Vec::new()).collect();
    for (i, message) in messages.into_iter().enumerate() {
        lanes[i % 4].push(message);
    }
    let runs = lanes.into_iter().map(|lane| {
        let data = data.clone();
        tokio::spawn(async move {
            for message in lane {
                match message {
                    Msg::Batch(batch) => apply::apply(&data, &batch).await.unwrap(),
                    Msg::End(end) => apply::end(&data, &end).await.unwrap(),
                };
            }
        })
    });
    for run in runs {
        run.await.unwrap();
    }

    for &task in &tasks {
        assert_eq!(visible(&data, task).await, [(2, 40)], "task {task}");
    }
    // Row for row: each task holds exactly the recorded values, once.
    let expected: Vec<i64> = rows
        .iter()
        .map(|r| r["log_index"].as_i64().unwrap())
        .collect();
    for &task in &tasks {
        let stored: Vec<i64> = sqlx::query_scalar(
            "select log_index from ds_acme.transfers where _task_id = $1 \
             order by _batch_seq, _row",
        )
        .bind(task)
        .fetch_all(&data)
        .await
        .unwrap();
        assert_eq!(stored, expected);
    }
    let progress = apply::progress(&data, job).await.unwrap();
    assert_eq!((progress.records, progress.staged), (160, 0));
}
