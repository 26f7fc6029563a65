//! Benchmarks of running user components: `cargo bench -p trace-host --bench udf`.
//!
//! (a) Per-task instantiation: a trivial guest (`benches/guests/noop`) is
//! compiled once and then instantiated from its pre-instantiated component
//! and called, as the worker does for every task; the compile it skips is
//! measured separately on fresh hosts.
//!
//! (b) `examples/udfs/erc20-transfers` over every recorded ERC-20 Transfer
//! log of the mainnet data (`TRACE_DATA_DIR`, default
//! `<repo>/../shared/data/mainnet`): the logs are turned into the Arrow IPC
//! stream the query service would answer, served by an in-process
//! [`QueryHost`], and the same decoding is run natively on the same bytes in
//! the same process. It reports ns per log and the wasm/native ratio.
//!
//! (c) compares (a)'s per-task run and (b)'s call on a host with the
//! limits every worker has against one built without the epoch deadline
//! and the memory and table limiter (`HostConfig::unbounded`, a feature
//! only this bench enables), alternating run by run.
//!
//! Both (a) and (b) also run deterministically (the component loaded for
//! [`Execution::Deterministic`]: fuel, canonical NaNs, fixed clocks and
//! random bytes), alternating run by run with the normal variant so that
//! both see the same machine, and report the ratio of the two and the fuel
//! used: over every recorded log, and over the 50 latest recorded blocks as
//! one task, the figure [`Limits::fuel`]'s default is sized by.
//!
//! The guests are built with `cargo build --release --target wasm32-wasip2`
//! first, into `CARGO_TARGET_DIR` (or each guest workspace's `target/`).
//! Figures are medians; the results are recorded in `docs/benchmarks.md`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::writer::StreamWriter;
use serde_json::Value;
use sha2::{Digest, Sha256};
use trace_host::log::{Level, LogHost};
use trace_host::objects::{ObjectError, ObjectsHost};
use trace_host::query::{QueryError, QueryHost, QueryParam, QuerySource};
use trace_host::records::{Alert, Column, RecordsError, RecordsHost};
use trace_host::{Capabilities, Execution, Host, HostConfig, Limits, Loaded, TaskInput};

/// `keccak256("Transfer(address,address,uint256)")`.
const TRANSFER_TOPIC: &str = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
/// Above most transfers' raw amounts, so that some but not all alert.
const THRESHOLD: &str = "1000000000000000000000";
/// Rows per record batch of the IPC stream, as a query service would chunk them.
const BATCH_ROWS: usize = 8192;
/// The blocks of the task whose fuel the default budget is sized by.
const TASK_BLOCKS: usize = 50;

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let noop = build_guest(&repo.join("host/benches/guests"), "bench_noop");
    let erc20 = build_guest(&repo.join("examples/udfs"), "erc20_transfers");

    instantiation(&noop);

    let logs = recorded_transfer_logs(&data_dir(&repo));
    let ipc = Arc::new(ipc_stream(&logs));
    let [wasm, deterministic] = erc20_wasm(&erc20, &logs, &ipc);
    let native = erc20_native(&ipc);
    let n = logs.len() as f64;
    println!(
        "erc20-transfers over {} recorded Transfer logs ({} bytes of Arrow IPC)",
        logs.len(),
        ipc.len()
    );
    println!(
        "  wasm   call    {:>10.1} ns/log  (median run {:?})",
        ns(wasm.call) / n,
        wasm.call
    );
    println!(
        "  wasm   total   {:>10.1} ns/log  (instantiate + call)",
        ns(wasm.total) / n
    );
    println!(
        "  native         {:>10.1} ns/log  (median run {:?})",
        ns(native) / n,
        native
    );
    println!(
        "  ratio  wasm/native {:.2} (call), {:.2} (total)",
        ns(wasm.call) / ns(native),
        ns(wasm.total) / ns(native)
    );
    println!(
        "  deterministic call {:>10.1} ns/log  (median run {:?}), {} fuel ({:.0} per log)",
        ns(deterministic.call) / n,
        deterministic.call,
        deterministic.fuel,
        deterministic.fuel as f64 / n
    );
    println!(
        "  ratio  deterministic/normal {:.3} (call), {:.3} (total)",
        ns(deterministic.call) / ns(wasm.call),
        ns(deterministic.total) / ns(wasm.total)
    );

    limits_overhead(&noop, &erc20, &logs, &ipc);

    let recent = latest_blocks(&logs, TASK_BLOCKS);
    let fuel = erc20_fuel(&erc20, &recent);
    let budget = Limits::default().fuel;
    println!(
        "  a task of the {TASK_BLOCKS} latest recorded blocks ({} logs): {fuel} fuel, \
         {:.1}% of the default budget of {budget}",
        recent.len(),
        100.0 * fuel as f64 / budget as f64
    );
}

