//! The `trace-webhook-receiver` binary: a local, verifying webhook target.

use clap::Parser;

/// Receives Standard Webhooks requests and verifies their signatures.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "TRACE_LISTEN", default_value = "127.0.0.1:7408")]
    listen: String,

    /// Log JSON lines instead of human-readable ones.
    #[arg(long, env = "TRACE_LOG_JSON")]
    log_json: bool,

    #[command(flatten)]
    config: trace_webhook_receiver::Config,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    trace_common::telemetry::service_main("trace-webhook-receiver", cli.log_json, run(cli)).await
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .with_context(|| format!("failed to bind `{}`", cli.listen))?;
    let shutdown = trace_common::signal::shutdown_on_signal();
    trace_webhook_receiver::serve(cli.config, listener, shutdown).await?;
    Ok(())
}
