//! The gateway's routes, one line each; the handlers live in their modules.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

use crate::{AppState, chains, components, job_control, jobs, query, webhooks};

/// The public API over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/v1/components/{name}/{version}",
            put(components::publish)
                .get(components::show)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/components", get(components::list))
        .route("/v1/jobs", post(jobs::submit).get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::status))
        .route("/v1/jobs/{id}/cancel", post(job_control::cancel))
        .route("/v1/jobs/{id}/retry", post(job_control::retry))
        .route("/v1/query", post(query::query))
        .route("/v1/webhooks", post(webhooks::create).get(webhooks::list))
        .route("/v1/chains/{id}/recorded", get(chains::recorded))
        .with_state(state)
}
