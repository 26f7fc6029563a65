//! The `trace-delivery` binary: posts stored alerts to webhooks, signed.

use anyhow::Context;
use clap::Parser;

/// Delivers alerts to user webhooks, signed per Standard Webhooks.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "TRACE_LISTEN", default_value = "127.0.0.1:7405")]
    listen: String,

    /// Log JSON lines instead of human-readable ones.
    #[arg(long, env = "TRACE_LOG_JSON")]
    log_json: bool,

    #[command(flatten)]
    config: trace_delivery::Config,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    trace_common::telemetry::service_main("trace-delivery", cli.log_json, run(cli)).await
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .with_context(|| format!("failed to bind `{}`", cli.listen))?;
    let shutdown = trace_common::signal::shutdown_on_signal();
    trace_delivery::serve(cli.config, listener, shutdown).await?;
    Ok(())
}
