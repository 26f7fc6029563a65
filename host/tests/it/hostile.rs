//! The hostile-component suite at the host: each case tries to escape the
//! sandbox or break a limit, and must end with its expected class and
//! reason, in bounded time, on a host that then runs a normal task.
//!
//! Every case is followed by an echo run on the host that ran it (under
//! `cargo test` the cases also share that one host). Here the capabilities
//! only record, so these are the sandbox's own fences: the engine's limits,
//! the host's budgets and key check, the empty WASI context and the import
//! check. The cases whose fence is the platform's (the query service, the
//! broker, the worker's record checks and publish limits) are in
//! udf-worker's `tests/it/hostile.rs`. `docs/security.md` lists every
//! case with its expected outcome.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use trace_common::api::FailureClass;
use trace_host::{
    CheckError, Host, HostConfig, HostError, Limits, RunError, TaskInput, check_component,
};

use super::caps::recording;
use super::guests::{Guest, guest, prebuilt};

/// The deadline the cases run under: long enough that a case stopped by a
/// limit other than the deadline ends far inside it.
const DEADLINE: Duration = Duration::from_secs(10);

/// How long a case that a limit other than the deadline must stop may take,
/// host calls and captured output included.
const BOUND: Duration = Duration::from_secs(5);

/// The host the cases of this process run on.
fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| Host::new(HostConfig::default()).expect("host builds"))
}

fn task(params: &str) -> TaskInput {
    TaskInput {
        job_id: "0191e0a4-7c2e-7000-8000-0000000000a1".into(),
        task_id: "0191e0a4-7c2e-7000-8000-0000000000a2".into(),
        attempt: 1,
        chain_id: 1,
        from_block: 10,
        to_block: 12,
        params: params.into(),
    }
}

fn limits() -> Limits {
    Limits {
        epoch_deadline: DEADLINE,
        ..Limits::default()
    }
}

/// How a case ended: the error its run failed with and how long it took.
struct Ended {
    error: RunError,
    elapsed: Duration,
}

impl Ended {
    /// Asserts the class, the exact reason and that it ended within `bound`.
    fn assert(&self, reason: &str, bound: Duration) {
        assert_eq!(self.error.to_string(), reason, "{:?}", self.error);
        assert_eq!(self.error.class(), FailureClass::Deterministic);
        assert!(self.elapsed < bound, "took {:?}", self.elapsed);
    }
}