/// A built guest component and its digest.
struct Guest {
    bytes: Vec<u8>,
    digest: String,
}

/// Builds the guest workspace in `dir` and reads `<artifact>.wasm`.
fn build_guest(dir: &Path, artifact: &str) -> Guest {
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
        .current_dir(dir)
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "building the guests in {} failed",
        dir.display()
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("target"));
    let path = target
        .join("wasm32-wasip2/release")
        .join(format!("{artifact}.wasm"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    Guest { bytes, digest }
}

/// (a): compile on a fresh host versus instantiate-and-call per task.
fn instantiation(noop: &Guest) {
    let compiles: Vec<Duration> = (0..5)
        .map(|_| {
            let host = Host::new(HostConfig::default()).expect("host builds");
            let started = Instant::now();
            host.load(&noop.digest, &noop.bytes).expect("noop loads");
            started.elapsed()
        })
        .collect();

    let host = Host::new(HostConfig::default()).expect("host builds");
    let loaded = [Execution::Normal, Execution::Deterministic].map(|execution| {
        host.load_for(&noop.digest, &noop.bytes, execution)
            .expect("noop loads")
    });
    let limits = Limits::default();
    let mut instantiate = [Vec::new(), Vec::new()];
    let mut total = [Vec::new(), Vec::new()];
    for round in 0..2_200 {
        for (i, loaded) in loaded.iter().enumerate() {
            let started = Instant::now();
            let out = host
                .run(loaded, task(1, 1, "{}"), caps(None).0, &limits)
                .expect("noop runs");
            let elapsed = started.elapsed();
            if round >= 200 {
                instantiate[i].push(out.timing.instantiate);
                total[i].push(elapsed);
            }
        }
    }
    let [instantiate, det_instantiate] = instantiate.map(median);
    let [total, det_total] = total.map(median);
    println!("noop guest ({} bytes)", noop.bytes.len());
    println!("  compile on a fresh host     {:>12?}", median(compiles));
    println!("  instantiate (pre-instantiated) {instantiate:>9?}");
    println!("  instantiate + run, per task  {total:>11?}");
    println!("  the same, deterministic      {det_total:>11?} (instantiate {det_instantiate:?})");
    println!(
        "  ratio  deterministic/normal per task {:.3}",
        ns(det_total) / ns(total)
    );
}

/// What the wasm runs of erc20-transfers took, and the fuel one used.
struct WasmTiming {
    call: Duration,
    total: Duration,
    fuel: u64,
}

/// (b), in the component, normally and deterministically: the medians of
/// 15 runs each after 2 warm-up runs, the two variants taking turns.
fn erc20_wasm(guest: &Guest, logs: &[LogRow], ipc: &Arc<Vec<u8>>) -> [WasmTiming; 2] {
    let host = Host::new(HostConfig::default()).expect("host builds");
    let loaded = [Execution::Normal, Execution::Deterministic].map(|execution| {
        host.load_for(&guest.digest, &guest.bytes, execution)
            .expect("erc20-transfers loads")
    });
    let mut calls = [Vec::new(), Vec::new()];
    let mut totals = [Vec::new(), Vec::new()];
    let mut fuel = [0, 0];
    for round in 0..17 {
        for (i, loaded) in loaded.iter().enumerate() {
            let out = erc20_run(&host, loaded, logs, ipc);
            fuel[i] = out.fuel_consumed.unwrap_or(0);
            if round >= 2 {
                calls[i].push(out.timing.call);
                totals[i].push(out.timing.instantiate + out.timing.call);
            }
        }
    }
    let [calls, det_calls] = calls.map(median);
    let [totals, det_totals] = totals.map(median);
    [
        WasmTiming {
            call: calls,
            total: totals,
            fuel: fuel[0],
        },
        WasmTiming {
            call: det_calls,
            total: det_totals,
            fuel: fuel[1],
        },
    ]
}

/// (c) What the limits cost: the same runs on a host as every worker has
/// and on one without the epoch deadline and the memory and table limiter
/// (`HostConfig::unbounded`), taking turns; medians after warm-up.
fn limits_overhead(noop: &Guest, erc20: &Guest, logs: &[LogRow], ipc: &Arc<Vec<u8>>) {
    let hosts = [false, true].map(|unbounded| {
        Host::new(HostConfig {
            unbounded,
            ..HostConfig::default()
        })
        .expect("host builds")
    });
    let noops = hosts
        .each_ref()
        .map(|h| h.load(&noop.digest, &noop.bytes).expect("noop loads"));
    let limits = Limits::default();
    let mut per_task = [Vec::new(), Vec::new()];
    for round in 0..2_200 {
        for (i, (host, loaded)) in hosts.iter().zip(&noops).enumerate() {
            let started = Instant::now();
            host.run(loaded, task(1, 1, "{}"), caps(None).0, &limits)
                .expect("noop runs");
            if round >= 200 {
                per_task[i].push(started.elapsed());
            }
        }
    }
    let erc20s = hosts.each_ref().map(|h| {
        h.load(&erc20.digest, &erc20.bytes)
            .expect("erc20-transfers loads")
    });
    let mut calls = [Vec::new(), Vec::new()];
    for round in 0..17 {
        for (i, (host, loaded)) in hosts.iter().zip(&erc20s).enumerate() {
            let out = erc20_run(host, loaded, logs, ipc);
            if round >= 2 {
                calls[i].push(out.timing.call);
            }
        }
    }
    let [task_bounded, task_unbounded] = per_task.map(median);
    let [call_bounded, call_unbounded] = calls.map(median);
    println!("limits (epoch deadline, memory and table limiter) against a host without them");
    println!("  noop per task   {task_bounded:>10?} with, {task_unbounded:>10?} without");
    println!("  erc20 call      {call_bounded:>10?} with, {call_unbounded:>10?} without");
    println!(
        "  ratio  with/without {:.3} (noop per task), {:.3} (erc20 call)",
        ns(task_bounded) / ns(task_unbounded),
        ns(call_bounded) / ns(call_unbounded)
    );
}

/// The fuel erc20-transfers uses on one deterministic task over `logs`.
fn erc20_fuel(guest: &Guest, logs: &[LogRow]) -> u64 {
    let host = Host::new(HostConfig::default()).expect("host builds");
    let loaded = host
        .load_for(&guest.digest, &guest.bytes, Execution::Deterministic)
        .expect("erc20-transfers loads");
    let ipc = Arc::new(ipc_stream(logs));
    let out = erc20_run(&host, &loaded, logs, &ipc);
    out.fuel_consumed
        .expect("a deterministic run counts its fuel")
}

/// One run of erc20-transfers over `logs` served as `ipc`, checked against
/// what it read and published.
fn erc20_run(
    host: &Host,
    loaded: &Loaded,
    logs: &[LogRow],
    ipc: &Arc<Vec<u8>>,
) -> trace_host::RunOutput {
    let limits = Limits {
        memory_bytes: 256 << 20,
        ..Limits::default()
    };
    let first = logs.iter().map(|l| l.block_number).min().unwrap_or(0) as u64;
    let last = logs.iter().map(|l| l.block_number).max().unwrap_or(0) as u64;
    let params = format!(r#"{{"threshold": "{THRESHOLD}"}}"#);
    let (caps, published) = caps(Some(ipc.clone()));
    let out = host
        .run(loaded, task(first, last, &params), caps, &limits)
        .unwrap_or_else(|e| panic!("erc20-transfers failed: {e}"));
    let counter = |name: &str| out.counters.iter().find(|(n, _)| n == name).map(|c| c.1);
    let published = published.load(Ordering::Relaxed);
    assert_eq!(counter("logs_read"), Some(logs.len() as u64));
    assert_eq!(counter("transfers"), Some(published));
    out
}

/// The logs of the `blocks` highest-numbered blocks that have any.
fn latest_blocks(logs: &[LogRow], blocks: usize) -> Vec<LogRow> {
    let mut numbers: Vec<i64> = logs.iter().map(|l| l.block_number).collect();
    numbers.dedup();
    let from = numbers[numbers.len().saturating_sub(blocks)];
    logs.iter()
        .filter(|l| l.block_number >= from)
        .cloned()
        .collect()
}

/// (b), natively: the same decoding, alerts and record serialisation on the
/// same IPC bytes.
fn erc20_native(ipc: &[u8]) -> Duration {
    let threshold = THRESHOLD.parse().expect("threshold parses");
    let mut runs = Vec::new();
    for round in 0..17 {
        let started = Instant::now();
        let rows = trace_udf::Rows::from_ipc(ipc).expect("IPC decodes");
        let transfers = erc20_transfers::decode::transfers(&rows).expect("rows decode");
        let alerts = erc20_transfers::decode::alerts(&transfers, threshold);
        let json = trace_udf::records::to_json_lines(&transfers).expect("records serialise");
        std::hint::black_box((&alerts, &json));
        if round >= 2 {
            runs.push(started.elapsed());
        }
    }
    median(runs)
}

/// One `logs` row as the query returns it.
#[derive(Clone)]
struct LogRow {
    address: String,
    topic1: Option<String>,
    topic2: Option<String>,
    data: String,
    block_number: i64,
    transaction_hash: String,
    log_index: i32,
}

fn data_dir(repo: &Path) -> PathBuf {
    std::env::var_os("TRACE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("../shared/data/mainnet"))
}

/// Every recorded log the UDF's statement selects, in its order.
fn recorded_transfer_logs(data: &Path) -> Vec<LogRow> {
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(data.join("logs")).expect("logs directory") {
        let path = entry.expect("entry").path();
        if !path.to_string_lossy().ends_with(".json.gz") {
            continue;
        }
        let file = std::fs::File::open(&path).expect("log file");
        let json: Value =
            serde_json::from_reader(flate2::read::GzDecoder::new(file)).expect("json");
        for log in json.as_array().expect("array of logs") {
            if let Some(row) = transfer_row(log) {
                logs.push(row);
            }
        }
    }
    logs.sort_by_key(|l| (l.block_number, l.log_index));
    logs
}

fn transfer_row(log: &Value) -> Option<LogRow> {
    let topics: Vec<&str> = log["topics"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if topics.first() != Some(&TRANSFER_TOPIC) || topics.len() > 3 {
        return None;
    }
    let quantity =
        |key: &str| i64::from_str_radix(log[key].as_str()?.trim_start_matches("0x"), 16).ok();
    Some(LogRow {
        address: log["address"].as_str()?.to_string(),
        topic1: topics.get(1).map(|t| t.to_string()),
        topic2: topics.get(2).map(|t| t.to_string()),
        data: log["data"].as_str()?.to_string(),
        block_number: quantity("blockNumber")?,
        transaction_hash: log["transactionHash"].as_str()?.to_string(),
        log_index: quantity("logIndex")? as i32,
    })
}

/// The Arrow IPC stream of the rows, with the statement's column names.
fn ipc_stream(logs: &[LogRow]) -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("address", DataType::Utf8, false),
        Field::new("topic1", DataType::Utf8, true),
        Field::new("topic2", DataType::Utf8, true),
        Field::new("data", DataType::Utf8, false),
        Field::new("block_number", DataType::Int64, false),
        Field::new("transaction_hash", DataType::Utf8, false),
        Field::new("log_index", DataType::Int32, false),
    ]));
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, &schema).expect("IPC writer");
    for chunk in logs.chunks(BATCH_ROWS) {
        let text = |f: fn(&LogRow) -> Option<&str>| -> ArrayRef {
            Arc::new(StringArray::from(chunk.iter().map(f).collect::<Vec<_>>()))
        };
        let columns = vec![
            text(|l| Some(&l.address)),
            text(|l| l.topic1.as_deref()),
            text(|l| l.topic2.as_deref()),
            text(|l| Some(&l.data)),
            Arc::new(Int64Array::from_iter_values(
                chunk.iter().map(|l| l.block_number),
            )) as ArrayRef,
            text(|l| Some(&l.transaction_hash)),
            Arc::new(Int32Array::from_iter_values(
                chunk.iter().map(|l| l.log_index),
            )),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
        writer.write(&batch).expect("IPC write");
    }
    writer.finish().expect("IPC finish");
    drop(writer);
    out
}

