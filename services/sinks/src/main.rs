//! The `trace-sinks` binary: drains the buffer queue into Postgres data.

use anyhow::Context;
use clap::Parser;

/// Drains dataset and alert buffers into Postgres data.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "TRACE_LISTEN", default_value = "127.0.0.1:7406")]
    listen: String,

    /// Log JSON lines instead of human-readable ones.
    #[arg(long, env = "TRACE_LOG_JSON")]
    log_json: bool,

    #[command(flatten)]
    config: trace_sinks::Config,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    trace_common::telemetry::service_main("trace-sinks", cli.log_json, run(cli)).await
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .with_context(|| format!("failed to bind `{}`", cli.listen))?;
    let shutdown = trace_common::signal::shutdown_on_signal();
    trace_sinks::serve(cli.config, listener, shutdown).await?;
    Ok(())
}
