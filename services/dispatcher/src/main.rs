//! The `trace-dispatcher` binary: parses its configuration and serves.

use clap::Parser;

/// Jobs, tasks, leases, the outbox relay and the reaper.
#[derive(Debug, Parser)]
#[command(name = "trace-dispatcher", version)]
struct Cli {
    /// Address to listen on.
    #[arg(
        long,
        env = "TRACE_DISPATCHER_LISTEN",
        default_value = "127.0.0.1:7401"
    )]
    listen: String,
    /// Log JSON lines instead of human-readable ones.
    #[arg(long, env = "TRACE_LOG_JSON")]
    log_json: bool,
    #[command(flatten)]
    config: trace_dispatcher::Config,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    trace_common::telemetry::service_main("trace-dispatcher", cli.log_json, run(cli)).await
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .with_context(|| format!("failed to bind `{}`", cli.listen))?;
    let shutdown = trace_common::signal::shutdown_on_signal();
    trace_dispatcher::serve(cli.config, listener, shutdown).await?;
    Ok(())
}
