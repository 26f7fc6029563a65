//! Loading and running real components: outputs, failures and limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use trace_common::api::FailureClass;
use trace_host::log::Level;
use trace_host::query::{QueryParam, QuerySource};
use trace_host::records::ColumnType;
use trace_host::{Host, HostConfig, HostError, Limits, RunError, TaskInput};

use super::caps::{QUERY_ANSWER, recording};
use super::guests::guest;

fn task(from: u64, to: u64, params: &str) -> TaskInput {
    TaskInput {
        job_id: "0191e0a4-7c2e-7000-8000-000000000001".into(),
        task_id: "0191e0a4-7c2e-7000-8000-000000000002".into(),
        attempt: 2,
        chain_id: 1,
        from_block: from,
        to_block: to,
        params: params.into(),
    }
}

fn host() -> Host {
    Host::new(HostConfig::default()).expect("host builds")
}

#[test]
fn echo_reaches_every_capability_and_returns_its_summary() {
    let host = host();
    let echo = guest("echo");
    let loaded = host.load(&echo.digest, &echo.bytes).unwrap();
    let (caps, calls) = recording();

    let out = host
        .run(&loaded, task(100, 102, "{}"), caps, &Limits::default())
        .unwrap();

    assert_eq!(out.message, "echoed 3 blocks");
    let counters = vec![
        ("query_bytes".into(), QUERY_ANSWER.len() as u64),
        ("rows".into(), 3),
    ];
    assert_eq!(out.counters, counters);
    assert_eq!(out.query_calls, 1);
    let calls = calls.lock().unwrap();
    let (sql, params, source) = &calls.queries[0];
    assert_eq!(sql, "select $1::bigint as block, $2::text as note");
    assert!(matches!(params[..], [QueryParam::Int(100), QueryParam::Text(ref t)] if t == "x"));
    assert_eq!(*source, QuerySource::Postgres);

    let (name, columns) = &calls.datasets[0];
    assert_eq!(name, "echo");
    assert_eq!(columns[0].name, "block");
    assert_eq!(columns[0].kind, ColumnType::Int64);
    assert_eq!(calls.records.len(), 1);
    let task_id = "0191e0a4-7c2e-7000-8000-000000000002";
    let rows: Vec<String> = (100..=102)
        .map(|b| format!("{{\"block\":{b},\"task\":\"{task_id}\"}}"))
        .collect();
    assert_eq!(calls.records[0], ("echo".to_string(), rows));
    assert_eq!(calls.alerts.len(), 1);
    assert_eq!(calls.alerts[0].key, "block-100");
    assert_eq!(calls.alerts[0].payload, "{\"from\":100}");

    let logged: Vec<_> = calls
        .logs
        .iter()
        .map(|(l, m, f)| (*l, m.as_str(), f.clone()))
        .collect();
    assert_eq!(
        logged[0],
        (
            Level::Info,
            "echo ran",
            vec![("attempt".into(), "2".into())]
        )
    );
    let stdout = vec![("stream".to_string(), "stdout".to_string())];
    assert_eq!(logged[1], (Level::Info, "echo stdout line", stdout));
    assert_eq!(logged.len(), 2);
}

