//! The `trace-udf-worker` binary: runs user components for UDF tasks.

use clap::Parser;

/// Run user components for the tasks of UDF jobs.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Address of the health endpoint.
    #[arg(long, env = "TRACE_LISTEN", default_value = "127.0.0.1:7410")]
    listen: String,
    /// Log JSON lines instead of human-readable ones.
    #[arg(long, env = "TRACE_LOG_JSON")]
    log_json: bool,
    #[command(flatten)]
    config: trace_udf_worker::Config,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    trace_common::telemetry::service_main("trace-udf-worker", cli.log_json, run(cli)).await
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .with_context(|| format!("failed to bind `{}`", cli.listen))?;
    let shutdown = trace_common::signal::shutdown_on_signal();
    trace_udf_worker::serve(cli.config, listener, shutdown).await?;
    Ok(())
}
