//! The bounds on one query: how long it may run and how much it may return.
//!
//! Both sources count rows and bytes while they read, so a result that is
//! too large is refused before it is fully built, not after.

use std::time::Duration;

use trace_common::api::QueryLimits;

use crate::error::QueryError;

/// The bounds every query runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The statement timeout.
    pub timeout: Duration,
    /// Most rows a result may hold.
    pub max_rows: u64,
    /// Most bytes a result may hold (values as Arrow holds them).
    pub max_bytes: u64,
}

impl Limits {
    /// These limits lowered to what a request asks for, never raised; a
    /// zero is read as one, so a request cannot make the service hang or
    /// divide by nothing.
    pub fn narrowed(&self, asked: &QueryLimits) -> Limits {
        let lower = |own: u64, asked: Option<u64>| asked.map_or(own, |a| own.min(a.max(1)));
        let own_ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        Limits {
            timeout: Duration::from_millis(lower(own_ms, asked.timeout_ms)),
            max_rows: lower(self.max_rows, asked.max_rows),
            max_bytes: lower(self.max_bytes, asked.max_bytes),
        }
    }
}

/// What a query has returned so far, checked against its [`Limits`].
#[derive(Debug)]
pub struct Budget {
    limits: Limits,
    rows: u64,
    bytes: u64,
}

impl Budget {
    /// An empty budget under `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            rows: 0,
            bytes: 0,
        }
    }

    /// Counts `rows` more rows holding `bytes` bytes.
    pub fn spend(&mut self, rows: u64, bytes: u64) -> Result<(), QueryError> {
        self.rows += rows;
        self.bytes += bytes;
        if self.rows > self.limits.max_rows {
            return Err(QueryError::LimitExceeded(format!(
                "the result has more than the row limit of `{}` rows (max_query_rows)",
                self.limits.max_rows
            )));
        }
        if self.bytes > self.limits.max_bytes {
            return Err(QueryError::LimitExceeded(format!(
                "the result is larger than the byte limit of `{}` bytes (max_query_bytes)",
                self.limits.max_bytes
            )));
        }
        Ok(())
    }
}
