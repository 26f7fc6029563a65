//! The `trace-platform-worker` binary: chain ingest into Postgres data and the lake.

use clap::Parser;

/// Ingest chain data into Postgres and the Parquet lake.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Address of the health endpoint.
    #[arg(long, env = "TRACE_LISTEN", default_value = "127.0.0.1:7409")]
    listen: String,
    /// Log JSON lines instead of human-readable ones.
    #[arg(long, env = "TRACE_LOG_JSON")]
    log_json: bool,
    #[command(flatten)]
    config: trace_platform_worker::Config,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    trace_common::telemetry::service_main("trace-platform-worker", cli.log_json, run(cli)).await
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .with_context(|| format!("failed to bind `{}`", cli.listen))?;
    let shutdown = trace_common::signal::shutdown_on_signal();
    trace_platform_worker::serve(cli.config, listener, shutdown).await?;
    Ok(())
}
