//! The embedded queue backend: messages in the state database's
//! `queue_messages` table.
//!
//! A receive locks ready rows with `FOR UPDATE SKIP LOCKED`, so concurrent
//! receivers never get the same message, pushes their `visible_at` forward
//! by the visibility timeout and gives each a fresh `receipt`. A message that
//! is not deleted in time becomes visible again and is redelivered under a
//! new receipt; the old receipt then deletes nothing, so a slow consumer
//! cannot delete the message another consumer is now working on.

use std::time::Duration;

use sqlx::PgPool;
use tokio::time::Instant;
use uuid::Uuid;

use super::{Queue, QueueError, Received};

/// How often a long poll looks for new messages.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// A [`Queue`] over the `queue_messages` table.
#[derive(Debug, Clone)]
pub struct PgQueue {
    pool: PgPool,
}

impl PgQueue {
    /// A queue over the state database behind `pool` (already migrated).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// One non-waiting attempt to take up to `max` ready messages.
    async fn take(
        &self,
        queue: &str,
        max: u32,
        visibility: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        let visibility_ms = i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX);
        let rows: Vec<(i64, Uuid, serde_json::Value, i32)> = sqlx::query_as(
            "with picked as ( \
                 select id from queue_messages \
                 where queue = $1 and visible_at <= now() \
                 order by id limit $2 \
                 for update skip locked \
             ) \
             update queue_messages m set \
                 visible_at = now() + make_interval(secs => $3::float8 / 1000.0), \
                 receive_count = m.receive_count + 1, \
                 receipt = gen_random_uuid() \
             from picked where m.id = picked.id \
             returning m.id, m.receipt, m.body, m.receive_count",
        )
        .bind(queue)
        .bind(i64::from(max))
        .bind(visibility_ms as f64)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;

        let mut rows = rows;
        rows.sort_by_key(|row| row.0);
        let received = rows
            .into_iter()
            .map(|(_, receipt, body, count)| Received {
                receipt: receipt.to_string(),
                body,
                receive_count: u32::try_from(count).unwrap_or(0),
            })
            .collect();
        Ok(received)
    }
}

#[async_trait::async_trait]
impl Queue for PgQueue {
    async fn send(&self, queue: &str, bodies: &[serde_json::Value]) -> Result<(), QueueError> {
        if bodies.is_empty() {
            return Ok(());
        }
        let array = serde_json::Value::Array(bodies.to_vec());
        sqlx::query(
            "insert into queue_messages (queue, body) \
             select $1, value from jsonb_array_elements($2) with ordinality as e(value, n) \
             order by n",
        )
        .bind(queue)
        .bind(array)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn receive(
        &self,
        queue: &str,
        max: u32,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        let deadline = Instant::now() + wait;
        let max = max.max(1);
        loop {
            let received = self.take(queue, max, visibility).await?;
            if !received.is_empty() || Instant::now() >= deadline {
                return Ok(received);
            }
            let next = (Instant::now() + POLL_EVERY).min(deadline);
            tokio::time::sleep_until(next).await;
        }
    }

    async fn delete(&self, queue: &str, receipts: &[String]) -> Result<(), QueueError> {
        let receipts: Vec<Uuid> = receipts.iter().filter_map(|r| r.parse().ok()).collect();
        if receipts.is_empty() {
            return Ok(());
        }
        sqlx::query("delete from queue_messages where queue = $1 and receipt = any($2)")
            .bind(queue)
            .bind(&receipts)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

fn backend(err: sqlx::Error) -> QueueError {
    QueueError::Backend(err.to_string())
}
