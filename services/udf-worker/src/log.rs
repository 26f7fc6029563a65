//! The `log` capability: lines collected for the task's complete or fail.

use std::sync::{Arc, Mutex};

use trace_common::api::LogLine;
use trace_host::LogHost;
use trace_host::log::Level;

/// Collects a task's log lines; clones share the same lines.
#[derive(Debug, Clone, Default)]
pub struct CollectedLog {
    lines: Arc<Mutex<Vec<LogLine>>>,
}

impl CollectedLog {
    /// The lines collected so far, taken out.
    pub fn take(&self) -> Vec<LogLine> {
        std::mem::take(&mut *self.lock())
    }

    /// Adds a line the worker itself writes about the task.
    pub fn push(&self, level: &str, message: impl Into<String>) {
        let line = LogLine {
            level: level.into(),
            message: message.into(),
            fields: Default::default(),
        };
        self.lock().push(line);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<LogLine>> {
        self.lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl LogHost for CollectedLog {
    fn write(&mut self, level: Level, message: &str, fields: Vec<(String, String)>) {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        let fields = fields
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        self.lock().push(LogLine {
            level: level.to_string(),
            message: message.to_string(),
            fields,
        });
    }
}
