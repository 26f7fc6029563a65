//! What a successful run reports back: a message and named counters.

use crate::bindings::trace::udf::types::Summary as WitSummary;

/// What a successful run reports; it is shown in the job's status.
///
/// ```
/// use trace_udf::Summary;
///
/// let summary = Summary::new("decoded transfers").counter("transfers", 12);
/// assert_eq!(summary.counters, vec![("transfers".to_string(), 12)]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// A short human-readable account of what the run did.
    pub message: String,
    /// Named counters, in the order they were added.
    pub counters: Vec<(String, u64)>,
}

impl Summary {
    /// A summary with a message and no counters yet.
    pub fn new(message: impl Into<String>) -> Self {
        Summary {
            message: message.into(),
            counters: Vec::new(),
        }
    }

    /// Adds a named counter.
    pub fn counter(mut self, name: impl Into<String>, value: u64) -> Self {
        self.counters.push((name.into(), value));
        self
    }
}

impl From<Summary> for WitSummary {
    fn from(summary: Summary) -> Self {
        WitSummary {
            message: summary.message,
            counters: summary.counters,
        }
    }
}
