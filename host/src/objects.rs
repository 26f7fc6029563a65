//! The `objects` capability: object storage scoped to the running task.
//!
//! The worker implements [`ObjectsHost`] over the broker's scoped endpoint,
//! which scopes keys under the task's prefix. The host refuses a key that
//! could name anything outside that scope (traversal, absolute, control
//! characters, over-long: [`trace_common::keys`]) before it leaves the
//! sandbox, and the broker refuses it again by the same rules.
//! The host counts what the run writes: an object larger than
//! [`Limits::max_object_bytes`](crate::Limits), more than `max_objects`
//! written at once, or more than `max_object_total_bytes` of them is refused
//! before it reaches the worker, and trips the run.

use std::collections::HashMap;

use wasmtime::component::HasData;

use trace_common::keys::{check_key, check_prefix};

use crate::limits::Tripwire;
use crate::wit::objects as wit;

pub use wit::ObjectError;

/// Reads and writes the task's own objects.
pub trait ObjectsHost: Send {
    /// Reads an object; `None` when there is none under `key`.
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, ObjectError>;
    /// Writes an object, replacing any under the same key.
    fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), ObjectError>;
    /// Lists the keys under a relative prefix.
    fn list(&mut self, prefix: &str) -> Result<Vec<String>, ObjectError>;
    /// Deletes an object; a missing key is not an error.
    fn delete(&mut self, key: &str) -> Result<(), ObjectError>;
}

/// The store's slice for this capability.
pub(crate) struct ObjectsState {
    pub(crate) host: Box<dyn ObjectsHost>,
    pub(crate) max_objects: usize,
    pub(crate) max_object_bytes: usize,
    pub(crate) max_total_bytes: u64,
    /// The size of every object this run wrote and did not delete.
    pub(crate) written: HashMap<String, u64>,
    pub(crate) tripwire: Tripwire,
}

impl ObjectsState {
    /// Notes an outage of the object store for the run's classification.
    fn watch<T>(&self, result: &Result<T, ObjectError>) {
        if let Err(ObjectError::Unavailable(message)) = result {
            self.tripwire.outage(format!("objects: {message}"));
        }
    }

    /// Refuses a put of `size` bytes under `key` that would break a limit.
    fn admit(&self, key: &str, size: usize) -> Result<(), ObjectError> {
        if size > self.max_object_bytes {
            let max = self.max_object_bytes;
            self.tripwire.trip(format!(
                "an object may be at most {max} bytes (max_object_bytes); one was {size}"
            ));
            return Err(ObjectError::TooLarge(size as u64));
        }
        let replaced = self.written.get(key).copied();
        let count = self.written.len() + usize::from(replaced.is_none());
        if count > self.max_objects {
            let max = self.max_objects;
            self.tripwire.trip(format!(
                "a task may write at most {max} objects (max_objects)"
            ));
            return Err(ObjectError::Denied(format!(
                "a task may write at most {max} objects"
            )));
        }
        let total: u64 = self.written.values().sum::<u64>() - replaced.unwrap_or(0) + size as u64;
        if total > self.max_total_bytes {
            let max = self.max_total_bytes;
            self.tripwire.trip(format!(
                "a task may write at most {max} bytes of objects (max_object_total_bytes)"
            ));
            return Err(ObjectError::Denied(format!(
                "a task may write at most {max} bytes of objects"
            )));
        }
        Ok(())
    }
}

/// Projects the store onto [`ObjectsState`] for the generated bindings.
pub(crate) struct HasObjects;

impl HasData for HasObjects {
    type Data<'a> = &'a mut ObjectsState;
}

impl wit::Host for ObjectsState {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, ObjectError> {
        let _span = tracing::debug_span!("host.objects.get").entered();
        valid_key(&key)?;
        let result = self.host.get(&key);
        self.watch(&result);
        result
    }

    fn put(&mut self, key: String, value: Vec<u8>) -> Result<(), ObjectError> {
        let _span = tracing::debug_span!("host.objects.put", bytes = value.len()).entered();
        let size = value.len();
        valid_key(&key)?;
        self.admit(&key, size)?;
        let result = self.host.put(&key, value);
        match &result {
            Ok(()) => {
                self.written.insert(key, size as u64);
            }
            Err(ObjectError::TooLarge(size)) => self.tripwire.trip(format!(
                "the object store refused an object of {size} bytes as too large"
            )),
            Err(_) => self.watch(&result),
        }
        result
    }

    fn list(&mut self, prefix: String) -> Result<Vec<String>, ObjectError> {
        let _span = tracing::debug_span!("host.objects.list").entered();
        check_prefix(&prefix).map_err(|err| ObjectError::InvalidKey(err.to_string()))?;
        let result = self.host.list(&prefix);
        self.watch(&result);
        result
    }

    fn delete(&mut self, key: String) -> Result<(), ObjectError> {
        let _span = tracing::debug_span!("host.objects.delete").entered();
        valid_key(&key)?;
        let result = self.host.delete(&key);
        if result.is_ok() {
            self.written.remove(&key);
        }
        self.watch(&result);
        result
    }
}

/// `key` if it stays inside the task's scope, else `invalid-key` saying why.
fn valid_key(key: &str) -> Result<(), ObjectError> {
    check_key(key).map_err(|err| ObjectError::InvalidKey(err.to_string()))
}
