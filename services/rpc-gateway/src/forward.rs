//! Forwarding JSON-RPC calls to a chain's provider, allowing only the
//! read methods the platform needs.
//!
//! A disallowed method is answered here with `-32601` and never reaches the
//! provider; malformed requests get `-32600` or `-32700` here too. In a
//! batch, only the allowed requests are forwarded (as one batch) and the
//! answers are put back in the order of the original requests.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use trace_common::ApiError;

/// The methods that may pass to a provider.
pub const ALLOWED_METHODS: &[&str] = &[
    "eth_chainId",
    "eth_blockNumber",
    "eth_getBlockByNumber",
    "eth_getBlockReceipts",
    "eth_getLogs",
    "replay_recordedBlocks",
];

/// What the gateway answers a request body with.
#[derive(Debug)]
pub enum Answer {
    /// A JSON-RPC answer: one object or a batch array.
    Json(Value),
    /// Nothing to answer (only notifications were sent).
    Empty,
}

/// One request of a body, sorted into what is forwarded and what is answered here.
enum Slot {
    Forward(Value),
    Local(Option<Value>),
}

/// Forwards `body` to the provider at `url`.
pub async fn forward(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return Ok(Answer::Json(error(Value::Null, -32700, "parse error"))),
    };
    let (batch, items) = match parsed {
        Value::Array(items) if items.is_empty() => {
            return Ok(Answer::Json(error(Value::Null, -32600, "empty batch")));
        }
        Value::Array(items) => (true, items),
        single => (false, vec![single]),
    };

    let slots: Vec<Slot> = items.into_iter().map(sort).collect();
    count(url, &slots);
    let outgoing: Vec<&Value> = slots
        .iter()
        .filter_map(|s| match s {
            Slot::Forward(v) => Some(v),
            Slot::Local(_) => None,
        })
        .collect();
    let mut answers = match (outgoing.is_empty(), batch) {
        (true, _) => Vec::new(),
        (false, true) => as_list(send(http, url, timeout, &json!(outgoing)).await?),
        (false, false) => as_list(send(http, url, timeout, outgoing[0]).await?),
    };

    let mut merged = Vec::new();
    for slot in slots {
        match slot {
            Slot::Local(answer) => merged.extend(answer),
            Slot::Forward(request) => {
                let id = request.get("id").cloned().unwrap_or(Value::Null);
                if let Some(pos) = answers.iter().position(|a| a.get("id") == Some(&id)) {
                    merged.push(answers.remove(pos));
                }
            }
        }
    }
    merged.extend(answers);

    Ok(match (batch, merged.len()) {
        (_, 0) => Answer::Empty,
        (false, _) => Answer::Json(merged.swap_remove(0)),
        (true, _) => Answer::Json(Value::Array(merged)),
    })
}

/// Counts the calls of a request by provider (its host only: a provider's
/// URL may hold an API key in its path) and method; refused methods are
/// counted under `other`, as callers choose their names.
fn count(url: &str, slots: &[Slot]) {
    let provider = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string());
    for slot in slots {
        let (method, result) = match slot {
            Slot::Forward(v) => (v["method"].as_str().unwrap_or("other"), "forwarded"),
            Slot::Local(_) => ("other", "refused"),
        };
        trace_common::metrics::counter!(
            "trace_rpc_calls_total",
            "provider" => provider.clone(),
            "method" => method.to_string(),
            "result" => result,
        )
        .increment(1);
    }
}

fn sort(item: Value) -> Slot {
    let Some(obj) = item.as_object() else {
        return Slot::Local(Some(error(
            Value::Null,
            -32600,
            "a request must be an object",
        )));
    };
    let id = obj.get("id").cloned();
    let reply = |code, message: String| id.clone().map(|id| error(id, code, &message));
    match obj.get("method").and_then(Value::as_str) {
        None => Slot::Local(Some(error(
            id.clone().unwrap_or(Value::Null),
            -32600,
            "`method` must be a string",
        ))),
        Some(m) if ALLOWED_METHODS.contains(&m) => Slot::Forward(item),
        Some(m) => Slot::Local(reply(-32601, format!("method `{m}` is not allowed"))),
    }
}

async fn send(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    body: &impl serde::Serialize,
) -> Result<Value, ApiError> {
    let resp = http
        .post(url)
        .timeout(timeout)
        .json(body)
        .send()
        .await
        .map_err(|e| upstream(url, e))?;
    let status = resp.status();
    if !status.is_success() {
        let code = status.as_u16();
        tracing::warn!(provider = %url, status = code, "provider answered an error status");
        let message = format!("the provider answered HTTP {}", status.as_u16());
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "provider_error",
            message,
        ));
    }
    let bytes = resp.bytes().await.map_err(|e| upstream(url, e))?;
    if bytes.is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    serde_json::from_slice(&bytes).map_err(|_| {
        tracing::warn!(provider = %url, "provider answered a body that is not JSON");
        let message = "the provider answered a body that is not JSON";
        ApiError::new(StatusCode::BAD_GATEWAY, "provider_error", message)
    })
}

fn upstream(url: &str, err: reqwest::Error) -> ApiError {
    if err.is_timeout() {
        tracing::warn!(provider = %url, "provider timed out");
        return ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "provider_timeout",
            "the provider timed out",
        );
    }
    tracing::warn!(provider = %url, error = %err, "provider unreachable");
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "provider_unavailable",
        "the provider is unavailable",
    )
}

fn as_list(answer: Value) -> Vec<Value> {
    match answer {
        Value::Array(items) => items,
        one => vec![one],
    }
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}
