//! The whole platform in one process, for `trace dev` and the end-to-end
//! tests.
//!
//! [`start`] brings up a private Postgres cluster (or uses the server a URL
//! names), creates and migrates the state and data databases, and starts
//! every service library in this process, each on its own loopback listener
//! and talking to the others over real HTTP exactly as separate processes
//! would. It then creates the `dev` tenant with an admin key, registers the
//! local webhook receiver as that tenant's endpoint, and writes
//! `<home>/credentials.toml` for the CLI. [`Dev::shutdown`] stops it all.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use trace_common::db::cluster::{Cluster, ClusterError};

mod databases;
mod services;

pub use services::ServiceUrls;

/// The default base port: the gateway listens on it and every other service
/// on a fixed offset from it (see docs/architecture.md).
pub const DEFAULT_BASE_PORT: u16 = 7400;

/// The tenant `trace dev` creates.
pub const DEV_TENANT: &str = "dev";

/// Which ports the services listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ports {
    /// The gateway on this port, the others on fixed offsets from it, and
    /// Postgres on base + 32.
    Base(u16),
    /// Every listener on a port the OS picks: for tests running in parallel.
    Ephemeral,
}

/// How to start the platform.
#[derive(Debug, Clone)]
pub struct DevConfig {
    /// Where the platform keeps its state: `postgres/`, `objects/`, the
    /// artifact cache and `credentials.toml`.
    pub home: PathBuf,
    /// The recorded mainnet data the replay provider serves.
    pub data_dir: PathBuf,
    /// A live JSON-RPC provider for chain 1; when given, no replay provider
    /// is started.
    pub rpc_url: Option<String>,
    /// A Postgres server URL to use instead of the private cluster; the
    /// databases `trace_state` and `trace_data` are created on it.
    pub database_url: Option<String>,
    /// Which ports to listen on.
    pub ports: Ports,
}

impl DevConfig {
    /// The defaults for `home` and `data_dir`: fixed ports, private cluster,
    /// replay provider.
    pub fn new(home: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            home: home.into(),
            data_dir: data_dir.into(),
            rpc_url: None,
            database_url: None,
            ports: Ports::Base(DEFAULT_BASE_PORT),
        }
    }
}

/// A failure to start the platform.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The private Postgres cluster could not be started.
    #[error("cannot start the private Postgres cluster under `{dir}`")]
    Cluster {
        /// The cluster's directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: ClusterError,
    },
    /// A database could not be created, reached or migrated.
    #[error("cannot prepare the `{database}` database")]
    Database {
        /// The database name.
        database: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The external database URL is not a `postgres://` URL.
    #[error("database url `{0}` is not a postgres:// url")]
    DatabaseUrl(String),
    /// A file or directory under the home could not be written.
    #[error("cannot write `{path}`")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A listener could not be bound.
    #[error("cannot listen for the {service} on `{addr}`")]
    Bind {
        /// The service.
        service: &'static str,
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A service stopped with an error while the platform was starting.
    #[error("the {service} failed: {message}")]
    Service {
        /// The service.
        service: &'static str,
        /// Its error chain.
        message: String,
    },
    /// A service did not answer its health check in time.
    #[error("the {service} did not become healthy at `{url}` within {seconds} s")]
    NotReady {
        /// The service.
        service: &'static str,
        /// Its health URL.
        url: String,
        /// How long we waited.
        seconds: u64,
    },
    /// The dev tenant could not be created or its webhook registered.
    /// Another `trace dev` holds this home.
    #[error("trace dev is already running for `{0}`; stop it first or pass another --home")]
    AlreadyRunning(PathBuf),
    /// The recorded data directory is missing.
    #[error(
        "no recorded mainnet data at `{0}` (expected its `logs/` and `blocks/`); pass \
         --data-dir or set TRACE_DATA_DIR"
    )]
    NoData(PathBuf),
    #[error("cannot set up the `dev` tenant")]
    Bootstrap(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The running platform.
#[derive(Debug)]
pub struct Dev {
    /// Where every service listens.
    pub urls: ServiceUrls,
    /// The `dev` tenant's admin API key.
    pub api_key: String,
    /// Where the local receiver takes webhooks (`.../hooks`).
    pub receiver_url: String,
    /// The state database.
    pub state_database_url: String,
    /// The data database.
    pub data_database_url: String,
    /// The object-store directory.
    pub objects_dir: PathBuf,
    /// Where the CLI's credentials were written.
    pub credentials_path: PathBuf,
    shutdown: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<Result<(), String>>)>,
    cluster: Option<Cluster>,
    /// Held while this platform runs, so a second `trace dev` on the same
    /// home refuses to start instead of taking over its Postgres.
    _lock: std::fs::File,
}

