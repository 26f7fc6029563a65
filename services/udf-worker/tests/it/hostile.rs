//! The hostile-component suite through the real worker: the cases whose
//! fences are the platform's own (the query service's statement gate and
//! tenant fence, object key scoping, the worker's record checks and publish
//! limits), and a few sandbox cases to show the worker survives them. Each
//! case is one job; every task must fail on its first attempt,
//! deterministically, with the exact reason, within a bound; then the same
//! worker runs echo. The host-level cases are in trace-host's
//! `tests/it/hostile.rs`; `docs/security.md` lists them all.

use std::time::Duration;

use serde_json::{Value, json};
use trace_common::api::{ComponentRef, JobState, TaskState};

use super::support::{Platform, TENANT, start, start_with};

/// How long one attempt of a case may take, from claim to failure.
const BOUND: Duration = Duration::from_secs(20);

/// The reason of a task whose component gave up on a host call's error.
fn gave_up(told: &str) -> String {
    format!("component failed: gave up after a host call failed: {told}")
}

/// Runs one job per `(params, reason)` over `component` and checks that
/// each task failed once, deterministically, with exactly `reason`, within
/// [`BOUND`]; then that the worker still runs echo. Every case that ended
/// otherwise is named in the one panic.
async fn assert_cases(platform: &Platform, component: &ComponentRef, cases: &[(Value, String)]) {
    let mut jobs = Vec::new();
    for (params, _) in cases {
        jobs.push(
            platform
                .job(component.clone(), params.clone(), (1, 1, 1))
                .await,
        );
    }
    let mut wrong = Vec::new();
    let mut workers = Vec::new();
    for (job, (params, reason)) in jobs.iter().zip(cases) {
        let job = platform.finished(job).await;
        let tasks = platform.dispatcher.tasks(TENANT, job.id).await.unwrap();
        let task = &tasks[0];
        let ended = (
            task.state,
            task.attempt,
            task.error_class.as_deref(),
            task.error.as_deref(),
        );
        let expected = (
            TaskState::Failed,
            1,
            Some("deterministic"),
            Some(reason.as_str()),
        );
        if ended != expected {
            wrong.push(format!(
                "{params}:\n  got      {ended:?}\n  expected {expected:?}"
            ));
            continue;
        }
        let [attempt] = task.attempts.as_slice() else {
            panic!("{params}: {:?}", task.attempts)
        };
        let took = attempt.finished_at.expect("the attempt ended") - attempt.started_at;
        let took = took.to_std().unwrap();
        if took >= BOUND {
            wrong.push(format!("{params}: took {took:?}"));
        }
        workers.push(attempt.worker_id.clone());
    }
    assert!(
        wrong.is_empty(),
        "cases that ended otherwise:\n{}",
        wrong.join("\n")
    );
    echo_still_runs(platform, &mut workers).await;
    workers.dedup();
    assert_eq!(workers.len(), 1, "one worker ran every case: {workers:?}");
}

/// The worker that ran the cases runs a normal task to success.
async fn echo_still_runs(platform: &Platform, workers: &mut Vec<String>) {
    let echo = platform.publish("echo");
    let job = platform.job(echo, json!({}), (7, 8, 2)).await;
    let job = platform.finished(&job).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.records_published, 2);
    let tasks = platform.dispatcher.tasks(TENANT, job.id).await.unwrap();
    workers.push(tasks[0].attempts[0].worker_id.clone());
}

