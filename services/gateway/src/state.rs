//! What every handler shares: the state pool, the object store, the clients
//! of the internal services and the publish limit.

use std::sync::Arc;

use object_store::ObjectStore;
use sqlx::PgPool;
use trace_common::dispatcher_client::DispatcherClient;
use trace_common::http::ServiceClient;

use crate::{Config, Error};

/// Shared state of the gateway's handlers.
#[derive(Clone)]
pub struct AppState {
    pub(crate) pool: PgPool,
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) dispatcher: DispatcherClient,
    pub(crate) query: ServiceClient,
    pub(crate) sinks: ServiceClient,
    pub(crate) delivery: ServiceClient,
    pub(crate) rpc: ServiceClient,
    pub(crate) max_component_bytes: usize,
    /// The OIDC issuer's verifier, when one is configured.
    pub(crate) oidc: Option<Arc<crate::oidc::Verifier>>,
}

impl AppState {
    /// Builds the state from `config` over an open state-database pool.
    pub async fn new(config: &Config, pool: PgPool) -> Result<Self, Error> {
        let bucket = config.objects_bucket.as_deref();
        let store = trace_common::objects::open(&config.objects_dir, bucket).await?;
        Ok(Self {
            pool,
            store,
            dispatcher: DispatcherClient::new(config.dispatcher_url.clone()),
            query: ServiceClient::new(config.query_url.clone()),
            sinks: ServiceClient::new(config.sinks_url.clone()),
            delivery: ServiceClient::new(config.delivery_url.clone()),
            rpc: ServiceClient::new(config.rpc_gateway_url.clone()),
            max_component_bytes: config.max_component_bytes,
            oidc: crate::oidc::Verifier::from_config(&config.oidc).map(Arc::new),
        })
    }

    /// The state-database pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("max_component_bytes", &self.max_component_bytes)
            .finish_non_exhaustive()
    }
}

/// Writes one audit row for an action a principal took.
pub(crate) async fn audit(
    pool: &PgPool,
    principal: &crate::Principal,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into audit_log (tenant_id, principal, action, target, detail) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(&principal.tenant)
    .bind(principal.id())
    .bind(action)
    .bind(target)
    .bind(detail)
    .execute(pool)
    .await?;
    Ok(())
}
