//! One chaos run from start to report: the platform, the ingest, the clean
//! job, the chaos job under the monkey, then the checks.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::Utc;
use num_bigint::BigUint;
use serde_json::json;
use trace_common::api::{JobState, JobStatus, RecordedBlocks, TaskState};
use trace_tests::expected::{self, RawTransfer};
use uuid::Uuid;

use super::monkey::{self, Profile};
use super::platform::{DISPATCHER, Platform, SINKS, UDF_WORKERS};
use super::report::{Report, queue_faults};
use super::verify;
use crate::client::{Gateway, count, ingest};

/// Raw amounts above this raise an alert: 10^24 (536 of the recorded transfers).
const THRESHOLD: &str = "1000000000000000000000000";
/// Bound on each setup step and on the clean job.
const SETUP_LIMIT: Duration = Duration::from_secs(120);
/// Bound on the data and the alerts catching up once the chaos job ended.
const SETTLE_LIMIT: Duration = Duration::from_secs(90);

/// Runs the clean job and the chaos job, prints the report, then asserts.
pub async fn clean_then_chaos() {
    let clock = Instant::now();
    let lap = |what: &str| eprintln!("[{:>6.1} s] {what}", clock.elapsed().as_secs_f64());
    let profile = Profile::from_env();
    let seed = monkey::seed_from_env();
    eprintln!(
        "chaos seed {seed} ({} form); replay with TRACE_CHAOS_SEED={seed}",
        profile.name
    );

    let mut platform = Platform::up().await;
    lap("every service healthy");
    let blocks = ingest_recorded(&platform.gw).await;
    lap("ingest done");
    publish_example(&platform.gw).await;
    lap("published");

    let started = Instant::now();
    let clean = submit(&platform.gw, &blocks, profile.chunk_size).await;
    let clean_status = platform.gw.wait(&clean.to_string(), SETUP_LIMIT).await;
    let clean_time = started.elapsed();
    assert_eq!(
        clean_status.job.state,
        JobState::Succeeded,
        "clean job: {clean_status:?}"
    );
    lap("clean job done");

    platform.inject_faults(seed, profile.faults).await;
    let plan = monkey::plan(seed, &profile);
    let started = Instant::now();
    let mut jobs = Vec::new();
    for _ in 0..profile.jobs {
        jobs.push(submit(&platform.gw, &blocks, profile.chunk_size).await);
    }
    let tally = monkey::run(&mut platform, &jobs, &plan, &profile).await;
    lap("chaos over");
    let mut statuses = Vec::new();
    for job in &jobs {
        statuses.push(settle(&platform, *job, SETTLE_LIMIT).await);
    }
    let chaos_time = started.elapsed();
    let mut delivered = true;
    for job in &jobs {
        delivered &= wait_for_alerts(&platform, *job, SETTLE_LIMIT).await;
    }
    let settled_at = delivered.then(Utc::now);
    lap("chaos jobs settled");

    let finished_at = statuses
        .iter()
        .filter_map(|s| s.job.finished_at)
        .max()
        .unwrap_or_else(Utc::now);
    let log = std::fs::read_to_string(platform.procs.log_path(DISPATCHER)).unwrap();
    let report = Report {
        seed,
        profile: profile.name,
        fault_spec: profile.faults,
        jobs: jobs.len(),
        tasks: statuses.iter().map(|s| s.job.progress.total).sum(),
        clean_job: clean_time,
        chaos_job: chaos_time,
        faults: queue_faults(&log, finished_at),
        tally,
        finished_at,
        settled_at,
    };
    eprintln!("{report}");

    let (first, last) = (blocks[0], blocks[blocks.len() - 1]);
    let transfers = expected::transfers(&trace_tests::data_dir(), first, last);
    let mut failures = chaos_happened(&report);
    let clean_rows = verify::user_rows(&platform.data, clean).await;
    failures.extend(check_clean(&platform, clean, &clean_rows, transfers.len()).await);
    for (job, status) in jobs.iter().zip(&statuses) {
        failures.extend(check_job(status));
        failures.extend(check_rows(&platform, *job, &clean_rows).await);
        failures.extend(check_alerts(&platform, *job, &transfers).await);
    }
    assert!(
        failures.is_empty(),
        "the chaos run failed (seed {seed}):\n- {}\n{}",
        failures.join("\n- "),
        platform.procs.tails()
    );
}