#[test]
fn a_udf_error_is_returned_as_a_deterministic_failure() {
    let host = host();
    let echo = guest("echo");
    let loaded = host.load(&echo.digest, &echo.bytes).unwrap();
    let (caps, calls) = recording();

    let err = host.run(
        &loaded,
        task(1, 1, r#"{"fail":"no token"}"#),
        caps,
        &Limits::default(),
    );

    let err = err.unwrap_err();
    assert!(matches!(&err, RunError::Udf(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "component failed: invalid parameters: no token"
    );
    assert_eq!(err.class(), FailureClass::Deterministic);
    assert!(calls.lock().unwrap().queries.is_empty());
}

#[test]
fn a_panic_is_a_trap_that_carries_the_panic_message() {
    let host = host();
    let echo = guest("echo");
    let loaded = host.load(&echo.digest, &echo.bytes).unwrap();
    let (caps, calls) = recording();

    let err = host.run(
        &loaded,
        task(1, 1, r#"{"panic":"kaboom"}"#),
        caps,
        &Limits::default(),
    );

    let err = err.unwrap_err();
    let RunError::Trap { message } = &err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains("the component panicked: kaboom"),
        "{message}"
    );
    assert_eq!(err.class(), FailureClass::Deterministic);
    // The panic output reached the logs as stderr lines.
    let calls = calls.lock().unwrap();
    assert!(
        calls
            .logs
            .iter()
            .any(|(l, m, _)| *l == Level::Warn && m == "kaboom")
    );
}

#[test]
fn an_endless_loop_hits_the_epoch_deadline_and_the_host_runs_on() {
    let host = host();
    let spin = guest("spin");
    let loaded = host.load(&spin.digest, &spin.bytes).unwrap();
    let limits = Limits {
        epoch_deadline: Duration::from_millis(300),
        ..Limits::default()
    };

    let started = Instant::now();
    let err = host
        .run(&loaded, task(1, 1, "{}"), recording().0, &limits)
        .unwrap_err();

    let elapsed = started.elapsed();
    assert!(matches!(err, RunError::Deadline { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "component exceeded its epoch deadline of 0.3s and was interrupted"
    );
    assert_eq!(err.class(), FailureClass::Deterministic);
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");

    let echo = guest("echo");
    let echo = host.load(&echo.digest, &echo.bytes).unwrap();
    let out = host
        .run(&echo, task(5, 5, "{}"), recording().0, &Limits::default())
        .unwrap();
    assert_eq!(out.message, "echoed 1 blocks");
    let again = host
        .run(&loaded, task(1, 1, "{}"), recording().0, &limits)
        .unwrap_err();
    assert!(matches!(again, RunError::Deadline { .. }), "{again:?}");
}

#[test]
fn unbounded_allocation_hits_the_memory_cap_by_name() {
    let host = host();
    let hog = guest("hog");
    let loaded = host.load(&hog.digest, &hog.bytes).unwrap();
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };

    let err = host
        .run(&loaded, task(1, 1, "{}"), recording().0, &limits)
        .unwrap_err();

    assert!(matches!(err, RunError::MemoryCap { limit_bytes } if limit_bytes == 16 << 20));
    assert_eq!(
        err.to_string(),
        "component exceeded its memory cap of 16 MiB"
    );
    assert_eq!(err.class(), FailureClass::Deterministic);
}

#[test]
fn a_log_line_past_the_limit_fails_the_run_naming_the_limit() {
    let host = host();
    let echo = guest("echo");
    let loaded = host.load(&echo.digest, &echo.bytes).unwrap();
    let (caps, calls) = recording();
    let limits = Limits {
        max_log_lines: 1,
        ..Limits::default()
    };

    let err = host
        .run(&loaded, task(1, 1, "{}"), caps, &limits)
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        "component broke a limit: a task may write at most 1 log lines (max_log_lines)"
    );
    assert_eq!(err.class(), FailureClass::Deterministic);
    let calls = calls.lock().unwrap();
    let messages: Vec<&str> = calls.logs.iter().map(|(_, m, _)| m.as_str()).collect();
    assert_eq!(
        messages,
        ["echo ran", "1 log lines dropped past the limit of 1"]
    );
    // The same host runs the next task as if nothing happened.
    let (caps, _) = recording();
    host.run(&loaded, task(1, 1, "{}"), caps, &Limits::default())
        .unwrap();
}

#[test]
fn bytes_that_do_not_match_their_digest_are_refused() {
    let host = host();
    let echo = guest("echo");
    let other = guest("spin");

    let err = host.load(&other.digest, &echo.bytes).unwrap_err();

    assert!(matches!(err, HostError::DigestMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains(&echo.digest), "{err}");
    let err = host.load("md5:abc", &echo.bytes).unwrap_err();
    assert!(matches!(err, HostError::BadDigest(_)), "{err:?}");
}

#[test]
fn a_refused_component_is_not_loaded() {
    let host = host();
    let sockets = guest("sockets");

    let err = host.load(&sockets.digest, &sockets.bytes).unwrap_err();

    assert!(matches!(err, HostError::Refused { .. }), "{err:?}");
    assert_eq!(err.class(), FailureClass::Deterministic);
}

#[test]
fn a_restarted_host_loads_the_compiled_artifact_from_its_cache_dir() {
    let dir = tempfile::tempdir().unwrap();
    let config = HostConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..HostConfig::default()
    };
    let echo = guest("echo");
    let hex = echo.digest.trim_start_matches("sha256:");

    let first = Host::new(config.clone()).unwrap();
    first.load(&echo.digest, &echo.bytes).unwrap();
    drop(first);

    let artifacts: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flat_map(|engine| std::fs::read_dir(engine.unwrap().path()).unwrap())
        .map(|f| f.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(artifacts, vec![format!("{hex}.cwasm")]);

    let second = Host::new(config).unwrap();
    let started = Instant::now();
    let loaded = second.load(&echo.digest, &echo.bytes).unwrap();
    let load_time = started.elapsed();
    let out = second
        .run(&loaded, task(7, 8, "{}"), recording().0, &Limits::default())
        .unwrap();
    assert_eq!(out.message, "echoed 2 blocks");
    // Deserialising takes well under the time compiling does, even in a
    // debug build of the host.
    assert!(load_time < Duration::from_secs(1), "{load_time:?}");
}

#[test]
fn a_cancelled_run_stops_long_before_its_deadline() {
    let host = host();
    let spin = guest("spin");
    let loaded = host.load(&spin.digest, &spin.bytes).unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        flag.store(true, Ordering::Relaxed);
    });

    let started = Instant::now();
    let limits = Limits::default();
    let err = host.run_cancellable(&loaded, task(1, 1, "{}"), recording().0, &limits, &cancel);

    let err = err.unwrap_err();
    assert!(matches!(err, RunError::Cancelled), "{err:?}");
    assert_eq!(err.class(), FailureClass::Transient);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// A query service that is down.
struct Down;

impl trace_host::QueryHost for Down {
    fn execute(
        &mut self,
        _sql: &str,
        _params: Vec<QueryParam>,
        _source: QuerySource,
    ) -> Result<Vec<u8>, trace_host::query::QueryError> {
        Err(trace_host::query::QueryError::Unavailable(
            "the query service is unavailable".into(),
        ))
    }
}

#[test]
fn a_component_that_gives_up_during_an_outage_fails_transiently() {
    let host = host();
    let echo = guest("echo");
    let loaded = host.load(&echo.digest, &echo.bytes).unwrap();
    let (mut caps, _) = recording();
    caps.query = Box::new(Down);

    let err = host
        .run(&loaded, task(1, 1, "{}"), caps, &Limits::default())
        .unwrap_err();

    assert_eq!(err.class(), FailureClass::Transient);
    assert_eq!(
        err.to_string(),
        "component failed after a platform service was unavailable (query: the query service \
         is unavailable): component failed: gave up after a host call failed: \
         QueryError::Unavailable(\"the query service is unavailable\")"
    );
    // The same component's own error, with every service up, stays deterministic.
    let (caps, _) = recording();
    let err = host
        .run(
            &loaded,
            task(1, 1, r#"{"fail":"no"}"#),
            caps,
            &Limits::default(),
        )
        .unwrap_err();
    assert_eq!(err.class(), FailureClass::Deterministic);
}
