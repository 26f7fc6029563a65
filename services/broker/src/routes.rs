//! The broker's router.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::state::BrokerState;
use crate::{credentials, objects};

/// Every broker endpoint.
pub fn router(state: BrokerState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/credentials", post(credentials::issue))
        .route("/v1/objects", get(objects::list))
        .route(
            "/v1/objects/{*key}",
            get(objects::get).put(objects::put).delete(objects::delete),
        )
        // Object bodies are capped by `--max-object-bytes` in the handler.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}
