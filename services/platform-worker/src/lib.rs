//! The platform worker: chain ingest into Postgres data and the Parquet lake.
//!
//! It receives ingest wake-ups from the `tasks-ingest` queue through the
//! shared worker loop ([`trace_common::worker::run_worker`]), and for each
//! claimed task fetches its blocks through the rpc-gateway, replaces them in
//! `chain.blocks`, `chain.transactions` and `chain.logs` in one transaction,
//! and writes one Parquet file per table to the lake. It knows providers
//! only through the rpc-gateway, so a replay provider and a live node look
//! the same. Start at [`serve`]; tests call [`ingest_blocks`] directly.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use trace_common::api::QUEUE_TASKS_INGEST;
use trace_common::worker::WorkerOptions;

pub mod handler;
pub mod ingest;
pub mod lake;
pub mod postgres;
pub mod rows;
pub mod rpc;

pub use handler::IngestHandler;
pub use ingest::{IngestError, IngestSummary, IngestTask, Tables, ingest_blocks};
pub use rpc::RpcClient;

/// Configuration of the platform worker.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Base URL of the rpc-gateway, the worker's only way to chain data.
    #[arg(
        long = "rpc-url",
        env = "TRACE_RPC_GATEWAY_URL",
        default_value = "http://127.0.0.1:7404"
    )]
    pub rpc_url: String,
    /// Base URL of the dispatcher: task claims and the embedded queue endpoint.
    #[arg(
        long,
        env = "TRACE_DISPATCHER_URL",
        default_value = "http://127.0.0.1:7401"
    )]
    pub dispatcher_url: String,
    /// Postgres URL of the data database.
    #[arg(
        long = "data-database-url",
        env = "TRACE_DATA_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:7432/trace_data"
    )]
    pub data_database_url: String,
    /// Directory of the platform object store (the lake is written under `lake/`).
    #[arg(
        long = "objects-dir",
        env = "TRACE_OBJECTS_DIR",
        default_value = ".trace/objects"
    )]
    pub objects_dir: PathBuf,
    /// Objects in this S3 bucket instead of the local directory; region,
    /// endpoint and credentials come from the AWS SDK's usual settings.
    #[arg(long, env = "TRACE_OBJECTS_BUCKET")]
    pub objects_bucket: Option<String>,
    /// This worker's id, recorded as the owner of its leases.
    #[arg(long, env = "TRACE_WORKER_ID", default_value = "platform-worker")]
    pub worker_id: String,
    /// How many ingest tasks run at once.
    #[arg(long, env = "TRACE_PLATFORM_WORKER_CONCURRENCY", default_value_t = 2)]
    pub concurrency: usize,
}

/// A failure to start the platform worker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data database could not be reached.
    #[error("cannot connect to the data database")]
    Database(#[source] sqlx::Error),
    /// The object store could not be opened.
    #[error(transparent)]
    Objects(#[from] trace_common::objects::OpenError),
    /// The health server failed.
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
}

/// Runs the worker loop on `tasks-ingest` and serves `GET /healthz` on
/// `listener`, until `shutdown`; running tasks are finished first.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let data = trace_common::db::connect(&config.data_database_url, config.concurrency as u32 + 1)
        .await
        .map_err(Error::Database)?;
    let bucket = config.objects_bucket.as_deref();
    let objects = trace_common::objects::open(&config.objects_dir, bucket).await?;
    let handler = Arc::new(IngestHandler::new(config.rpc_url.clone(), data, objects));

    let mut options = WorkerOptions::new(QUEUE_TASKS_INGEST, config.worker_id.clone());
    options.concurrency = config.concurrency.max(1);
    trace_common::worker::serve_worker(listener, &config.dispatcher_url, handler, options, shutdown)
        .await
        .map_err(Error::Serve)
}

/// The worker's health route, `GET /healthz`.
pub fn router() -> Router {
    Router::new().route("/healthz", get(|| async { "ok" }))
}
