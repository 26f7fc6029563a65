//! The `query` capability over the query service's `POST /v1/query`.
//!
//! Statements go to the query service with the task's tenant in the
//! `x-trace-tenant` header; the Arrow IPC answer is passed to the component
//! as it came. Error codes the service answers map onto the WIT variants;
//! anything else, transport failures included, is `unavailable`.

use trace_common::api::{QueryLimits, QueryRequest, TENANT_HEADER};
use trace_common::http::{ClientError, ServiceClient, check};
use trace_host::QueryHost;
use trace_host::query::{QueryError, QueryParam, QuerySource};

use crate::bridge::Bridge;

/// Runs a task's statements on the query service.
pub struct HttpQuery {
    client: ServiceClient,
    tenant: String,
    bridge: Bridge,
    limits: QueryLimits,
}

impl HttpQuery {
    /// A capability for `tenant`'s task against the service at `client`,
    /// asking the service for `limits` on every query.
    pub fn new(
        client: ServiceClient,
        tenant: impl Into<String>,
        bridge: Bridge,
        limits: QueryLimits,
    ) -> Self {
        Self {
            client,
            tenant: tenant.into(),
            bridge,
            limits,
        }
    }

    async fn post(&self, req: &QueryRequest) -> Result<Vec<u8>, ClientError> {
        let url = self.client.url("/v1/query");
        let resp = self
            .client
            .request(reqwest::Method::POST, &url)
            .header(TENANT_HEADER, &self.tenant)
            .json(req)
            .send()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        let resp = check(url.clone(), resp).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Decode { url, source })?;
        Ok(bytes.to_vec())
    }
}

impl QueryHost for HttpQuery {
    fn execute(
        &mut self,
        sql: &str,
        params: Vec<QueryParam>,
        source: QuerySource,
    ) -> Result<Vec<u8>, QueryError> {
        let req = QueryRequest {
            sql: sql.to_string(),
            params: params.into_iter().map(param_json).collect(),
            source: match source {
                QuerySource::Postgres => trace_common::api::QuerySource::Postgres,
                QuerySource::Lake => trace_common::api::QuerySource::Lake,
            },
            limits: self.limits,
        };
        match self.bridge.block_on(self.post(&req)) {
            Some(result) => result.map_err(query_error),
            None => Err(QueryError::Unavailable(
                "the task was cancelled".to_string(),
            )),
        }
    }
}

/// A bound parameter as the JSON value the query service binds.
pub fn param_json(param: QueryParam) -> serde_json::Value {
    use serde_json::Value;
    match param {
        QueryParam::Null => Value::Null,
        QueryParam::Boolean(b) => Value::Bool(b),
        QueryParam::Int(i) => Value::from(i),
        QueryParam::Float(f) => Value::from(f),
        QueryParam::Text(t) => Value::String(t),
    }
}

/// The WIT error for a failed call; only the service's own messages reach
/// the component, never transport details.
fn query_error(err: ClientError) -> QueryError {
    let message = match &err {
        ClientError::Status { message, .. } => message.clone(),
        _ => String::new(),
    };
    match err.code() {
        Some("invalid_query") => QueryError::Invalid(message),
        Some("denied") => QueryError::Denied(message),
        Some("limit_exceeded") | Some("timeout") => QueryError::Limit(message),
        // The request itself was refused (too large, malformed): the
        // component's doing, not an outage, so it must not make a failure
        // transient.
        _ if err.status() == Some(413) => QueryError::Limit(
            "the query and its parameters are larger than the query service accepts".into(),
        ),
        _ if err.status().is_some_and(|s| (400..500).contains(&s)) => {
            QueryError::Invalid(format!("the query service refused the request: {message}"))
        }
        _ => {
            tracing::warn!(error = %err, "query service call failed");
            QueryError::Unavailable("the query service is unavailable".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_the_json_values_the_service_binds() {
        let json: Vec<_> = [
            QueryParam::Null,
            QueryParam::Boolean(true),
            QueryParam::Int(-7),
            QueryParam::Float(1.5),
            QueryParam::Text("0xab".into()),
        ]
        .into_iter()
        .map(param_json)
        .collect();
        assert_eq!(
            serde_json::Value::Array(json),
            serde_json::json!([null, true, -7, 1.5, "0xab"])
        );
    }
}
