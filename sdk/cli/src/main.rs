//! The `trace` binary: parses the command line and runs it; errors print
//! the gateway's message and exit with code 1.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = trace_cli::Cli::parse();
    // Only `trace dev` logs (its services run in this process); with an OTLP
    // endpoint set, their spans are exported under the name `trace-dev`.
    let telemetry = if matches!(cli.command, trace_cli::Command::Dev(_)) {
        match trace_common::telemetry::init("trace-dev", false) {
            Ok(telemetry) => Some(telemetry),
            Err(err) => {
                eprintln!("error: {err}");
                return std::process::ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let result = trace_cli::run(cli).await;
    if let Some(telemetry) = telemetry {
        telemetry.shutdown().await;
    }
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let mut text = format!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{text}");
            std::process::ExitCode::FAILURE
        }
    }
}
