//! The rpc-gateway: the only way from the platform to chain RPC providers.
//!
//! Workers have no internet egress; they send JSON-RPC to
//! `POST /rpc/{chain_id}` here, and the gateway forwards it, with a timeout,
//! to the one provider configured for that chain ([`ProviderSpec`]). Only
//! the read methods in [`forward::ALLOWED_METHODS`] pass; anything else is
//! answered `-32601` without reaching the provider. An unknown chain is a
//! 404. Start at [`serve`] or [`router`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use trace_common::ApiError;

pub mod forward;
pub mod provider;

pub use provider::{ProviderSpec, SpecError};

/// Configuration of the rpc-gateway.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// A chain's provider as `<chain id>=<url>`; repeat the flag (or separate
    /// with commas in the environment variable) for more chains.
    #[arg(long = "provider", env = "TRACE_PROVIDERS", value_delimiter = ',')]
    pub providers: Vec<ProviderSpec>,
    /// How long one forwarded request may take, in milliseconds.
    #[arg(long, env = "TRACE_RPC_TIMEOUT_MS", default_value_t = 30_000)]
    pub timeout_ms: u64,
}

/// A failure of the rpc-gateway.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two providers were configured for one chain.
    #[error("chain `{0}` has more than one provider")]
    DuplicateChain(u64),
    /// The HTTP server failed.
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
}

struct Gateway {
    providers: HashMap<u64, String>,
    timeout: Duration,
    http: reqwest::Client,
}

/// Serves the gateway on `listener` until `shutdown`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let app = router(&config)?;
    let chains: Vec<u64> = config.providers.iter().map(|p| p.chain_id).collect();
    tracing::info!(
        ?chains,
        timeout_ms = config.timeout_ms,
        "rpc-gateway serving"
    );
    trace_common::http::serve(listener, app, async move { shutdown.cancelled().await })
        .await
        .map_err(Error::Serve)
}

/// The gateway's routes: `POST /rpc/{chain_id}` and `GET /healthz`.
pub fn router(config: &Config) -> Result<Router, Error> {
    let mut providers = HashMap::new();
    for spec in &config.providers {
        if providers.insert(spec.chain_id, spec.url.clone()).is_some() {
            return Err(Error::DuplicateChain(spec.chain_id));
        }
    }
    let gateway = Gateway {
        providers,
        timeout: Duration::from_millis(config.timeout_ms),
        http: reqwest::Client::new(),
    };
    Ok(Router::new()
        .route("/rpc/{chain_id}", post(rpc))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(Arc::new(gateway)))
}

async fn rpc(
    State(gateway): State<Arc<Gateway>>,
    Path(chain): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let url = chain
        .parse::<u64>()
        .ok()
        .and_then(|id| gateway.providers.get(&id))
        .ok_or_else(|| {
            ApiError::not_found("unknown_chain", format!("chain `{chain}` has no provider"))
        })?;
    let answer = forward::forward(&gateway.http, url, gateway.timeout, &body).await?;
    Ok(match answer {
        forward::Answer::Json(value) => axum::Json(value).into_response(),
        forward::Answer::Empty => StatusCode::NO_CONTENT.into_response(),
    })
}
