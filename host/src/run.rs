//! Running a loaded component over one task, and what comes of it.
//!
//! Each run gets a fresh store: a WASI context with nothing inherited (no
//! environment, arguments or preopened directories, standard input at end of
//! file, standard output and error captured within a bound), the caller's
//! [`Capabilities`], a memory cap and an epoch deadline. Captured output is
//! turned into log lines after the call, whatever its outcome.
//!
//! A run of a component loaded for [`Execution::Deterministic`] also gets a
//! fuel budget, fixed clocks and seeded randomness (see `determinism`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use trace_common::api::FailureClass;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::determinism::{self, SeededRandom, SteppedMonotonicClock, SteppedWallClock, TaskSeed};
use crate::engine::Execution;
use crate::host::{Host, Loaded};
use crate::limits::{Limits, MemoryCap, Tripwire};
use crate::log::{Level, LogHost, LogState};
use crate::objects::{ObjectsHost, ObjectsState};
use crate::query::{QueryHost, QueryState};
use crate::records::{RecordsHost, RecordsState};
use crate::wit::types::UdfError;

pub use crate::wit::types::Task as TaskInput;

/// The capabilities a run's component reaches, implemented by the caller.
pub struct Capabilities {
    /// Where `query.execute` goes.
    pub query: Box<dyn QueryHost>,
    /// Where `objects.*` goes.
    pub objects: Box<dyn ObjectsHost>,
    /// Where `records.*` goes.
    pub records: Box<dyn RecordsHost>,
    /// Where log lines go, the guest's own and its captured output.
    pub log: Box<dyn LogHost>,
}

/// What a successful run reports.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    /// The component's summary message.
    pub message: String,
    /// The component's named counters.
    pub counters: Vec<(String, u64)>,
    /// How long the run took.
    pub timing: Timing,
    /// How many queries the component ran.
    pub query_calls: u64,
    /// The fuel the call to `run` used, for a deterministic run: the same
    /// for the same task every time, and what to size
    /// [`Limits::fuel`] by.
    pub fuel_consumed: Option<u64>,
}

/// How long the phases of a run took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// Creating the store and instantiating the component.
    pub instantiate: Duration,
    /// The call to `run`, host calls included.
    pub call: Duration,
}

/// Why a run did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The component returned its own error; running it again gives the
    /// same answer.
    #[error("component failed: {}", describe(.0))]
    Udf(UdfError),
    /// The component grew its memory past the cap and trapped.
    #[error("component exceeded its memory cap of {} MiB", .limit_bytes >> 20)]
    MemoryCap {
        /// The cap, in bytes.
        limit_bytes: usize,
    },
    /// The component overflowed its wasm call stack. (An overflow of the
    /// shadow stack Rust keeps in linear memory shows as an out-of-bounds
    /// trap instead: the engine's explicit bounds checks do not say where.)
    #[error("component overflowed its stack")]
    StackOverflow,
    /// The component grew a table past the cap.
    #[error("component exceeded its table limit of {limit} elements")]
    TableCap {
        /// The cap, in elements.
        limit: usize,
    },
    /// The component broke a limit on what it may spend through the
    /// platform (records, logs, objects, queries); the message names it.
    #[error("component broke a limit: {message}")]
    Limit {
        /// The limit and its value, in words.
        message: String,
    },
    /// The call ran past its epoch deadline and was interrupted.
    #[error(
        "component exceeded its epoch deadline of {}s and was interrupted",
        .limit.as_secs_f64()
    )]
    Deadline {
        /// The deadline.
        limit: Duration,
    },
    /// A deterministic run used up its fuel; the same task always stops at
    /// the same point.
    #[error("component ran out of fuel: a call may use at most {limit} units (fuel)")]
    Fuel {
        /// The budget of the call.
        limit: u64,
    },
    /// The component trapped for another reason, such as a panic.
    #[error("component trapped: {message}")]
    Trap {
        /// What wasmtime reported, and the panic message when there was one.
        message: String,
    },
    /// The component failed (its own error or a trap) after a capability
    /// call found a platform service unavailable: most likely because of it,
    /// so another attempt may work.
    #[error("component failed after a platform service was unavailable ({service}): {failure}")]
    AfterOutage {
        /// Which call met the outage, and what it was told.
        service: String,
        /// How the component failed.
        failure: Box<RunError>,
    },
    /// The caller cancelled the run (the job was cancelled or the lease
    /// lost) and it was interrupted at the next epoch tick.
    #[error("the run was cancelled")]
    Cancelled,
    /// The host could not run the component; another attempt may work.
    #[error("host could not run the component: {message}")]
    Host {
        /// What failed.
        message: String,
    },
}

