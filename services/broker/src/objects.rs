//! The scoped object endpoint: `GET|PUT|DELETE /v1/objects/{key}` and
//! `GET /v1/objects?prefix=`, each with `Authorization: Bearer <token>`.
//!
//! The token names the prefix; the key in the path is relative to it and
//! checked before it is joined ([`crate::keys`]). A list answers a JSON
//! array of relative keys, sorted.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStoreExt, PutPayload};
use serde::Deserialize;
use trace_common::ApiError;

use crate::keys::{KeyError, check_key, check_prefix};
use crate::state::BrokerState;
use crate::token::Claims;

/// `GET /v1/objects/{key}`: the bytes, or 404 `object_not_found`.
pub async fn get(
    State(state): State<BrokerState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Bytes, ApiError> {
    let path = scoped(&state, &headers, &key).await?;
    match state.store.get(&path).await {
        Ok(found) => found.bytes().await.map_err(ApiError::unavailable),
        Err(object_store::Error::NotFound { .. }) => Err(ApiError::not_found(
            "object_not_found",
            format!("no object `{key}`"),
        )),
        Err(err) => Err(ApiError::unavailable(err)),
    }
}

/// `PUT /v1/objects/{key}`: stores the body, at most the size cap (else 413).
pub async fn put(
    State(state): State<BrokerState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let path = scoped(&state, &headers, &key).await?;
    let max = state.max_object_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok());
    if declared
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > max)
    {
        return Err(too_large(max));
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large(max))?;
    state
        .store
        .put(&path, PutPayload::from(bytes))
        .await
        .map_err(ApiError::unavailable)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/objects/{key}`: deleting a missing key is not an error.
pub async fn delete(
    State(state): State<BrokerState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let path = scoped(&state, &headers, &key).await?;
    match state.store.delete(&path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(StatusCode::NO_CONTENT),
        Err(err) => Err(ApiError::unavailable(err)),
    }
}

/// The query of a list.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    prefix: String,
}

/// `GET /v1/objects?prefix=`: the task's keys starting with `prefix`.
pub async fn list(
    State(state): State<BrokerState>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Json<Vec<String>>, ApiError> {
    let claims = authorize(&state, &headers).await?;
    check_prefix(&query.prefix).map_err(invalid_key)?;
    let scope =
        StorePath::parse(claims.prefix.trim_end_matches('/')).map_err(ApiError::internal)?;
    let metas: Vec<_> = state
        .store
        .list(Some(&scope))
        .try_collect()
        .await
        .map_err(ApiError::unavailable)?;

    let scope_text = format!("{scope}/");
    let mut keys: Vec<String> = metas
        .into_iter()
        .filter_map(|meta| {
            meta.location
                .as_ref()
                .strip_prefix(&scope_text)
                .map(str::to_string)
        })
        .filter(|key| key.starts_with(&query.prefix))
        .collect();
    keys.sort();
    Ok(Json(keys))
}

/// The store path of `key` under the token's prefix.
async fn scoped(
    state: &BrokerState,
    headers: &HeaderMap,
    key: &str,
) -> Result<StorePath, ApiError> {
    let claims = authorize(state, headers).await?;
    check_key(key).map_err(invalid_key)?;
    StorePath::parse(format!("{}{key}", claims.prefix))
        .map_err(|_| ApiError::bad_request("invalid_key", "the key is not a valid object path"))
}

/// The claims of the bearer token, or 401.
///
/// A token past its expiry is still honoured until its renewal limit when
/// the dispatcher says its attempt's lease is live.
async fn authorize(state: &BrokerState, headers: &HeaderMap) -> Result<Claims, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(token) = value.strip_prefix("Bearer ") else {
        return Err(ApiError::unauthorized("a bearer token is required"));
    };
    let Ok(claims) = state.signer.open(token.trim()) else {
        return Err(ApiError::unauthorized("the token is not valid"));
    };
    let now = chrono::Utc::now().timestamp();
    if claims.exp > now {
        return Ok(claims);
    }
    if now < claims.renew_until {
        let lease = state.dispatcher.lease(claims.task, claims.attempt).await;
        match lease {
            Ok(lease) if lease.live => return Ok(claims),
            Ok(_) => {}
            Err(err) if err.status() == Some(404) => {}
            Err(err) => return Err(ApiError::unavailable(err)),
        }
    }
    Err(ApiError::unauthorized("the token expired"))
}

fn invalid_key(err: KeyError) -> ApiError {
    ApiError::bad_request("invalid_key", err.to_string())
}

fn too_large(max: u64) -> ApiError {
    let msg = format!("the object is larger than `{max}` bytes");
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "object_too_large", msg)
}
