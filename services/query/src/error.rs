//! Why a query was not answered, and how each reason reaches the client.
//!
//! Client mistakes (`invalid_query`, `denied`, `limit_exceeded`, `timeout`)
//! carry a message meant for the query's author; a database that cannot be
//! reached is `unavailable` (503, worth retrying); internal failures are
//! logged once and answered as a bare `internal`.

use std::time::Duration;

use axum::http::StatusCode;
use trace_common::ApiError;

/// A query that could not be answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The SQL does not parse or plan: syntax, unknown table or column, types.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The SQL is not a single read-only statement, or reads what it may not.
    #[error("denied: {0}")]
    Denied(String),
    /// The result is larger than a configured limit.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// The query ran longer than the statement timeout.
    #[error(
        "query exceeded the statement timeout of `{}` ms (query_timeout_secs)",
        .0.as_millis()
    )]
    Timeout(Duration),
    /// The database cannot be reached now (a lost connection, a restart, an
    /// exhausted pool); asking again later may work.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database, the lake or the encoder failed.
    #[error("internal failure: {0}")]
    Internal(String),
}

impl From<QueryError> for ApiError {
    fn from(err: QueryError) -> Self {
        match err {
            QueryError::InvalidQuery(m) => ApiError::bad_request("invalid_query", m),
            QueryError::Denied(m) => ApiError::new(StatusCode::FORBIDDEN, "denied", m),
            QueryError::LimitExceeded(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded", m)
            }
            e @ QueryError::Timeout(_) => {
                ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", e.to_string())
            }
            QueryError::Unavailable(cause) => ApiError::unavailable(cause),
            QueryError::Internal(cause) => ApiError::internal(cause),
        }
    }
}