impl RunError {
    /// Whether a retry could help: only host failures and cancellation are
    /// transient.
    pub fn class(&self) -> FailureClass {
        match self {
            Self::Host { .. } | Self::Cancelled | Self::AfterOutage { .. } => {
                FailureClass::Transient
            }
            _ => FailureClass::Deterministic,
        }
    }
}

/// The state of one store: WASI, the limiter and each capability's slice.
pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    /// `wasi:random` of a deterministic run; none in a normal one.
    pub(crate) seeded: SeededRandom,
    pub(crate) limiter: MemoryCap,
    /// When the call must end: epoch checks interrupt the guest past it,
    /// and sleeps are cut to end by it.
    pub(crate) call_ends: Instant,
    pub(crate) query: QueryState,
    pub(crate) objects: ObjectsState,
    pub(crate) records: RecordsState,
    pub(crate) log: LogState,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl crate::wit::types::Host for State {}

impl Host {
    /// Runs `loaded` over `task` with `caps` under `limits`.
    ///
    /// Blocks the calling thread for the whole call, host calls included:
    /// call it from a blocking thread, never from an async task.
    pub fn run(
        &self,
        loaded: &Loaded,
        task: TaskInput,
        caps: Capabilities,
        limits: &Limits,
    ) -> Result<RunOutput, RunError> {
        self.run_cancellable(
            loaded,
            task,
            caps,
            limits,
            &Arc::new(AtomicBool::new(false)),
        )
    }

