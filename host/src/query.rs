//! The `query` capability: read-only SQL through the platform's query service.
//!
//! The worker implements [`QueryHost`]; the host hands the guest's calls to it
//! unchanged. Results are Arrow IPC bytes, passed through as they came. A
//! statement that breaks a limit of the query service (time, rows, bytes)
//! trips the run.

use wasmtime::component::HasData;

use crate::limits::Tripwire;
use crate::wit::query as wit;

pub use wit::{Param as QueryParam, QueryError, Source as QuerySource};

/// Runs the statements a component sends.
pub trait QueryHost: Send {
    /// Runs one statement with its bound parameters and answers the whole
    /// result as an Arrow IPC stream.
    fn execute(
        &mut self,
        sql: &str,
        params: Vec<QueryParam>,
        source: QuerySource,
    ) -> Result<Vec<u8>, QueryError>;
}

/// The store's slice for this capability.
pub(crate) struct QueryState {
    pub(crate) host: Box<dyn QueryHost>,
    pub(crate) calls: u64,
    pub(crate) tripwire: Tripwire,
}

/// Projects the store onto [`QueryState`] for the generated bindings.
pub(crate) struct HasQuery;

impl HasData for HasQuery {
    type Data<'a> = &'a mut QueryState;
}

impl wit::Host for QueryState {
    fn execute(
        &mut self,
        sql: String,
        params: Vec<QueryParam>,
        source: QuerySource,
    ) -> Result<Vec<u8>, QueryError> {
        self.calls += 1;
        let _span = tracing::debug_span!("host.query", params = params.len()).entered();
        let result = self.host.execute(&sql, params, source);
        match &result {
            Err(QueryError::Limit(message)) => {
                self.tripwire
                    .trip(format!("a query broke a limit: {message}"));
            }
            Err(QueryError::Unavailable(message)) => {
                self.tripwire.outage(format!("query: {message}"));
            }
            _ => {}
        }
        result
    }
}
