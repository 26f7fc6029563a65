//! The platform worker's [`TaskHandler`]: one claimed ingest lease, run
//! through [`ingest_blocks`].
//!
//! The shared loop in `trace_common::worker` does the receiving, claiming,
//! heartbeating and reporting; this only turns a lease into an
//! [`IngestTask`] and an outcome into a summary or a classed failure.

use std::sync::Arc;

use object_store::ObjectStore;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use trace_common::api::{JobKind, Lease};
use trace_common::worker::{TaskFailure, TaskHandler, TaskOutcome};

use crate::ingest::{IngestTask, ingest_blocks};
use crate::rpc::RpcClient;

/// Runs ingest leases against one rpc-gateway, data database and object store.
#[derive(Debug, Clone)]
pub struct IngestHandler {
    rpc_gateway_url: String,
    data: PgPool,
    objects: Arc<dyn ObjectStore>,
}

impl IngestHandler {
    /// A handler fetching through the rpc-gateway at `rpc_gateway_url`.
    pub fn new(rpc_gateway_url: String, data: PgPool, objects: Arc<dyn ObjectStore>) -> Self {
        Self {
            rpc_gateway_url,
            data,
            objects,
        }
    }
}

#[async_trait::async_trait]
impl TaskHandler for IngestHandler {
    async fn run(
        &self,
        lease: Lease,
        cancel: CancellationToken,
    ) -> Result<TaskOutcome, TaskFailure> {
        if lease.kind != JobKind::Ingest {
            return Err(TaskFailure::deterministic(
                "the platform worker runs only ingest tasks",
            ));
        }
        let task = IngestTask::from_lease(&lease)
            .map_err(|e| TaskFailure::deterministic(error_chain(&e)))?;
        let rpc = RpcClient::new(&self.rpc_gateway_url, task.chain_id);
        match ingest_blocks(&rpc, &self.data, self.objects.as_ref(), &task, &cancel).await {
            Ok(summary) => Ok(TaskOutcome {
                summary: serde_json::to_value(summary).expect("a summary always serialises"),
                ..TaskOutcome::default()
            }),
            Err(err) => {
                let reason = error_chain(&err);
                tracing::warn!(task = %lease.task_id, attempt = lease.attempt, error = %reason,
                    "ingest failed");
                Err(if err.is_transient() {
                    TaskFailure::transient(reason)
                } else {
                    TaskFailure::deterministic(reason)
                })
            }
        }
    }
}

/// `err` and its sources, joined with `: `.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
