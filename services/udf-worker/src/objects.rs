//! The `objects` capability over the broker's scoped object endpoint.
//!
//! Every call carries the task's bearer token; the broker validates the key
//! and maps it under the task's prefix. Its answers map onto the WIT
//! variants: `invalid_key` keeps its message, 413 is `too-large`, 401 and
//! 403 are `denied`, anything else is `unavailable`.

use trace_broker::client::BrokerClient;
use trace_common::http::ClientError;
use trace_host::ObjectsHost;
use trace_host::objects::ObjectError;

use crate::bridge::Bridge;

/// A task's objects, through the broker.
pub struct BrokerObjects {
    client: BrokerClient,
    token: String,
    bridge: Bridge,
}

impl BrokerObjects {
    /// A capability with the task's `token`.
    pub fn new(client: BrokerClient, token: String, bridge: Bridge) -> Self {
        Self {
            client,
            token,
            bridge,
        }
    }

    fn call<T>(
        &self,
        future: impl Future<Output = Result<T, ClientError>>,
        size: u64,
    ) -> Result<T, ObjectError> {
        match self.bridge.block_on(future) {
            Some(result) => result.map_err(|err| object_error(err, size)),
            None => Err(ObjectError::Unavailable(
                "the task was cancelled".to_string(),
            )),
        }
    }
}

impl ObjectsHost for BrokerObjects {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, ObjectError> {
        self.call(self.client.get(&self.token, key), 0)
    }

    fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), ObjectError> {
        let size = value.len() as u64;
        self.call(self.client.put(&self.token, key, value), size)
    }

    fn list(&mut self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        self.call(self.client.list(&self.token, prefix), 0)
    }

    fn delete(&mut self, key: &str) -> Result<(), ObjectError> {
        self.call(self.client.delete(&self.token, key), 0)
    }
}

/// The WIT error for a failed broker call on an object of `size` bytes.
fn object_error(err: ClientError, size: u64) -> ObjectError {
    let message = match &err {
        ClientError::Status { message, .. } => message.clone(),
        _ => String::new(),
    };
    match (err.status(), err.code()) {
        (_, Some("invalid_key")) | (Some(400), _) => ObjectError::InvalidKey(message),
        (Some(413), _) => ObjectError::TooLarge(size),
        (Some(401 | 403), _) => ObjectError::Denied(message),
        // Any other refusal of the request is not an outage.
        (Some(status), _) if (400..500).contains(&status) => ObjectError::Denied(message),
        _ => {
            tracing::warn!(error = %err, "broker object call failed");
            ObjectError::Unavailable("the object store is unavailable".to_string())
        }
    }
}
