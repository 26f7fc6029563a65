//! The only way out to user webhooks.
//!
//! Delivery turns stored alerts (data database) into signed webhook
//! requests to each of the tenant's endpoints (state database): the
//! [`schedule`] pass creates one `pending` delivery per alert and endpoint,
//! the [`send`] pass posts due ones signed per Standard Webhooks
//! ([`signing`]) after the [`egress`] checks, retrying with backoff until
//! `max_attempts`. `GET /v1/progress/{job}` counts a job's deliveries by
//! state. Start at [`serve`].

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use sqlx::{PgPool, Row};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use trace_common::ApiError;
use trace_common::api::DeliveryProgress;

pub mod egress;
pub mod schedule;
pub mod send;
pub mod signing;

pub use signing::sign;

/// Configuration of delivery.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Postgres URL of the state database (endpoints and deliveries).
    #[arg(
        long = "state-database-url",
        env = "TRACE_STATE_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:7432/trace_state"
    )]
    pub state_database_url: String,

    /// Postgres URL of the data database (alerts).
    #[arg(
        long = "data-database-url",
        env = "TRACE_DATA_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:7432/trace_data"
    )]
    pub data_database_url: String,

    /// How often to look for new alerts and due deliveries, in ms.
    #[arg(
        long = "poll-interval-ms",
        env = "TRACE_DELIVERY_POLL_INTERVAL_MS",
        default_value_t = 500
    )]
    pub poll_interval_ms: u64,

    /// Attempts before a delivery is marked failed.
    #[arg(
        long = "max-attempts",
        env = "TRACE_DELIVERY_MAX_ATTEMPTS",
        default_value_t = 8
    )]
    pub max_attempts: u32,

    /// Allow loopback, private and link-local targets (for local development).
    #[arg(
        long = "allow-private-targets",
        env = "TRACE_DELIVERY_ALLOW_PRIVATE_TARGETS"
    )]
    pub allow_private_targets: bool,

    /// Timeout of one webhook request, in ms.
    #[arg(
        long = "request-timeout-ms",
        env = "TRACE_DELIVERY_REQUEST_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub request_timeout_ms: u64,

    /// Wait before the first retry, in ms; it doubles per attempt (with jitter).
    #[arg(
        long = "retry-base-ms",
        env = "TRACE_DELIVERY_RETRY_BASE_MS",
        default_value_t = 1_000
    )]
    pub retry_base_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            state_database_url: "postgres://postgres@127.0.0.1:7432/trace_state".into(),
            data_database_url: "postgres://postgres@127.0.0.1:7432/trace_data".into(),
            poll_interval_ms: 500,
            max_attempts: 8,
            allow_private_targets: false,
            request_timeout_ms: 10_000,
            retry_base_ms: 1_000,
        }
    }
}

/// A failure that stops delivery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A database could not be reached.
    #[error("cannot connect to the {which} database")]
    Connect {
        which: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The HTTP server failed.
    #[error("http server failed")]
    Serve(#[source] std::io::Error),
}

/// Runs delivery: the schedule and send loop and the progress endpoint on
/// `listener`, until `shutdown`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let state = trace_common::db::connect(&config.state_database_url, 5)
        .await
        .map_err(|source| Error::Connect {
            which: "state",
            source,
        })?;
    let data = trace_common::db::connect(&config.data_database_url, 5)
        .await
        .map_err(|source| Error::Connect {
            which: "data",
            source,
        })?;
    run(config, state, data, listener, shutdown).await
}

/// [`serve`] with explicit state and data pools.
pub async fn run(
    config: Config,
    state: PgPool,
    data: PgPool,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let worker = tokio::spawn(deliver(config, state.clone(), data, shutdown.clone()));
    tracing::info!(addr = ?listener.local_addr().ok(), "delivery listening");
    let token = shutdown.clone();
    let served =
        trace_common::http::serve(
            listener,
            router(state),
            async move { token.cancelled().await },
        )
        .await;
    shutdown.cancel();
    let _ = worker.await;
    served.map_err(Error::Serve)
}

/// The progress routes over the state database `pool`.
pub fn router(state: PgPool) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/progress/{job}", get(progress))
        .with_state(state)
}

async fn progress(
    State(state): State<PgPool>,
    Path(job): Path<uuid::Uuid>,
) -> Result<axum::Json<DeliveryProgress>, ApiError> {
    let row = sqlx::query(
        "select count(*) filter (where state = 'delivered') as delivered, \
                count(*) filter (where state = 'pending') as pending, \
                count(*) filter (where state = 'failed') as failed \
         from deliveries where job_id = $1",
    )
    .bind(job)
    .fetch_one(&state)
    .await?;
    Ok(axum::Json(DeliveryProgress {
        delivered: row.get::<i64, _>("delivered") as u64,
        pending: row.get::<i64, _>("pending") as u64,
        failed: row.get::<i64, _>("failed") as u64,
    }))
}

/// The loop: schedule new deliveries, send due ones, wait, until shutdown.
async fn deliver(config: Config, state: PgPool, data: PgPool, shutdown: CancellationToken) {
    let mut scheduler = schedule::Scheduler::default();
    let sender = send::Sender {
        max_attempts: config.max_attempts.max(1),
        allow_private: config.allow_private_targets,
        request_timeout: Duration::from_millis(config.request_timeout_ms),
        retry_base: Duration::from_millis(config.retry_base_ms),
    };
    let interval = Duration::from_millis(config.poll_interval_ms);
    while !shutdown.is_cancelled() {
        if let Err(err) = scheduler.run(&state, &data).await {
            tracing::warn!(error = %err, "scheduling deliveries failed");
        }
        let busy = match sender.run(&state, &data).await {
            Ok(attempted) => attempted > 0,
            Err(err) => {
                tracing::warn!(error = %err, "sending deliveries failed");
                false
            }
        };
        if !busy {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}