    /// Like [`Host::run`], and interrupted within one epoch tick once
    /// `cancel` is set; the run then fails with [`RunError::Cancelled`].
    pub fn run_cancellable(
        &self,
        loaded: &Loaded,
        task: TaskInput,
        caps: Capabilities,
        limits: &Limits,
        cancel: &Arc<AtomicBool>,
    ) -> Result<RunOutput, RunError> {
        let _span = tracing::info_span!("host.run", digest = %loaded.digest()).entered();
        let stdout = MemoryOutputPipe::new(limits.max_stdio_bytes);
        let stderr = MemoryOutputPipe::new(limits.max_stdio_bytes);
        let started = Instant::now();
        let tripwire = Tripwire::default();
        let execution = loaded.execution();
        let wasi = wasi_ctx(execution, &task, &stdout, &stderr);
        let seeded = match execution {
            Execution::Normal => SeededRandom::none(),
            Execution::Deterministic => SeededRandom::new(TaskSeed::of(&task)),
        };
        let state = new_state(wasi, seeded, caps, limits, &tripwire);
        let mut store = Store::new(loaded.engine(), state);
        let bounded = self.config.bounded();
        if bounded {
            store.limiter(|state| &mut state.limiter);
        }
        if execution == Execution::Deterministic {
            // Instantiation runs guest code too: it gets its own budget.
            store.set_fuel(limits.fuel).map_err(host_fault)?;
        }
        let ends = store.data().call_ends;
        if bounded {
            watch_epochs(&mut store, ends, cancel.clone(), tripwire.clone());
        }

        let instance = loaded.pre().instantiate(&mut store);
        let instantiated = Instant::now();
        if execution == Execution::Deterministic {
            store.set_fuel(limits.fuel).map_err(host_fault)?;
        }
        let result = instance.map(|udf| udf.call_run(&mut store, &task));
        let timing = Timing {
            instantiate: instantiated - started,
            call: instantiated.elapsed(),
        };
        let fuel_consumed = match execution {
            Execution::Normal => None,
            Execution::Deterministic => store
                .get_fuel()
                .ok()
                .map(|left| limits.fuel.saturating_sub(left)),
        };

        for (pipe, name) in [(&stdout, "standard output"), (&stderr, "standard error")] {
            if pipe.contents().len() >= limits.max_stdio_bytes {
                let max = limits.max_stdio_bytes;
                tripwire.trip(format!(
                    "a task may write at most {max} bytes to {name} (max_stdio_bytes)"
                ));
            }
        }
        let state = store.data_mut();
        capture(&mut state.log, Level::Info, "stdout", &stdout);
        capture(&mut state.log, Level::Warn, "stderr", &stderr);
        state.log.finish();
        let memory_hit = state.limiter.hit;
        let table_hit = state.limiter.table_hit;
        let query_calls = state.query.calls;

        if cancel.load(Ordering::Relaxed) && !matches!(result, Ok(Ok(_))) {
            return Err(RunError::Cancelled);
        }
        // A broken limit fails the run whatever the component made of the
        // error it was answered with.
        if let Some(breach) = tripwire.breach() {
            return Err(RunError::Limit {
                message: breach.message,
            });
        }
        if table_hit && !matches!(result, Ok(Ok(Ok(_)))) {
            return Err(RunError::TableCap {
                limit: limits.max_table_elements,
            });
        }
        let outcome = match result {
            Ok(Ok(Ok(summary))) => Ok(RunOutput {
                message: summary.message,
                counters: summary.counters,
                timing,
                query_calls,
                fuel_consumed,
            }),
            Ok(Ok(Err(err))) => Err(RunError::Udf(err)),
            Ok(Err(err)) => Err(trapped(&err, memory_hit, limits, &stderr)),
            Err(err) if memory_hit || err.downcast_ref::<Trap>().is_some() => {
                Err(trapped(&err, memory_hit, limits, &stderr))
            }
            Err(err) => Err(RunError::Host {
                message: err.to_string(),
            }),
        };
        // A failure after an outage is not the component's own.
        match (outcome, tripwire.outage_seen()) {
            (Err(failure @ (RunError::Udf(_) | RunError::Trap { .. })), Some(service)) => {
                Err(RunError::AfterOutage {
                    service,
                    failure: Box::new(failure),
                })
            }
            (outcome, _) => outcome,
        }
    }
}

/// Checks the store at every epoch tick: interrupts it once the wall clock
/// passed `ends`, `cancel` is set or a limit tripped `tripwire`. Wall time,
/// not a count of ticks: time a guest spent in host calls (a query, a cut
/// sleep) passes no epoch check, and still counts.
///
/// A callback per tick (every 10 ms by default) costs nothing measurable,
/// and it is what lets a cancelled task stop without waiting for its
/// deadline.
fn watch_epochs(
    store: &mut Store<State>,
    ends: Instant,
    cancel: Arc<AtomicBool>,
    tripwire: Tripwire,
) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        let late = Instant::now() >= ends;
        if late || cancel.load(Ordering::Relaxed) || tripwire.is_tripped() {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    });
}

/// The WASI context of a run: nothing inherited, stdin empty, output
/// captured; for a deterministic run, clocks fixed by the task.
fn wasi_ctx(
    execution: Execution,
    task: &TaskInput,
    stdout: &MemoryOutputPipe,
    stderr: &MemoryOutputPipe,
) -> WasiCtx {
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdin(MemoryInputPipe::new(&b""[..]))
        .stdout(stdout.clone())
        .stderr(stderr.clone());
    if execution == Execution::Deterministic {
        let start = determinism::wall_clock_start(task);
        wasi.wall_clock(SteppedWallClock::new(start))
            .monotonic_clock(SteppedMonotonicClock::new());
    }
    wasi.build()
}

