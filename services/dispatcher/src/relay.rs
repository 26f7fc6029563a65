//! The outbox relay: unsent outbox rows become queue messages.
//!
//! A batch of unsent rows is locked with `FOR UPDATE SKIP LOCKED` (so two
//! dispatchers never relay the same rows at once), sent, and marked sent in
//! the same transaction. A crash between the send and the commit sends the
//! batch again: wake-ups are at-least-once, and a duplicate only finds its
//! task already claimed. A row waits until its `not_before` (a retry's
//! backoff); the periodic pass picks it up then.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// The most rows relayed per transaction.
const BATCH: i64 = 500;

/// A failed relay pass.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// Reading or marking outbox rows failed.
    #[error("outbox database access failed")]
    Database(#[from] sqlx::Error),
    /// Sending to the queue failed.
    #[error("sending outbox rows to queue `{queue}` failed")]
    Queue {
        queue: String,
        #[source]
        source: trace_common::queue::QueueError,
    },
}

/// Relays one batch; returns how many rows were sent.
pub async fn relay_once(state: &AppState) -> Result<u64, RelayError> {
    let mut tx = state.pool.begin().await?;
    let rows: Vec<(i64, String, serde_json::Value)> = sqlx::query_as(
        "select id, queue, body from outbox where sent_at is null and not_before <= now() \
         order by id limit $1 for update skip locked",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }

    let mut by_queue: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    let ids: Vec<i64> = rows.iter().map(|row| row.0).collect();
    for (_, queue, body) in rows {
        by_queue.entry(queue).or_default().push(body);
    }
    for (queue, bodies) in &by_queue {
        let sent = state.queue.send(queue, bodies).await;
        sent.map_err(|source| RelayError::Queue {
            queue: queue.clone(),
            source,
        })?;
    }

    sqlx::query("update outbox set sent_at = now() where id = any($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ids.len() as u64)
}

/// Relays until `shutdown`, waking on new outbox rows or every `every`.
pub async fn run(state: AppState, every: Duration, shutdown: CancellationToken) {
    loop {
        match relay_once(&state).await {
            Ok(sent) if sent as i64 == BATCH => continue,
            Ok(sent) if sent > 0 => tracing::debug!(sent, "outbox relayed"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "outbox relay failed; will retry"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = state.outbox_written.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}
