//! The subcommands: their arguments (clap derive) and where each is run.

use std::path::PathBuf;

use crate::{Cli, Error};

mod dev;
mod ingest;
mod job;
mod publish;
mod query;
mod report;
mod webhook;

/// A `trace` subcommand.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the whole platform locally until Ctrl-C.
    Dev(dev::DevArgs),
    /// Create, build and publish UDFs.
    #[command(subcommand)]
    Udf(UdfCommand),
    /// Ingest chain data into Postgres and the lake (admin).
    Ingest(ingest::IngestArgs),
    /// Create and follow jobs.
    #[command(subcommand)]
    Job(job::JobCommand),
    /// Run read-only SQL over chain tables and your datasets.
    Query(query::QueryArgs),
    /// Manage webhook endpoints.
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
    /// Summarise a finished demo job: the job, its dataset and the webhooks.
    #[command(hide = true)]
    DemoReport(report::ReportArgs),
}

/// `trace udf ...`.
#[derive(Debug, clap::Subcommand)]
pub enum UdfCommand {
    /// Create a new UDF project.
    New {
        /// The project name (a crate name such as `my-udf`).
        name: String,
        /// The directory to create it in (default: `./<name>`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Path to the trace-udf guest SDK the project depends on.
        #[arg(long, env = "TRACE_SDK_PATH", default_value = "sdk/guest")]
        sdk: PathBuf,
    },
    /// Build a UDF project into a checked WebAssembly component.
    Build {
        /// The project directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Build and publish a UDF project's component.
    Publish(publish::PublishArgs),
}

/// Runs `cli.command`.
pub(crate) async fn run(cli: &Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Dev(args) => dev::run(cli, args).await,
        Command::Udf(UdfCommand::New { name, dir, sdk }) => {
            let dir = dir.clone().unwrap_or_else(|| PathBuf::from(name));
            let sdk = std::path::absolute(sdk).map_err(|source| Error::Io {
                path: sdk.clone(),
                source,
            })?;
            let created = crate::udf::new_project(name, &dir, &sdk)?;
            crate::outln!("created {}", created.display());
            Ok(())
        }
        Command::Udf(UdfCommand::Build { dir }) => {
            let dir = dir.clone();
            let built = blocking(move || crate::udf::build_project(&dir)).await?;
            crate::outln!(
                "built {} ({} bytes, {})",
                built.path.display(),
                built.size,
                built.sha256
            );
            Ok(())
        }
        Command::Udf(UdfCommand::Publish(args)) => publish::run(cli, args).await,
        Command::Ingest(args) => ingest::run(cli, args).await,
        Command::Job(command) => job::run(cli, command).await,
        Command::Query(args) => query::run(cli, args).await,
        Command::Webhook(command) => webhook::run(cli, command).await,
        Command::DemoReport(args) => report::run(cli, args).await,
    }
}

/// Runs a blocking UDF step (cargo) off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::udf::UdfError> + Send + 'static,
) -> Result<T, Error> {
    let joined = tokio::task::spawn_blocking(f).await;
    let result = joined.map_err(|e| Error::Usage(format!("the build task failed: {e}")))?;
    Ok(result?)
}
