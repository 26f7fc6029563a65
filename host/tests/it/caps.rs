//! Capabilities for the tests that record every call they receive.
//!
//! These stand in for the worker's HTTP-backed implementations: the host
//! only passes calls through, so recording them is what there is to check.

use std::sync::{Arc, Mutex};

use trace_host::log::Level;
use trace_host::objects::ObjectError;
use trace_host::query::{QueryError, QueryParam, QuerySource};
use trace_host::records::{Alert, Column, RecordsError};
use trace_host::{Capabilities, LogHost, ObjectsHost, QueryHost, RecordsHost};

/// The bytes the recording query capability answers with.
pub const QUERY_ANSWER: &[u8] = b"arrow ipc stand-in";

/// Everything the guest sent, in order per capability.
/// A log call: level, message and fields.
pub type LogCall = (Level, String, Vec<(String, String)>);

#[derive(Default)]
pub struct Calls {
    pub queries: Vec<(String, Vec<QueryParam>, QuerySource)>,
    pub datasets: Vec<(String, Vec<Column>)>,
    pub records: Vec<(String, Vec<String>)>,
    pub alerts: Vec<Alert>,
    pub logs: Vec<LogCall>,
}

/// A set of recording capabilities and the shared record of their calls.
pub fn recording() -> (Capabilities, Arc<Mutex<Calls>>) {
    let calls = Arc::new(Mutex::new(Calls::default()));
    let caps = Capabilities {
        query: Box::new(Recorder(calls.clone())),
        objects: Box::new(Recorder(calls.clone())),
        records: Box::new(Recorder(calls.clone())),
        log: Box::new(Recorder(calls.clone())),
    };
    (caps, calls)
}

struct Recorder(Arc<Mutex<Calls>>);

impl QueryHost for Recorder {
    fn execute(
        &mut self,
        sql: &str,
        params: Vec<QueryParam>,
        source: QuerySource,
    ) -> Result<Vec<u8>, QueryError> {
        self.0
            .lock()
            .unwrap()
            .queries
            .push((sql.to_string(), params, source));
        Ok(QUERY_ANSWER.to_vec())
    }
}

impl ObjectsHost for Recorder {
    fn get(&mut self, _key: &str) -> Result<Option<Vec<u8>>, ObjectError> {
        Ok(None)
    }
    fn put(&mut self, _key: &str, _value: Vec<u8>) -> Result<(), ObjectError> {
        Ok(())
    }
    fn list(&mut self, _prefix: &str) -> Result<Vec<String>, ObjectError> {
        Ok(Vec::new())
    }
    fn delete(&mut self, _key: &str) -> Result<(), ObjectError> {
        Ok(())
    }
}

impl RecordsHost for Recorder {
    fn define_dataset(&mut self, name: &str, columns: Vec<Column>) -> Result<(), RecordsError> {
        self.0
            .lock()
            .unwrap()
            .datasets
            .push((name.to_string(), columns));
        Ok(())
    }
    fn publish(&mut self, dataset: &str, records: Vec<String>) -> Result<(), RecordsError> {
        self.0
            .lock()
            .unwrap()
            .records
            .push((dataset.to_string(), records));
        Ok(())
    }
    fn publish_alerts(&mut self, alerts: Vec<Alert>) -> Result<(), RecordsError> {
        self.0.lock().unwrap().alerts.extend(alerts);
        Ok(())
    }
}

impl LogHost for Recorder {
    fn write(&mut self, level: Level, message: &str, fields: Vec<(String, String)>) {
        self.0
            .lock()
            .unwrap()
            .logs
            .push((level, message.to_string(), fields));
    }
}
