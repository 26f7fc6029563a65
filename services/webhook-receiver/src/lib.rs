//! A local webhook receiver that verifies Standard Webhooks signatures.
//!
//! `trace dev` runs it as the default webhook target so that a developer (and
//! the end-to-end tests) can see alerts arrive: `POST /hooks` checks the
//! signature and timestamp and records the message id, `GET /stats` counts
//! what was verified, rejected and unique, and `GET /alerts` lists the
//! verified bodies. Start at [`serve`]; the signature rules are in
//! [`signature`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod signature;

pub use signature::{sign, verify};

/// Most verified bodies kept for `GET /alerts`; older ones are dropped.
const MAX_KEPT_BODIES: usize = 10_000;

/// Configuration of the receiver.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// The `whsec_<base64>` secret the sender signs with.
    #[arg(long = "secret", env = "TRACE_WEBHOOK_SECRET")]
    pub secret: String,

    /// How far a message's `webhook-timestamp` may be from now, in seconds.
    #[arg(
        long = "tolerance-secs",
        env = "TRACE_WEBHOOK_TOLERANCE_SECS",
        default_value_t = 300
    )]
    pub tolerance_secs: u64,
}

impl Config {
    /// A configuration with `secret` and the default tolerance (5 minutes).
    pub fn with_secret(secret: impl Into<String>) -> Self {
        Self {
            secret: secret.into(),
            tolerance_secs: 300,
        }
    }
}

/// A failure of the receiver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configured secret is not `whsec_<base64>`.
    #[error("invalid `--secret`")]
    Secret(#[from] signature::SecretError),
    /// The HTTP server failed.
    #[error("http server failed")]
    Serve(#[source] std::io::Error),
}

/// `GET /stats`: what the receiver has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests whose signature and timestamp verified (duplicates included).
    pub verified: u64,
    /// Requests refused with 401.
    pub rejected: u64,
    /// Distinct `webhook-id`s among the verified requests.
    pub unique_ids: u64,
}

#[derive(Debug, Default)]
struct Seen {
    rejected: u64,
    counts: HashMap<String, u64>,
    bodies: Vec<serde_json::Value>,
}

#[derive(Debug, Clone)]
struct AppState {
    secret: Arc<str>,
    tolerance_secs: u64,
    seen: Arc<Mutex<Seen>>,
}

/// Runs the receiver on `listener` until `shutdown`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let app = router(&config)?;
    tracing::info!(addr = ?listener.local_addr().ok(), "webhook receiver listening");
    trace_common::http::serve(listener, app, async move { shutdown.cancelled().await })
        .await
        .map_err(Error::Serve)
}

/// The receiver's routes, with fresh counters.
pub fn router(config: &Config) -> Result<Router, Error> {
    signature::secret_key(&config.secret)?;
    let state = AppState {
        secret: config.secret.as_str().into(),
        tolerance_secs: config.tolerance_secs,
        seen: Arc::default(),
    };
    Ok(Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/hooks", post(receive))
        .route("/stats", get(stats))
        .route("/alerts", get(alerts))
        .with_state(state))
}

async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).unsigned_abs() <= state.tolerance_secs);
    let ok = !id.is_empty()
        && fresh
        && verify(
            &state.secret,
            id,
            timestamp,
            &body,
            header("webhook-signature"),
        );

    let mut seen = state.seen.lock().expect("receiver state lock");
    if !ok {
        seen.rejected += 1;
        tracing::debug!("webhook rejected");
        return StatusCode::UNAUTHORIZED;
    }
    *seen.counts.entry(id.to_string()).or_default() += 1;
    if seen.bodies.len() < MAX_KEPT_BODIES {
        let value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into()));
        seen.bodies.push(value);
    }
    StatusCode::NO_CONTENT
}

async fn stats(State(state): State<AppState>) -> axum::Json<Stats> {
    let seen = state.seen.lock().expect("receiver state lock");
    axum::Json(Stats {
        verified: seen.counts.values().sum(),
        rejected: seen.rejected,
        unique_ids: seen.counts.len() as u64,
    })
}

async fn alerts(State(state): State<AppState>) -> axum::Json<Vec<serde_json::Value>> {
    axum::Json(
        state
            .seen
            .lock()
            .expect("receiver state lock")
            .bodies
            .clone(),
    )
}
