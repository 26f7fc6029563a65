//! The queue over HTTP: the dispatcher's embedded queue endpoint and its
//! client.
//!
//! Workers that must not hold a database connection (the UDF workers) reach
//! the Postgres-backed queue through [`HttpQueue`]; the dispatcher serves the
//! other side with [`router`] over any [`Queue`]. The endpoint is
//! `POST /v1/queues/{name}/send|receive|delete`; a long poll is capped at
//! [`MAX_WAIT`] and a receive at [`MAX_RECEIVE`] messages.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{Queue, QueueError, Received};
use crate::error::ApiError;
use crate::http::{ClientError, ServiceClient, check, decode};

/// The longest long poll the endpoint serves.
pub const MAX_WAIT: Duration = Duration::from_secs(20);
/// The most messages one receive returns.
pub const MAX_RECEIVE: u32 = 100;
/// The visibility timeout when a receive names none.
const DEFAULT_VISIBILITY_MS: u64 = 30_000;

/// `POST /v1/queues/{name}/send`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendRequest {
    pub bodies: Vec<serde_json::Value>,
}

/// `POST /v1/queues/{name}/receive`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceiveRequest {
    #[serde(default = "one")]
    pub max: u32,
    #[serde(default)]
    pub wait_ms: u64,
    #[serde(default = "default_visibility_ms")]
    pub visibility_ms: u64,
}

/// `POST /v1/queues/{name}/delete`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteRequest {
    pub receipts: Vec<String>,
}

fn one() -> u32 {
    1
}

fn default_visibility_ms() -> u64 {
    DEFAULT_VISIBILITY_MS
}

/// A [`Queue`] that calls the dispatcher's queue endpoint.
#[derive(Debug, Clone)]
pub struct HttpQueue {
    client: ServiceClient,
}

impl HttpQueue {
    /// A client of the queue endpoint served at `base_url` (the dispatcher).
    pub fn new(base_url: impl Into<String>) -> HttpQueue {
        HttpQueue {
            client: ServiceClient::new(base_url),
        }
    }

    async fn post_empty<B: Serialize>(&self, path: &str, body: &B) -> Result<(), QueueError> {
        let url = self.client.url(path);
        let resp = self
            .client
            .request(reqwest::Method::POST, &url)
            .json(body)
            .send()
            .await;
        let resp = resp.map_err(|e| QueueError::Backend(format!("request to `{url}`: {e}")))?;
        check(url, resp).await.map_err(|e| match e {
            ClientError::Status {
                status: 413,
                message,
                ..
            } => QueueError::TooLarge(message),
            ClientError::Status {
                status: 400,
                code,
                message,
                ..
            } if code == "invalid_message" => QueueError::Invalid(message),
            e => QueueError::Backend(e.to_string()),
        })?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Queue for HttpQueue {
    async fn send(&self, queue: &str, bodies: &[serde_json::Value]) -> Result<(), QueueError> {
        let body = SendRequest {
            bodies: bodies.to_vec(),
        };
        self.post_empty(&format!("/v1/queues/{queue}/send"), &body)
            .await
    }

    async fn receive(
        &self,
        queue: &str,
        max: u32,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        let body = ReceiveRequest {
            max,
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            visibility_ms: u64::try_from(visibility.as_millis()).unwrap_or(u64::MAX),
        };
        let url = self.client.url(&format!("/v1/queues/{queue}/receive"));
        let resp = self
            .client
            .request(reqwest::Method::POST, &url)
            .json(&body)
            .send()
            .await;
        decode(url, resp)
            .await
            .map_err(|e| QueueError::Backend(e.to_string()))
    }

    async fn delete(&self, queue: &str, receipts: &[String]) -> Result<(), QueueError> {
        let body = DeleteRequest {
            receipts: receipts.to_vec(),
        };
        self.post_empty(&format!("/v1/queues/{queue}/delete"), &body)
            .await
    }
}

/// The queue endpoint over `queue`, to be merged into a service's router.
pub fn router(queue: Arc<dyn Queue>) -> Router {
    Router::new()
        .route("/v1/queues/{name}/send", post(send))
        .route("/v1/queues/{name}/receive", post(receive))
        .route("/v1/queues/{name}/delete", post(delete))
        .with_state(queue)
}

async fn send(
    State(queue): State<Arc<dyn Queue>>,
    Path(name): Path<String>,
    Json(req): Json<SendRequest>,
) -> Result<StatusCode, ApiError> {
    valid_name(&name)?;
    queue.send(&name, &req.bodies).await.map_err(unavailable)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn receive(
    State(queue): State<Arc<dyn Queue>>,
    Path(name): Path<String>,
    Json(req): Json<ReceiveRequest>,
) -> Result<Json<Vec<Received>>, ApiError> {
    valid_name(&name)?;
    let max = req.max.clamp(1, MAX_RECEIVE);
    let wait = Duration::from_millis(req.wait_ms).min(MAX_WAIT);
    let visibility = Duration::from_millis(req.visibility_ms);
    let received = queue
        .receive(&name, max, wait, visibility)
        .await
        .map_err(unavailable)?;
    Ok(Json(received))
}

async fn delete(
    State(queue): State<Arc<dyn Queue>>,
    Path(name): Path<String>,
    Json(req): Json<DeleteRequest>,
) -> Result<StatusCode, ApiError> {
    valid_name(&name)?;
    queue
        .delete(&name, &req.receipts)
        .await
        .map_err(unavailable)?;
    Ok(StatusCode::NO_CONTENT)
}

fn valid_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 80
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_queue",
            format!("invalid queue name `{name}`"),
        ))
    }
}

fn unavailable(err: QueueError) -> ApiError {
    match err {
        QueueError::TooLarge(message) => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
        }
        QueueError::Invalid(message) => ApiError::bad_request("invalid_message", message),
        err => ApiError::unavailable(err),
    }
}