/// Ingests the bodies of the recorded blocks and the logs of every block
/// whose logs are recorded; returns the latter, which the jobs run over.
async fn ingest_recorded(gw: &Gateway) -> Vec<u64> {
    let data_dir = trace_tests::data_dir();
    let recorded: RecordedBlocks =
        serde_json::from_value(gw.get("/v1/chains/1/recorded").await).unwrap();
    assert_eq!(recorded.logs, expected::recorded_log_blocks(&data_dir));
    let bodies = ingest(gw, &recorded.blocks, &["blocks", "transactions"]).await;
    let logs = ingest(gw, &recorded.logs, &["logs"]).await;
    for job in [&bodies, &logs] {
        let status = gw.wait(job, SETUP_LIMIT).await;
        assert_eq!(status.job.state, JobState::Succeeded, "ingest: {status:?}");
    }
    let (blocks, _) = expected::recorded_blocks_and_transactions(&data_dir);
    assert_eq!(
        count(gw, "select count(*) from blocks").await,
        blocks as u64
    );
    let logs = expected::recorded_logs(&data_dir) as u64;
    assert_eq!(count(gw, "select count(*) from logs").await, logs);
    recorded.logs
}

/// Builds the erc20-transfers example (as the e2e tests do) and publishes it.
async fn publish_example(gw: &Gateway) {
    let example = trace_tests::repo_root().join("examples/udfs/erc20-transfers");
    let built = trace_cli::udf::build_project(&example).expect("the example builds");
    let bytes = std::fs::read(&built.path).unwrap();
    let published = gw
        .put_bytes("/v1/components/erc20-transfers/0.1.0", bytes)
        .await
        .expect("publish");
    assert_eq!(published["digest"], json!(built.sha256));
}

/// Starts the erc20-transfers job over `blocks`, `chunk` blocks a task.
async fn submit(gw: &Gateway, blocks: &[u64], chunk: u64) -> Uuid {
    let job = gw
        .post(
            "/v1/jobs",
            &json!({
                "kind": "udf",
                "component": "erc20-transfers@0.1.0",
                "params": {"threshold": THRESHOLD},
                "from_block": blocks[0],
                "to_block": blocks[blocks.len() - 1],
                "chunk_size": chunk,
                "blocks": blocks,
            }),
        )
        .await
        .expect("job accepted");
    job["id"].as_str().unwrap().parse().unwrap()
}

