//! What one run of a component may use, and how a broken limit ends it.
//!
//! Memory and tables are capped per store by [`MemoryCap`], which also
//! remembers that it refused a growth so that the trap that usually follows
//! can be reported as the cap rather than as an opaque `unreachable`. Every
//! other limit is checked where it is spent (a capability call) and, when
//! broken, trips the run's [`Tripwire`]: the call answers the guest with an
//! error, the next epoch tick interrupts the guest, and the run fails naming
//! the limit, whatever the guest did with the error.

use std::sync::{Arc, Mutex};
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
    /// The most table elements. Default: 20 000, the engine pool's own
    /// ceiling per table and far above what a Rust component's function
    /// table needs.
    pub max_table_elements: usize,
    /// The most bytes of log messages a run may write, guest lines and
    /// captured output together. Default: 1 MiB.
    pub max_log_bytes: usize,
    /// The most objects a run may hold written at once. Default: 1000.
    pub max_objects: usize,
    /// The largest object a run may write. Default: 16 MiB.
    pub max_object_bytes: usize,
    /// The most bytes of objects a run may hold written at once. Default:
    /// 256 MiB.
    pub max_object_total_bytes: u64,
    /// The fuel each call of a deterministic run gets (about one unit per
    /// wasm instruction); running out fails the run naming this limit.
    /// Default: 10 000 000 000, 25 times what erc20-transfers uses on a task
    /// of 50 recorded mainnet blocks (0.4 billion) and about 2 s of guest
    /// code on the build machine: a normal task fits many times over, and a
    /// runaway loop fails by fuel, the same way every time, long before the
    /// 30 s epoch deadline would stop it at a point that depends on the
    /// machine.
    pub fuel: u64,
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
            max_table_elements: 20_000,
            max_log_bytes: 1 << 20,
            max_objects: 1000,
            max_object_bytes: 16 << 20,
            max_object_total_bytes: 256 << 20,
            fuel: 10_000_000_000,
        }
    }
}

/// A limit a run broke, in words that name it and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    /// What was broken, such as `a task may write at most 1000 log lines`.
    pub message: String,
}

/// Shared by a run's capabilities and its epoch watcher: the first limit
/// broken, and the first platform service that was unavailable to a call.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tripwire(Arc<Mutex<Marks>>);

#[derive(Debug, Default)]
struct Marks {
    breach: Option<Breach>,
    outage: Option<String>,
}

impl Tripwire {
    fn marks(&self) -> std::sync::MutexGuard<'_, Marks> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `message` as the breach unless one was recorded already.
    pub(crate) fn trip(&self, message: impl Into<String>) {
        let mut marks = self.marks();
        if marks.breach.is_none() {
            marks.breach = Some(Breach {
                message: message.into(),
            });
        }
    }

    /// The breach, if any.
    pub(crate) fn breach(&self) -> Option<Breach> {
        self.marks().breach.clone()
    }

    /// Whether a limit was broken.
    pub(crate) fn is_tripped(&self) -> bool {
        self.marks().breach.is_some()
    }

    /// Records that a capability call found a platform service unavailable
    /// (`what` says which), unless one did already. A component that then
    /// fails may well have failed because of it, so the failure is
    /// transient, not the component's own.
    pub(crate) fn outage(&self, what: impl Into<String>) {
        let mut marks = self.marks();
        if marks.outage.is_none() {
            marks.outage = Some(what.into());
        }
    }

    /// The first outage a call met, if any.
    pub(crate) fn outage_seen(&self) -> Option<String> {
        self.marks().outage.clone()
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
    /// Set once a table growth was refused.
    pub(crate) table_hit: bool,
}

impl MemoryCap {
    /// A limiter for `limits`.
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            memory_bytes: limits.memory_bytes,
            table_elements: limits.max_table_elements,
            instances: limits.max_instances,
            hit: false,
            table_hit: false,
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
        let allowed = desired <= self.table_elements;
        if !allowed {
            self.table_hit = true;
        }
        Ok(allowed)
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // Growth past the pool's own maximum also counts as the cap.
        self.table_hit = true;
        Ok(())
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
