//! The platform as separate processes: every service binary from the target
//! directory, each on its own loopback port, talking to the others over HTTP
//! exactly as a deployment would, with a private Postgres cluster. A small job
//! (three recorded blocks, one task each) checks the dataset and the webhooks
//! against values computed straight from the recorded JSON. It runs twice:
//! on the embedded queues, and with the dispatcher's queues on SQS in the
//! local AWS emulator (moto), which must give the same dataset.
//!
//! The binaries must be built first (`cargo build --workspace --bins`;
//! scripts/test.sh does it); the test fails with that advice when one is
//! missing. It uses the binaries as they are on disk, so stale binaries test
//! stale code.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use num_bigint::BigUint;
use serde_json::json;
use trace_common::api::{JobState, QUEUE_BUFFER, QUEUE_TASKS_INGEST, QUEUE_TASKS_UDF};
use trace_common::db::cluster::{Cluster, free_port};
use trace_tests::expected;

use super::client::{Gateway, count, ingest, wait_for_deliveries};

/// Raw amounts above this raise an alert: 10^24.
const THRESHOLD: &str = "1000000000000000000000000";
const WETH: &str = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";
const LOG_BLOCKS: [u64; 3] = [17_999_999, 18_000_000, 18_000_001];
const BODY_BLOCK: u64 = 18_000_000;
/// A fixed Standard Webhooks secret: the test's own, never a real one.
const SECRET: &str = "whsec_dHJhY2UgcHJvY2Vzc2VzIGUyZSB0ZXN0IHNlY3JldCE=";
const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_as_separate_processes_run_a_job_end_to_end() {
    run_end_to_end(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_job_runs_with_the_queues_on_sqs() {
    let moto = trace_common::aws::testing::start().await;
    let sdk = trace_common::aws::testing::sdk_config(&moto).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    for name in [QUEUE_TASKS_UDF, QUEUE_TASKS_INGEST, QUEUE_BUFFER] {
        let name = format!("{SQS_PREFIX}{name}");
        sqs.create_queue().queue_name(name).send().await.unwrap();
    }
    run_end_to_end(Some(&moto)).await;
    // Everything the run queued was received and deleted.
    for name in [QUEUE_TASKS_UDF, QUEUE_TASKS_INGEST, QUEUE_BUFFER] {
        let url = sqs
            .get_queue_url()
            .queue_name(format!("{SQS_PREFIX}{name}"))
            .send()
            .await
            .unwrap();
        let left = sqs
            .receive_message()
            .queue_url(url.queue_url().unwrap())
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
        assert!(left.messages().is_empty(), "{name}: {left:?}");
    }
}

/// The SQS queue name prefix of the SQS run.
const SQS_PREFIX: &str = "trace-e2e-";

/// The whole run; with `sqs`, the dispatcher keeps its queues there.
async fn run_end_to_end(sqs: Option<&trace_common::aws::testing::Moto>) {
    let clock = Instant::now();
    let lap = |what: &str| eprintln!("[{:>6.1} s] {what}", clock.elapsed().as_secs_f64());
    let data_dir = trace_tests::data_dir();
    let bin_dir = bin_dir();
    let home = tempfile::tempdir().unwrap();
    open_to_postgres(home.path());
    let objects = home.path().join("objects");
    let logs_dir = home.path().join("logs");
    std::fs::create_dir_all(&objects).unwrap();
    std::fs::create_dir_all(&logs_dir).unwrap();

    let (cluster, state_url, data_url) = databases(home.path()).await;
    lap("databases migrated");

    // Declared after the cluster, so the children are killed before it stops.
    let mut procs = Children {
        bin_dir,
        logs_dir,
        running: Vec::new(),
    };
    let objects = objects.to_str().unwrap().to_string();
    let url = |port: u16| format!("http://127.0.0.1:{port}");

    let replay = free_port();
    procs.spawn(
        "trace-replay-provider",
        replay,
        &[("--data-dir", path(&data_dir))],
    );
    let rpc = free_port();
    let provider = format!("1={}/", url(replay));
    procs.spawn("trace-rpc-gateway", rpc, &[("--provider", &provider)]);
    let dispatcher = free_port();
    let mut dispatcher_args = vec![
        ("--state-database-url", state_url.as_str()),
        ("--relay-interval-ms", "200"),
        ("--migrate", "false"),
    ];
    let mut dispatcher_env = Vec::new();
    if let Some(moto) = sqs {
        dispatcher_args.extend([
            ("--queue-backend", "sqs"),
            ("--sqs-queue-prefix", SQS_PREFIX),
        ]);
        dispatcher_env.extend([
            ("AWS_ENDPOINT_URL", moto.url.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ]);
    }
    procs.spawn_with_env(
        "trace-dispatcher",
        dispatcher,
        &dispatcher_args,
        &dispatcher_env,
    );
    let query = free_port();
    procs.spawn(
        "trace-query",
        query,
        &[
            ("--data-database-url", &data_url),
            ("--objects-dir", &objects),
        ],
    );
    let broker = free_port();
    procs.spawn(
        "trace-broker",
        broker,
        &[
            ("--dispatcher-url", &url(dispatcher)),
            ("--objects-dir", &objects),
        ],
    );
    let sinks = free_port();
    procs.spawn(
        "trace-sinks",
        sinks,
        &[
            ("--data-database-url", &data_url),
            ("--queue-url", &url(dispatcher)),
        ],
    );
    let delivery = free_port();
    procs.spawn(
        "trace-delivery",
        delivery,
        &[
            ("--state-database-url", &state_url),
            ("--data-database-url", &data_url),
            ("--allow-private-targets", ""),
        ],
    );
    let receiver = free_port();
    procs.spawn("trace-webhook-receiver", receiver, &[("--secret", SECRET)]);
    let gateway = free_port();
    procs.spawn(
        "trace-gateway",
        gateway,
        &[
            ("--state-database-url", &state_url),
            ("--objects-dir", &objects),
            ("--dispatcher-url", &url(dispatcher)),
            ("--query-url", &url(query)),
            ("--sinks-url", &url(sinks)),
            ("--delivery-url", &url(delivery)),
            ("--rpc-gateway-url", &url(rpc)),
        ],
    );
    let platform_worker = free_port();
    procs.spawn(
        "trace-platform-worker",
        platform_worker,
        &[
            ("--rpc-url", &url(rpc)),
            ("--dispatcher-url", &url(dispatcher)),
            ("--data-database-url", &data_url),
            ("--objects-dir", &objects),
            ("--worker-id", "e2e-platform-worker"),
        ],
    );
    let udf_worker = free_port();
    let cache = home.path().join("artifacts");
    procs.spawn(
        "trace-udf-worker",
        udf_worker,
        &[
            ("--dispatcher-url", &url(dispatcher)),
            ("--query-url", &url(query)),
            ("--broker-url", &url(broker)),
            ("--objects-dir", &objects),
            ("--artifact-cache-dir", path(&cache)),
            ("--worker-id", "e2e-udf-worker"),
        ],
    );
    let ports = [
        replay,
        rpc,
        dispatcher,
        query,
        broker,
        sinks,
        delivery,
        receiver,
        gateway,
        platform_worker,
        udf_worker,
    ];
    for (index, port) in ports.into_iter().enumerate() {
        procs.wait_healthy(index, &url(port)).await;
    }
    lap("every service healthy");

    // The tenant, its key, and the receiver as its webhook endpoint.
    let pool = trace_common::db::connect(&state_url, 2).await.unwrap();
    let key = trace_gateway::bootstrap_tenant(&pool, "e2e", "admin")
        .await
        .expect("tenant bootstrapped");
    pool.close().await;
    let gw = Gateway::new(&url(gateway), &key);
    let hooks = format!("{}/hooks", url(receiver));
    gw.post("/v1/webhooks", &json!({"url": hooks, "secret": SECRET}))
        .await
        .expect("webhook registered");

    // Ingest the block body and the logs of the three blocks.
    let bodies = ingest(&gw, &[BODY_BLOCK], &["blocks", "transactions"]).await;
    let logs = ingest(&gw, &LOG_BLOCKS, &["logs"]).await;
    for job in [&bodies, &logs] {
        let status = gw.wait(job, LIMIT).await;
        assert_eq!(status.job.state, JobState::Succeeded, "ingest: {status:?}");
    }
    lap("ingest done");
    let block = expected::read_gz_json(&data_dir.join(format!("blocks/{BODY_BLOCK}.json.gz")));
    let txs = block["transactions"].as_array().unwrap().len() as u64;
    assert_eq!(count(&gw, "select count(*) from blocks").await, 1);
    assert_eq!(count(&gw, "select count(*) from transactions").await, txs);
    let raw_logs: u64 = LOG_BLOCKS
        .iter()
        .map(|b| {
            let logs = expected::read_gz_json(&data_dir.join(format!("logs/{b}.json.gz")));
            logs.as_array().unwrap().len() as u64
        })
        .sum();
    assert_eq!(count(&gw, "select count(*) from logs").await, raw_logs);

    // Publish the example and run it, one task per block.
    let example = trace_tests::repo_root().join("examples/udfs/erc20-transfers");
    let built = trace_cli::udf::build_project(&example).expect("the example builds");
    let bytes = std::fs::read(&built.path).unwrap();
    let published = gw
        .put_bytes("/v1/components/erc20-transfers/0.1.0", bytes)
        .await
        .expect("publish");
    assert_eq!(published["digest"], json!(built.sha256));
    lap("published");
    let (from, to) = (LOG_BLOCKS[0], LOG_BLOCKS[2]);
    let job = gw
        .post(
            "/v1/jobs",
            &json!({
                "kind": "udf",
                "component": "erc20-transfers@0.1.0",
                "params": {"threshold": THRESHOLD},
                "from_block": from,
                "to_block": to,
                "chunk_size": 1,
            }),
        )
        .await
        .expect("job accepted");
    let status = gw.wait(job["id"].as_str().unwrap(), LIMIT).await;
    assert_eq!(status.job.state, JobState::Succeeded, "udf job: {status:?}");
    assert_eq!(status.job.progress.total, 3);
    assert_eq!(status.job.progress.succeeded, 3);
    lap("udf job done");

    // The dataset holds exactly the recorded transfers.
    let transfers = expected::transfers(&data_dir, from, to);
    assert!(!transfers.is_empty());
    assert_eq!(status.job.records_published, transfers.len() as u64);
    assert_eq!(
        count(&gw, "select count(*) from erc20_transfers").await,
        transfers.len() as u64
    );
    let sums = expected::sums_by_token(&transfers);
    let (n, sum) = &sums[WETH];
    let rows = gw
        .query(
            "select count(*), sum(amount)::text from erc20_transfers where token = $1",
            vec![json!(WETH)],
            false,
        )
        .await
        .unwrap();
    assert_eq!(rows, vec![vec![n.to_string(), sum.to_string()]]);

    // Every alert reached the receiver, verified, once.
    let threshold: BigUint = THRESHOLD.parse().unwrap();
    let alerts = expected::above(&transfers, &threshold) as u64;
    assert!(alerts > 0);
    assert_eq!(status.job.alerts_published, alerts);
    let stats = wait_for_deliveries(&url(receiver), alerts).await;
    assert_eq!(stats["unique_ids"], json!(alerts), "{stats}");
    assert_eq!(stats["rejected"], json!(0), "{stats}");
    lap("alerts verified");

    // The queue the dispatcher used: with SQS, not one message ever went
    // into the embedded queue's table; without, every one did.
    let pool = trace_common::db::connect(&state_url, 1).await.unwrap();
    let (embedded_used,): (bool,) = sqlx::query_as("select is_called from queue_messages_id_seq")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(embedded_used, sqs.is_none());

    drop(procs);
    cluster.stop().expect("the cluster stops");
    lap("stopped");
}

/// The running service processes; dropping it kills and reaps them all,
/// also when the test panics.
struct Children {
    bin_dir: PathBuf,
    logs_dir: PathBuf,
    running: Vec<(&'static str, Child)>,
}

impl Children {
    /// Starts `binary --listen 127.0.0.1:<port> <args>`, its output in
    /// `<logs>/<binary>.log`. An arg with an empty value is a bare flag.
    fn spawn(&mut self, binary: &'static str, port: u16, args: &[(&str, &str)]) {
        self.spawn_with_env(binary, port, args, &[]);
    }

    /// Like [`Children::spawn`], with `env` set for the child.
    fn spawn_with_env(
        &mut self,
        binary: &'static str,
        port: u16,
        args: &[(&str, &str)],
        env: &[(&str, &str)],
    ) {
        let exe = self.bin_dir.join(binary);
        assert!(
            exe.is_file(),
            "`{}` is missing: run `cargo build --workspace --bins` first",
            exe.display()
        );
        let log = std::fs::File::create(self.logs_dir.join(format!("{binary}.log"))).unwrap();
        let mut command = Command::new(&exe);
        // Only the flags below configure the service, not the caller's TRACE_* variables.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("TRACE_") {
                command.env_remove(name);
            }
        }
        command.envs(env.iter().copied());
        command.arg("--listen").arg(format!("127.0.0.1:{port}"));
        for (flag, value) in args {
            command.arg(flag);
            if !value.is_empty() {
                command.arg(value);
            }
        }
        let child = command
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", exe.display()));
        self.running.push((binary, child));
    }

    /// Waits until the `index`th service answers `url/healthz`; panics with
    /// the tail of its log if it exits or takes too long.
    async fn wait_healthy(&mut self, index: usize, url: &str) {
        let health = format!("{url}/healthz");
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            let name = self.running[index].0;
            if let Some(exit) = self.running[index].1.try_wait().unwrap() {
                panic!("{name} exited ({exit}):\n{}", self.log_tail(index));
            }
            let answer = client
                .get(&health)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Ok(resp) = answer
                && resp.status().is_success()
            {
                return;
            }
            if start.elapsed() > LIMIT {
                panic!("{name} not healthy at {health}:\n{}", self.log_tail(index));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_tail(&self, index: usize) -> String {
        let name = self.running[index].0;
        let text =
            std::fs::read_to_string(self.logs_dir.join(format!("{name}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in &mut self.running {
            let _ = child.kill();
        }
        for (_, child) in &mut self.running {
            let _ = child.wait();
        }
    }
}

/// The directory of the service binaries: the test runs as
/// `<target>/<profile>/deps/e2e-<hash>`, the binaries are in `<target>/<profile>`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// Starts the private cluster under `home/postgres` on a free port and
/// creates and migrates the state and data databases.
async fn databases(home: &Path) -> (Cluster, String, String) {
    let dir = home.join("postgres");
    let cluster = tokio::task::spawn_blocking(move || {
        let cluster = Cluster::start(&dir, free_port())?.stop_on_drop();
        cluster.create_database("trace_state")?;
        cluster.create_database("trace_data")?;
        Ok::<_, trace_common::db::cluster::ClusterError>(cluster)
    })
    .await
    .unwrap()
    .expect("the private cluster starts");
    let (state_url, data_url) = (cluster.url("trace_state"), cluster.url("trace_data"));
    let state = trace_common::db::connect(&state_url, 2).await.unwrap();
    trace_common::db::migrate_state(&state).await.unwrap();
    state.close().await;
    let data = trace_common::db::connect(&data_url, 2).await.unwrap();
    trace_common::db::migrate_data(&data).await.unwrap();
    data.close().await;
    (cluster, state_url, data_url)
}

/// Lets the `postgres` user reach the cluster directory under a temp dir
/// that is otherwise private to its owner (the cluster runs as `postgres`
/// when the test runs as root).
fn open_to_postgres(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}
