//! Read-only SQL over chain data and user datasets.
//!
//! `POST /v1/query` takes a [`QueryRequest`] for the tenant named by the
//! `x-trace-tenant` header and answers an Arrow IPC stream. Every query first
//! passes the one-statement, read-only gate in [`statement`]; then it runs
//! either on Postgres data ([`postgres`]: chain tables plus the tenant's
//! `ds_<tenant>` datasets) or on the Parquet lake through DataFusion
//! ([`lake`]), under the [`limits`] of the [`Config`]. Errors are
//! [`ApiError`]s with the codes `invalid_query`, `denied`,
//! `limit_exceeded` and `timeout` ([`error`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use object_store::ObjectStore;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use trace_common::ApiError;
use trace_common::api::{ARROW_STREAM, QueryRequest, QuerySource, TENANT_HEADER};

pub mod error;
pub mod lake;
pub mod limits;
pub mod postgres;
pub mod statement;

pub use error::QueryError;
use lake::LakeSource;
use limits::Limits;
use postgres::PgSource;

/// Configuration of the query service.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Postgres URL of the data database.
    #[arg(
        long = "data-database-url",
        env = "TRACE_DATA_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:7432/trace_data"
    )]
    pub data_database_url: String,

    /// Directory of the object store; the lake is under `lake/chain=1/`.
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

    /// Longest a query may run, in milliseconds.
    #[arg(
        long = "statement-timeout-ms",
        env = "TRACE_QUERY_STATEMENT_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub statement_timeout_ms: u64,

    /// Most rows a result may hold.
    #[arg(
        long = "max-rows",
        env = "TRACE_QUERY_MAX_ROWS",
        default_value_t = 1_000_000
    )]
    pub max_rows: u64,

    /// Most bytes a result may hold.
    #[arg(
        long = "max-result-bytes",
        env = "TRACE_QUERY_MAX_RESULT_BYTES",
        default_value_t = 64 * 1024 * 1024
    )]
    pub max_result_bytes: u64,

    /// Most connections to the data database.
    #[arg(
        long = "max-connections",
        env = "TRACE_QUERY_MAX_CONNECTIONS",
        default_value_t = 10
    )]
    pub max_connections: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_database_url: "postgres://postgres@127.0.0.1:7432/trace_data".into(),
            objects_dir: PathBuf::from(".trace/objects"),
            objects_bucket: None,
            statement_timeout_ms: 10_000,
            max_rows: 1_000_000,
            max_result_bytes: 64 * 1024 * 1024,
            max_connections: 10,
        }
    }
}

impl Config {
    fn limits(&self) -> Limits {
        Limits {
            timeout: Duration::from_millis(self.statement_timeout_ms),
            max_rows: self.max_rows,
            max_bytes: self.max_result_bytes,
        }
    }
}

