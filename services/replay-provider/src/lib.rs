//! A JSON-RPC 2.0 provider that serves recorded Ethereum mainnet data.
//!
//! In `trace dev` and in tests this stands where a live node would: the
//! rpc-gateway forwards to it like to any provider. It loads the data
//! directory (`blocks/`, `receipts/`, `logs/` of gzipped JSON-RPC results)
//! once at start ([`store::Store`]) and answers `eth_chainId`,
//! `eth_blockNumber`, `eth_getBlockByNumber`, `eth_getBlockReceipts`,
//! `eth_getLogs` and `replay_recordedBlocks` on `POST /` ([`methods`]).
//! Anything not recorded is the JSON-RPC error `-32001`, never a partial or
//! invented answer. Start at [`serve`] or [`router`].

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod filter;
pub mod jsonrpc;
pub mod methods;
pub mod store;

pub use store::{LoadError, Store};

/// Configuration of the replay provider.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Directory of recorded mainnet data (`blocks/`, `receipts/`, `logs/`).
    #[arg(
        long = "data-dir",
        env = "TRACE_DATA_DIR",
        default_value = "../shared/data/mainnet"
    )]
    pub data_dir: PathBuf,
}

/// A failure of the replay provider.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data directory could not be loaded.
    #[error("cannot load the data directory")]
    Load(#[from] LoadError),
    /// The HTTP server failed.
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
}

/// Loads the data directory and serves JSON-RPC on `listener` until `shutdown`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let dir = config.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || Store::load(&dir))
        .await
        .expect("loading the data directory does not panic")?;
    let recorded = store.recorded();
    tracing::info!(
        data_dir = %config.data_dir.display(),
        blocks = recorded.blocks.len(),
        receipts = recorded.receipts.len(),
        logs = recorded.logs.len(),
        "replay provider loaded"
    );
    let app = router(Arc::new(store));
    trace_common::http::serve(listener, app, async move { shutdown.cancelled().await })
        .await
        .map_err(Error::Serve)
}

/// The provider's routes: `POST /` (JSON-RPC) and `GET /healthz`.
pub fn router(store: Arc<Store>) -> Router {
    Router::new()
        .route("/", post(rpc))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(store)
}

async fn rpc(State(store): State<Arc<Store>>, body: Bytes) -> Response {
    let answer = jsonrpc::handle_body(&body, |call| methods::answer(&store, call));
    match answer {
        Some(value) => axum::Json(value).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}
