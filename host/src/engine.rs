//! The one place a wasmtime [`Engine`] is configured, and its epoch ticker.
//!
//! Every setting below carries the reason it is what it is. The engine uses
//! the pooling allocator, because a task instantiates its component in
//! microseconds from pre-allocated slots, and epoch interruption, because it
//! bounds a call's wall time at a lower cost than fuel; a background thread
//! advances the epoch every [`HostConfig::epoch_tick`].
//!
//! A host has a second engine for [`Execution::Deterministic`] runs: the
//! same settings plus fuel, NaN canonicalisation and deterministic relaxed
//! SIMD. Code compiled for one engine cannot run on the other, so the two
//! keep separate artifacts: their compatibility hashes differ (fuel and
//! relaxed SIMD are tunables, NaN canonicalisation a Cranelift flag, and
//! wasmtime hashes all three), and the disk cache is keyed by that hash.
//!
//! Epoch interruption stays on in the deterministic engine. wasmtime lets
//! both instrumentations live in one engine (each adds its own check), and
//! the epoch callback is what stops a run that is cancelled, broke a host
//! limit (the tripwire) or ran past its wall-time deadline. None of that is
//! visible to a run that completes: the callback only ever continues or
//! interrupts, so a successful run's output depends on fuel alone. Dropping
//! epochs would leave a cancelled deterministic run to burn its whole fuel
//! budget, which is the less safe of the two.

use std::path::PathBuf;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// How a [`Host`](crate::Host) sets up its engine and its artifact cache.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where compiled artifacts are kept across restarts; `None` keeps them
    /// in memory only. Default: `None`, so that a test or a one-off run
    /// leaves nothing behind.
    pub cache_dir: Option<PathBuf>,
    /// How many component instances may be live at once. Default: 16, well
    /// above a worker's task concurrency, so that the pool is never what a
    /// task waits on.
    pub max_instances: u32,
    /// The largest linear memory any instance may have; a run's
    /// [`Limits::memory_bytes`](crate::Limits::memory_bytes) may only lower
    /// it. Default: 256 MiB, enough headroom over the 64 MiB run default.
    pub max_memory_bytes: usize,
    /// How often the epoch advances. Default: 10 ms, so that a deadline
    /// lands within 10 ms of its time while the ticker costs nothing
    /// measurable.
    pub epoch_tick: Duration,
    /// Builds the engine without epoch checks and runs stores without the
    /// memory and table limiter: the baseline against which the benchmark
    /// measures what those limits cost. Only the benchmark enables the
    /// `unbounded-baseline` feature; no service can turn the limits off.
    #[cfg(feature = "unbounded-baseline")]
    pub unbounded: bool,
}

impl HostConfig {
    /// Whether runs are under the epoch deadline and the limiter: always,
    /// unless the benchmark's baseline asked otherwise.
    pub(crate) fn bounded(&self) -> bool {
        #[cfg(feature = "unbounded-baseline")]
        if self.unbounded {
            return false;
        }
        true
    }
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            max_instances: 16,
            max_memory_bytes: 256 << 20,
            epoch_tick: Duration::from_millis(10),
            #[cfg(feature = "unbounded-baseline")]
            unbounded: false,
        }
    }
}

/// How a run executes, which is also which engine compiles its component.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Execution {
    /// Bounded by the epoch deadline; the guest sees the host's clocks and
    /// randomness. What every job gets unless it asks otherwise.
    #[default]
    Normal,
    /// Reproducible: bounded by fuel ([`Limits::fuel`](crate::Limits::fuel))
    /// as well as the deadline, NaNs canonicalised, clocks and random bytes
    /// fixed by the task. Fuel costs a little more per instruction than
    /// epochs (see `docs/benchmarks.md`).
    Deterministic,
}

/// Builds the engine for `config` and `execution`.
pub(crate) fn build(config: &HostConfig, execution: Execution) -> wasmtime::Result<Engine> {
    let instances = config.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    // One component instance per running task.
    pool.total_component_instances(instances);
    // A Rust component holds a handful of core instances (its module plus
    // the small shims that wit-component adds); 16 leaves room for more.
    pool.max_core_instances_per_component(16);
    pool.total_core_instances(instances * 16);
    // Rust guests have one memory and one table; a little slack for shims.
    pool.max_memories_per_component(2);
    pool.total_memories(instances * 2);
    pool.max_tables_per_component(4);
    pool.total_tables(instances * 4);
    // The hard ceiling of every memory; runs set their own lower cap.
    pool.max_memory_size(config.max_memory_bytes);

    let mut wasm = Config::new();
    // User components target the component model and nothing else.
    wasm.wasm_component_model(true);
    // Pre-allocated slots make instantiation take microseconds.
    wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // Bounds a call's wall time at a lower cost than fuel.
    wasm.epoch_interruption(config.bounded());
    // Components are compiled once per digest and cached; optimise them.
    wasm.cranelift_opt_level(OptLevel::Speed);
    // Deep recursion in a guest traps instead of growing without bound.
    wasm.max_wasm_stack(1 << 20);
    if execution == Execution::Deterministic {
        // Counts instructions, so a run stops at the same point every time.
        wasm.consume_fuel(true);
        // Otherwise a NaN's bits depend on the CPU and on how code was
        // compiled, and a guest can read them.
        wasm.cranelift_nan_canonicalization(true);
        // Otherwise relaxed SIMD results may differ between CPUs.
        wasm.relaxed_simd_deterministic(true);
    }
    Engine::new(&wasm)
}

/// Starts the thread that advances the engine's epoch every `tick`.
///
/// The thread holds only a weak reference and ends once the engine and
/// everything compiled with it are dropped.
pub(crate) fn start_ticker(engine: &Engine, tick: Duration) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("trace-host-epoch".to_string())
        .spawn(move || {
            loop {
                std::thread::sleep(tick);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })?;
    Ok(())
}

/// A short, stable text for the engine's artifact compatibility.
///
/// Artifacts written for one engine hash are only ever read back by an
/// engine with the same hash.
pub(crate) fn compatibility_key(engine: &Engine) -> String {
    use std::hash::{Hash, Hasher};

    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_engines_keep_their_artifacts_apart() {
        let config = HostConfig {
            max_instances: 1,
            ..HostConfig::default()
        };
        let normal = build(&config, Execution::Normal).unwrap();
        let deterministic = build(&config, Execution::Deterministic).unwrap();
        let again = build(&config, Execution::Deterministic).unwrap();

        assert_ne!(
            compatibility_key(&normal),
            compatibility_key(&deterministic)
        );
        assert_eq!(compatibility_key(&deterministic), compatibility_key(&again));
        assert!(deterministic.get_consume_fuel() && deterministic.get_epoch_interruption());
        assert!(!normal.get_consume_fuel() && normal.get_epoch_interruption());
    }
}
