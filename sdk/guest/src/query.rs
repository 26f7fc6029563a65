//! Read-only SQL over chain data and the tenant's datasets.
//!
//! A statement goes to the platform's query service through one host call
//! and comes back whole as an Arrow IPC stream, which [`Rows`] decodes.
//! Parameters are bound as `$1`, `$2`, ...; hashes, addresses and 256-bit
//! numbers are passed as text.

use crate::Rows;
use crate::bindings::trace::udf::query as wit;

/// Where a statement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// Postgres: recent chain data and the tenant's datasets.
    Postgres,
    /// The Parquet lake: chain tables only.
    Lake,
}

/// A bound parameter, referred to in the statement as `$1`, `$2`, ...
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Param {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// Text; also the way to pass hashes, addresses and 256-bit numbers.
    Text(String),
}

/// Why a statement was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The statement is not valid SQL or refers to something that does not
    /// exist.
    #[error("invalid statement: {0}")]
    Invalid(String),
    /// The statement tries something a component may not do.
    #[error("statement denied: {0}")]
    Denied(String),
    /// The statement ran past a limit, which the message names.
    #[error("query limit reached: {0}")]
    Limit(String),
    /// The query service could not be reached or failed; a retry may work.
    #[error("query service unavailable: {0}")]
    Unavailable(String),
    /// The answer was not a readable Arrow IPC stream.
    #[error("undecodable query result: {0}")]
    Decode(String),
}

/// Runs one statement on Postgres and returns all of its rows.
pub fn query(sql: &str, params: &[Param]) -> Result<Rows, QueryError> {
    query_on(Source::Postgres, sql, params)
}

/// Runs one statement on the Parquet lake and returns all of its rows.
pub fn query_lake(sql: &str, params: &[Param]) -> Result<Rows, QueryError> {
    query_on(Source::Lake, sql, params)
}

/// Runs one statement on the given source and returns all of its rows.
pub fn query_on(source: Source, sql: &str, params: &[Param]) -> Result<Rows, QueryError> {
    let params: Vec<wit::Param> = params.iter().map(to_wit).collect();
    let source = match source {
        Source::Postgres => wit::Source::Postgres,
        Source::Lake => wit::Source::Lake,
    };
    let bytes = wit::execute(sql, &params, source).map_err(QueryError::from)?;
    Rows::from_ipc(&bytes)
}

fn to_wit(param: &Param) -> wit::Param {
    match param {
        Param::Null => wit::Param::Null,
        Param::Bool(value) => wit::Param::Boolean(*value),
        Param::Int(value) => wit::Param::Int(*value),
        Param::Float(value) => wit::Param::Float(*value),
        Param::Text(value) => wit::Param::Text(value.clone()),
    }
}

impl From<wit::QueryError> for QueryError {
    fn from(error: wit::QueryError) -> Self {
        match error {
            wit::QueryError::Invalid(message) => QueryError::Invalid(message),
            wit::QueryError::Denied(message) => QueryError::Denied(message),
            wit::QueryError::Limit(message) => QueryError::Limit(message),
            wit::QueryError::Unavailable(message) => QueryError::Unavailable(message),
        }
    }
}

impl From<bool> for Param {
    fn from(value: bool) -> Self {
        Param::Bool(value)
    }
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Param::Int(value)
    }
}

impl From<i32> for Param {
    fn from(value: i32) -> Self {
        Param::Int(value.into())
    }
}

/// Block numbers and chain ids; values above `i64::MAX` (never seen on a
/// real chain) saturate.
impl From<u64> for Param {
    fn from(value: u64) -> Self {
        Param::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Param {
    fn from(value: f64) -> Self {
        Param::Float(value)
    }
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Param::Text(value.to_string())
    }
}

impl From<String> for Param {
    fn from(value: String) -> Self {
        Param::Text(value)
    }
}

impl<T: Into<Param>> From<Option<T>> for Param {
    fn from(value: Option<T>) -> Self {
        value.map_or(Param::Null, Into::into)
    }
}
