//! The broker: task-scoped object-storage credentials and, in embedded mode,
//! the scoped object endpoint they open.
//!
//! A worker asks for credentials with its task and attempt; the broker asks
//! the dispatcher whether that lease is live and only then signs a token
//! ([`token`]) for `scratch/<tenant>/<job>/<task>/` that expires with the
//! lease ([`credentials`]). The object endpoint ([`objects`]) checks the
//! token and the key ([`keys`]) on every call. In AWS mode (a role to
//! assume is configured) the answer also carries STS credentials under a
//! session policy limited to the same prefix ([`sts`]).
//!
//! Start at [`serve`], or at [`router`] with a [`BrokerState`] for tests.

use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use trace_common::dispatcher_client::DispatcherClient;

pub mod client;
pub mod credentials;
pub use trace_common::keys;
pub mod objects;
pub mod routes;
pub mod state;
pub mod sts;
pub mod token;

pub use routes::router;
pub use state::BrokerState;
pub use token::Signer;

/// The broker's configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Base URL of the dispatcher, asked whether a lease is live.
    #[arg(
        long,
        env = "TRACE_DISPATCHER_URL",
        default_value = "http://127.0.0.1:7401"
    )]
    pub dispatcher_url: String,
    /// Root directory of the local object store.
    #[arg(long, env = "TRACE_OBJECTS_DIR", default_value = ".trace/objects")]
    pub objects_dir: PathBuf,
    /// Key that signs tokens (at least 16 bytes); a random one is generated when absent,
    /// so tokens do not survive a restart.
    #[arg(long, env = "TRACE_BROKER_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,
    /// Longest a token lives, in seconds, even if the lease lasts longer.
    #[arg(long, env = "TRACE_BROKER_TOKEN_TTL_SECS", default_value_t = 900)]
    pub token_ttl_secs: u64,
    /// Largest object a task may store, in bytes.
    #[arg(long, env = "TRACE_BROKER_MAX_OBJECT_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_object_bytes: u64,
    /// AWS mode: the role every task's credentials are assumed from, with
    /// a session policy per task. The broker's own AWS credentials, region
    /// and endpoint (`AWS_ENDPOINT_URL`) come from the SDK's usual chain.
    #[arg(long, env = "TRACE_BROKER_STS_ROLE_ARN", requires = "objects_bucket")]
    pub sts_role_arn: Option<String>,
    /// Objects in this S3 bucket instead of the local directory: the
    /// object endpoint reads and writes it, and in AWS mode the task
    /// credentials are limited to it.
    #[arg(long, env = "TRACE_OBJECTS_BUCKET")]
    pub objects_bucket: Option<String>,
}

impl Default for Config {
    /// The flags' defaults.
    fn default() -> Self {
        Self::new("http://127.0.0.1:7401", ".trace/objects")
    }
}

impl Config {
    /// The defaults, with the given dispatcher and object directory.
    pub fn new(dispatcher_url: impl Into<String>, objects_dir: impl Into<PathBuf>) -> Self {
        Self {
            dispatcher_url: dispatcher_url.into(),
            objects_dir: objects_dir.into(),
            signing_key: None,
            token_ttl_secs: 900,
            max_object_bytes: 16 * 1024 * 1024,
            sts_role_arn: None,
            objects_bucket: None,
        }
    }
}

/// A failure that stops the broker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The object store could not be opened.
    #[error(transparent)]
    Objects(#[from] trace_common::objects::OpenError),
    /// The signing key is shorter than 16 bytes.
    #[error("the signing key is `{0}` bytes long; at least 16 are required")]
    WeakKey(usize),
    /// A role to assume was configured without a bucket.
    #[error("--sts-role-arn needs --objects-bucket")]
    NoBucket,
    /// The HTTP server failed.
    #[error("the http server failed")]
    Serve(#[source] std::io::Error),
}

impl BrokerState {
    /// The state `config` describes.
    pub async fn from_config(config: &Config) -> Result<Self, Error> {
        let bucket = config.objects_bucket.as_deref();
        let store = trace_common::objects::open(&config.objects_dir, bucket).await?;
        let signer = match &config.signing_key {
            Some(key) if key.len() < 16 => return Err(Error::WeakKey(key.len())),
            Some(key) => Signer::new(key.as_bytes().to_vec()),
            None => Signer::generate(),
        };
        Ok(Self::new(
            DispatcherClient::new(config.dispatcher_url.clone()),
            store,
            signer,
            Duration::from_secs(config.token_ttl_secs.max(1)),
            config.max_object_bytes,
        ))
    }
}

/// Serves the broker until `shutdown`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let mut state = BrokerState::from_config(&config).await?;
    if let Some(role) = &config.sts_role_arn {
        let bucket = config.objects_bucket.clone().ok_or(Error::NoBucket)?;
        let sdk = trace_common::aws::sdk_config().await;
        tracing::info!(role, bucket, "credentials from sts");
        state = state.with_sts(sts::StsIssuer::new(&sdk, role.clone(), bucket));
    }
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "broker listening");
    }
    trace_common::http::serve(listener, router(state), async move {
        shutdown.cancelled().await
    })
    .await
    .map_err(Error::Serve)
}
