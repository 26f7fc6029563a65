//! How `trace job` prints jobs, their tasks and their attempts.
//!
//! Everything is rendered to a `String` first so the layout is tested
//! without a server. Tables pad every column but the last, which holds free
//! text (an error, a reason) and is printed on one line whatever its length.

use std::fmt::Write as _;

use trace_common::api::{AttemptInfo, Job, JobKind, JobState, JobStatus, RetryOutcome, TaskInfo};
use trace_common::api::{Progress, TaskState};

/// `trace job status`: the job, then one row per task; with `attempts`,
/// every attempt of each task under its row.
pub(super) fn status(status: &JobStatus, attempts: bool) -> String {
    let job = &status.job;
    let mut out = String::new();
    let mut put = |label: &str, value: String| {
        let _ = writeln!(out, "{label:<10} {value}");
    };
    put("job", job.id.to_string());
    put("kind", kind_name(job.kind).to_string());
    if let Some(c) = &job.component {
        put(
            "component",
            format!("{}@{} ({})", c.name, c.version, c.digest),
        );
    }
    put("state", state_name(job.state));
    let blocks = format!("{}..={}", job.from_block, job.to_block);
    put("blocks", format!("{blocks} (chain {})", job.chain_id));
    put("tasks", progress(&job.progress));
    let limits = limit_pairs(&job.limits);
    if !limits.is_empty() {
        put("limits", limits);
    }
    if job.deterministic {
        put("execution", "deterministic".to_string());
    }
    let published = (job.records_published, job.alerts_published);
    put(
        "published",
        format!("{} records, {} alerts", published.0, published.1),
    );
    let sunk = &status.sunk;
    let sunk = (sunk.records, sunk.alerts, sunk.rejected_batches);
    put(
        "sunk",
        format!(
            "{} records, {} alerts, {} rejected batches",
            sunk.0, sunk.1, sunk.2
        ),
    );
    let d = &status.delivery;
    let delivery = format!(
        "{} delivered, {} pending, {} failed",
        d.delivered, d.pending, d.failed
    );
    put("webhooks", delivery);

    if !status.tasks.is_empty() {
        out.push('\n');
        out.push_str(&tasks(&status.tasks, attempts));
    }
    out
}

/// The limits a job asked for, as `name=value` pairs by name;
/// empty when it asked for none.
fn limit_pairs(limits: &trace_common::api::JobLimits) -> String {
    let Ok(serde_json::Value::Object(set)) = serde_json::to_value(limits) else {
        return String::new();
    };
    set.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The task table: seq, blocks, state, attempt count and, for a task that
/// did not succeed, its last error and that error's class.
fn tasks(tasks: &[TaskInfo], with_attempts: bool) -> String {
    let mut sorted: Vec<&TaskInfo> = tasks.iter().collect();
    sorted.sort_by_key(|t| t.seq);
    let header = ["task", "blocks", "state", "attempts", "last error"].map(String::from);
    let mut rows = vec![header.to_vec()];
    rows.extend(sorted.iter().map(|t| task_row(t)));
    let task_widths = widths(&rows);

    let attempt_rows: Vec<Vec<Vec<String>>> = sorted
        .iter()
        .map(|t| t.attempts.iter().map(attempt_row).collect())
        .collect();
    let attempt_widths = widths(&attempt_rows.concat());

    let mut out = line(&rows[0], &task_widths);
    for (row, attempts) in rows[1..].iter().zip(&attempt_rows) {
        out.push_str(&line(row, &task_widths));
        if with_attempts {
            for attempt in attempts {
                out.push_str("    ");
                out.push_str(&line(attempt, &attempt_widths));
            }
        }
    }
    out
}

fn task_row(task: &TaskInfo) -> Vec<String> {
    let error = match (task.state, last_error(task)) {
        (TaskState::Succeeded, _) | (_, None) => String::new(),
        (_, Some((class, reason))) => format!("{class}: {}", one_line(reason)),
    };
    vec![
        task.seq.to_string(),
        format!("{}..={}", task.from_block, task.to_block),
        task_state_name(task.state),
        task.attempts.len().to_string(),
        error,
    ]
}

/// The class and reason of the task's last failure: the one stored on the
/// task, else (after a retry cleared it) that of its last failed attempt.
fn last_error(task: &TaskInfo) -> Option<(&str, &str)> {
    if let Some(error) = &task.error {
        return Some((task.error_class.as_deref().unwrap_or("unclassified"), error));
    }
    let failed = task.attempts.iter().rev().find(|a| a.reason.is_some())?;
    let class = failed.class.as_deref().unwrap_or("unclassified");
    Some((class, failed.reason.as_deref()?))
}

fn attempt_row(attempt: &AttemptInfo) -> Vec<String> {
    let took = attempt
        .finished_at
        .map(|end| duration(end - attempt.started_at))
        .unwrap_or_else(|| "-".into());
    vec![
        format!("attempt {}", attempt.attempt),
        attempt.worker_id.clone(),
        attempt.outcome.clone().unwrap_or_else(|| "running".into()),
        attempt.class.clone().unwrap_or_else(|| "-".into()),
        took,
        attempt.reason.as_deref().map(one_line).unwrap_or_default(),
    ]
}

/// `trace job cancel`: one line on what the cancel did.
pub(super) fn cancelled(job: &Job) -> String {
    let p = &job.progress;
    format!(
        "job {} {}: {} cancelled, {} running until their next heartbeat, {} succeeded",
        job.id,
        state_name(job.state),
        tasks_count(p.cancelled),
        p.running,
        p.succeeded
    )
}

/// `trace job retry`: one line on what the retry did.
pub(super) fn retried(outcome: &RetryOutcome) -> String {
    let job = &outcome.job;
    format!(
        "job {} {}: {} requeued",
        job.id,
        state_name(job.state),
        tasks_count(outcome.requeued)
    )
}

/// The failed and dead tasks with their errors, as `trace job wait` prints
/// them when a job did not succeed.
pub(super) fn failures(status: &JobStatus) -> String {
    let mut out = String::new();
    for task in &status.tasks {
        if matches!(task.state, TaskState::Failed | TaskState::Dead) {
            let _ = writeln!(
                out,
                "  task {} ({}..={}) {}: {}",
                task.seq,
                task.from_block,
                task.to_block,
                task_state_name(task.state),
                task.error.as_deref().unwrap_or("no reason recorded")
            );
        }
    }
    out
}

fn progress(p: &Progress) -> String {
    format!(
        "{} total: {} queued, {} running, {} succeeded, {} failed, {} dead, {} cancelled",
        p.total, p.queued, p.running, p.succeeded, p.failed, p.dead, p.cancelled
    )
}

fn tasks_count(n: u64) -> String {
    if n == 1 {
        "1 task".into()
    } else {
        format!("{n} tasks")
    }
}

/// A duration as `850ms`, `12.3s` or `4m05s`.
fn duration(d: chrono::TimeDelta) -> String {
    let ms = d.num_milliseconds().max(0);
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1000),
    }
}

