//! The UDF worker: runs user components for the tasks of UDF jobs.
//!
//! It receives wake-ups from the `tasks-udf` queue through the shared worker
//! loop ([`trace_common::worker::run_worker`]); for each claimed task the
//! [`UdfHandler`] reads the component from object storage by digest, loads
//! it with [`trace_host::Host`] (compiled once, cached on disk), asks the
//! broker for the task's credentials, and runs it on a blocking thread with
//! capabilities that reach the platform over HTTP: the query service
//! ([`query`]), the broker's object endpoint ([`objects`]), the buffer queue
//! ([`records`]) and the task's collected log ([`log`]). The worker never
//! connects to Postgres. Start at [`serve`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use trace_common::api::QUEUE_TASKS_UDF;
use trace_common::limits::TaskLimits;
use trace_common::worker::WorkerOptions;
use trace_host::{Host, HostConfig, HostError, Limits};

mod bridge;
pub mod handler;
pub mod log;
pub mod objects;
pub mod objects_s3;
pub mod query;
pub mod records;

pub use handler::UdfHandler;

/// Configuration of the UDF worker.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Base URL of the dispatcher: task claims and the embedded queue endpoint.
    #[arg(
        long,
        env = "TRACE_DISPATCHER_URL",
        default_value = "http://127.0.0.1:7401"
    )]
    pub dispatcher_url: String,
    /// Base URL of the query service that components' queries go to.
    #[arg(long, env = "TRACE_QUERY_URL", default_value = "http://127.0.0.1:7402")]
    pub query_url: String,
    /// Base URL of the broker: task credentials and the scoped object endpoint.
    #[arg(
        long,
        env = "TRACE_BROKER_URL",
        default_value = "http://127.0.0.1:7403"
    )]
    pub broker_url: String,
    /// Directory of the platform object store, read for component bytes.
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
    /// Directory of compiled component artifacts, kept across restarts.
    #[arg(
        long,
        env = "TRACE_ARTIFACT_CACHE_DIR",
        default_value = ".trace/artifacts"
    )]
    pub artifact_cache_dir: PathBuf,
    /// This worker's id, recorded as the owner of its leases.
    #[arg(long, env = "TRACE_WORKER_ID", default_value = "udf-worker")]
    pub worker_id: String,
    /// How many tasks run at once.
    #[arg(long, env = "TRACE_UDF_WORKER_CONCURRENCY", default_value_t = 2)]
    pub concurrency: usize,
    /// Memory cap of one component instance, in MiB.
    #[arg(long, env = "TRACE_UDF_MEMORY_MIB", default_value_t = 64)]
    pub memory_mib: usize,
    /// Wall time one run may take, in seconds, before it is interrupted.
    #[arg(long, env = "TRACE_UDF_DEADLINE_SECS", default_value_t = 30)]
    pub deadline_secs: u64,
    /// Wall time a whole task may take (load, run, flush), in seconds.
    #[arg(long, env = "TRACE_UDF_TASK_WALL_SECS", default_value_t = 60)]
    pub task_wall_secs: u64,
    /// Most log lines a task may write; one more fails the task.
    #[arg(long, env = "TRACE_UDF_MAX_LOG_LINES", default_value_t = 1000)]
    pub max_log_lines: u32,
    /// Most bytes of records (as JSON) and alert text one task may publish.
    #[arg(long, env = "TRACE_UDF_MAX_RECORD_BYTES", default_value_t = 256 << 20)]
    pub max_record_bytes: u64,
    /// Most records one task may publish, all datasets together.
    #[arg(long, env = "TRACE_UDF_MAX_RECORDS", default_value_t = 1_000_000)]
    pub max_records: u64,
    /// Most alerts one task may publish.
    #[arg(long, env = "TRACE_UDF_MAX_ALERTS", default_value_t = 10_000)]
    pub max_alerts: u64,
}

