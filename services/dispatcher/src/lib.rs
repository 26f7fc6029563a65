//! The dispatcher: jobs, tasks, leases, the outbox relay and the reaper.
//!
//! Postgres state is the truth. Creating a job writes the job, its tasks and
//! one outbox row per task in one transaction ([`jobs`]); the relay turns
//! outbox rows into queue messages ([`relay`]); a worker that receives one
//! claims the task and gets a lease whose attempt number fences every later
//! call ([`tasks`], [`report`]); the reaper returns expired leases
//! ([`reaper`]); a job ends with its last task ([`completion`]). The same
//! listener serves the embedded queue endpoint over `queue_messages`.
//!
//! Start at [`serve`], or at [`router`] with an [`AppState`] for tests.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use trace_common::limits::{JobLimits, TaskLimits};
use trace_common::objects::s3::S3Store;
use trace_common::queue::QueueBackend;
use trace_common::queue::sqs::SqsQueue;

pub mod attempts;
pub mod completion;
pub mod control;
pub mod jobs;
pub mod plan;
pub mod reaper;
pub mod relay;
pub mod report;
pub mod routes;
pub mod rows;
pub mod state;
pub mod stored_text;
pub mod tasks;

pub use routes::router;
pub use state::{AppState, Settings};

/// The dispatcher's configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Postgres URL of the state database.
    #[arg(
        long,
        env = "TRACE_STATE_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:7432/state"
    )]
    pub state_database_url: String,
    /// Most connections to the state database.
    #[arg(long, env = "TRACE_DISPATCHER_DB_CONNECTIONS", default_value_t = 10)]
    pub db_connections: u32,
    /// Seconds a claim or heartbeat holds a task before the reaper may return it.
    #[arg(long, env = "TRACE_DISPATCHER_LEASE_SECS", default_value_t = 30)]
    pub lease_secs: u64,
    /// Attempts a task gets before it is dead.
    #[arg(long, env = "TRACE_DISPATCHER_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: u32,
    /// Milliseconds before the first retry of a transient failure; doubled
    /// per attempt up to a minute, with jitter.
    #[arg(
        long,
        env = "TRACE_DISPATCHER_RETRY_BACKOFF_MS",
        default_value_t = 1000
    )]
    pub retry_backoff_ms: u64,
    /// Milliseconds between outbox relay passes (it also wakes on new rows).
    #[arg(
        long,
        env = "TRACE_DISPATCHER_RELAY_INTERVAL_MS",
        default_value_t = 500
    )]
    pub relay_interval_ms: u64,
    /// Milliseconds between reaper passes.
    #[arg(
        long,
        env = "TRACE_DISPATCHER_REAPER_INTERVAL_MS",
        default_value_t = 1000
    )]
    pub reaper_interval_ms: u64,
    /// A deployment maximum, as `name=value` (repeatable or
    /// comma-separated; the names of `trace job create --limit`): a job
    /// asking for more is refused when it is created. Unset limits keep the
    /// platform's defaults. Workers run each task under their own flags,
    /// lowered to what its job asked for, so raising a maximum here only
    /// helps where the workers' flags are raised too.
    #[arg(
        long = "limit-maximum",
        env = "TRACE_DISPATCHER_LIMIT_MAXIMA",
        value_delimiter = ',',
        value_name = "NAME=VALUE"
    )]
    pub limit_maxima: Vec<String>,
    /// Where task wake-ups and dataset buffers are queued: `postgres` (the
    /// state database's `queue_messages`) or `sqs`. Either way, every other
    /// service reaches the queues through this dispatcher's queue endpoint.
    #[arg(long, env = "TRACE_QUEUE_BACKEND", value_enum, default_value_t)]
    pub queue_backend: QueueBackend,
    /// With `--queue-backend sqs`: Trace queue `name` is the SQS queue
    /// `<prefix><name>` (`trace-tasks-udf`, `trace-buffer-records`, ...).
    /// Region, endpoint and credentials come from the AWS SDK's usual chain.
    #[arg(long, env = "TRACE_SQS_QUEUE_PREFIX", default_value = "trace-")]
    pub sqs_queue_prefix: String,
    /// With `--queue-backend sqs`: messages over SQS's 256 KiB (record
    /// batches holding a very large record) travel by claim check through
    /// `claims/` of this bucket; without it they are refused as too large.
    #[arg(long, env = "TRACE_OBJECTS_BUCKET")]
    pub objects_bucket: Option<String>,
    /// Apply the state database's migrations at start-up.
    #[arg(long, env = "TRACE_DISPATCHER_MIGRATE", default_value_t = true,
        action = clap::ArgAction::Set)]
    pub migrate: bool,
}