/// Runs the `hostile` guest's `case` under `limits`, which must fail it;
/// then the same host must still run echo.
fn hostile(case: &str, limits: &Limits) -> Ended {
    run_failing(
        &guest("hostile"),
        &format!(r#"{{"case":"{case}"}}"#),
        limits,
    )
}

fn run_failing(component: &Guest, params: &str, limits: &Limits) -> Ended {
    let loaded = host().load(&component.digest, &component.bytes).unwrap();

    let started = Instant::now();
    let result = host().run(&loaded, task(params), recording().0, limits);
    let elapsed = started.elapsed();

    echo_still_runs();
    match result {
        Ok(out) => panic!("{params} was not stopped: {out:?}"),
        Err(error) => Ended { error, elapsed },
    }
}

/// The host that ran a case runs a normal task to its summary.
fn echo_still_runs() {
    let echo = guest("echo");
    let loaded = host().load(&echo.digest, &echo.bytes).unwrap();
    let out = host()
        .run(&loaded, task("{}"), recording().0, &Limits::default())
        .expect("echo runs after a hostile case");
    assert_eq!(out.message, "echoed 3 blocks");
}

/// Asserts that `name` is refused by the publish check and at load, both
/// naming the import it was refused for, which starts with `import`.
fn refused_by_name(name: &str, import: &str) {
    let component = guest(name);

    let checked = check_component(&component.bytes).unwrap_err();
    let started = Instant::now();
    let loaded = host()
        .load(&component.digest, &component.bytes)
        .unwrap_err();
    let elapsed = started.elapsed();

    let CheckError::ForbiddenImport(named) = &checked else {
        panic!("{checked:?}")
    };
    assert!(named.starts_with(import), "{named}");
    assert_eq!(
        checked.to_string(),
        format!("component imports `{named}`, which the trace:udf world does not provide")
    );
    let HostError::Refused { digest, source } = &loaded else {
        panic!("{loaded:?}")
    };
    assert_eq!(digest, &component.digest);
    assert_eq!(source.to_string(), checked.to_string());
    assert_eq!(loaded.class(), FailureClass::Deterministic);
    assert!(elapsed < BOUND, "took {elapsed:?}");
    echo_still_runs();
}

#[test]
fn an_endless_loop_is_interrupted_at_its_deadline() {
    let limits = Limits {
        epoch_deadline: Duration::from_secs(1),
        ..limits()
    };

    let ended = run_failing(&guest("spin"), "{}", &limits);

    let reason = "component exceeded its epoch deadline of 1s and was interrupted";
    ended.assert(reason, Duration::from_secs(1) + BOUND);
    assert!(
        ended.elapsed >= Duration::from_secs(1),
        "{:?}",
        ended.elapsed
    );
}

#[test]
fn unbounded_recursion_exhausts_the_wasm_stack_by_name() {
    let ended = hostile("recurse", &limits());

    ended.assert("component overflowed its stack", BOUND);
}

#[test]
#[ignore = "a shadow stack overflow is reported as an out-of-bounds memory access"]
fn recursion_that_overflows_the_shadow_stack_is_reported_as_a_stack_overflow() {
    let ended = hostile("recurse-frames", &limits());

    let reason = ended.error.to_string();
    assert!(reason.contains("stack"), "{reason}");
    assert!(!reason.contains("out of bounds"), "{reason}");
    assert_eq!(ended.error.class(), FailureClass::Deterministic);
    assert!(ended.elapsed < BOUND, "took {:?}", ended.elapsed);
}

#[test]
fn unbounded_allocation_stops_at_the_memory_cap() {
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..limits()
    };

    let ended = run_failing(&guest("hog"), "{}", &limits);

    ended.assert("component exceeded its memory cap of 16 MiB", BOUND);
}

#[test]
fn unbounded_table_growth_stops_at_the_table_cap() {
    let limits = Limits {
        max_table_elements: 10_000,
        ..limits()
    };

    let ended = run_failing(&prebuilt("table"), "{}", &limits);

    ended.assert(
        "component exceeded its table limit of 10000 elements",
        BOUND,
    );
}

#[test]
fn unbounded_table_growth_under_the_default_limits_is_reported_as_the_table_cap() {
    let ended = run_failing(&prebuilt("table"), "{}", &limits());

    assert!(
        matches!(ended.error, RunError::TableCap { .. }),
        "{:?}",
        ended.error
    );
    let reason = ended.error.to_string();
    assert!(
        reason.starts_with("component exceeded its table limit of "),
        "{reason}"
    );
    assert!(ended.elapsed < BOUND, "took {:?}", ended.elapsed);
}

#[test]
fn sleeping_for_ever_is_stopped_at_the_deadline() {
    let deadline = Duration::from_secs(1);
    let limits = Limits {
        epoch_deadline: deadline,
        ..limits()
    };

    let ended = hostile("sleep", &limits);

    let reason = "component exceeded its epoch deadline of 1s and was interrupted";
    ended.assert(reason, BOUND);
    assert!(ended.elapsed >= deadline, "took {:?}", ended.elapsed);
}

#[test]
fn handles_opened_without_end_stop_at_the_store_handle_limit() {
    let ended = hostile("handles", &limits());

    let reason = "component trapped: cannot allocate another handle: store handle limit exceeded";
    ended.assert(reason, BOUND);
}

#[test]
fn a_log_flood_fails_on_the_log_line_limit() {
    let ended = hostile("log-flood", &limits());

    let reason = "component broke a limit: a task may write at most 1000 log lines (max_log_lines)";
    ended.assert(reason, BOUND);
}

#[test]
fn a_flood_of_printed_lines_fails_on_the_output_limit() {
    let ended = hostile("stdout-flood", &limits());

    // The lines would break max_log_lines too; the full pipe stopped the guest.
    let reason = "component broke a limit: a task may write at most 65536 bytes to standard \
                  output (max_stdio_bytes)";
    ended.assert(reason, BOUND);
}