/// Starts the platform described by `config`.
pub async fn start(config: DevConfig) -> Result<Dev, Error> {
    let home = &config.home;
    create_dir(home)?;
    if config.rpc_url.is_none() && !config.data_dir.join("logs").is_dir() {
        return Err(Error::NoData(config.data_dir.clone()));
    }
    let lock = lock_home(home)?;
    let objects_dir = home.join("objects");
    create_dir(&objects_dir)?;

    let (cluster, db) = databases::prepare(&config).await?;
    let shutdown = CancellationToken::new();
    let started = services::start_all(&config, &db, &objects_dir, &shutdown).await;
    let (urls, secret, tasks) = match started {
        Ok(started) => started,
        Err(e) => {
            shutdown.cancel();
            stop_cluster(cluster.as_ref());
            return Err(e);
        }
    };
    let mut dev = Dev {
        receiver_url: format!("{}/hooks", urls.webhook_receiver),
        urls,
        api_key: String::new(),
        state_database_url: db.state_url.clone(),
        data_database_url: db.data_url.clone(),
        objects_dir,
        credentials_path: home.join("credentials.toml"),
        shutdown,
        tasks,
        cluster,
        _lock: lock,
    };
    if let Err(e) = dev.bootstrap(&secret).await {
        dev.shutdown().await;
        return Err(e);
    }
    tracing::info!(gateway = %dev.urls.gateway, "trace dev is up");
    Ok(dev)
}

impl Dev {
    /// Stops every service, waits for them, and stops the private cluster.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for (service, task) in self.tasks {
            match tokio::time::timeout(Duration::from_secs(15), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(message))) => tracing::warn!(service, %message, "service stopped"),
                Ok(Err(e)) => tracing::warn!(service, error = %e, "service task panicked"),
                Err(_) => tracing::warn!(service, "service did not stop within 15 s"),
            }
        }
        stop_cluster(self.cluster.as_ref());
    }

    /// Creates the dev tenant's key, registers the receiver as its webhook
    /// (through the gateway's API) and writes the CLI's credentials.
    async fn bootstrap(&mut self, secret: &str) -> Result<(), Error> {
        let boxed = Error::Bootstrap;
        let pool = trace_common::db::connect(&self.state_database_url, 2)
            .await
            .map_err(|e| boxed(e.into()))?;
        self.api_key = trace_gateway::bootstrap_tenant(&pool, DEV_TENANT, "admin")
            .await
            .map_err(|e| boxed(e.into()))?;
        // A restart on the same home gives the receiver a new secret: update
        // the endpoint registered last time rather than adding another.
        let updated = sqlx::query(
            "update webhook_endpoints set secret = $3 where tenant_id = $1 and url = $2",
        )
        .bind(DEV_TENANT)
        .bind(&self.receiver_url)
        .bind(secret)
        .execute(&pool)
        .await
        .map_err(|e| boxed(e.into()))?;
        pool.close().await;
        if updated.rows_affected() > 0 {
            return write_credentials(
                &self.credentials_path,
                &self.urls.gateway,
                &self.api_key,
                &self.urls.webhook_receiver,
            );
        }

        let body = trace_common::api::CreateWebhook {
            url: self.receiver_url.clone(),
            secret: Some(secret.to_string()),
        };
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/webhooks", self.urls.gateway))
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await
            .map_err(|e| boxed(e.into()))?;
        let url = format!("{}/v1/webhooks", self.urls.gateway);
        trace_common::http::check(url, resp)
            .await
            .map_err(|e| boxed(e.into()))?;

        let receiver = &self.urls.webhook_receiver;
        write_credentials(
            &self.credentials_path,
            &self.urls.gateway,
            &self.api_key,
            receiver,
        )
    }
}

/// Takes `<home>/dev.lock`, or says that another `trace dev` holds it.
fn lock_home(home: &Path) -> Result<std::fs::File, Error> {
    let path = home.join("dev.lock");
    let file = std::fs::File::create(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::AlreadyRunning(home.to_path_buf())),
        Err(std::fs::TryLockError::Error(source)) => Err(Error::Io { path, source }),
    }
}

/// Writes `credentials.toml` readable by its owner only.
fn write_credentials(
    path: &Path,
    gateway: &str,
    api_key: &str,
    receiver: &str,
) -> Result<(), Error> {
    let text = format!(
        "# Written by `trace dev`: the local gateway and the dev tenant's admin key.\n\
         gateway = {gateway:?}\napi_key = {api_key:?}\nreceiver = {receiver:?}\n"
    );
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io)
}

fn create_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn stop_cluster(cluster: Option<&Cluster>) {
    if let Some(cluster) = cluster
        && let Err(e) = cluster.stop()
    {
        tracing::warn!(error = %e, "the private Postgres cluster did not stop cleanly");
    }
}

/// Binds a loopback listener on `port` (0: ephemeral).
async fn bind(service: &'static str, port: u16) -> Result<TcpListener, Error> {
    let addr = format!("127.0.0.1:{port}");
    TcpListener::bind(&addr)
        .await
        .map_err(|source| Error::Bind {
            service,
            addr,
            source,
        })
}
