//! The `trace-query` binary: read-only SQL over Postgres data and the lake.

use anyhow::Context;
use clap::Parser;

/// Serves read-only SQL over chain data and user datasets.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "TRACE_LISTEN", default_value = "127.0.0.1:7402")]
    listen: String,

    /// Log JSON lines instead of human-readable ones.
    #[arg(long, env = "TRACE_LOG_JSON")]
    log_json: bool,

    #[command(flatten)]
    config: trace_query::Config,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    trace_common::telemetry::service_main("trace-query", cli.log_json, run(cli)).await
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .with_context(|| format!("failed to bind `{}`", cli.listen))?;
    let shutdown = trace_common::signal::shutdown_on_signal();
    trace_query::serve(cli.config, listener, shutdown).await?;
    Ok(())
}
