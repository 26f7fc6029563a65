//! The `log` capability: structured log lines for the job's logs.
//!
//! The worker implements [`LogHost`]. The host enforces the line and byte
//! budgets of [`Limits`](crate::Limits) before a line reaches it (a line
//! past either budget is dropped and trips the run: the task fails naming
//! the budget), and feeds it the guest's captured standard output and error
//! as lines after the run.

use wasmtime::component::HasData;

use crate::limits::Tripwire;
use crate::wit::log as wit;

pub use wit::Level;

/// Collects a component's log lines.
pub trait LogHost: Send {
    /// Takes one line with its structured fields.
    fn write(&mut self, level: Level, message: &str, fields: Vec<(String, String)>);
}

/// The store's slice for this capability: the sink and its budget.
pub(crate) struct LogState {
    pub(crate) host: Box<dyn LogHost>,
    pub(crate) max_lines: u32,
    pub(crate) max_line_bytes: usize,
    pub(crate) max_bytes: usize,
    pub(crate) written: u32,
    pub(crate) bytes: usize,
    pub(crate) dropped: u32,
    pub(crate) tripwire: Tripwire,
}

impl LogState {
    /// Writes a line if the budgets allow, cutting a long message; a line
    /// past a budget is dropped and trips the run.
    pub(crate) fn line(&mut self, level: Level, message: &str, fields: Vec<(String, String)>) {
        let message = truncate(message, self.max_line_bytes);
        let size = message.len() + fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        if self.written >= self.max_lines {
            self.dropped += 1;
            let max = self.max_lines;
            self.tripwire.trip(format!(
                "a task may write at most {max} log lines (max_log_lines)"
            ));
            return;
        }
        if self.bytes + size > self.max_bytes {
            self.dropped += 1;
            let max = self.max_bytes;
            self.tripwire.trip(format!(
                "a task may write at most {max} bytes of logs (max_log_bytes)"
            ));
            return;
        }
        self.written += 1;
        self.bytes += size;
        self.host.write(level, message, fields);
    }

    /// Writes one closing line saying how many lines were dropped, if any.
    pub(crate) fn finish(&mut self) {
        if self.dropped > 0 {
            let message = format!(
                "{} log lines dropped past the limit of {}",
                self.dropped, self.max_lines
            );
            self.host.write(Level::Warn, &message, Vec::new());
        }
    }
}

/// Projects the store onto [`LogState`] for the generated bindings.
pub(crate) struct HasLog;

impl HasData for HasLog {
    type Data<'a> = &'a mut LogState;
}

impl wit::Host for LogState {
    fn write(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        self.line(level, &message, fields);
    }
}

/// `text` cut to at most `max` bytes on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_never_splits_a_character() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
