//! Queues: task wake-ups and dataset buffers.
//!
//! A queue message only wakes someone up or carries a batch; Postgres state
//! stays the truth. The embedded backend keeps messages in the state
//! database's `queue_messages` table ([`pg::PgQueue`]); services that must not
//! connect to Postgres (the UDF workers) reach it through the dispatcher's
//! queue endpoint with [`http::HttpQueue`]. [`sqs::SqsQueue`] implements the
//! same trait on SQS.

use std::time::Duration;

pub mod claim_check;
pub mod faults;
pub mod http;
pub mod pg;
pub mod sqs;

/// Which backend holds the queues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum QueueBackend {
    /// `queue_messages` in the state database ([`pg::PgQueue`]).
    #[default]
    Postgres,
    /// Amazon SQS ([`sqs::SqsQueue`]), reached as the AWS SDK's settings say.
    Sqs,
}

/// A received message: its body and the receipt that deletes it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Received {
    pub receipt: String,
    pub body: serde_json::Value,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
}

/// A failed queue operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The backend could not be reached or failed.
    #[error("queue backend failed: {0}")]
    Backend(String),
    /// A message is larger than the backend carries; sending it again will
    /// not help, so this is the sender's fault, never an outage.
    #[error("{0}")]
    TooLarge(String),
    /// A message the queue refuses to carry as it is (one shaped like a
    /// claim check, which only the queue itself may write).
    #[error("invalid message: {0}")]
    Invalid(String),
}

/// An at-least-once queue with visibility timeouts.
#[async_trait::async_trait]
pub trait Queue: Send + Sync + std::fmt::Debug {
    /// Enqueues messages.
    async fn send(&self, queue: &str, bodies: &[serde_json::Value]) -> Result<(), QueueError>;

    /// Receives up to `max` messages, waiting up to `wait` for the first one;
    /// each stays invisible to other receivers for `visibility`.
    async fn receive(
        &self,
        queue: &str,
        max: u32,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Received>, QueueError>;

    /// Deletes received messages by receipt; unknown receipts are ignored.
    async fn delete(&self, queue: &str, receipts: &[String]) -> Result<(), QueueError>;
}
