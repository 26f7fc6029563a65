//! Drains dataset buffers into Postgres data.
//!
//! UDF workers put [`BufferBatch`]es on the `buffer-records` queue, and the
//! dispatcher an [`AttemptEnd`] for every attempt that ends; the sinks
//! receive both, stage batches and make a committed attempt's batches
//! visible exactly once ([`apply`]: a bad batch refused whole into
//! `sink_rejects`), and delete a message only after its transaction
//! committed. `GET /v1/progress/{job}` reports what was applied. Start at
//! [`serve`]; [`run`] takes any [`Queue`] (tests pass a `PgQueue`).

use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument as _;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use trace_common::ApiError;
use trace_common::api::{AttemptEnd, BufferBatch, QUEUE_BUFFER, SinkProgress};
use trace_common::queue::http::HttpQueue;
use trace_common::queue::{Queue, Received};

pub mod apply;
pub mod dataset;
pub mod write;

pub use apply::{ApplyError, Outcome};

/// Configuration of the sinks.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Postgres URL of the data database.
    #[arg(
        long = "data-database-url",
        env = "TRACE_DATA_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:7432/trace_data"
    )]
    pub data_database_url: String,

    /// Base URL of the queue endpoint (the dispatcher in embedded mode).
    #[arg(
        long = "queue-url",
        env = "TRACE_DISPATCHER_URL",
        default_value = "http://127.0.0.1:7401"
    )]
    pub queue_url: String,

    /// How many receive loops run at once.
    #[arg(
        long = "concurrency",
        env = "TRACE_SINKS_CONCURRENCY",
        default_value_t = 2
    )]
    pub concurrency: usize,

    /// Most messages one receive takes.
    #[arg(
        long = "receive-batch",
        env = "TRACE_SINKS_RECEIVE_BATCH",
        default_value_t = 10
    )]
    pub receive_batch: u32,

    /// How long a received message stays invisible to other receivers, in ms.
    #[arg(
        long = "visibility-ms",
        env = "TRACE_SINKS_VISIBILITY_MS",
        default_value_t = 60_000
    )]
    pub visibility_ms: u64,

    /// How long one receive waits for a first message, in ms.
    #[arg(long = "wait-ms", env = "TRACE_SINKS_WAIT_MS", default_value_t = 1_000)]
    pub wait_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_database_url: "postgres://postgres@127.0.0.1:7432/trace_data".into(),
            queue_url: "http://127.0.0.1:7401".into(),
            concurrency: 2,
            receive_batch: 10,
            visibility_ms: 60_000,
            wait_ms: 1_000,
        }
    }
}

/// A failure that stops the sinks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data database could not be reached.
    #[error("cannot connect to the data database")]
    Connect(#[source] sqlx::Error),
    /// The HTTP server failed.
    #[error("http server failed")]
    Serve(#[source] std::io::Error),
}

/// Runs the sinks: the drain loops over the queue at `config.queue_url` and
/// the progress endpoint on `listener`, until `shutdown`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let pool = trace_common::db::connect(&config.data_database_url, config.concurrency as u32 + 4)
        .await
        .map_err(Error::Connect)?;
    let queue: Arc<dyn Queue> = Arc::new(HttpQueue::new(config.queue_url.clone()));
    run(config, pool, queue, listener, shutdown).await
}

/// [`serve`] with an explicit data pool and queue.
pub async fn run(
    config: Config,
    pool: PgPool,
    queue: Arc<dyn Queue>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let mut loops = Vec::new();
    for worker in 0..config.concurrency.max(1) {
        let drain = drain(
            config.clone(),
            pool.clone(),
            queue.clone(),
            shutdown.clone(),
        );
        loops.push(tokio::spawn(async move {
            tracing::debug!(worker, "sink loop started");
            drain.await
        }));
    }
    tracing::info!(addr = ?listener.local_addr().ok(), "sinks listening");
    let token = shutdown.clone();
    let served =
        trace_common::http::serve(
            listener,
            router(pool),
            async move { token.cancelled().await },
        )
        .await;
    shutdown.cancel();
    for handle in loops {
        let _ = handle.await;
    }
    served.map_err(Error::Serve)
}

/// The progress routes over the data database `pool`.
pub fn router(pool: PgPool) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/progress/{job}", get(progress))
        .with_state(pool)
}

async fn progress(
    State(pool): State<PgPool>,
    Path(job): Path<uuid::Uuid>,
) -> Result<axum::Json<SinkProgress>, ApiError> {
    Ok(axum::Json(apply::progress(&pool, job).await?))
}