#[test]
fn endless_output_without_a_newline_fails_naming_the_output_limit() {
    let ended = hostile("stdout-one-line", &limits());

    assert!(
        matches!(ended.error, RunError::Limit { .. }),
        "{:?}",
        ended.error
    );
    let reason = ended.error.to_string();
    assert!(reason.contains("max_stdio_bytes"), "{reason}");
    assert!(reason.contains("65536"), "{reason}");
    assert!(ended.elapsed < BOUND, "took {:?}", ended.elapsed);
}

#[test]
fn a_panic_fails_the_run_with_its_message() {
    let ended = hostile("panic", &limits());

    let reason = "component trapped: wasm trap: wasm `unreachable` instruction executed; \
                  the component panicked: hostile panic";
    ended.assert(reason, BOUND);
}

#[test]
fn files_are_out_of_reach_whatever_the_path() {
    let ended = hostile("files", &limits());

    let missing = "No such file or directory (os error 44)";
    let told: Vec<String> = [
        "read /etc/passwd",
        "read data.txt",
        "write out.txt",
        "list /",
        "list .",
    ]
    .iter()
    .map(|what| format!("{what}: {missing}"))
    .collect();
    ended.assert(&format!("component failed: {}", told.join("; ")), BOUND);
}

#[test]
fn the_environment_and_the_arguments_are_empty() {
    let ended = hostile("env", &limits());

    let reason = "component failed: vars: none; args: none; \
                  HOME: environment variable not found; PATH: environment variable not found";
    ended.assert(reason, BOUND);
}

#[test]
fn a_flood_of_objects_fails_on_the_object_count_limit() {
    let ended = hostile("objects-flood", &limits());

    let reason = "component broke a limit: a task may write at most 1000 objects (max_objects)";
    ended.assert(reason, BOUND);
}

#[test]
fn a_giant_object_fails_on_the_object_size_limit() {
    let ended = hostile("object-giant", &limits());

    let reason = "component broke a limit: an object may be at most 16777216 bytes \
                  (max_object_bytes); one was 33554432";
    ended.assert(reason, BOUND);
}

#[test]
fn object_keys_outside_the_task_scope_are_refused_before_they_leave_the_host() {
    // The recording capability would store any key: a refusal can only be
    // the host's.
    let segment = "invalid-key: the key has an empty, `.` or `..` segment";
    let character = "invalid-key: the key holds a control character or a backslash";
    let cases = [
        ("traversal", segment),
        ("deep-traversal", segment),
        ("dot-dot", segment),
        ("dot", segment),
        ("absolute", "invalid-key: the key starts with `/`"),
        ("backslash", character),
        ("nul", character),
        ("newline", character),
        (
            "long",
            "invalid-key: the key is `513` bytes long; at most 512 are allowed",
        ),
    ];
    for (way, told) in cases {
        let params = format!(r#"{{"case":"object-key","way":"{way}"}}"#);

        let ended = run_failing(&guest("hostile"), &params, &limits());

        let told = format!("get: {told}; put: {told}; delete: {told}; list: {told}");
        ended.assert(&format!("component failed: {told}"), BOUND);
    }
    let params = r#"{"case":"object-key","way":"empty"}"#;
    let ended = run_failing(&guest("hostile"), params, &limits());
    let told = ["get", "put", "delete"].map(|op| format!("{op}: invalid-key: the key is empty"));
    ended.assert(&format!("component failed: {}", told.join("; ")), BOUND);
}

#[test]
fn a_component_importing_wasi_sockets_is_refused_naming_the_import() {
    refused_by_name("sockets", "wasi:sockets/");
}

#[test]
fn a_component_importing_wasi_http_is_refused_naming_the_import() {
    refused_by_name("http", "wasi:http/");
}

#[test]
fn a_component_importing_an_interface_that_does_not_exist_is_refused_naming_it() {
    refused_by_name("unknown", "hostile:extra/backdoor@0.1.0");
}