/// Free text on one line: every run of whitespace becomes one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The width of each column but the last, over all `rows`.
fn widths(rows: &[Vec<String>]) -> Vec<usize> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    (0..columns.saturating_sub(1))
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
        })
        .map(Option::unwrap_or_default)
        .collect()
}

/// One table row, columns padded to `widths` and two spaces apart.
fn line(row: &[String], widths: &[usize]) -> String {
    let mut out = String::new();
    for (i, cell) in row.iter().enumerate() {
        match widths.get(i) {
            Some(&width) => {
                let _ = write!(out, "{cell:<width$}  ");
            }
            None => out.push_str(cell),
        }
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

pub(super) fn state_name(state: JobState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn task_state_name(state: TaskState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

pub(super) fn kind_name(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Udf => "udf",
        JobKind::Ingest => "ingest",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed ingest job of three tasks as the gateway answers it: task 0
    /// succeeded, task 1 failed deterministically, task 2 died after two
    /// transient failures and its error was kept only in its attempts.
    fn failed_job() -> JobStatus {
        let attempt = |n: u32, worker: &str, end: &str, class: &str, reason: &str| {
            serde_json::json!({
                "attempt": n, "worker_id": worker,
                "started_at": "2026-12-03T10:00:00Z", "finished_at": end,
                "outcome": "failed", "reason": reason, "class": class,
            })
        };
        let task = |seq: u32, state: &str, error: Option<&str>, class: Option<&str>, attempts| {
            serde_json::json!({
                "id": format!("00000000-0000-0000-0000-00000000000{seq}"), "seq": seq,
                "from_block": 10 * seq + 1, "to_block": 10 * seq + 10, "state": state,
                "attempt": 1, "error": error, "error_class": class, "summary": null,
                "attempts": attempts,
            })
        };
        let succeeded = serde_json::json!([{
            "attempt": 1, "worker_id": "w1", "started_at": "2026-12-03T10:00:00Z",
            "finished_at": "2026-12-03T10:00:00.250Z", "outcome": "succeeded",
            "reason": null, "class": null,
        }]);
        let bad = "logs of block `11` were not recorded";
        let timeout = "the rpc-gateway\ntimed out";
        serde_json::from_value(serde_json::json!({
            "id": "6f1c0a52-3c39-4d0c-9a51-2b8d0c8e7a10", "tenant_id": "dev", "kind": "ingest",
            "component": null, "params": {}, "chain_id": 1,
            "from_block": 1, "to_block": 30, "chunk_size": 10, "state": "failed",
            "progress": { "total": 3, "queued": 0, "running": 0, "succeeded": 1,
                          "failed": 1, "dead": 1, "cancelled": 0 },
            "records_published": 0, "alerts_published": 0,
            "created_at": "2026-12-03T10:00:00Z", "finished_at": "2026-12-03T10:05:00Z",
            "tasks": [
                task(2, "dead", None, None, serde_json::json!([
                    attempt(1, "w1", "2026-12-03T10:00:12.345Z", "transient", timeout),
                    attempt(2, "w2", "2026-12-03T10:04:05Z", "transient", timeout),
                ])),
                task(0, "succeeded", None, None, succeeded),
                task(1, "failed", Some(bad), Some("deterministic"), serde_json::json!([
                    attempt(1, "w1", "2026-12-03T10:00:00.800Z", "deterministic", bad),
                ])),
            ],
            "sunk": { "records": 0, "alerts": 0, "rejected_batches": 0 },
            "delivery": { "delivered": 0, "pending": 0, "failed": 0 },
        }))
        .unwrap()
    }

    #[test]
    fn status_shows_each_task_with_its_attempt_count_and_last_error() {
        let text = status(&failed_job(), false);
        let expected = "\
job        6f1c0a52-3c39-4d0c-9a51-2b8d0c8e7a10
kind       ingest
state      failed
blocks     1..=30 (chain 1)
tasks      3 total: 0 queued, 0 running, 1 succeeded, 1 failed, 1 dead, 0 cancelled
published  0 records, 0 alerts
sunk       0 records, 0 alerts, 0 rejected batches
webhooks   0 delivered, 0 pending, 0 failed

task  blocks   state      attempts  last error
0     1..=10   succeeded  1
1     11..=20  failed     1         deterministic: logs of block `11` were not recorded
2     21..=30  dead       2         transient: the rpc-gateway timed out
";
        assert_eq!(text, expected);
    }

    #[test]
    fn status_shows_the_limits_a_job_asked_for_and_deterministic_execution() {
        let mut job = failed_job();
        job.job.limits.memory_mib = Some(16);
        job.job.limits.max_query_rows = Some(500);
        job.job.deterministic = true;

        let text = status(&job, false);

        let lines: Vec<&str> = text.lines().skip(4).take(3).collect();
        assert!(lines[0].starts_with("tasks      3 total"), "{text}");
        assert_eq!(
            lines[1..],
            [
                "limits     max_query_rows=500, memory_mib=16",
                "execution  deterministic",
            ]
        );
    }

    #[test]
    fn status_with_attempts_lists_worker_outcome_class_duration_and_reason() {
        let text = status(&failed_job(), true);
        let table: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("task "))
            .collect();
        assert_eq!(
            table,
            [
                "task  blocks   state      attempts  last error",
                "0     1..=10   succeeded  1",
                "    attempt 1  w1  succeeded  -              250ms",
                "1     11..=20  failed     1         deterministic: logs of block `11` were not \
                 recorded",
                "    attempt 1  w1  failed     deterministic  800ms  logs of block `11` were not \
                 recorded",
                "2     21..=30  dead       2         transient: the rpc-gateway timed out",
                "    attempt 1  w1  failed     transient      12.3s  the rpc-gateway timed out",
                "    attempt 2  w2  failed     transient      4m05s  the rpc-gateway timed out",
            ]
        );
    }

    #[test]
    fn cancel_and_retry_say_what_changed() {
        let mut job = failed_job().job;
        job.state = JobState::Cancelled;
        job.progress = Progress {
            total: 3,
            running: 1,
            succeeded: 1,
            cancelled: 1,
            ..Progress::default()
        };
        let id = job.id;
        assert_eq!(
            cancelled(&job),
            format!(
                "job {id} cancelled: 1 task cancelled, 1 running until their next heartbeat, \
                 1 succeeded"
            )
        );
        job.state = JobState::Running;
        let outcome = RetryOutcome { requeued: 2, job };
        assert_eq!(
            retried(&outcome),
            format!("job {id} running: 2 tasks requeued")
        );
    }

    #[test]
    fn durations_read_in_the_largest_sensible_unit() {
        let ms = chrono::TimeDelta::milliseconds;
        assert_eq!(duration(ms(0)), "0ms");
        assert_eq!(duration(ms(999)), "999ms");
        assert_eq!(duration(ms(1_000)), "1.0s");
        assert_eq!(duration(ms(59_949)), "59.9s");
        assert_eq!(duration(ms(125_000)), "2m05s");
        assert_eq!(duration(ms(-5)), "0ms");
    }
}
