//! The dispatcher's router and the small extractor helpers its handlers share.

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::JsonRejection;
use axum::routing::{get, post};
use trace_common::ApiError;
use uuid::Uuid;

use crate::state::AppState;
use crate::{control, jobs, report, tasks};

/// The largest request body: a job listing many blocks, or a report with logs.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// Every dispatcher endpoint, the embedded queue endpoint included.
pub fn router(state: AppState) -> Router {
    let queue = trace_common::queue::http::router(state.queue());
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/jobs", post(jobs::create).get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::get))
        .route("/v1/jobs/{id}/tasks", get(jobs::tasks))
        .route("/v1/jobs/{id}/cancel", post(control::cancel))
        .route("/v1/jobs/{id}/retry", post(control::retry))
        .route("/v1/tasks/{id}/claim", post(tasks::claim))
        .route("/v1/tasks/{id}/heartbeat", post(tasks::heartbeat))
        .route("/v1/tasks/{id}/lease", get(tasks::lease))
        .route("/v1/tasks/{id}/complete", post(report::complete))
        .route("/v1/tasks/{id}/fail", post(report::fail))
        .route("/v1/tasks/{id}/release", post(report::release))
        .with_state(state)
        .merge(queue)
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// A JSON body, or 400 `invalid_body` saying what is wrong with it.
pub fn body<T>(req: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match req {
        Ok(Json(value)) => Ok(value),
        Err(rejection) => Err(ApiError::bad_request("invalid_body", rejection.body_text())),
    }
}

/// A path id, or 400 `invalid_id`.
pub fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request("invalid_id", format!("`{id}` is not a uuid")))
}
