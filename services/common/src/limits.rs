//! The limits a job may ask for, and the deployment's maxima they must fit.
//!
//! Every limit is on by default: a task runs under the deployment's value
//! unless its job asks for less. A job asking for more than the maximum is
//! refused when it is created, naming the limit; a worker clamps again to
//! its own configured values, so a worker configured tighter than the
//! dispatcher never runs a task with more.

use serde::{Deserialize, Serialize};

/// What a job asks for; each absent limit takes the deployment's value.
/// Absent limits are left out when serialised, so that a stored job that
/// uses only older limits still reads to an older dispatcher (a rollback).
/// Leases name every limit, so workers must be upgraded first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobLimits {
    /// Linear memory of one component instance, in MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Wall time of the call to `run`, in seconds (the epoch deadline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_deadline_secs: Option<u64>,
    /// Wall time of the whole task (loading, the call, flushing), in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_wall_secs: Option<u64>,
    /// Records published per task, all datasets together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_records: Option<u64>,
    /// Bytes of records (as JSON) published per task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_record_bytes: Option<u64>,
    /// Alerts published per task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_alerts: Option<u64>,
    /// Log lines per task, guest lines and captured output together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_log_lines: Option<u64>,
    /// Bytes of log messages per task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_log_bytes: Option<u64>,
    /// Objects a task may hold written at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_objects: Option<u64>,
    /// The largest object a task may write, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_object_bytes: Option<u64>,
    /// Bytes of objects a task may hold written at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_object_total_bytes: Option<u64>,
    /// Rows one query may return.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_query_rows: Option<u64>,
    /// Bytes one query may return, as Arrow holds the values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_query_bytes: Option<u64>,
    /// The statement timeout of one query, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_timeout_secs: Option<u64>,
}

/// The limits a task runs under, every one set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLimits {
    pub memory_mib: u64,
    pub call_deadline_secs: u64,
    pub task_wall_secs: u64,
    pub max_records: u64,
    pub max_record_bytes: u64,
    pub max_alerts: u64,
    pub max_log_lines: u64,
    pub max_log_bytes: u64,
    pub max_objects: u64,
    pub max_object_bytes: u64,
    pub max_object_total_bytes: u64,
    pub max_query_rows: u64,
    pub max_query_bytes: u64,
    pub query_timeout_secs: u64,
}

impl Default for TaskLimits {
    /// The platform's defaults, which are also the deployment maxima unless
    /// a deployment configures others: 64 MiB, a 30 s call in a 60 s task,
    /// a million records in 256 MiB, 10 000 alerts, 1000 log lines in 1 MiB,
    /// 1000 objects of at most 16 MiB in 256 MiB, and queries of at most a
    /// million rows in 64 MiB within 10 s (the query service's own defaults,
    /// which stay its ceiling whatever a job asks).
    fn default() -> Self {
        Self {
            memory_mib: 64,
            call_deadline_secs: 30,
            task_wall_secs: 60,
            max_records: 1_000_000,
            max_record_bytes: 256 << 20,
            max_alerts: 10_000,
            max_log_lines: 1000,
            max_log_bytes: 1 << 20,
            max_objects: 1000,
            max_object_bytes: 16 << 20,
            max_object_total_bytes: 256 << 20,
            max_query_rows: 1_000_000,
            max_query_bytes: 64 << 20,
            query_timeout_secs: 10,
        }
    }
}

macro_rules! each_limit {
    ($m:ident) => {
        $m!(memory_mib);
        $m!(call_deadline_secs);
        $m!(task_wall_secs);
        $m!(max_records);
        $m!(max_record_bytes);
        $m!(max_alerts);
        $m!(max_log_lines);
        $m!(max_log_bytes);
        $m!(max_objects);
        $m!(max_object_bytes);
        $m!(max_object_total_bytes);
        $m!(max_query_rows);
        $m!(max_query_bytes);
        $m!(query_timeout_secs);
    };
}

impl JobLimits {
    /// Limits written as `name=value` pairs (the CLI's `--limit`, the
    /// dispatcher's `--limit-maximum`), refusing unknown names and values
    /// that are not whole numbers; the message names the pair.
    pub fn from_pairs(pairs: &[String]) -> Result<Self, String> {
        let mut object = serde_json::Map::new();
        for pair in pairs {
            let Some((name, value)) = pair.split_once('=') else {
                return Err(format!("`{pair}` is not name=value"));
            };
            let value: u64 = value
                .trim()
                .parse()
                .map_err(|_| format!("`{pair}`: the value is not a whole number"))?;
            object.insert(name.trim().to_string(), value.into());
        }
        serde_json::from_value(object.into()).map_err(|err| err.to_string())
    }
}

/// Why a job's limits were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitRefusal {
    /// A limit of zero would refuse every task.
    #[error("limit `{0}` must be at least 1")]
    Zero(&'static str),
    /// More than the deployment allows.
    #[error("limit `{name}` of {value} is above the maximum of {max}")]
    AboveMaximum {
        name: &'static str,
        value: u64,
        max: u64,
    },
}

impl LimitRefusal {
    /// The API error code: `invalid_limit` or `limit_too_high`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Zero(_) => "invalid_limit",
            Self::AboveMaximum { .. } => "limit_too_high",
        }
    }
}

