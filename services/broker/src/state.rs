//! What the broker's handlers share.

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use trace_common::dispatcher_client::DispatcherClient;

use crate::sts::StsIssuer;
use crate::token::Signer;

/// The dispatcher to ask about leases, the object store, the signer and
/// the limits.
#[derive(Debug, Clone)]
pub struct BrokerState {
    pub(crate) dispatcher: DispatcherClient,
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) signer: Signer,
    pub(crate) token_ttl: Duration,
    pub(crate) max_object_bytes: u64,
    /// In AWS mode, where credentials come from.
    pub(crate) sts: Option<StsIssuer>,
}

impl BrokerState {
    /// State over `store`, checking leases with `dispatcher`; tokens live at
    /// most `token_ttl` and objects are at most `max_object_bytes`.
    pub fn new(
        dispatcher: DispatcherClient,
        store: Arc<dyn ObjectStore>,
        signer: Signer,
        token_ttl: Duration,
        max_object_bytes: u64,
    ) -> Self {
        Self {
            dispatcher,
            store,
            signer,
            token_ttl,
            max_object_bytes,
            sts: None,
        }
    }

    /// The same state in AWS mode: every credential also carries STS
    /// credentials from `sts`.
    pub fn with_sts(mut self, sts: StsIssuer) -> Self {
        self.sts = Some(sts);
        self
    }
}
