//! The whole platform started in-process by trace-dev under a temporary
//! home, and the `trace` command run against it as a library or a process.

use std::path::{Path, PathBuf};

use clap::Parser as _;
use trace_cli::{Cli, Error};
use trace_dev::{Dev, DevConfig, Ports};

/// The recorded mainnet data: `$TRACE_DATA_DIR`, else `../shared/data/mainnet`
/// beside the repository.
pub fn data_dir() -> PathBuf {
    std::env::var_os("TRACE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mainnet")
        })
}

/// trace-dev on ephemeral ports with its state under `home`, which is
/// opened to the `postgres` user that runs the cluster when tests run as
/// root.
pub async fn start_dev(home: &Path) -> Dev {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = DevConfig {
        home: home.to_path_buf(),
        data_dir: data_dir(),
        rpc_url: None,
        database_url: None,
        ports: Ports::Ephemeral,
    };
    trace_dev::start(config).await.expect("trace dev starts")
}

/// Runs `trace --home <home> <args>` in this process.
pub async fn cli(home: &Path, args: &[&str]) -> Result<(), Error> {
    let mut argv = vec!["trace", "--home", home.to_str().unwrap()];
    argv.extend_from_slice(args);
    trace_cli::run(Cli::try_parse_from(argv).expect("arguments parse")).await
}

/// What a `trace` process printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `trace` binary with `--home <home> <args>`, its credentials
/// coming only from the home.
pub async fn trace(home: &Path, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_trace"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("TRACE_GATEWAY")
        .env_remove("TRACE_API_KEY")
        .output()
        .await
        .expect("the trace binary runs");
    Run {
        success: output.status.success(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}