/// A failure that stops the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data database could not be reached.
    #[error("cannot connect to the data database")]
    Connect(#[source] sqlx::Error),
    /// The object store holding the lake could not be opened.
    #[error(transparent)]
    Objects(#[from] trace_common::objects::OpenError),
    /// The HTTP server failed.
    #[error("http server failed")]
    Serve(#[source] std::io::Error),
}

/// A query's answer: its schema and its batches (possibly none).
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

#[derive(Debug, Clone)]
struct AppState {
    postgres: PgSource,
    lake: LakeSource,
    /// The service's own bounds; a request may only lower them.
    limits: Limits,
}

/// Runs the query service on `listener` until `shutdown`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let pool = trace_common::db::connect(&config.data_database_url, config.max_connections)
        .await
        .map_err(Error::Connect)?;
    let bucket = config.objects_bucket.as_deref();
    let objects = trace_common::objects::open(&config.objects_dir, bucket).await?;
    let app = router(pool, objects, &config);
    tracing::info!(addr = ?listener.local_addr().ok(), "query service listening");
    trace_common::http::serve(listener, app, async move { shutdown.cancelled().await })
        .await
        .map_err(Error::Serve)
}

/// The service's routes over the data database `pool` and the lake in
/// `objects`.
pub fn router(pool: PgPool, objects: Arc<dyn ObjectStore>, config: &Config) -> Router {
    let limits = config.limits();
    let state = Arc::new(AppState {
        postgres: PgSource::new(pool, limits),
        lake: LakeSource::new(objects, limits),
        limits,
    });
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/query", post(query))
        .with_state(state)
}

async fn query(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let tenant = tenant_of(&headers)?;
    let request: QueryRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_request",
            format!("the body is not a query request: {e}"),
        )
    })?;
    let sql = request.sql.clone();
    tokio::task::spawn_blocking(move || statement::check_read_only_isolated(&sql))
        .await
        .map_err(ApiError::internal)??;
    let started = std::time::Instant::now();
    let limits = state.limits.narrowed(&request.limits);
    let result = match request.source {
        QuerySource::Postgres => {
            let postgres = state.postgres.with_limits(limits);
            postgres.run(&tenant, &request.sql, &request.params).await
        }
        QuerySource::Lake => {
            run_lake_isolated(state.lake.with_limits(limits), request.clone()).await
        }
    };
    let source = match request.source {
        QuerySource::Postgres => "postgres",
        QuerySource::Lake => "lake",
    };
    let result = match result {
        Ok(result) => result,
        Err(err) => {
            tracing::debug!(tenant = %tenant, source, error = %err, "query refused");
            return Err(err.into());
        }
    };
    let rows: usize = result.batches.iter().map(RecordBatch::num_rows).sum();
    tracing::debug!(tenant = %tenant, source, rows, ms = started.elapsed().as_millis() as u64,
        "query answered");
    let body = encode(&result).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, ARROW_STREAM)], body).into_response())
}

/// The tenant named by the `x-trace-tenant` header, checked.
fn tenant_of(headers: &HeaderMap) -> Result<String, ApiError> {
    let tenant = headers
        .get(TENANT_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::bad_request("missing_tenant", "the x-trace-tenant header is required")
        })?;
    if !valid_tenant(tenant) {
        return Err(ApiError::bad_request(
            "invalid_tenant",
            format!("tenant `{tenant}` does not match ^[a-z][a-z0-9_]{{0,31}}$"),
        ));
    }
    Ok(tenant.to_string())
}

/// Whether `tenant` is a valid tenant id (`^[a-z][a-z0-9_]{0,31}$`).
pub fn valid_tenant(tenant: &str) -> bool {
    let mut chars = tenant.chars();
    matches!(chars.next(), Some('a'..='z'))
        && tenant.len() <= 32
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

/// The result as an Arrow IPC stream.
pub fn encode(result: &QueryResult) -> Result<Vec<u8>, arrow::error::ArrowError> {
    let mut writer = StreamWriter::try_new(Vec::new(), &result.schema)?;
    for batch in &result.batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    writer.into_inner()
}

/// Runs a lake query on its own thread, with a 64 MiB stack and a runtime of
/// its own: DataFusion plans expressions recursively, and a deep (but
/// allowed) statement must not overflow a shared runtime worker's stack.
async fn run_lake_isolated(
    lake: LakeSource,
    request: QueryRequest,
) -> Result<QueryResult, QueryError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("lake-query".into())
        .stack_size(64 << 20)
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| QueryError::Internal(format!("cannot start a lake runtime: {e}")))
                .and_then(|rt| rt.block_on(lake.run(&request.sql, &request.params)));
            let _ = tx.send(result);
        })
        .map_err(|e| QueryError::Internal(format!("cannot start a lake query thread: {e}")))?;
    rx.await.unwrap_or_else(|_| {
        Err(QueryError::Internal(
            "the lake query thread panicked".into(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_follow_the_pattern() {
        assert!(valid_tenant("acme"));
        assert!(valid_tenant("a_1"));
        assert!(!valid_tenant("1acme"));
        assert!(!valid_tenant("Acme"));
        assert!(!valid_tenant("ac-me"));
        assert!(!valid_tenant(""));
        assert!(!valid_tenant(&"a".repeat(33)));
    }
}