/// Polls the job through the gateway, riding out errors, until it has ended
/// and the sinks have made visible what it published, or `limit` passed.
async fn settle(platform: &Platform, job: Uuid, limit: Duration) -> JobStatus {
    let start = Instant::now();
    let url = format!("{}/v1/jobs/{job}", platform.gw.base);
    let mut last = None;
    while start.elapsed() < limit {
        let answer = platform
            .gw
            .http
            .get(&url)
            .bearer_auth(&platform.gw.key)
            .send()
            .await;
        let status = match answer {
            Ok(resp) if resp.status().is_success() => resp.json::<JobStatus>().await.ok(),
            _ => None,
        };
        if let Some(status) = status {
            let ended = status.job.state != JobState::Running;
            let sunk = status.sunk.records >= status.job.records_published
                && status.sunk.alerts >= status.job.alerts_published;
            if ended && sunk {
                return status;
            }
            last = Some(status);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "job {job} did not settle within {limit:?}: {last:?}\n{}",
        platform.procs.tails()
    );
}

/// Waits until the receiver has every alert stored for `job`; false when
/// `limit` passed first.
async fn wait_for_alerts(platform: &Platform, job: Uuid, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        let stored = verify::stored_alerts(&platform.data, job).await;
        let received = verify::received_alerts(&platform.receiver, job).await;
        if !stored.is_empty() && stored.iter().all(|id| received.contains_key(id)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// The chaos the run promises: a lease lost to a kill and taken back by the
/// reaper, kills of each kind, one Postgres restart, and queue faults.
fn chaos_happened(report: &Report) -> Vec<String> {
    let t = &report.tally;
    let mut failures = Vec::new();
    if !t.lease_kills.iter().any(|kill| kill.3) {
        failures.push(format!(
            "no lease kill was expired by the reaper: {:?}",
            t.lease_kills
        ));
    }
    let killed = |names: &[&str]| names.iter().any(|n| t.kills.contains_key(*n));
    for (kind, names) in [
        ("UDF worker", &UDF_WORKERS[..]),
        ("sink", &SINKS[..]),
        ("dispatcher", &[DISPATCHER][..]),
    ] {
        if !killed(names) {
            failures.push(format!("no {kind} was killed: {:?}", t.kills));
        }
    }
    if t.postgres_restarts != 1 {
        failures.push(format!("Postgres restarted {} times", t.postgres_restarts));
    }
    if report.faults.until_end.values().sum::<u64>() == 0 {
        failures.push("no queue fault was injected while the job ran".to_string());
    }
    failures
}

/// The chaos job succeeded, every task of it; else which tasks did not,
/// with their last error and its class.
fn check_job(status: &JobStatus) -> Vec<String> {
    let progress = &status.job.progress;
    if status.job.state == JobState::Succeeded && progress.succeeded == progress.total {
        return Vec::new();
    }
    let mut failures = vec![format!(
        "chaos job {} did not succeed: {:?}, {progress:?}",
        status.job.id, status.job.state
    )];
    for task in status
        .tasks
        .iter()
        .filter(|t| t.state != TaskState::Succeeded)
    {
        failures.push(format!(
            "task {} ({}..={}) is {:?} after attempt {}: {} ({})",
            task.id,
            task.from_block,
            task.to_block,
            task.state,
            task.attempt,
            task.error.as_deref().unwrap_or("no error"),
            task.error_class.as_deref().unwrap_or("no class")
        ));
    }
    failures
}

/// The clean job has as many rows as the raw files hold transfers, each of
/// an attempt that completed its task: the yardstick for the chaos jobs.
async fn check_clean(
    platform: &Platform,
    clean: Uuid,
    rows: &[String],
    transfers: usize,
) -> Vec<String> {
    let mut failures = Vec::new();
    if rows.len() != transfers {
        failures.push(format!(
            "the clean job has {} rows, the raw files {transfers} transfers",
            rows.len()
        ));
    }
    let stray = verify::rows_of_other_attempts(&platform.state, &platform.data, clean).await;
    if !stray.is_empty() {
        failures.push(format!(
            "the clean job has rows of attempts that did not complete: {stray:?}"
        ));
    }
    failures
}

/// The chaos job's rows are the clean job's, row for row, and every one is
/// of an attempt that completed its task.
async fn check_rows(platform: &Platform, job: Uuid, clean_rows: &[String]) -> Vec<String> {
    let rows = verify::user_rows(&platform.data, job).await;
    eprintln!(
        "rows of job {job}: {} (clean: {})",
        rows.len(),
        clean_rows.len()
    );
    let mut failures = Vec::new();
    let (missing, extra) = verify::difference(clean_rows, &rows);
    if !missing.is_empty() || !extra.is_empty() {
        let n = |rows: &[(String, i64)]| rows.iter().map(|r| r.1).sum::<i64>();
        failures.push(format!(
            "the rows of job {job} differ from the clean rows: {} missing, {} extra; \
             first extra: {:?}",
            n(&missing),
            n(&extra),
            extra.first()
        ));
    }
    let stray = verify::rows_of_other_attempts(&platform.state, &platform.data, job).await;
    if !stray.is_empty() {
        failures.push(format!(
            "job {job} has rows of attempts that did not complete \
             (task, attempt, rows): {stray:?}"
        ));
    }
    failures
}

/// The receiver holds every alert id of the chaos job, each once after
/// de-duplication, and no other id of that job.
async fn check_alerts(platform: &Platform, job: Uuid, transfers: &[RawTransfer]) -> Vec<String> {
    let threshold: BigUint = THRESHOLD.parse().unwrap();
    let expected = expected::above(transfers, &threshold);
    let stored = verify::stored_alerts(&platform.data, job).await;
    let received = verify::received_alerts(&platform.receiver, job).await;
    let received_ids: BTreeSet<String> = received.keys().cloned().collect();
    let deliveries: u64 = received.values().sum();
    eprintln!(
        "alerts of job {job}: expected {expected}, stored {}, received {} ids in {deliveries} \
         deliveries",
        stored.len(),
        received_ids.len()
    );

    let mut failures = Vec::new();
    if stored.len() != expected {
        failures.push(format!(
            "{} alerts stored, {expected} expected",
            stored.len()
        ));
    }
    let missing: Vec<&String> = stored.difference(&received_ids).collect();
    let unknown: Vec<&String> = received_ids.difference(&stored).collect();
    if !missing.is_empty() || !unknown.is_empty() {
        failures.push(format!(
            "the receiver lacks {} alert ids of job {job} and holds {} it should not: {:?} {:?}",
            missing.len(),
            unknown.len(),
            missing.first(),
            unknown.first()
        ));
    }
    failures
}
