//! The `trace-gateway` binary: parses its flags, installs telemetry and runs
//! the gateway until SIGTERM or Ctrl-C.

use clap::Parser;

/// Trace's public REST API.
#[derive(Debug, Parser)]
#[command(name = "trace-gateway", version)]
struct Cli {
    #[command(flatten)]
    config: trace_gateway::Config,
    /// Log JSON lines instead of human-readable ones.
    #[arg(long, env = "TRACE_LOG_JSON")]
    log_json: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    trace_common::telemetry::service_main("trace-gateway", cli.log_json, run(cli.config)).await
}

async fn run(config: trace_gateway::Config) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("failed to bind `{}`", config.listen))?;
    let shutdown = trace_common::signal::shutdown_on_signal();
    trace_gateway::serve(config, listener, shutdown).await?;
    Ok(())
}
