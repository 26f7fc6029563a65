//! The bounds on one query: how long it may run and how much it may return.
//!
//! Both sources count rows and bytes while they read, so a result that is
//! too large is refused before it is fully built, not after.

use std::time::Duration;

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
                "the result has more than the row limit of `{}` rows",
                self.limits.max_rows
            )));
        }
        if self.bytes > self.limits.max_bytes {
            return Err(QueryError::LimitExceeded(format!(
                "the result is larger than the byte limit of `{}` bytes",
                self.limits.max_bytes
            )));
        }
        Ok(())
    }
}
