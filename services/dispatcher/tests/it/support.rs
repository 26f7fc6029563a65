//! A dispatcher on an ephemeral port over a fresh state database.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use trace_common::api::{ComponentRef, CreateJob, JobKind};
use trace_common::dispatcher_client::DispatcherClient;
use trace_dispatcher::{AppState, Config, Settings};

/// A running dispatcher; stops when dropped.
pub struct Dispatcher {
    pub base: String,
    pub pool: PgPool,
    pub state: AppState,
    pub client: DispatcherClient,
    shutdown: CancellationToken,
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The HTTP API only: tests drive the relay and the reaper by hand.
pub async fn start(settings: Settings) -> Dispatcher {
    launch(settings, false).await
}

/// The HTTP API with the relay and reaper loops running.
pub async fn start_with_loops(settings: Settings) -> Dispatcher {
    launch(settings, true).await
}

async fn launch(settings: Settings, loops: bool) -> Dispatcher {
    let (pool, _data) = trace_common::db::testing::fresh_pools().await;
    sqlx::query("insert into tenants (id, name) values ('acme', 'Acme'), ('other', 'Other')")
        .execute(&pool)
        .await
        .unwrap();
    let state = AppState::new(pool.clone(), settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let (st, stop) = (state.clone(), shutdown.clone());
    if loops {
        let mut config = Config::new("unused");
        config.relay_interval_ms = 50;
        config.reaper_interval_ms = 100;
        tokio::spawn(async move {
            trace_dispatcher::serve_state(st, &config, listener, stop)
                .await
                .unwrap()
        });
    } else {
        let router = trace_dispatcher::router(st);
        tokio::spawn(async move {
            trace_common::http::serve(listener, router, async move { stop.cancelled().await })
                .await
                .unwrap()
        });
    }
    let client = DispatcherClient::new(base.clone());
    Dispatcher {
        base,
        pool,
        state,
        client,
        shutdown,
    }
}

/// Settings with a lease of `lease_ms` and `max_attempts`, retrying at once.
pub fn settings(lease_ms: u64, max_attempts: u32) -> Settings {
    Settings {
        lease: Duration::from_millis(lease_ms),
        max_attempts,
        retry_backoff: Duration::ZERO,
        maxima: Default::default(),
    }
}

/// An ingest job of tenant `acme` over `from..=to`.
pub fn ingest(from: u64, to: u64, chunk: u64) -> CreateJob {
    CreateJob {
        tenant_id: "acme".into(),
        kind: JobKind::Ingest,
        component: None,
        params: serde_json::json!({}),
        chain_id: 1,
        from_block: from,
        to_block: to,
        chunk_size: chunk,
        blocks: None,
        limits: Default::default(),
        deterministic: false,
    }
}

/// A UDF job of tenant `acme` over `from..=to`.
pub fn udf(from: u64, to: u64, chunk: u64) -> CreateJob {
    let component = ComponentRef {
        name: "transfers".into(),
        version: "1.0.0".into(),
        digest: format!("sha256:{}", "ab".repeat(32)),
    };
    CreateJob {
        kind: JobKind::Udf,
        component: Some(component),
        ..ingest(from, to, chunk)
    }
}

/// The ids of a job's tasks in order.
pub async fn task_ids(pool: &PgPool, job: uuid::Uuid) -> Vec<uuid::Uuid> {
    sqlx::query_scalar("select id from tasks where job_id = $1 order by seq")
        .bind(job)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// A task's stored state and attempt.
pub async fn task_state(pool: &PgPool, task: uuid::Uuid) -> (String, i32) {
    sqlx::query_as("select state, attempt from tasks where id = $1")
        .bind(task)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// How many outbox rows are unsent.
pub async fn unsent(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from outbox where sent_at is null")
        .fetch_one(pool)
        .await
        .unwrap()
}
