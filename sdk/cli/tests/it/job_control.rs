//! `trace job cancel`, `retry` and `status --attempts` as a user runs them:
//! the binary against trace-dev, what it prints checked against the state
//! database.

use std::path::Path;

use sqlx::PgPool;

use super::support::{start_dev, trace};

/// Starts `trace ingest` of the logs of `from..=to` in tasks of `chunk`
/// blocks, without waiting, and returns the job id it printed.
async fn ingest(home: &Path, from: u64, to: u64, chunk: u64) -> String {
    let (from, to, chunk) = (from.to_string(), to.to_string(), chunk.to_string());
    let args = [
        "ingest",
        "--from",
        &from,
        "--to",
        &to,
        "--chunk-size",
        &chunk,
        "--tables",
        "logs",
    ];
    let run = trace(home, &args).await;
    assert!(run.success, "{run:?}");
    let id = run
        .stdout
        .strip_prefix("ingest job ")
        .and_then(|r| r.split(' ').next());
    id.unwrap_or_else(|| panic!("no job id in {:?}", run.stdout))
        .to_string()
}

/// The task table of `trace job status` output: the lines from its header on.
fn task_table(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("task "))
        .collect()
}

/// Free text as the CLI prints it, on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `(attempt, worker, outcome, class, reason)` of every attempt of the job's
/// tasks, as the dispatcher stored them.
async fn stored_attempts(state: &PgPool, job: &str) -> Vec<(i32, String, String, String, String)> {
    sqlx::query_as(
        "select a.attempt, a.worker_id, a.outcome, a.class, a.reason \
         from task_attempts a join tasks t on t.id = a.task_id \
         where t.job_id = $1::uuid order by t.seq, a.attempt",
    )
    .bind(job)
    .fetch_all(state)
    .await
    .unwrap()
}

/// Checks that `trace job status --attempts` prints the one task of `job`
/// as `failed` with the class and reason of its last stored attempt, and one
/// line per stored attempt.
async fn check_status(home: &Path, state: &PgPool, job: &str) {
    let run = trace(home, &["job", "status", job, "--attempts"]).await;
    assert!(run.success, "{run:?}");
    assert!(
        run.stdout.contains("\nstate      failed\n"),
        "{}",
        run.stdout
    );
    let stored = stored_attempts(state, job).await;
    let table = task_table(&run.stdout);
    assert_eq!(table.len(), 2 + stored.len(), "{}", run.stdout);

    let task: Vec<&str> = table[1].split_whitespace().collect();
    let (_, _, _, last_class, last_reason) = stored.last().unwrap();
    assert_eq!(
        task[..4],
        ["0", "1..=1", "failed", &stored.len().to_string()]
    );
    assert_eq!(task[4], format!("{last_class}:"));
    assert_eq!(task[5..].join(" "), one_line(last_reason));

    for (line, (attempt, worker, outcome, class, reason)) in table[2..].iter().zip(&stored) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert!(line.starts_with("    attempt "), "{line}");
        let number = attempt.to_string();
        assert_eq!(
            fields[1..5],
            [number.as_str(), worker, outcome, class],
            "{line}"
        );
        assert!(fields[5].ends_with('s'), "a duration: {line}");
        assert_eq!(fields[6..].join(" "), one_line(reason));
    }
}

#[tokio::test]
async fn job_cancel_retry_and_status_report_what_the_platform_did() {
    let home_dir = tempfile::tempdir().unwrap();
    let dev = start_dev(home_dir.path()).await;
    let home = home_dir.path();
    let state = trace_common::db::connect(&dev.state_database_url, 2)
        .await
        .unwrap();

    // The logs of block 1 were not recorded: the provider refuses them and
    // the task fails deterministically on its first attempt.
    let job = ingest(home, 1, 1, 1).await;
    let waited = trace(home, &["job", "wait", &job]).await;
    assert!(!waited.success);
    assert!(
        waited.stderr.contains(&format!("job `{job}` failed")),
        "{waited:?}"
    );
    let stored = stored_attempts(&state, &job).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].1.as_str(), stored[0].3.as_str()),
        ("dev-platform-worker", "deterministic")
    );
    assert!(stored[0].4.contains("not recorded"), "{}", stored[0].4);
    check_status(home, &state, &job).await;

    let retried = trace(home, &["job", "retry", &job]).await;
    assert!(retried.success, "{retried:?}");
    assert_eq!(
        retried.stdout,
        format!("job {job} running: 1 task requeued\n")
    );
    assert!(!trace(home, &["job", "wait", &job]).await.success);
    let stored = stored_attempts(&state, &job).await;
    let numbers: Vec<i32> = stored.iter().map(|a| a.0).collect();
    assert_eq!(numbers, [1, 2]);
    check_status(home, &state, &job).await;

    let refused = trace(home, &["job", "cancel", &job]).await;
    assert!(!refused.success);
    assert!(refused.stdout.is_empty(), "{refused:?}");
    assert!(
        refused.stderr.contains("(job_finished, HTTP 409)"),
        "{refused:?}"
    );

    // A job that succeeded has nothing to retry.
    let recorded = ingest(home, 10_000_000, 10_000_000, 1).await;
    let waited = trace(home, &["job", "wait", &recorded]).await;
    assert!(waited.success, "{waited:?}");
    let nothing = trace(home, &["job", "retry", &recorded]).await;
    assert!(!nothing.success);
    assert!(
        nothing.stderr.contains("(nothing_to_retry, HTTP 409)"),
        "{nothing:?}"
    );

    // A thousand tasks that each fail fast: the cancel lands while most
    // are still queued.
    let many = ingest(home, 1, 1000, 1).await;
    let cancelled = trace(home, &["job", "cancel", &many]).await;
    assert!(cancelled.success, "{cancelled:?}");
    let counts = cancelled
        .stdout
        .strip_prefix(&format!("job {many} cancelled: "))
        .unwrap_or_else(|| panic!("{cancelled:?}"));
    let numbers: Vec<u64> = counts
        .split(", ")
        .map(|part| part.split(' ').next().unwrap().parse().unwrap())
        .collect();
    let [queued_cancelled, running, succeeded] = numbers[..] else {
        panic!("{cancelled:?}");
    };
    assert!(
        queued_cancelled > 0 && running <= 2 && succeeded == 0,
        "{cancelled:?}"
    );
    let stored: i64 = sqlx::query_scalar(
        "select count(*) from tasks where job_id = $1::uuid and state = 'cancelled'",
    )
    .bind(&many)
    .fetch_one(&state)
    .await
    .unwrap();
    assert!(
        stored as u64 >= queued_cancelled,
        "{stored} < {queued_cancelled}"
    );
    let status = trace(home, &["job", "status", &many]).await;
    assert!(
        status.stdout.contains("\nstate      cancelled\n"),
        "{}",
        status.stdout
    );

    state.close().await;
    dev.shutdown().await;
}
