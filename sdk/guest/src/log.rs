//! Structured log lines that end up in the job's logs.
//!
//! Use the functions for lines with fields, or the [`info!`](crate::info)
//! family of macros for formatted messages:
//!
//! ```ignore
//! trace_udf::log::info("decoded transfers", &[("count", count.to_string())]);
//! trace_udf::info!("decoded {count} transfers");
//! ```
//!
//! Keep lines few (per task, not per row): each is a host call and the
//! platform caps how many a task may write.

use crate::bindings::trace::udf::log as wit;

/// How important a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Level {
    /// Detail for debugging a function.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected the function recovered from.
    Warn,
    /// Something failed.
    Error,
}

/// Writes one line with structured fields.
pub fn write(level: Level, message: &str, fields: &[(&str, String)]) {
    let level = match level {
        Level::Debug => wit::Level::Debug,
        Level::Info => wit::Level::Info,
        Level::Warn => wit::Level::Warn,
        Level::Error => wit::Level::Error,
    };
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(name, value)| (name.to_string(), value.clone()))
        .collect();
    wit::write(level, message, &fields);
}

/// Writes a debug line with fields.
pub fn debug(message: &str, fields: &[(&str, String)]) {
    write(Level::Debug, message, fields);
}

/// Writes an info line with fields.
pub fn info(message: &str, fields: &[(&str, String)]) {
    write(Level::Info, message, fields);
}

/// Writes a warning line with fields.
pub fn warn(message: &str, fields: &[(&str, String)]) {
    write(Level::Warn, message, fields);
}

/// Writes an error line with fields.
pub fn error(message: &str, fields: &[(&str, String)]) {
    write(Level::Error, message, fields);
}

/// Writes a formatted debug line: `debug!("read {} rows", n)`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::log::write($crate::log::Level::Debug, &::std::format!($($arg)+), &[])
    };
}

/// Writes a formatted info line: `info!("read {} rows", n)`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::log::write($crate::log::Level::Info, &::std::format!($($arg)+), &[])
    };
}

/// Writes a formatted warning line: `warn!("skipped {} rows", n)`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::log::write($crate::log::Level::Warn, &::std::format!($($arg)+), &[])
    };
}

/// Writes a formatted error line: `error!("gave up after {} rows", n)`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::log::write($crate::log::Level::Error, &::std::format!($($arg)+), &[])
    };
}
