//! `trace dev`: the whole platform in this process until Ctrl-C or SIGTERM.

use std::path::PathBuf;

use trace_dev::{DevConfig, Ports};

use crate::{Cli, Error};

/// Arguments of `trace dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// The recorded mainnet data the replay provider serves.
    #[arg(long, env = "TRACE_DATA_DIR", default_value = "../shared/data/mainnet")]
    pub data_dir: PathBuf,
    /// A live JSON-RPC provider for chain 1 instead of the replay provider.
    #[arg(long, env = "TRACE_RPC_URL")]
    pub rpc_url: Option<String>,
    /// A Postgres server to use instead of a private cluster under the home.
    #[arg(long, env = "TRACE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The gateway's port; the other services listen on the next ports.
    #[arg(long, env = "TRACE_BASE_PORT", default_value_t = trace_dev::DEFAULT_BASE_PORT)]
    pub base_port: u16,
}

pub(super) async fn run(cli: &Cli, args: &DevArgs) -> Result<(), Error> {
    let home = std::path::absolute(cli.home()).map_err(|source| Error::Io {
        path: cli.home(),
        source,
    })?;
    let data_dir = std::path::absolute(&args.data_dir).map_err(|source| Error::Io {
        path: args.data_dir.clone(),
        source,
    })?;
    let config = DevConfig {
        home,
        data_dir,
        rpc_url: args.rpc_url.clone(),
        database_url: args.database_url.clone(),
        ports: Ports::Base(args.base_port),
    };
    let dev = trace_dev::start(config).await?;

    let urls = &dev.urls;
    crate::outln!("trace dev is running");
    crate::outln!("  gateway           {}", urls.gateway);
    crate::outln!("  dispatcher        {}", urls.dispatcher);
    crate::outln!("  query             {}", urls.query);
    crate::outln!("  rpc-gateway       {}", urls.rpc_gateway);
    if let Some(replay) = &urls.replay_provider {
        crate::outln!("  replay provider   {replay}");
    }
    crate::outln!("  webhook receiver  {}", dev.receiver_url);
    crate::outln!("  state database    {}", dev.state_database_url);
    crate::outln!("  data database     {}", dev.data_database_url);
    crate::outln!(
        "API key for tenant `dev` written to {}",
        dev.credentials_path.display()
    );
    crate::outln!("press Ctrl-C to stop");

    trace_common::signal::shutdown_on_signal().cancelled().await;
    crate::outln!("stopping");
    dev.shutdown().await;
    Ok(())
}