/// A fresh store state around the caller's capabilities.
fn new_state(
    wasi: WasiCtx,
    seeded: SeededRandom,
    caps: Capabilities,
    limits: &Limits,
    tripwire: &Tripwire,
) -> State {
    State {
        wasi,
        table: ResourceTable::new(),
        seeded,
        limiter: MemoryCap::new(limits),
        call_ends: Instant::now() + limits.epoch_deadline,
        query: QueryState {
            host: caps.query,
            calls: 0,
            tripwire: tripwire.clone(),
        },
        objects: ObjectsState {
            host: caps.objects,
            max_objects: limits.max_objects,
            max_object_bytes: limits.max_object_bytes,
            max_total_bytes: limits.max_object_total_bytes,
            written: Default::default(),
            tripwire: tripwire.clone(),
        },
        records: RecordsState {
            host: caps.records,
            tripwire: tripwire.clone(),
        },
        log: LogState {
            host: caps.log,
            max_lines: limits.max_log_lines,
            max_line_bytes: limits.max_log_line_bytes,
            max_bytes: limits.max_log_bytes,
            written: 0,
            bytes: 0,
            dropped: 0,
            tripwire: tripwire.clone(),
        },
    }
}

/// Turns captured output into log lines tagged with their stream.
fn capture(log: &mut LogState, level: Level, stream: &str, pipe: &MemoryOutputPipe) {
    let bytes = pipe.contents();
    for line in String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        log.line(
            level,
            line,
            vec![("stream".to_string(), stream.to_string())],
        );
    }
}

/// Names the limit a trap broke, or says what the trap was.
fn trapped(
    err: &wasmtime::Error,
    memory_hit: bool,
    limits: &Limits,
    stderr: &MemoryOutputPipe,
) -> RunError {
    if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return RunError::Deadline {
            limit: limits.epoch_deadline,
        };
    }
    if err.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
        return RunError::Fuel { limit: limits.fuel };
    }
    if memory_hit {
        return RunError::MemoryCap {
            limit_bytes: limits.memory_bytes,
        };
    }
    if err.downcast_ref::<Trap>() == Some(&Trap::StackOverflow) {
        return RunError::StackOverflow;
    }
    let mut message = match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => err.root_cause().to_string(),
    };
    if let Some(panic) = panic_message(&stderr.contents()) {
        message = format!("{message}; the component panicked: {panic}");
    }
    RunError::Trap { message }
}

/// The panic line Rust's standard library wrote to standard error, if any.
fn panic_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let mut lines = text.lines();
    lines.find(|line| line.contains("panicked at"))?;
    let message = lines.next().unwrap_or_default().trim();
    Some(message.chars().take(500).collect())
}

/// A failure of the host itself to set up a run.
fn host_fault(err: wasmtime::Error) -> RunError {
    RunError::Host {
        message: err.to_string(),
    }
}

/// A readable form of the component's own error.
fn describe(err: &UdfError) -> String {
    match err {
        UdfError::InvalidParams(m) => format!("invalid parameters: {m}"),
        UdfError::InvalidInput(m) => format!("invalid input: {m}"),
        UdfError::Host(m) => format!("gave up after a host call failed: {m}"),
        UdfError::Other(m) => m.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panic_message_is_the_line_after_the_location() {
        let stderr = b"\nthread '<unnamed>' panicked at src/lib.rs:3:5:\nboom\nnote: ...\n";
        assert_eq!(panic_message(stderr).as_deref(), Some("boom"));
        assert_eq!(panic_message(b"nothing here"), None);
    }

    #[test]
    fn only_host_failures_are_transient() {
        let host = RunError::Host {
            message: "pool exhausted".into(),
        };
        assert_eq!(host.class(), FailureClass::Transient);
        let deadline = RunError::Deadline {
            limit: Duration::from_secs(30),
        };
        assert_eq!(deadline.class(), FailureClass::Deterministic);
        assert_eq!(
            deadline.to_string(),
            "component exceeded its epoch deadline of 30s and was interrupted"
        );
        let fuel = RunError::Fuel { limit: 1000 };
        assert_eq!(fuel.class(), FailureClass::Deterministic);
        assert_eq!(
            fuel.to_string(),
            "component ran out of fuel: a call may use at most 1000 units (fuel)"
        );
    }
}