/// One receive loop: receive, apply, delete what committed, until shutdown.
async fn drain(config: Config, pool: PgPool, queue: Arc<dyn Queue>, shutdown: CancellationToken) {
    let wait = Duration::from_millis(config.wait_ms);
    let visibility = Duration::from_millis(config.visibility_ms);
    while !shutdown.is_cancelled() {
        let received = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = queue.receive(QUEUE_BUFFER, config.receive_batch, wait, visibility) => r,
        };
        let messages = match received {
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!(error = %err, "receiving from the buffer queue failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let mut done = Vec::with_capacity(messages.len());
        for message in messages {
            if handle(&pool, &message).await {
                done.push(message.receipt);
            }
        }
        if !done.is_empty()
            && let Err(err) = queue.delete(QUEUE_BUFFER, &done).await
        {
            tracing::warn!(error = %err, "deleting applied buffer messages failed");
        }
    }
}

/// Handles one message; true when it may be deleted.
async fn handle(pool: &PgPool, message: &Received) -> bool {
    let body = &message.body;
    let parsed = if AttemptEnd::is_attempt_end(body) {
        serde_json::from_value(body.clone()).map(Message::End)
    } else {
        serde_json::from_value(body.clone()).map(Message::Batch)
    };
    let message_kind = match parsed {
        Ok(message) => message,
        Err(err) => {
            tracing::warn!(error = %err, "dropping a buffer message that is neither a batch \
                nor an attempt end");
            return true;
        }
    };
    // The task's trace, as its worker's logs carry it.
    let task = match &message_kind {
        Message::Batch(batch) => batch.task_id,
        Message::End(AttemptEnd::Commit { task_id, .. })
        | Message::End(AttemptEnd::Discard { task_id, .. }) => *task_id,
    };
    let trace = trace_common::telemetry::task_trace(task);
    let span = tracing::info_span!(parent: None, "buffer_message", trace_id = %trace);
    trace_common::telemetry::root_span(&span, &trace);
    // One immediate retry covers races such as two creators of one schema.
    let result = async {
        let result = message_kind.handle(pool).await;
        if result.is_err() {
            return message_kind.handle(pool).await;
        }
        result
    }
    .instrument(span.clone())
    .await;
    let _entered = span.enter();
    match result {
        Ok(outcome) => {
            tracing::debug!(what = %message_kind, ?outcome, "buffer message handled");
            count(&message_kind, &outcome, body);
            true
        }
        Err(err) => {
            tracing::warn!(error = %err, receive_count = message.receive_count,
                "buffer message not handled; it will be received again");
            false
        }
    }
}

/// Counts a handled message: by kind and outcome, the bytes of each batch
/// received, and the rows each commit made visible.
fn count(message: &Message, outcome: &apply::Outcome, body: &serde_json::Value) {
    use trace_common::metrics::counter;
    let (kind, bytes) = match message {
        Message::Batch(_) => ("batch", json_len(body)),
        Message::End(_) => ("attempt_end", 0),
    };
    let name = match outcome {
        apply::Outcome::Staged => "staged",
        apply::Outcome::Waiting { .. } => "waiting",
        apply::Outcome::Committed { rows, .. } => {
            counter!("trace_sink_rows_committed_total").increment(*rows);
            "committed"
        }
        apply::Outcome::Discarded => "discarded",
        apply::Outcome::Replayed => "replayed",
        apply::Outcome::Rejected { .. } => "rejected",
    };
    counter!("trace_sink_messages_total", "kind" => kind, "outcome" => name).increment(1);
    if bytes > 0 {
        counter!("trace_sink_batch_bytes_total").increment(bytes);
    }
}

/// The length of `value` serialised, counted without keeping the text.
fn json_len(value: &serde_json::Value) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// A message on the buffer queue.
enum Message {
    Batch(BufferBatch),
    End(AttemptEnd),
}

impl Message {
    async fn handle(&self, pool: &PgPool) -> Result<Outcome, ApplyError> {
        match self {
            Message::Batch(batch) => apply::apply(pool, batch).await,
            Message::End(end) => apply::end(pool, end).await,
        }
    }
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Batch(batch) => write!(f, "batch {}", batch.batch_id),
            Message::End(AttemptEnd::Commit {
                task_id, attempt, ..
            }) => write!(f, "commit of {task_id}:{attempt}"),
            Message::End(AttemptEnd::Discard {
                task_id, attempt, ..
            }) => write!(f, "discard of {task_id}:{attempt}"),
        }
    }
}