fn case(case: &str, way: &str) -> Value {
    json!({ "case": case, "way": way })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_that_are_not_one_read_only_query_are_denied_by_the_query_service() {
    let platform = start(30).await;
    // Another tenant's dataset, which acme's reader role must not reach.
    for sql in [
        "create schema ds_globex",
        "create table ds_globex.secrets (secret text)",
        "insert into ds_globex.secrets values ('globex only')",
    ] {
        sqlx::query(sql).execute(&platform.data).await.unwrap();
    }
    let hostile = platform.publish("hostile");
    let only_queries = "only queries (SELECT, WITH, VALUES) are allowed";

    let cases = [
        (
            "insert",
            format!("denied: {only_queries}, not `INSERT INTO`"),
        ),
        (
            "delete-in-cte",
            "denied: data-modifying statements are not allowed".into(),
        ),
        ("ddl", format!("denied: {only_queries}, not `CREATE TABLE`")),
        ("drop", format!("denied: {only_queries}, not `DROP TABLE`")),
        (
            "multiple",
            "denied: exactly one statement is allowed, got 2".into(),
        ),
        (
            "cross-tenant",
            "denied: permission denied for schema ds_globex".into(),
        ),
        (
            "set-role",
            format!("denied: {only_queries}, not `SET ROLE`"),
        ),
        (
            "set-config",
            "denied: queries may not call `set_config`".into(),
        ),
        ("sleep", "denied: queries may not call `pg_sleep`".into()),
        (
            "read-file",
            "denied: queries may not call `pg_read_file`".into(),
        ),
        (
            "large-object",
            "denied: queries may not call `lo_get`".into(),
        ),
    ]
    .map(|(way, told)| (case("sql", way), gave_up(&told)));
    assert_cases(&platform, &hostile, &cases).await;

    // Nothing was written: the chain tables are as empty as they started.
    let logs: i64 = sqlx::query_scalar("select count(*) from chain.logs")
        .fetch_one(&platform.data)
        .await
        .unwrap();
    assert_eq!(logs, 0);
    let tables: i64 =
        sqlx::query_scalar("select count(*) from pg_tables where tablename = 'hostile'")
            .fetch_one(&platform.data)
            .await
            .unwrap();
    assert_eq!(tables, 0);
}

/// What the broker answers a key with an empty, `.` or `..` segment.
const SEGMENT: &str = "invalid-key: the key has an empty, `.` or `..` segment";

/// `told` for each of get, put, delete and list.
fn every_operation(told: &str) -> String {
    format!("get: {told}; put: {told}; delete: {told}; list: {told}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_keys_outside_the_task_scope_are_refused_in_every_operation() {
    let platform = start(30).await;
    let hostile = platform.publish("hostile");
    let character = "invalid-key: the key holds a control character or a backslash";

    let cases = [
        ("traversal", SEGMENT),
        ("deep-traversal", SEGMENT),
        ("dot-dot", SEGMENT),
        ("dot", SEGMENT),
        ("absolute", "invalid-key: the key starts with `/`"),
        ("backslash", character),
        ("nul", character),
        ("newline", character),
        (
            "long",
            "invalid-key: the key is `513` bytes long; at most 512 are allowed",
        ),
    ]
    .map(|(way, told)| {
        let reason = format!("component failed: {}", every_operation(told));
        (case("object-key", way), reason)
    });
    let empty = ["get", "put", "delete"].map(|op| format!("{op}: invalid-key: the key is empty"));
    let empty = (
        case("object-key", "empty"),
        format!("component failed: {}", empty.join("; ")),
    );
    let cases: Vec<_> = cases.into_iter().chain([empty]).collect();
    assert_cases(&platform, &hostile, &cases).await;

    // Nothing was written under the broker's root (which holds every
    // task's scratch) but the components and their compiled artifacts.
    let stored = files_under(platform.objects.path());
    assert!(
        stored
            .iter()
            .all(|f| f.starts_with("store/components/") || f.starts_with("artifacts/")),
        "{stored:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_are_refused_naming_the_record_and_the_column() {
    let platform = start(30).await;
    let hostile = platform.publish("hostile");

    let cases = [
        (
            "not-json",
            "invalid-record: record 0: not JSON: EOF while parsing a value at line 1 column 12",
        ),
        ("not-object", "invalid-record: record 0: not a JSON object"),
        (
            "wrong-type",
            "invalid-record: record 0: column `block`: expected a 64-bit integer",
        ),
        (
            "missing-column",
            "invalid-record: record 0: column `block` may not be null",
        ),
        (
            "undeclared-column",
            "invalid-record: record 0: column `extra` is not declared",
        ),
        (
            "undeclared-dataset",
            "invalid-dataset: dataset `nowhere` was not declared; call define-dataset first",
        ),
    ]
    .map(|(way, told)| (case("records", way), gave_up(told)));
    assert_cases(&platform, &hostile, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_records_and_alerts_fail_on_the_publish_limits() {
    let platform = start_with(30, |config| {
        config.max_records = 5000;
        config.max_alerts = 2000;
    })
    .await;
    let hostile = platform.publish("hostile");

    let cases = [
        (
            "records-flood",
            "component broke a limit: a task may publish at most 5000 records (max_records)",
        ),
        (
            "alerts-flood",
            "component broke a limit: a task may publish at most 2000 alerts (max_alerts)",
        ),
    ]
    .map(|(name, reason)| (json!({ "case": name }), reason.to_string()));
    assert_cases(&platform, &hostile, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_giant_record_is_refused_by_a_byte_limit() {
    let platform = start(30).await;
    let hostile = platform.publish("hostile");

    let job = platform
        .job(hostile, json!({ "case": "record-giant" }), (1, 1, 1))
        .await;
    let job = platform.finished(&job).await;

    let tasks = platform.dispatcher.tasks(TENANT, job.id).await.unwrap();
    assert_eq!(job.state, JobState::Failed, "{:?}", tasks[0].summary);
    assert_eq!(tasks[0].error_class.as_deref(), Some("deterministic"));
    let reason = tasks[0].error.clone().unwrap_or_default();
    assert!(reason.starts_with("component broke a limit: "), "{reason}");
    assert!(reason.contains("bytes"), "{reason}");
    echo_still_runs(&platform, &mut Vec::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_breaches_fail_their_tasks_and_the_worker_runs_on() {
    let platform = start(30).await;
    let hostile = platform.publish("hostile");

    let cases = [
        ("recurse", "component overflowed its stack"),
        (
            "log-flood",
            "component broke a limit: a task may write at most 1000 log lines (max_log_lines)",
        ),
        (
            "handles",
            "component trapped: cannot allocate another handle: store handle limit exceeded",
        ),
        (
            "objects-flood",
            "component broke a limit: a task may write at most 1000 objects (max_objects)",
        ),
    ]
    .map(|(name, reason)| (json!({ "case": name }), reason.to_string()));
    assert_cases(&platform, &hostile, &cases).await;

    for (name, import) in [
        ("http", "wasi:http/"),
        ("unknown", "hostile:extra/backdoor"),
    ] {
        let component = platform.publish(name);
        let job = platform.job(component.clone(), json!({}), (1, 1, 1)).await;
        let job = platform.finished(&job).await;
        let tasks = platform.dispatcher.tasks(TENANT, job.id).await.unwrap();
        assert_eq!(tasks[0].error_class.as_deref(), Some("deterministic"));
        let reason = tasks[0].error.clone().unwrap();
        let refused = format!(
            "component `{}` was refused: component imports `",
            component.digest
        );
        assert!(reason.starts_with(&refused), "{reason}");
        assert!(reason.contains(import), "{reason}");
        assert!(
            reason.ends_with("`, which the trace:udf world does not provide"),
            "{reason}"
        );
    }
    echo_still_runs(&platform, &mut Vec::new()).await;
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap();
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    out
}