impl Default for Config {
    /// The flags' defaults.
    fn default() -> Self {
        Self::new("postgres://postgres@127.0.0.1:7432/state")
    }
}

impl Config {
    /// The defaults, over the state database at `state_database_url`.
    pub fn new(state_database_url: impl Into<String>) -> Self {
        Self {
            state_database_url: state_database_url.into(),
            db_connections: 10,
            lease_secs: 30,
            max_attempts: 3,
            retry_backoff_ms: 1000,
            relay_interval_ms: 500,
            reaper_interval_ms: 1000,
            limit_maxima: Vec::new(),
            queue_backend: QueueBackend::Postgres,
            sqs_queue_prefix: "trace-".to_string(),
            objects_bucket: None,
            migrate: true,
        }
    }

    /// The policy part of the configuration; refuses maxima that name no
    /// limit, are not whole numbers or are zero.
    pub fn settings(&self) -> Result<Settings, Error> {
        let set = JobLimits::from_pairs(&self.limit_maxima).map_err(Error::Config)?;
        let maxima = TaskLimits::default()
            .configured(&set)
            .map_err(|err| Error::Config(err.to_string()))?;
        Ok(Settings {
            lease: Duration::from_secs(self.lease_secs.max(1)),
            max_attempts: self.max_attempts.max(1),
            retry_backoff: Duration::from_millis(self.retry_backoff_ms),
            maxima,
        })
    }
}

/// A failure that stops the dispatcher.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A flag's value is not usable.
    #[error("invalid --limit-maximum: {0}")]
    Config(String),
    /// The state database could not be reached.
    #[error("cannot connect to the state database")]
    Connect(#[source] sqlx::Error),
    /// The state database's migrations failed.
    #[error("state database migrations failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The claim-check bucket could not be reached.
    #[error(transparent)]
    Objects(trace_common::objects::OpenError),
    /// The HTTP server failed.
    #[error("the http server failed")]
    Serve(#[source] std::io::Error),
}

/// Runs the HTTP server, the outbox relay and the reaper until `shutdown`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let settings = config.settings()?;
    let url = &config.state_database_url;
    let pool = trace_common::db::connect(url, config.db_connections)
        .await
        .map_err(Error::Connect)?;
    if config.migrate {
        trace_common::db::migrate_state(&pool)
            .await
            .map_err(Error::Migrate)?;
    }
    let state = match config.queue_backend {
        QueueBackend::Postgres => AppState::new(pool, settings),
        QueueBackend::Sqs => {
            let sdk = trace_common::aws::sdk_config().await;
            let mut queue = SqsQueue::new(&sdk, config.sqs_queue_prefix.clone());
            if let Some(bucket) = &config.objects_bucket {
                let store = S3Store::new(&sdk, bucket.clone());
                store.check().await.map_err(|message| {
                    Error::Objects(trace_common::objects::OpenError::Bucket {
                        bucket: bucket.clone(),
                        message,
                    })
                })?;
                queue = queue.with_claim_checks(Arc::new(store));
            }
            tracing::info!(prefix = %config.sqs_queue_prefix,
                claim_checks = ?config.objects_bucket, "queues on sqs");
            AppState::with_queue(pool, Arc::new(queue), settings)
        }
    };
    serve_state(state, &config, listener, shutdown).await
}

/// Like [`serve`], over an existing state (for trace-dev and tests).
pub async fn serve_state(
    state: AppState,
    config: &Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let relay_every = Duration::from_millis(config.relay_interval_ms.max(10));
    let reap_every = Duration::from_millis(config.reaper_interval_ms.max(10));
    let relay = tokio::spawn(relay::run(state.clone(), relay_every, shutdown.clone()));
    let reaper = tokio::spawn(reaper::run(state.clone(), reap_every, shutdown.clone()));
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "dispatcher listening");
    }

    let stop = shutdown.clone();
    let served =
        trace_common::http::serve(
            listener,
            router(state),
            async move { stop.cancelled().await },
        )
        .await;
    shutdown.cancel();
    let _ = tokio::join!(relay, reaper);
    served.map_err(Error::Serve)
}