impl Config {
    /// The defaults, with the given service URLs and object directory; the
    /// artifact cache goes to `artifacts/` beside the object directory.
    pub fn new(
        dispatcher_url: impl Into<String>,
        query_url: impl Into<String>,
        broker_url: impl Into<String>,
        objects_dir: impl Into<PathBuf>,
    ) -> Self {
        let objects_dir = objects_dir.into();
        let artifact_cache_dir = match objects_dir.parent() {
            Some(parent) => parent.join("artifacts"),
            None => PathBuf::from(".trace/artifacts"),
        };
        Self {
            dispatcher_url: dispatcher_url.into(),
            query_url: query_url.into(),
            broker_url: broker_url.into(),
            objects_dir,
            objects_bucket: None,
            artifact_cache_dir,
            worker_id: "udf-worker".to_string(),
            concurrency: 2,
            memory_mib: 64,
            deadline_secs: 30,
            task_wall_secs: 60,
            max_log_lines: 1000,
            max_record_bytes: 256 << 20,
            max_records: 1_000_000,
            max_alerts: 10_000,
        }
    }

    /// The most any task may get on this worker: these flags, and the
    /// platform defaults for the limits without a flag. A task runs under
    /// these narrowed to what its job asked for.
    pub fn maxima(&self) -> TaskLimits {
        TaskLimits {
            memory_mib: self.memory_mib as u64,
            call_deadline_secs: self.deadline_secs,
            task_wall_secs: self.task_wall_secs,
            max_records: self.max_records,
            max_record_bytes: self.max_record_bytes,
            max_alerts: self.max_alerts,
            max_log_lines: u64::from(self.max_log_lines),
            ..TaskLimits::default()
        }
    }
}

/// The host's per-run limits for a task's `limits`.
pub fn run_limits(limits: &TaskLimits) -> Limits {
    let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    Limits {
        memory_bytes: size(limits.memory_mib).saturating_mul(1 << 20),
        epoch_deadline: Duration::from_secs(limits.call_deadline_secs),
        max_log_lines: u32::try_from(limits.max_log_lines).unwrap_or(u32::MAX),
        max_log_bytes: size(limits.max_log_bytes),
        max_objects: size(limits.max_objects),
        max_object_bytes: size(limits.max_object_bytes),
        max_object_total_bytes: limits.max_object_total_bytes,
        ..Limits::default()
    }
}

/// A failure to start the UDF worker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The wasmtime host could not be set up.
    #[error("cannot set up the wasmtime host")]
    Host(#[source] HostError),
    /// The object store could not be opened.
    #[error(transparent)]
    Objects(#[from] trace_common::objects::OpenError),
    /// The health server failed.
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
}

/// Runs the worker loop on `tasks-udf` and serves `GET /healthz` on
/// `listener`, until `shutdown`; running tasks are finished first.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let handler = Arc::new(UdfHandler::from_config(&config).await?);
    let mut options = WorkerOptions::new(QUEUE_TASKS_UDF, config.worker_id.clone());
    options.concurrency = config.concurrency.max(1);
    trace_common::worker::serve_worker(listener, &config.dispatcher_url, handler, options, shutdown)
        .await
        .map_err(Error::Serve)
}

/// The worker's health route, `GET /healthz`.
pub fn router() -> Router {
    Router::new().route("/healthz", get(|| async { "ok" }))
}

/// The host for `config`: a pool a little larger than the concurrency, and
/// the artifact cache directory.
pub(crate) fn host(config: &Config) -> Result<Host, Error> {
    let host_config = HostConfig {
        cache_dir: Some(config.artifact_cache_dir.clone()),
        max_instances: (config.concurrency.max(1) as u32) * 2,
        max_memory_bytes: (config.memory_mib << 20).max(HostConfig::default().max_memory_bytes),
        ..HostConfig::default()
    };
    Host::new(host_config).map_err(Error::Host)
}
