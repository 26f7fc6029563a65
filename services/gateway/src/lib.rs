//! The public REST API of Trace: API-key authentication, the component
//! registry, and the front door to jobs, queries, webhooks and chain data.
//!
//! Every request carries `Authorization: Bearer trk_...`; the key decides the
//! tenant and the role, never the request. The gateway owns the component
//! registry (bytes in object storage under their digest, metadata in the
//! `components` table) and forwards everything else to the internal services
//! over HTTP: jobs to the dispatcher, queries to the query service, progress
//! to the sinks and delivery, recorded blocks to the rpc-gateway.
//!
//! Start with [`serve`]; tests build the [`router`] over an [`AppState`], and
//! `trace dev` creates its first key with [`bootstrap_tenant`].

use std::path::PathBuf;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod auth;
mod chains;
mod codes;
mod components;
mod job_control;
mod jobs;
pub mod oidc;
mod query;
mod routes;
mod state;
mod webhooks;

pub use auth::{Principal, Role, bootstrap_tenant, hash_key};
pub use routes::router;
pub use state::AppState;

/// Default cap on the size of a published component: 16 MiB.
pub const DEFAULT_MAX_COMPONENT_BYTES: usize = 16 * 1024 * 1024;

/// The gateway's configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address the public API listens on.
    #[arg(
        long = "listen",
        env = "TRACE_GATEWAY_LISTEN",
        default_value = "127.0.0.1:7400"
    )]
    pub listen: String,
    /// Postgres URL of the state database (tenants, keys, components, audit).
    #[arg(
        long,
        env = "TRACE_STATE_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:7432/trace_state"
    )]
    pub state_database_url: String,
    /// Directory of the platform object store, where component bytes are kept.
    #[arg(long, env = "TRACE_OBJECTS_DIR", default_value = ".trace/objects")]
    pub objects_dir: PathBuf,
    /// Objects in this S3 bucket instead of the local directory; region,
    /// endpoint and credentials come from the AWS SDK's usual settings.
    #[arg(long, env = "TRACE_OBJECTS_BUCKET")]
    pub objects_bucket: Option<String>,
    /// Base URL of the dispatcher.
    #[arg(
        long,
        env = "TRACE_DISPATCHER_URL",
        default_value = "http://127.0.0.1:7401"
    )]
    pub dispatcher_url: String,
    /// Base URL of the query service.
    #[arg(long, env = "TRACE_QUERY_URL", default_value = "http://127.0.0.1:7402")]
    pub query_url: String,
    /// Base URL of the sinks (job progress of the data plane).
    #[arg(long, env = "TRACE_SINKS_URL", default_value = "http://127.0.0.1:7406")]
    pub sinks_url: String,
    /// Base URL of the delivery service (webhook progress).
    #[arg(
        long,
        env = "TRACE_DELIVERY_URL",
        default_value = "http://127.0.0.1:7405"
    )]
    pub delivery_url: String,
    /// Base URL of the rpc-gateway (recorded blocks of a replay provider).
    #[arg(
        long,
        env = "TRACE_RPC_GATEWAY_URL",
        default_value = "http://127.0.0.1:7404"
    )]
    pub rpc_gateway_url: String,
    /// Largest component, in bytes, that may be published.
    #[arg(long, env = "TRACE_MAX_COMPONENT_BYTES", default_value_t = DEFAULT_MAX_COMPONENT_BYTES)]
    pub max_component_bytes: usize,
    /// JWTs from an OIDC issuer as well as API keys.
    #[command(flatten)]
    pub oidc: oidc::OidcConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7400".into(),
            state_database_url: "postgres://postgres@127.0.0.1:7432/trace_state".into(),
            objects_dir: PathBuf::from(".trace/objects"),
            objects_bucket: None,
            dispatcher_url: "http://127.0.0.1:7401".into(),
            query_url: "http://127.0.0.1:7402".into(),
            sinks_url: "http://127.0.0.1:7406".into(),
            delivery_url: "http://127.0.0.1:7405".into(),
            rpc_gateway_url: "http://127.0.0.1:7404".into(),
            max_component_bytes: DEFAULT_MAX_COMPONENT_BYTES,
            oidc: oidc::OidcConfig::off(),
        }
    }
}

/// A failure to start or run the gateway, or to bootstrap a tenant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The state database could not be reached or a statement on it failed.
    #[error("state database error")]
    Database(#[from] sqlx::Error),
    /// The object store could not be opened.
    #[error(transparent)]
    Objects(#[from] trace_common::objects::OpenError),
    /// A tenant id that does not match `^[a-z][a-z0-9_]{0,31}$`.
    #[error("invalid tenant id `{0}`: use a lowercase letter then up to 31 of [a-z0-9_]")]
    InvalidTenant(String),
    /// A role other than `admin` or `member`.
    #[error("invalid role `{0}`: use `admin` or `member`")]
    InvalidRole(String),
    /// The HTTP server stopped with an I/O error.
    #[error("the gateway's http server failed")]
    Serve(#[source] std::io::Error),
}

/// Runs the gateway on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let pool = trace_common::db::connect(&config.state_database_url, 10).await?;
    let state = AppState::new(&config, pool).await?;
    let addr = listener.local_addr().ok();
    tracing::info!(addr = ?addr, "gateway listening");
    let stop = async move { shutdown.cancelled().await };
    trace_common::http::serve_public(listener, router(state), stop)
        .await
        .map_err(Error::Serve)
}
