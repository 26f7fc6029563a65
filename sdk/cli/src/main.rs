//! The `trace` binary: parses the command line and runs it; errors print
//! the gateway's message and exit with code 1.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = trace_cli::Cli::parse();
    if matches!(cli.command, trace_cli::Command::Dev(_)) {
        trace_common::telemetry::init(false);
    }
    match trace_cli::run(cli).await {
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
