//! What one run of a component may use, and the limiter that enforces memory.
//!
//! Memory is capped per store by [`MemoryCap`], which also remembers that it
//! refused a growth so that the trap that usually follows can be reported as
//! the memory cap rather than as an opaque `unreachable`.

use std::time::Duration;

/// The limits of one run; [`Limits::default`] is what a task gets.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The most linear memory the component may grow to. Default: 64 MiB,
    /// ample for decoding a task's query results, small enough for several
    /// tasks per worker.
    pub memory_bytes: usize,
    /// The wall time the call to `run` may take. Default: 30 s, well past a
    /// normal chunk's run and well inside a lease that heartbeats renew.
    pub epoch_deadline: Duration,
    /// The most log lines kept, guest log calls and captured output
    /// together; later lines are counted and dropped. Default: 1000, enough
    /// to debug a task without flooding the job's logs.
    pub max_log_lines: u32,
    /// The longest log message kept; longer ones are cut. Default: 4 KiB.
    pub max_log_line_bytes: usize,
    /// The most bytes captured from each of standard output and error.
    /// Default: 64 KiB; a guest write past it fails.
    pub max_stdio_bytes: usize,
    /// The most instances a component may create; a component holds
    /// several core instances. Default: 32.
    pub max_instances: usize,
    /// The most table elements. Default: 100 000, far above what a Rust
    /// component's function table needs.
    pub max_table_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            epoch_deadline: Duration::from_secs(30),
            max_log_lines: 1000,
            max_log_line_bytes: 4096,
            max_stdio_bytes: 64 << 10,
            max_instances: 32,
            max_table_elements: 100_000,
        }
    }
}

/// Enforces [`Limits`] for one store and records whether memory ran out.
#[derive(Debug)]
pub(crate) struct MemoryCap {
    memory_bytes: usize,
    table_elements: usize,
    instances: usize,
    /// Set once a memory growth was refused.
    pub(crate) hit: bool,
}

impl MemoryCap {
    /// A limiter for `limits`.
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            memory_bytes: limits.memory_bytes,
            table_elements: limits.max_table_elements,
            instances: limits.max_instances,
            hit: false,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes;
        if !allowed {
            self.hit = true;
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // Growth past the pool's own maximum also counts as the cap.
        self.hit = true;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.instances
    }

    fn memories(&self) -> usize {
        self.instances
    }
}
