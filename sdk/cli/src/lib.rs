//! The `trace` command-line tool: start the platform locally, build and
//! publish UDFs, run jobs, query datasets and register webhooks.
//!
//! [`Cli`] is the clap definition and [`run`] executes a parsed command.
//! Every command but `trace dev` and `trace udf new|build` talks to the
//! gateway with the key from `<home>/credentials.toml` (written by
//! `trace dev`), unless `--gateway`/`--api-key` say otherwise.

use std::path::PathBuf;

pub mod udf;

mod client;
mod commands;
mod credentials;
#[doc(hidden)]
pub mod output;
mod params;

pub use client::{Client, ClientError};
pub use commands::Command;
pub use credentials::Credentials;

/// The `trace` command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "trace",
    version,
    about = "Run your code over Ethereum data, sandboxed."
)]
pub struct Cli {
    /// Where `trace dev` keeps its state and the CLI finds its credentials
    /// (default: `~/.trace`).
    #[arg(long, global = true, env = "TRACE_HOME")]
    pub home: Option<PathBuf>,
    /// The gateway URL, instead of the one in credentials.toml.
    #[arg(long, global = true, env = "TRACE_GATEWAY")]
    pub gateway: Option<String>,
    /// The API key, instead of the one in credentials.toml.
    #[arg(long, global = true, env = "TRACE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The home directory: `--home`, else `$HOME/.trace`, else `./.trace`.
    pub fn home(&self) -> PathBuf {
        self.home.clone().unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(".trace")
        })
    }

    /// A gateway client from the flags or the home's credentials.
    pub fn client(&self) -> Result<Client, Error> {
        let stored = Credentials::read(&self.home()).ok();
        let gateway = self
            .gateway
            .clone()
            .or_else(|| stored.as_ref().map(|c| c.gateway.clone()));
        let api_key = self
            .api_key
            .clone()
            .or_else(|| stored.as_ref().map(|c| c.api_key.clone()));
        match (gateway, api_key) {
            (Some(gateway), Some(api_key)) => Ok(Client::new(gateway, api_key)),
            _ => Err(Error::NoCredentials(credentials::path(&self.home()))),
        }
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No gateway or key: neither flags nor a credentials file.
    #[error(
        "no credentials: `{0}` does not exist; start `trace dev` or pass --gateway and --api-key"
    )]
    NoCredentials(PathBuf),
    /// The gateway refused the request or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Scaffolding or building a UDF failed.
    #[error(transparent)]
    Udf(#[from] udf::UdfError),
    /// The platform could not be started.
    #[error("trace dev could not start")]
    Dev(#[from] trace_dev::Error),
    /// An argument is not usable.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("cannot access `{path}`")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The job ended without success.
    #[error("job `{id}` {state}")]
    JobFailed {
        /// The job.
        id: String,
        /// How it ended.
        state: String,
    },
    /// Query results could not be decoded or printed.
    #[error("cannot read the query result")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), Error> {
    commands::run(&cli).await
}
