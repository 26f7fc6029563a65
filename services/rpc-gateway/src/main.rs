//! The `trace-rpc-gateway` binary: the only way out to chain RPC providers.

use clap::Parser;

/// Forward JSON-RPC from the platform to chain providers.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "TRACE_LISTEN", default_value = "127.0.0.1:7404")]
    listen: String,
    /// Log JSON lines instead of human-readable ones.
    #[arg(long, env = "TRACE_LOG_JSON")]
    log_json: bool,
    #[command(flatten)]
    config: trace_rpc_gateway::Config,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    trace_common::telemetry::service_main("trace-rpc-gateway", cli.log_json, run(cli)).await
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .with_context(|| format!("failed to bind `{}`", cli.listen))?;
    let shutdown = trace_common::signal::shutdown_on_signal();
    trace_rpc_gateway::serve(cli.config, listener, shutdown).await?;
    Ok(())
}
