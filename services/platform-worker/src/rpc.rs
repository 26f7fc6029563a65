//! A JSON-RPC client of one chain through the rpc-gateway.
//!
//! Requests go out in batches to `POST {gateway}/rpc/{chain_id}`; answers
//! are matched to requests by id, so a provider may answer a batch in any
//! order. Nothing here is specific to the replay provider.

use std::time::Duration;

use serde_json::{Value, json};

/// A failed JSON-RPC exchange.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The gateway could not be reached, or answered an HTTP error.
    #[error("rpc-gateway request to `{url}` failed: {reason}")]
    Transport {
        /// The URL called.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The gateway refused the request (4xx), such as for an unknown chain.
    #[error("rpc-gateway refused `{url}` with HTTP {status}: {reason}")]
    Refused {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The gateway's answer, shortened.
        reason: String,
    },
    /// A call was answered with a JSON-RPC error.
    #[error("`{method}` answered error {code}: {message}")]
    Call {
        /// The method called.
        method: String,
        /// The JSON-RPC error code.
        code: i64,
        /// The provider's message.
        message: String,
    },
    /// The answer is not a JSON-RPC answer to what was asked.
    #[error("`{url}` answered a malformed JSON-RPC response: {reason}")]
    Protocol {
        /// The URL called.
        url: String,
        /// What is wrong with the answer.
        reason: String,
    },
}

impl RpcError {
    /// Whether trying again later may succeed: transport failures and
    /// provider-internal errors may, an answered refusal (not recorded, bad
    /// params, method not allowed) will not.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Call { code, .. } => matches!(code, -32603 | -32000),
            Self::Refused { .. } | Self::Protocol { .. } => false,
        }
    }
}

/// A client of one chain through the rpc-gateway.
#[derive(Debug, Clone)]
pub struct RpcClient {
    url: String,
    http: reqwest::Client,
}

impl RpcClient {
    /// A client of `chain_id` through the gateway at `gateway` (its base URL).
    pub fn new(gateway: &str, chain_id: u64) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("a reqwest client with only a timeout always builds");
        let url = format!("{}/rpc/{chain_id}", gateway.trim_end_matches('/'));
        Self { url, http }
    }

    /// Calls `method` once per parameter list, all in one batch; the results
    /// come back in the order of `params`.
    pub async fn batch(&self, method: &str, params: &[Value]) -> Result<Vec<Value>, RpcError> {
        if params.is_empty() {
            return Ok(Vec::new());
        }
        let requests: Vec<Value> = params
            .iter()
            .enumerate()
            .map(|(id, p)| json!({"jsonrpc": "2.0", "id": id, "method": method, "params": p}))
            .collect();
        let answer = self.post(&Value::Array(requests)).await?;
        let Value::Array(answers) = answer else {
            return Err(self.protocol("a batch was not answered with an array"));
        };

        let mut results: Vec<Option<Value>> = vec![None; params.len()];
        for mut answer in answers {
            let id = answer.get("id").and_then(Value::as_u64);
            let Some(slot) = id.and_then(|i| results.get_mut(i as usize)) else {
                return Err(self.protocol("an answer carries an unknown id"));
            };
            if let Some(err) = answer.get("error") {
                return Err(RpcError::Call {
                    method: method.to_string(),
                    code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
                    message: err
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .into(),
                });
            }
            *slot = Some(
                answer
                    .get_mut("result")
                    .map(Value::take)
                    .unwrap_or(Value::Null),
            );
        }
        results
            .into_iter()
            .map(|r| r.ok_or_else(|| self.protocol("a request of the batch was not answered")))
            .collect()
    }

    async fn post(&self, body: &Value) -> Result<Value, RpcError> {
        let transport = |reason: String| RpcError::Transport {
            url: self.url.clone(),
            reason,
        };
        let resp = self
            .http
            .post(&self.url)
            .json(body)
            .send()
            .await
            .map_err(|e| transport(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            let reason: String = text.chars().take(300).collect();
            if status.is_client_error() {
                let (url, status) = (self.url.clone(), status.as_u16());
                return Err(RpcError::Refused {
                    url,
                    status,
                    reason,
                });
            }
            return Err(transport(format!("HTTP {}: {reason}", status.as_u16())));
        }
        let bytes = resp.bytes().await.map_err(|e| transport(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|_| self.protocol("the body is not JSON"))
    }

    fn protocol(&self, reason: &str) -> RpcError {
        RpcError::Protocol {
            url: self.url.clone(),
            reason: reason.to_string(),
        }
    }
}
