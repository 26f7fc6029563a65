//! The `objects` capability: object storage scoped to the running task.
//!
//! The worker implements [`ObjectsHost`] over the broker's scoped endpoint;
//! key validation and scoping happen there, the host passes keys through.

use wasmtime::component::HasData;

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
}

/// Projects the store onto [`ObjectsState`] for the generated bindings.
pub(crate) struct HasObjects;

impl HasData for HasObjects {
    type Data<'a> = &'a mut ObjectsState;
}

impl wit::Host for ObjectsState {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, ObjectError> {
        let _span = tracing::debug_span!("host.objects.get").entered();
        self.host.get(&key)
    }

    fn put(&mut self, key: String, value: Vec<u8>) -> Result<(), ObjectError> {
        let _span = tracing::debug_span!("host.objects.put", bytes = value.len()).entered();
        self.host.put(&key, value)
    }

    fn list(&mut self, prefix: String) -> Result<Vec<String>, ObjectError> {
        let _span = tracing::debug_span!("host.objects.list").entered();
        self.host.list(&prefix)
    }

    fn delete(&mut self, key: String) -> Result<(), ObjectError> {
        let _span = tracing::debug_span!("host.objects.delete").entered();
        self.host.delete(&key)
    }
}
