//! The platform around a UDF worker, started in-process on ephemeral ports.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use trace_common::api::{ComponentRef, CreateJob, Job, JobKind, JobState};
use trace_common::dispatcher_client::DispatcherClient;
use trace_dispatcher::{AppState, Settings};

/// The tenant every test job belongs to.
pub const TENANT: &str = "acme";

/// A running dispatcher, broker, query service and UDF worker.
pub struct Platform {
    pub dispatcher: DispatcherClient,
    pub state: PgPool,
    /// The data database, which the query service reads.
    pub data: PgPool,
    pub objects: TempDir,
    shutdown: CancellationToken,
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts everything with a worker whose runs get `deadline_secs`.
pub async fn start(deadline_secs: u64) -> Platform {
    start_with(deadline_secs, |_| {}).await
}

/// The emulated AWS account a platform may run against: the broker
/// assumes `role_arn` for task credentials on `bucket`, and the worker
/// reaches S3 with `sdk`.
pub struct Aws {
    pub sdk: aws_config::SdkConfig,
    pub role_arn: String,
    pub bucket: String,
}

/// Starts everything with a worker whose runs get `deadline_secs` and whose
/// configuration `configure` then adjusts.
pub async fn start_with(
    deadline_secs: u64,
    configure: impl FnOnce(&mut trace_udf_worker::Config),
) -> Platform {
    start_full(deadline_secs, configure, None).await
}

/// Starts everything with the broker in AWS mode on `aws`: tasks get STS
/// credentials and the worker takes their objects straight to S3.
pub async fn start_aws(aws: &Aws) -> Platform {
    start_full(30, |_| {}, Some(aws)).await
}

async fn start_full(
    deadline_secs: u64,
    configure: impl FnOnce(&mut trace_udf_worker::Config),
    aws: Option<&Aws>,
) -> Platform {
    let (state, data) = trace_common::db::testing::fresh_pools().await;
    sqlx::query("insert into tenants (id, name) values ($1, 'Acme')")
        .bind(TENANT)
        .execute(&state)
        .await
        .unwrap();
    let objects = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();

    let (listener, dispatcher_url) = bind().await;
    let mut config = trace_dispatcher::Config::new("unused");
    config.relay_interval_ms = 50;
    config.reaper_interval_ms = 200;
    let app = AppState::new(state.clone(), Settings::default());
    let stop = shutdown.clone();
    tokio::spawn(async move { trace_dispatcher::serve_state(app, &config, listener, stop).await });

    let (listener, broker_url) = bind().await;
    let broker = trace_broker::Config::new(dispatcher_url.clone(), objects.path());
    match aws {
        None => drop(tokio::spawn(trace_broker::serve(
            broker,
            listener,
            shutdown.clone(),
        ))),
        Some(aws) => {
            let sts = trace_broker::sts::StsIssuer::new(
                &aws.sdk,
                aws.role_arn.clone(),
                aws.bucket.clone(),
            );
            let state = trace_broker::BrokerState::from_config(&broker)
                .await
                .unwrap()
                .with_sts(sts);
            let stop = shutdown.clone();
            tokio::spawn(trace_common::http::serve(
                listener,
                trace_broker::router(state),
                async move { stop.cancelled().await },
            ));
        }
    }

    let (listener, query_url) = bind().await;
    let query = trace_query::Config {
        objects_dir: objects.path().into(),
        ..Default::default()
    };
    let lake = trace_common::objects::local(objects.path()).expect("object store");
    let router = trace_query::router(data.clone(), lake, &query);
    let stop = shutdown.clone();
    tokio::spawn(trace_common::http::serve(listener, router, async move {
        stop.cancelled().await
    }));

    let (listener, _) = bind().await;
    let mut worker = trace_udf_worker::Config::new(
        dispatcher_url.clone(),
        query_url,
        broker_url,
        objects.path().join("store"),
    );
    worker.artifact_cache_dir = objects.path().join("artifacts");
    worker.deadline_secs = deadline_secs;
    configure(&mut worker);
    match aws {
        None => drop(tokio::spawn(trace_udf_worker::serve(
            worker,
            listener,
            shutdown.clone(),
        ))),
        Some(aws) => {
            let handler = trace_udf_worker::handler::UdfHandler::from_config(&worker)
                .await
                .unwrap()
                .with_aws(aws.sdk.clone());
            let options = trace_common::worker::WorkerOptions::new(
                trace_common::api::QUEUE_TASKS_UDF,
                worker.worker_id.clone(),
            );
            let url = dispatcher_url.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let handler = std::sync::Arc::new(handler);
                trace_common::worker::serve_worker(listener, &url, handler, options, stop).await
            });
        }
    }

    Platform {
        dispatcher: DispatcherClient::new(dispatcher_url),
        state,
        data,
        objects,
        shutdown,
    }
}

impl Platform {
    /// Stores a guest component in the worker's object store; its ref.
    pub fn publish(&self, name: &str) -> ComponentRef {
        let bytes = guest(name);
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        let path = self
            .objects
            .path()
            .join("store")
            .join(trace_common::objects::component_key(&digest));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        ComponentRef {
            name: name.into(),
            version: "0.1.0".into(),
            digest,
        }
    }

    /// Creates a UDF job over `from..=to` in chunks of `chunk` blocks.
    pub async fn job(
        &self,
        component: ComponentRef,
        params: serde_json::Value,
        range: (u64, u64, u64),
    ) -> Job {
        self.job_limited(component, params, range, Default::default())
            .await
    }

    /// Like [`Platform::job`], asking for `limits`.
    pub async fn job_limited(
        &self,
        component: ComponentRef,
        params: serde_json::Value,
        (from, to, chunk): (u64, u64, u64),
        limits: trace_common::api::JobLimits,
    ) -> Job {
        let req = CreateJob {
            tenant_id: TENANT.into(),
            kind: JobKind::Udf,
            component: Some(component),
            params,
            chain_id: 1,
            from_block: from,
            to_block: to,
            chunk_size: chunk,
            blocks: None,
            limits,
            deterministic: false,
        };
        self.dispatcher.create_job(&req).await.unwrap()
    }

    /// Waits until the job has ended, and answers it.
    pub async fn finished(&self, job: &Job) -> Job {
        for _ in 0..600 {
            let now = self.dispatcher.job(TENANT, job.id).await.unwrap();
            if now.state != JobState::Running {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("job {} did not finish within 60 s", job.id);
    }
}

async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// Where the guests are built: `TRACE_GUEST_TARGET`, else `guests` under
/// `CARGO_TARGET_DIR` or the repository's `target` (as `host/build-guests.sh`).
fn guest_target() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("TRACE_GUEST_TARGET") {
        return dir.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("guests")
}

/// The bytes of a trace-host guest component, built once per test run.
pub fn guest(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<()> = OnceLock::new();
    let host = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../host");
    BUILT.get_or_init(|| {
        let status = std::process::Command::new(host.join("build-guests.sh"))
            .env("TRACE_GUEST_TARGET", guest_target())
            .status()
            .expect("build-guests.sh runs");
        assert!(status.success(), "building the guest components failed");
    });
    let path = guest_target().join(format!("wasm32-wasip2/release/guest_{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading `{}`: {e}", path.display()))
}