impl TaskLimits {
    /// Refuses a job's request that asks for more than these maxima, or for
    /// zero of anything, naming the first such limit.
    pub fn admit(&self, asked: &JobLimits) -> Result<(), LimitRefusal> {
        macro_rules! check {
            ($name:ident) => {
                match asked.$name {
                    Some(0) => return Err(LimitRefusal::Zero(stringify!($name))),
                    Some(value) if value > self.$name => {
                        return Err(LimitRefusal::AboveMaximum {
                            name: stringify!($name),
                            value,
                            max: self.$name,
                        });
                    }
                    _ => {}
                }
            };
        }
        each_limit!(check);
        Ok(())
    }

    /// These limits with each one `set` names replaced by its value, up or
    /// down: how a deployment configures its maxima. Zero is refused.
    pub fn configured(&self, set: &JobLimits) -> Result<TaskLimits, LimitRefusal> {
        let mut out = *self;
        macro_rules! set {
            ($name:ident) => {
                match set.$name {
                    Some(0) => return Err(LimitRefusal::Zero(stringify!($name))),
                    Some(value) => out.$name = value,
                    None => {}
                }
            };
        }
        each_limit!(set);
        Ok(out)
    }

    /// These limits as a request that names every one of them: what a
    /// lease carries, so that a worker configured above the deployment's
    /// maxima still runs the task under them.
    pub fn as_job_limits(&self) -> JobLimits {
        let mut out = JobLimits::default();
        macro_rules! fill {
            ($name:ident) => {
                out.$name = Some(self.$name);
            };
        }
        each_limit!(fill);
        out
    }

    /// These limits lowered to what `asked` asks for, never raised.
    pub fn narrowed(&self, asked: &JobLimits) -> TaskLimits {
        let mut out = *self;
        macro_rules! narrow {
            ($name:ident) => {
                if let Some(value) = asked.$name {
                    out.$name = out.$name.min(value.max(1));
                }
            };
        }
        each_limit!(narrow);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_name_limits_and_a_deployment_may_raise_or_lower_its_maxima() {
        let pairs = ["memory_mib=128".to_string(), " max_alerts = 5".to_string()];
        let set = JobLimits::from_pairs(&pairs).unwrap();
        let maxima = TaskLimits::default().configured(&set).unwrap();
        assert_eq!((maxima.memory_mib, maxima.max_alerts), (128, 5));
        assert_eq!(maxima.max_records, 1_000_000);

        let err = JobLimits::from_pairs(&["memory=1".to_string()]).unwrap_err();
        assert!(err.starts_with("unknown field `memory`"), "{err}");
        let err = JobLimits::from_pairs(&["max_alerts".to_string()]).unwrap_err();
        assert_eq!(err, "`max_alerts` is not name=value");
        let err = JobLimits::from_pairs(&["max_alerts=-1".to_string()]).unwrap_err();
        assert_eq!(err, "`max_alerts=-1`: the value is not a whole number");
        let zero = JobLimits::from_pairs(&["max_objects=0".to_string()]).unwrap();
        let err = TaskLimits::default().configured(&zero).unwrap_err();
        assert_eq!(err, LimitRefusal::Zero("max_objects"));
    }

    #[test]
    fn absent_limits_are_left_out_when_serialised() {
        let asked = JobLimits {
            memory_mib: Some(16),
            ..JobLimits::default()
        };
        assert_eq!(
            serde_json::to_string(&asked).unwrap(),
            r#"{"memory_mib":16}"#
        );
        assert_eq!(serde_json::to_string(&JobLimits::default()).unwrap(), "{}");
        let back: JobLimits = serde_json::from_str(r#"{"memory_mib":16}"#).unwrap();
        assert_eq!(back, asked);
    }

    #[test]
    fn a_job_may_ask_for_less_but_never_more() {
        let maxima = TaskLimits::default();
        let asked = JobLimits {
            memory_mib: Some(16),
            max_records: Some(5),
            ..JobLimits::default()
        };
        assert_eq!(maxima.admit(&asked), Ok(()));
        let limits = maxima.narrowed(&asked);
        assert_eq!((limits.memory_mib, limits.max_records), (16, 5));
        assert_eq!(limits.max_alerts, 10_000);

        let greedy = JobLimits {
            memory_mib: Some(65),
            ..JobLimits::default()
        };
        let refused = maxima.admit(&greedy).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "limit `memory_mib` of 65 is above the maximum of 64"
        );
        assert_eq!(refused.code(), "limit_too_high");
        assert_eq!(maxima.narrowed(&greedy).memory_mib, 64);
        let zero = JobLimits {
            max_log_lines: Some(0),
            ..JobLimits::default()
        };
        let refused = maxima.admit(&zero).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "limit `max_log_lines` must be at least 1"
        );
        assert_eq!(refused.code(), "invalid_limit");
    }

    #[test]
    fn unknown_limits_are_refused_when_parsed() {
        let err = serde_json::from_str::<JobLimits>(r#"{"memory_gib": 1}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `memory_gib`"),
            "{err}"
        );
    }
}
