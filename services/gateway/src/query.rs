//! Queries: forwarded to the query service under the caller's tenant, the
//! Arrow IPC answer streamed back chunk by chunk without buffering it whole.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use trace_common::ApiError;
use trace_common::api::{ARROW_STREAM, QueryRequest, TENANT_HEADER};

use crate::codes::upstream;
use crate::{AppState, Principal};

/// `POST /v1/query`.
pub(crate) async fn query(
    principal: Principal,
    State(state): State<AppState>,
    Json(req): Json<QueryRequest>,
) -> Result<Response, ApiError> {
    let url = state.query.url("/v1/query");
    let sent = state
        .query
        .request(reqwest::Method::POST, &url)
        .header(TENANT_HEADER, &principal.tenant)
        .json(&req)
        .send()
        .await
        .map_err(ApiError::unavailable)?;
    let resp = trace_common::http::check(url, sent)
        .await
        .map_err(upstream)?;

    let stream = futures::stream::unfold(resp, |mut resp| async move {
        match resp.chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), resp)),
            Ok(None) => None,
            Err(e) => Some((Err(e), resp)),
        }
    });
    Ok(([(CONTENT_TYPE, ARROW_STREAM)], Body::from_stream(stream)).into_response())
}