fn task(from: u64, to: u64, params: &str) -> TaskInput {
    TaskInput {
        job_id: "0191e0a4-7c2e-7000-8000-00000000b001".into(),
        task_id: "0191e0a4-7c2e-7000-8000-00000000b002".into(),
        attempt: 1,
        chain_id: 1,
        from_block: from,
        to_block: to,
        params: params.into(),
    }
}

/// Capabilities serving `ipc` to every query and counting published records.
fn caps(ipc: Option<Arc<Vec<u8>>>) -> (Capabilities, Arc<AtomicU64>) {
    let published = Arc::new(AtomicU64::new(0));
    let caps = Capabilities {
        query: Box::new(Answer(ipc)),
        objects: Box::new(NoObjects),
        records: Box::new(Counting(published.clone())),
        log: Box::new(Discard),
    };
    (caps, published)
}

struct Answer(Option<Arc<Vec<u8>>>);

impl QueryHost for Answer {
    fn execute(
        &mut self,
        _sql: &str,
        _params: Vec<QueryParam>,
        _source: QuerySource,
    ) -> Result<Vec<u8>, QueryError> {
        let answer = self
            .0
            .as_ref()
            .ok_or(QueryError::Denied("no data in this benchmark".into()))?;
        Ok(answer.as_ref().clone())
    }
}

