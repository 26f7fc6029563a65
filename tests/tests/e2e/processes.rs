//! The platform as separate processes: every service binary from the target
//! directory, each on its own loopback port, talking to the others over HTTP
//! exactly as a deployment would, with a private Postgres cluster. A small job
//! (three recorded blocks, one task each) checks the dataset and the webhooks
//! against values computed straight from the recorded JSON. It runs twice:
//! on the embedded backends, and on every AWS backend in the local AWS
//! emulator (moto), which must give the same dataset: the queues on SQS
//! (claim checks on), every object (components, the lake, task scratch) in
//! an S3 bucket, task credentials from STS, and the caller signed in with
//! an ID token from a Cognito user pool instead of an API key.
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
use super::collector::{Collector, Span};

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
async fn the_same_job_runs_on_every_aws_backend() {
    let moto = trace_common::aws::testing::start().await;
    let sdk = trace_common::aws::testing::sdk_config(&moto).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    for name in [QUEUE_TASKS_UDF, QUEUE_TASKS_INGEST, QUEUE_BUFFER] {
        let name = format!("{SQS_PREFIX}{name}");
        sqs.create_queue().queue_name(name).send().await.unwrap();
    }
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let aws = Aws {
        cognito: trace_common::aws::testing::cognito_pool(&moto, TENANT).await,
        moto: &moto,
    };
    let run = run_end_to_end(Some(&aws)).await;

    // Every object is in the bucket: the component by its digest, and the
    // lake's Parquet files for each table the ingest wrote.
    let mut keys = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(BUCKET).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    let component = format!(
        "components/sha256/{}",
        run.digest.trim_start_matches("sha256:")
    );
    assert!(keys.contains(&component), "{keys:?}");
    for table in ["blocks", "transactions", "logs"] {
        let prefix = format!("lake/chain=1/{table}/");
        let files = keys.iter().filter(|k| k.starts_with(&prefix)).count();
        assert!(
            files > 0
                && keys
                    .iter()
                    .all(|k| !k.starts_with(&prefix) || k.ends_with(".parquet"))
        );
    }
    // Nothing left under claims/, and nothing was written locally.
    assert!(!keys.iter().any(|k| k.starts_with("claims/")), "{keys:?}");
    assert_eq!(run.local_objects, Vec::<String>::new());
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

/// The SQS queue name prefix of the AWS run.
const SQS_PREFIX: &str = "trace-e2e-";
/// The bucket of the AWS run.
const BUCKET: &str = "trace-e2e-objects";
/// The role the broker assumes for task credentials in the AWS run.
const TASK_ROLE: &str = "arn:aws:iam::123456789012:role/trace-task";
/// The tenant both runs act in.
const TENANT: &str = "e2e";

/// The emulator of the AWS run and its user pool (cognito.py's answer).
struct Aws<'a> {
    moto: &'a trace_common::aws::testing::Moto,
    cognito: serde_json::Value,
}

/// What a run leaves for the caller to check.
struct Run {
    /// The published component's digest.
    digest: String,
    /// Files under the local object directory.
    local_objects: Vec<String>,
}

