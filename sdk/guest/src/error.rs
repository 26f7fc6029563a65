//! The error a UDF returns when a run fails.
//!
//! It mirrors the WIT `udf-error` variant. Host errors ([`QueryError`],
//! [`RecordsError`]) convert into [`UdfError::Host`] so `?` works on every
//! SDK call inside [`Udf::run`](crate::Udf::run).

use crate::bindings::trace::udf::types::UdfError as WitUdfError;
use crate::{QueryError, RecordsError};

/// Why a run failed, as the function sees it.
///
/// A failure returned here is deterministic: the platform does not retry the
/// task blindly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UdfError {
    /// The job's parameters are missing a value or hold a bad one.
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// The input data was not what the function can handle.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A host call failed and the function chose to give up.
    #[error("host call failed: {0}")]
    Host(String),
    /// Any other failure, with a message for the job's logs.
    #[error("{0}")]
    Other(String),
}

impl From<QueryError> for UdfError {
    fn from(error: QueryError) -> Self {
        UdfError::Host(format!("query: {error}"))
    }
}

impl From<RecordsError> for UdfError {
    fn from(error: RecordsError) -> Self {
        UdfError::Host(format!("records: {error}"))
    }
}

impl From<crate::ColumnError> for UdfError {
    fn from(error: crate::ColumnError) -> Self {
        UdfError::InvalidInput(error.to_string())
    }
}

impl From<UdfError> for WitUdfError {
    fn from(error: UdfError) -> Self {
        match error {
            UdfError::InvalidParams(message) => WitUdfError::InvalidParams(message),
            UdfError::InvalidInput(message) => WitUdfError::InvalidInput(message),
            UdfError::Host(message) => WitUdfError::Host(message),
            UdfError::Other(message) => WitUdfError::Other(message),
        }
    }
}
