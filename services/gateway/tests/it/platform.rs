//! A gateway in front of a real dispatcher and the real progress routes of
//! the sinks and delivery, in this process over one fresh pair of databases.
//!
//! No worker runs: a test plays the worker through the dispatcher's task API
//! (claim, heartbeat, fail), so every task ends exactly as the test says.

use tokio_util::sync::CancellationToken;
use trace_common::dispatcher_client::DispatcherClient;
use uuid::Uuid;

use super::support::{Gateway, component};

/// The gateway, a client of the dispatcher behind it, and the services'
/// lifetime.
pub struct Platform {
    pub gw: Gateway,
    pub dispatcher: DispatcherClient,
    shutdown: CancellationToken,
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Platform {
    /// The services with tasks getting `max_attempts` attempts each.
    pub async fn start(max_attempts: u32) -> Self {
        let (state_pool, data_pool) = trace_common::db::testing::fresh_pools().await;
        let shutdown = CancellationToken::new();
        let settings = trace_dispatcher::Settings {
            max_attempts,
            ..Default::default()
        };
        let dispatcher_state = trace_dispatcher::AppState::new(state_pool.clone(), settings);
        let dispatcher_url = listen(trace_dispatcher::router(dispatcher_state), &shutdown).await;
        let sinks_url = listen(trace_sinks::router(data_pool), &shutdown).await;
        let delivery_url = listen(trace_delivery::router(state_pool.clone()), &shutdown).await;

        let config = trace_gateway::Config {
            dispatcher_url: dispatcher_url.clone(),
            sinks_url,
            delivery_url,
            ..Default::default()
        };
        Self {
            gw: Gateway::serve(config, state_pool).await,
            dispatcher: DispatcherClient::new(dispatcher_url),
            shutdown,
        }
    }

    /// Publishes a component as `transfers@1.0.0` with `key` and starts a
    /// UDF job of it over `from..=to` in chunks of `chunk` blocks.
    pub async fn udf_job(&self, key: &str, from: u64, to: u64, chunk: u64) -> Uuid {
        let published = self
            .gw
            .publish(key, "transfers", "1.0.0", component("jobs"))
            .await;
        assert_eq!(published.status, 201, "{}", published.body);
        let submit = serde_json::json!({
            "component": "transfers@1.0.0",
            "kind": "udf",
            "from_block": from,
            "to_block": to,
            "chunk_size": chunk,
            "blocks": null,
        });
        let created = self.gw.post(key, "/v1/jobs", submit).await;
        assert_eq!(created.status, 201, "{}", created.body);
        created.body["id"].as_str().unwrap().parse().unwrap()
    }

    /// The ids of the job's tasks in block order, as the dispatcher lists them.
    pub async fn task_ids(&self, tenant: &str, job: Uuid) -> Vec<Uuid> {
        let mut tasks = self.dispatcher.tasks(tenant, job).await.unwrap();
        tasks.sort_by_key(|t| t.seq);
        tasks.into_iter().map(|t| t.id).collect()
    }

    /// Claims `task` as `worker` and returns the attempt number it got.
    pub async fn claim(&self, task: Uuid, worker: &str) -> u32 {
        let lease = self.dispatcher.claim(task, worker).await.unwrap();
        lease.expect("the task is claimable").attempt
    }

    /// The `(action, target, detail)` of the tenant's audit rows about jobs,
    /// oldest first, each checked to name `principal`.
    pub async fn job_audit(&self, tenant: &str, principal: &str) -> Vec<AuditRow> {
        let rows: Vec<(String, String, String, serde_json::Value)> = sqlx::query_as(
            "select principal, action, target, detail from audit_log \
             where tenant_id = $1 and action like 'job.%' order by id",
        )
        .bind(tenant)
        .fetch_all(&self.gw.pool)
        .await
        .unwrap();
        rows.into_iter()
            .map(|(who, action, target, detail)| {
                assert_eq!(who, principal, "audit row {action} names its principal");
                AuditRow {
                    action,
                    target,
                    detail,
                }
            })
            .collect()
    }
}

/// One audit row about a job.
#[derive(Debug)]
pub struct AuditRow {
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

/// How the audit log names the principal holding `key`: its hash's first 12
/// hex digits, recomputed here.
pub fn principal_of(key: &str) -> String {
    format!("key:{}", &trace_gateway::hash_key(key)[..12])
}

/// Serves `router` on an ephemeral loopback port until `shutdown`.
async fn listen(router: axum::Router, shutdown: &CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = shutdown.clone();
    tokio::spawn(async move {
        trace_common::http::serve(listener, router, async move { stop.cancelled().await })
            .await
            .unwrap()
    });
    url
}
