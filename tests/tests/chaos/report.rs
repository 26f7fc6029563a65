//! The figures of a chaos run: the queue faults, expired leases and
//! reconciler wake-ups counted from the dispatcher's JSON log (every
//! incarnation appends to one file), and the report the test prints.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::monkey::Tally;

/// The queue faults a dispatcher log records.
#[derive(Debug, Default)]
pub struct QueueFaults {
    /// Faults by kind, over the whole log.
    pub by_kind: BTreeMap<String, u64>,
    /// Faults by kind up to the job's end.
    pub until_end: BTreeMap<String, u64>,
    /// The last fault at or before the job's end.
    pub last_before_end: Option<DateTime<Utc>>,
    /// Leases the reaper took back.
    pub leases_expired: u64,
    /// Wake-ups the reconciler wrote for tasks that waited too long.
    pub reconciled: u64,
}

/// Counts the `fault` events of `log`, and those up to `end`.
pub fn queue_faults(log: &str, end: DateTime<Utc>) -> QueueFaults {
    let mut faults = QueueFaults::default();
    for line in log.lines().filter(|l| l.starts_with('{')) {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let fields = &event["fields"];
        match fields["message"].as_str() {
            Some("lease expired") => faults.leases_expired += 1,
            Some("queued tasks woken again") => {
                faults.reconciled += fields["woken"].as_u64().unwrap_or(0);
            }
            _ => {}
        }
        let Some(kind) = fields["fault"].as_str() else {
            continue;
        };
        *faults.by_kind.entry(kind.to_string()).or_default() += 1;
        let at = event["timestamp"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        if let Some(at) = at.filter(|at| *at <= end) {
            *faults.until_end.entry(kind.to_string()).or_default() += 1;
            faults.last_before_end = faults.last_before_end.max(Some(at));
        }
    }
    faults
}

/// Everything the test prints about a run.
#[derive(Debug)]
pub struct Report {
    pub seed: u64,
    pub profile: &'static str,
    pub fault_spec: &'static str,
    /// Chaos jobs, and their tasks together.
    pub jobs: usize,
    pub tasks: u64,
    pub clean_job: Duration,
    pub chaos_job: Duration,
    pub tally: Tally,
    pub faults: QueueFaults,
    pub finished_at: DateTime<Utc>,
    /// When the chaos jobs' rows and alerts were all visible and delivered.
    pub settled_at: Option<DateTime<Utc>>,
}

impl Report {
    /// The last kill, restart or queue fault before the job ended.
    pub fn last_fault(&self) -> Option<DateTime<Utc>> {
        self.tally.last_action.max(self.faults.last_before_end)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        writeln!(f, "===== chaos report =====")?;
        writeln!(
            f,
            "seed: {} (replay with TRACE_CHAOS_SEED={})",
            self.seed, self.seed
        )?;
        writeln!(
            f,
            "form: {}; queue faults: {}",
            self.profile, self.fault_spec
        )?;
        writeln!(f, "chaos jobs: {}, {} tasks in all", self.jobs, self.tasks)?;
        let secs = |d: Duration| d.as_secs_f64();
        writeln!(
            f,
            "job time: clean {:.1} s, chaos {:.1} s",
            secs(self.clean_job),
            secs(self.chaos_job)
        )?;
        writeln!(f, "actions: {} of {} planned", t.done, t.planned)?;
        let kills: Vec<String> = t.kills.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let total: u32 = t.kills.values().sum();
        writeln!(f, "SIGKILLs: {total} ({})", kills.join(", "))?;
        for (task, attempt, service, expired) in &t.lease_kills {
            let how = if *expired {
                "expired by the reaper"
            } else {
                "not expired"
            };
            writeln!(
                f,
                "lease kill: {service} held attempt {attempt} of {task}: {how}"
            )?;
        }
        writeln!(f, "Postgres restarts: {}", t.postgres_restarts)?;
        for (service, status) in &t.self_exits {
            writeln!(f, "exited by itself and restarted: {service} ({status})")?;
        }
        let kinds = |m: &BTreeMap<String, u64>| {
            let all: Vec<String> = m.iter().map(|(k, n)| format!("{k} {n}")).collect();
            format!("{} ({})", m.values().sum::<u64>(), all.join(", "))
        };
        writeln!(
            f,
            "queue faults until the job ended: {}",
            kinds(&self.faults.until_end)
        )?;
        writeln!(
            f,
            "queue faults in the whole run: {}",
            kinds(&self.faults.by_kind)
        )?;
        writeln!(
            f,
            "leases expired by the reaper: {}; wake-ups written by the reconciler: {}",
            self.faults.leases_expired, self.faults.reconciled
        )?;
        let after = |from: DateTime<Utc>, to: DateTime<Utc>| {
            format!("{:.1} s", (to - from).num_milliseconds() as f64 / 1000.0)
        };
        if let Some(last) = t.last_action {
            writeln!(
                f,
                "recovery from the last kill or restart: job ended after {}, rows and alerts \
                 complete after {}",
                after(last, self.finished_at),
                self.settled_at
                    .map_or("(never)".to_string(), |s| after(last, s)),
            )?;
        }
        if let Some(last) = self.last_fault() {
            writeln!(
                f,
                "recovery from the last fault of any kind: job ended after {}",
                after(last, self.finished_at)
            )?;
        }
        Ok(())
    }
}
