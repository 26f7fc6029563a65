//! A dispatcher and a broker on ephemeral ports, and a claimed task.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use trace_broker::client::BrokerClient;
use trace_common::api::{CreateJob, CredentialRequest, Credentials, JobKind, Lease};
use trace_common::dispatcher_client::DispatcherClient;

/// Both services; they stop when dropped.
pub struct Stack {
    pub dispatcher: DispatcherClient,
    pub broker: BrokerClient,
    pub broker_base: String,
    pub objects: PathBuf,
    _objects: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A stack whose leases last `lease`, with broker limits `ttl` and `max_bytes`.
pub async fn start(lease: Duration, ttl_secs: u64, max_bytes: u64) -> Stack {
    start_with(lease, ttl_secs, max_bytes, None).await
}

/// Like [`start`], with the broker in AWS mode when `sts` is given.
pub async fn start_with(
    lease: Duration,
    ttl_secs: u64,
    max_bytes: u64,
    sts: Option<trace_broker::sts::StsIssuer>,
) -> Stack {
    let (pool, _data) = trace_common::db::testing::fresh_pools().await;
    sqlx::query("insert into tenants (id, name) values ('acme', 'Acme')")
        .execute(&pool)
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let settings = trace_dispatcher::Settings {
        lease,
        max_attempts: 3,
        retry_backoff: Duration::ZERO,
        maxima: Default::default(),
    };
    let state = trace_dispatcher::AppState::new(pool.clone(), settings);
    let dispatcher_base = spawn(trace_dispatcher::router(state), &shutdown).await;

    let objects_dir = tempfile::tempdir().unwrap();
    let mut config = trace_broker::Config::new(dispatcher_base.clone(), objects_dir.path());
    config.token_ttl_secs = ttl_secs;
    config.max_object_bytes = max_bytes;
    let mut state = trace_broker::BrokerState::from_config(&config)
        .await
        .unwrap();
    if let Some(sts) = sts {
        state = state.with_sts(sts);
    }
    let broker_base = spawn(trace_broker::router(state), &shutdown).await;

    Stack {
        dispatcher: DispatcherClient::new(dispatcher_base),
        broker: BrokerClient::new(broker_base.clone()),
        broker_base,
        objects: objects_dir.path().to_path_buf(),
        _objects: objects_dir,
        shutdown,
    }
}

async fn spawn(router: axum::Router, shutdown: &CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = shutdown.clone();
    tokio::spawn(async move {
        trace_common::http::serve(listener, router, async move { stop.cancelled().await })
            .await
            .unwrap()
    });
    base
}

impl Stack {
    /// Creates a job of `tasks` one-block tasks and claims each.
    pub async fn claimed(&self, tasks: u64) -> Vec<Lease> {
        let job = CreateJob {
            tenant_id: "acme".into(),
            kind: JobKind::Ingest,
            component: None,
            params: serde_json::json!({}),
            chain_id: 1,
            from_block: 1,
            to_block: tasks,
            chunk_size: 1,
            blocks: None,
            limits: Default::default(),
            deterministic: false,
        };
        let job = self.dispatcher.create_job(&job).await.unwrap();
        let mut leases = Vec::new();
        for task in self.dispatcher.tasks("acme", job.id).await.unwrap() {
            leases.push(self.dispatcher.claim(task.id, "w").await.unwrap().unwrap());
        }
        leases
    }

    /// Credentials for `lease`.
    pub async fn credentials(&self, lease: &Lease) -> Credentials {
        let req = request(lease.task_id, lease.attempt);
        self.broker.credentials(&req).await.unwrap()
    }
}

/// A credential request from worker `w`.
pub fn request(task: uuid::Uuid, attempt: u32) -> CredentialRequest {
    CredentialRequest {
        task_id: task,
        attempt,
        worker_id: "w".into(),
    }
}
