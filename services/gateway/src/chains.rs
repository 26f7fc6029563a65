//! Chain data the platform can reach: the blocks a replay provider recorded.
//!
//! Only a replay provider answers `replay_recordedBlocks`; for a live provider
//! the rpc-gateway refuses the method and the gateway says so.

use axum::Json;
use axum::extract::{Path, State};
use trace_common::ApiError;
use trace_common::api::RecordedBlocks;

use crate::{AppState, Principal};

/// `GET /v1/chains/{id}/recorded` (admin).
pub(crate) async fn recorded(
    principal: Principal,
    State(state): State<AppState>,
    Path(chain_id): Path<u64>,
) -> Result<Json<RecordedBlocks>, ApiError> {
    principal.require_admin("listing recorded blocks")?;
    let request = serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "replay_recordedBlocks",
        "params": [],
    });
    let answer: serde_json::Value = state
        .rpc
        .post(&format!("/rpc/{chain_id}"), &request)
        .await
        .map_err(|e| {
            if e.status() == Some(404) {
                return not_replay(chain_id);
            }
            ApiError::unavailable(e)
        })?;
    if let Some(result) = answer.get("result") {
        let blocks = serde_json::from_value(result.clone()).map_err(ApiError::internal)?;
        return Ok(Json(blocks));
    }
    Err(not_replay(chain_id))
}

fn not_replay(chain_id: u64) -> ApiError {
    ApiError::not_found(
        "not_recorded",
        format!(
            "chain `{chain_id}` is not served by a replay provider, so it has no recorded blocks"
        ),
    )
}