struct NoObjects;

impl ObjectsHost for NoObjects {
    fn get(&mut self, _key: &str) -> Result<Option<Vec<u8>>, ObjectError> {
        Ok(None)
    }

    fn put(&mut self, _key: &str, _value: Vec<u8>) -> Result<(), ObjectError> {
        Err(ObjectError::Denied("no objects in this benchmark".into()))
    }

    fn list(&mut self, _prefix: &str) -> Result<Vec<String>, ObjectError> {
        Ok(Vec::new())
    }

    fn delete(&mut self, _key: &str) -> Result<(), ObjectError> {
        Ok(())
    }
}

struct Counting(Arc<AtomicU64>);

impl RecordsHost for Counting {
    fn define_dataset(&mut self, _name: &str, _columns: Vec<Column>) -> Result<(), RecordsError> {
        Ok(())
    }

    fn publish(&mut self, _dataset: &str, records: Vec<String>) -> Result<(), RecordsError> {
        self.0.fetch_add(records.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn publish_alerts(&mut self, _alerts: Vec<Alert>) -> Result<(), RecordsError> {
        Ok(())
    }
}

struct Discard;

impl LogHost for Discard {
    fn write(&mut self, _level: Level, _message: &str, _fields: Vec<(String, String)>) {}
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ns(duration: Duration) -> f64 {
    duration.as_nanos() as f64
}
