//! The `records` capability: records into datasets, alerts to webhooks.
//!
//! The worker implements [`RecordsHost`]: it validates records against the
//! declared columns and buffers them for the sinks. The host passes calls
//! through; a `limit` error from the worker trips the run, so the task fails
//! naming the limit even if the component carries on.

use wasmtime::component::HasData;

use crate::limits::Tripwire;
use crate::wit::records as wit;

pub use wit::{Alert, Column, ColumnType, RecordsError, Severity};

/// Takes what a component publishes.
pub trait RecordsHost: Send {
    /// Declares a dataset and its columns.
    fn define_dataset(&mut self, name: &str, columns: Vec<Column>) -> Result<(), RecordsError>;
    /// Publishes JSON-object records to a declared dataset.
    fn publish(&mut self, dataset: &str, records: Vec<String>) -> Result<(), RecordsError>;
    /// Publishes alerts.
    fn publish_alerts(&mut self, alerts: Vec<Alert>) -> Result<(), RecordsError>;
}

/// The store's slice for this capability.
pub(crate) struct RecordsState {
    pub(crate) host: Box<dyn RecordsHost>,
    pub(crate) tripwire: Tripwire,
}

impl RecordsState {
    fn watch(&self, result: Result<(), RecordsError>) -> Result<(), RecordsError> {
        match &result {
            Err(RecordsError::Limit(message)) => self.tripwire.trip(message.clone()),
            Err(RecordsError::Unavailable(message)) => {
                self.tripwire.outage(format!("records: {message}"));
            }
            _ => {}
        }
        result
    }
}

/// Projects the store onto [`RecordsState`] for the generated bindings.
pub(crate) struct HasRecords;

impl HasData for HasRecords {
    type Data<'a> = &'a mut RecordsState;
}

impl wit::Host for RecordsState {
    fn define_dataset(&mut self, name: String, columns: Vec<Column>) -> Result<(), RecordsError> {
        let _span = tracing::debug_span!("host.records.define").entered();
        let result = self.host.define_dataset(&name, columns);
        self.watch(result)
    }

    fn publish(&mut self, dataset: String, records: Vec<String>) -> Result<(), RecordsError> {
        let _span = tracing::debug_span!("host.records.publish", records = records.len()).entered();
        let result = self.host.publish(&dataset, records);
        self.watch(result)
    }

    fn publish_alerts(&mut self, alerts: Vec<Alert>) -> Result<(), RecordsError> {
        let _span = tracing::debug_span!("host.records.alerts", alerts = alerts.len()).entered();
        let result = self.host.publish_alerts(alerts);
        self.watch(result)
    }
}