/// The whole run; with `aws`, every backend is the AWS one.
async fn run_end_to_end(aws: Option<&Aws<'_>>) -> Run {
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
        env: Vec::new(),
    };
    // Flags every object-keeping service gets in the AWS run.
    let mut bucket: Vec<(&str, &str)> = Vec::new();
    if let Some(aws) = aws {
        procs.env = vec![
            ("AWS_ENDPOINT_URL", aws.moto.url.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ];
        bucket.push(("--objects-bucket", BUCKET));
    }
    // Every service exports its spans to a collector of the test's own.
    let collector = Collector::start().await;
    procs.env.extend([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint.clone()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200".into()),
    ]);
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
    if aws.is_some() {
        dispatcher_args.extend([
            ("--queue-backend", "sqs"),
            ("--sqs-queue-prefix", SQS_PREFIX),
        ]);
        dispatcher_args.extend(&bucket);
    }
    procs.spawn("trace-dispatcher", dispatcher, &dispatcher_args);
    let query = free_port();
    procs.spawn(
        "trace-query",
        query,
        &[
            &[
                ("--data-database-url", data_url.as_str()),
                ("--objects-dir", &objects),
            ],
            &bucket[..],
        ]
        .concat(),
    );
    let broker = free_port();
    let mut broker_args = vec![
        ("--dispatcher-url", url(dispatcher)),
        ("--objects-dir", objects.clone()),
    ];
    if aws.is_some() {
        broker_args.push(("--objects-bucket", BUCKET.into()));
        broker_args.push(("--sts-role-arn", TASK_ROLE.into()));
    }
    let broker_args: Vec<(&str, &str)> =
        broker_args.iter().map(|(f, v)| (*f, v.as_str())).collect();
    procs.spawn("trace-broker", broker, &broker_args);
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
    let mut gateway_args = vec![
        ("--state-database-url", state_url.clone()),
        ("--objects-dir", objects.clone()),
        ("--dispatcher-url", url(dispatcher)),
        ("--query-url", url(query)),
        ("--sinks-url", url(sinks)),
        ("--delivery-url", url(delivery)),
        ("--rpc-gateway-url", url(rpc)),
    ];
    if let Some(aws) = aws {
        let pool = &aws.cognito;
        let text = |k: &str| pool[k].as_str().unwrap().to_string();
        let jwks = format!("{}/{}/.well-known/jwks.json", aws.moto.url, text("pool"));
        gateway_args.extend([
            ("--objects-bucket", BUCKET.into()),
            ("--oidc-issuer", text("issuer")),
            ("--oidc-audience", text("client")),
            ("--oidc-jwks-url", jwks),
        ]);
    }
    let gateway_args: Vec<(&str, &str)> =
        gateway_args.iter().map(|(f, v)| (*f, v.as_str())).collect();
    procs.spawn("trace-gateway", gateway, &gateway_args);
    let platform_worker = free_port();
    procs.spawn(
        "trace-platform-worker",
        platform_worker,
        &[
            &[
                ("--rpc-url", url(rpc).as_str()),
                ("--dispatcher-url", &url(dispatcher)),
                ("--data-database-url", &data_url),
                ("--objects-dir", &objects),
                ("--worker-id", "e2e-platform-worker"),
            ],
            &bucket[..],
        ]
        .concat(),
    );
    let udf_worker = free_port();
    let cache = home.path().join("artifacts");
    procs.spawn(
        "trace-udf-worker",
        udf_worker,
        &[
            &[
                ("--dispatcher-url", url(dispatcher).as_str()),
                ("--query-url", &url(query)),
                ("--broker-url", &url(broker)),
                ("--objects-dir", &objects),
                ("--artifact-cache-dir", path(&cache)),
                ("--worker-id", "e2e-udf-worker"),
            ],
            &bucket[..],
        ]
        .concat(),
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
    let key = trace_gateway::bootstrap_tenant(&pool, TENANT, "admin")
        .await
        .expect("tenant bootstrapped");
    pool.close().await;
    // In the AWS run the caller is the user pool's admin, by ID token.
    let bearer = match aws {
        Some(aws) => aws.cognito["admin"]["id"].as_str().unwrap().to_string(),
        None => key,
    };
    let gw = Gateway::new(&url(gateway), &bearer);
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
    // The lake holds the same logs (in the AWS run, read from the bucket).
    let lake = gw
        .query("select count(*) from logs", vec![], true)
        .await
        .unwrap();
    assert_eq!(lake, vec![vec![raw_logs.to_string()]]);

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

    // Each service counted what it did; every process has its own registry.
    let sum = |text: &str, name: &str, labels: &[(&str, &str)]| sample_sum(text, name, labels);
    let m = metrics(&url(gateway)).await;
    let jobs = [("method", "POST"), ("route", "/v1/jobs"), ("status", "201")];
    assert_eq!(sum(&m, "trace_http_requests_total", &jobs), 3.0);
    let m = metrics(&url(dispatcher)).await;
    let udf_ok = [("kind", "udf"), ("outcome", "succeeded")];
    assert_eq!(sum(&m, "trace_task_attempts_total", &udf_ok), 3.0);
    assert_eq!(
        sum(&m, "trace_task_attempt_duration_seconds_count", &udf_ok),
        3.0
    );
    assert!(m.contains("trace_tasks_queued{kind=\"udf\"}"), "{m}");
    let m = metrics(&url(udf_worker)).await;
    assert_eq!(sum(&m, "trace_udf_instantiate_seconds_count", &[]), 3.0);
    let m = metrics(&url(sinks)).await;
    // An attempt commits on its end or on its last batch, whichever is last.
    let commits = [("outcome", "committed")];
    assert_eq!(sum(&m, "trace_sink_messages_total", &commits), 3.0);
    let rows = sum(&m, "trace_sink_rows_committed_total", &[]);
    assert_eq!(rows, (transfers.len() as u64 + alerts) as f64);
    assert!(sum(&m, "trace_sink_batch_bytes_total", &[]) > 0.0);
    // The receiver answers before the delivery service records the attempt.
    let started = Instant::now();
    let delivered = loop {
        let m = metrics(&url(delivery)).await;
        let delivered = sum(
            &m,
            "trace_webhook_attempts_total",
            &[("result", "delivered")],
        );
        if delivered >= alerts as f64 || started.elapsed() > Duration::from_secs(10) {
            break delivered;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(delivered, alerts as f64);
    let m = metrics(&url(rpc)).await;
    let logs = [
        ("method", "eth_getLogs"),
        ("provider", "127.0.0.1"),
        ("result", "forwarded"),
    ];
    assert!(
        sum(&m, "trace_rpc_calls_total", &logs) >= LOG_BLOCKS.len() as f64,
        "{m}"
    );
    lap("metrics checked");

    // One task's trace id is in the logs of every service that worked on it.
    let trace = trace_common::telemetry::task_trace(status.tasks[0].id);
    let needle = format!("\"trace_id\":\"{trace}\"");
    for service in [
        "trace-dispatcher",
        "trace-udf-worker",
        "trace-broker",
        "trace-query",
        "trace-sinks",
    ] {
        let log = std::fs::read_to_string(procs.logs_dir.join(format!("{service}.log"))).unwrap();
        assert!(
            log.contains(&needle),
            "{service} never logged trace {trace}"
        );
    }

    check_exported_trace(&collector, &trace).await;
    lap("exported trace checked");

    // The queue the dispatcher used: with SQS, not one message ever went
    // into the embedded queue's table; without, every one did.
    let pool = trace_common::db::connect(&state_url, 1).await.unwrap();
    let (embedded_used,): (bool,) = sqlx::query_as("select is_called from queue_messages_id_seq")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(embedded_used, aws.is_none());

    drop(procs);
    cluster.stop().expect("the cluster stops");
    lap("stopped");
    let local_objects = walkdir(Path::new(&objects));
    Run {
        digest: built.sha256,
        local_objects,
    }
}

/// The task's trace as exported: the worker's `task` span is its root, the
/// requests the worker made to the dispatcher, the broker and the query
/// service are served in spans whose parents are the worker's, every span
/// hangs from one exported in the trace, and the sinks' spans for its
/// records are in the same trace.
async fn check_exported_trace(collector: &Collector, trace: &str) {
    let services = |spans: &[Span]| {
        let mut names: Vec<String> = spans.iter().map(|s| s.service.clone()).collect();
        names.sort();
        names.dedup();
        names
    };
    let wanted = [
        "trace-broker",
        "trace-dispatcher",
        "trace-query",
        "trace-sinks",
        "trace-udf-worker",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans = collector.trace(trace);
        let found = services(&spans);
        if wanted.iter().all(|w| found.iter().any(|f| f == w)) {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "trace {trace} was exported by {found:?} only"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The worker's roots: one `task` span per wake-up it handled (a re-sent
    // or redelivered wake-up makes another).
    let roots: Vec<&str> = spans
        .iter()
        .filter(|s| s.service == "trace-udf-worker" && s.parent_span_id.is_empty())
        .inspect(|s| assert_eq!(s.name, "task", "{s:?}"))
        .map(|s| s.span_id.as_str())
        .collect();
    assert!(!roots.is_empty(), "no task span: {spans:#?}");
    // One tree under the task span: every other span's parent was exported
    // too, but for the sinks' spans, which are roots of their own.
    let ids: Vec<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    for span in &spans {
        let root = span.parent_span_id.is_empty();
        let own_root = span.service == "trace-sinks" && span.name == "buffer_message";
        assert!(
            (root && (own_root || roots.contains(&span.span_id.as_str())))
                || (!root && ids.contains(&span.parent_span_id.as_str())),
            "{span:?} is not in the task's tree: {spans:#?}"
        );
    }
    // The worker's calls are served as children of its spans (the broker and
    // the query service also call the dispatcher, under their own spans).
    let worker: Vec<&str> = spans
        .iter()
        .filter(|s| s.service == "trace-udf-worker")
        .map(|s| s.span_id.as_str())
        .collect();
    for service in ["trace-dispatcher", "trace-broker", "trace-query"] {
        let served: Vec<&Span> = spans
            .iter()
            .filter(|s| s.service == service && s.name == "request")
            .collect();
        assert!(
            served
                .iter()
                .any(|s| worker.contains(&s.parent_span_id.as_str())),
            "no request span of {service} is a child of the worker's: {served:#?}"
        );
    }
    assert!(
        spans
            .iter()
            .any(|s| s.service == "trace-sinks" && s.name == "buffer_message"),
        "{spans:#?}"
    );
}

/// A service's `/metrics` text.
async fn metrics(base: &str) -> String {
    let resp = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// The sum of the samples of `name` whose labels include `labels`, read
/// from the Prometheus text format.
fn sample_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut total = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
        if metric != name {
            continue;
        }
        let inner = rest.trim_end_matches('}');
        let have: Vec<(&str, &str)> = inner
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k, v.trim_matches('"')))
            .collect();
        if labels.iter().all(|l| have.contains(l)) {
            total += value.parse::<f64>().unwrap();
        }
    }
    total
}

/// Every file under `dir`, relative to it.
fn walkdir(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// The running service processes; dropping it kills and reaps them all,
/// also when the test panics.
struct Children {
    bin_dir: PathBuf,
    logs_dir: PathBuf,
    running: Vec<(&'static str, Child)>,
    /// Set for every child.
    env: Vec<(&'static str, String)>,
}

impl Children {
    /// Starts `binary --listen 127.0.0.1:<port> <args>`, its output in
    /// `<logs>/<binary>.log`. An arg with an empty value is a bare flag.
    fn spawn(&mut self, binary: &'static str, port: u16, args: &[(&str, &str)]) {
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
        command.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        command.arg("--listen").arg(format!("127.0.0.1:{port}"));
        for (flag, value) in args {
            command.arg(flag);
            if !value.is_empty() {
                command.arg(value);
            }
        }
        let child = command
            .env("RUST_LOG", "info,trace_common::telemetry=debug")
            .env("TRACE_LOG_JSON", "true")
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
