//! The [`Host`]: engine, linker and the cache of loaded components.
//!
//! A component is compiled once per digest and engine (or read back from
//! the disk cache) and pre-instantiated once against that engine's linker;
//! every run then only instantiates from that [`Loaded`] handle, which takes
//! microseconds.
//!
//! The host has one engine per [`Execution`]. The deterministic one is built
//! on the first deterministic load, so a worker that never runs such a job
//! reserves no second instance pool and starts no second epoch ticker.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, HasData, HasSelf, Linker};
use wasmtime_wasi::WasiView;

use crate::cache::DiskCache;
use crate::check::{CheckError, ComponentInfo, check_component};
use crate::determinism::{HasSeededRandom, SeededRandom};
use crate::engine::{self, Execution, HostConfig};
use crate::log::HasLog;
use crate::objects::HasObjects;
use crate::query::HasQuery;
use crate::records::HasRecords;
use crate::run::State;
use crate::sleep::{CappedClock, HasCappedClock};
use crate::wit::{self, UdfPre};

/// Runs components; share one per process (it is `Send + Sync`).
pub struct Host {
    pub(crate) config: HostConfig,
    normal: Runtime,
    /// Built on first use, under `building`.
    deterministic: OnceLock<Runtime>,
    building: Mutex<()>,
    loaded: Mutex<HashMap<LoadKey, Loaded>>,
    /// One lock per digest and engine being loaded, so that tasks of one
    /// component that start together compile it once rather than once each.
    loading: Mutex<HashMap<LoadKey, Arc<Mutex<()>>>>,
}

/// A component as loaded for one engine: the execution and the digest.
type LoadKey = (Execution, String);

/// An engine with its linker and its artifact directory.
struct Runtime {
    engine: Engine,
    linker: Linker<State>,
    disk: Option<DiskCache>,
}

/// A component ready to run: checked, compiled and pre-instantiated.
#[derive(Clone)]
pub struct Loaded {
    inner: Arc<LoadedInner>,
}

struct LoadedInner {
    digest: String,
    info: ComponentInfo,
    execution: Execution,
    engine: Engine,
    pre: UdfPre<State>,
}

impl Loaded {
    /// The `sha256:<hex>` digest of the component's bytes.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// What [`check_component`] found in the component.
    pub fn info(&self) -> &ComponentInfo {
        &self.inner.info
    }

    /// How runs of this handle execute; it was compiled for that engine.
    pub fn execution(&self) -> Execution {
        self.inner.execution
    }

    pub(crate) fn pre(&self) -> &UdfPre<State> {
        &self.inner.pre
    }

    /// The engine the component was compiled for, which its stores use.
    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("digest", &self.inner.digest)
            .field("execution", &self.inner.execution)
            .finish_non_exhaustive()
    }
}

/// Why the host could not be built or a component not loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The engine or linker could not be set up.
    #[error("could not set up the wasmtime engine: {0}")]
    Engine(String),
    /// The artifact cache directory could not be opened.
    #[error("could not open the artifact cache `{path}`")]
    CacheDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The digest is not of the form `sha256:<64 hex digits>`.
    #[error("`{0}` is not a digest of the form `sha256:<hex>`")]
    BadDigest(String),
    /// The bytes do not hash to the digest they were loaded under.
    #[error("component bytes hash to `{actual}`, not to the expected `{expected}`")]
    DigestMismatch {
        /// The digest asked for.
        expected: String,
        /// The digest of the bytes.
        actual: String,
    },
    /// The component failed the import check.
    #[error("component `{digest}` was refused")]
    Refused {
        /// The component's digest.
        digest: String,
        /// What the check found.
        #[source]
        source: CheckError,
    },
    /// The component passed the check but did not compile or link.
    #[error("component `{digest}` could not be compiled: {message}")]
    Compile {
        /// The component's digest.
        digest: String,
        /// What wasmtime said.
        message: String,
    },
}

impl HostError {
    /// Whether loading again could work: only engine and cache faults are
    /// transient; a bad or refused component stays refused.
    pub fn class(&self) -> trace_common::api::FailureClass {
        use trace_common::api::FailureClass;
        match self {
            Self::Engine(_) | Self::CacheDir { .. } => FailureClass::Transient,
            _ => FailureClass::Deterministic,
        }
    }
}

impl Host {
    /// Builds the engine, starts its epoch ticker and links the world; the
    /// deterministic engine waits for the first deterministic load.
    pub fn new(config: HostConfig) -> Result<Host, HostError> {
        let normal = Runtime::new(&config, Execution::Normal)?;
        Ok(Host {
            config,
            normal,
            deterministic: OnceLock::new(),
            building: Mutex::new(()),
            loaded: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
        })
    }

    /// Loads the component `bytes` published under `digest` for normal
    /// runs; see [`Host::load_for`].
    pub fn load(&self, digest: &str, bytes: &[u8]) -> Result<Loaded, HostError> {
        self.load_for(digest, bytes, Execution::Normal)
    }

    /// Loads the component `bytes` published under `digest` for runs that
    /// execute as `execution`.
    ///
    /// Checks that the bytes hash to the digest and pass
    /// [`check_component`], then takes the compiled component from memory,
    /// from the disk cache, or compiles it (and stores the artifact), for
    /// that execution's engine: a component used both ways is compiled
    /// twice, once per engine, and never more.
    pub fn load_for(
        &self,
        digest: &str,
        bytes: &[u8],
        execution: Execution,
    ) -> Result<Loaded, HostError> {
        let hex = digest_hex(digest)?;
        let key = (execution, digest.to_string());
        if let Some(loaded) = self.cached(&key) {
            return Ok(loaded);
        }
        let gate = {
            let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(loading.entry(key.clone()).or_default())
        };
        let _turn = gate.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(loaded) = self.cached(&key) {
            return Ok(loaded);
        }
        let actual = hex::encode(Sha256::digest(bytes));
        if actual != hex {
            return Err(HostError::DigestMismatch {
                expected: digest.to_string(),
                actual: format!("sha256:{actual}"),
            });
        }
        let info = check_component(bytes).map_err(|source| HostError::Refused {
            digest: digest.to_string(),
            source,
        })?;
        let runtime = self.runtime(execution)?;
        let component = runtime.compile(digest, hex, bytes)?;
        let compile_err = |e: wasmtime::Error| HostError::Compile {
            digest: digest.to_string(),
            message: e.to_string(),
        };
        let instance_pre = runtime
            .linker
            .instantiate_pre(&component)
            .map_err(compile_err)?;
        let pre = UdfPre::new(instance_pre).map_err(compile_err)?;
        let loaded = Loaded {
            inner: Arc::new(LoadedInner {
                digest: digest.to_string(),
                info,
                execution,
                engine: runtime.engine.clone(),
                pre,
            }),
        };
        self.loaded_map().insert(key, loaded.clone());
        Ok(loaded)
    }

    /// The runtime of `execution`, building the deterministic one on first
    /// use.
    fn runtime(&self, execution: Execution) -> Result<&Runtime, HostError> {
        if execution == Execution::Normal {
            return Ok(&self.normal);
        }
        if let Some(runtime) = self.deterministic.get() {
            return Ok(runtime);
        }
        let _building = self.building.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(runtime) = self.deterministic.get() {
            return Ok(runtime);
        }
        let runtime = Runtime::new(&self.config, execution)?;
        tracing::info!("deterministic engine built");
        Ok(self.deterministic.get_or_init(|| runtime))
    }

    fn cached(&self, key: &LoadKey) -> Option<Loaded> {
        self.loaded_map().get(key).cloned()
    }

    fn loaded_map(&self) -> std::sync::MutexGuard<'_, HashMap<LoadKey, Loaded>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Runtime {
    /// The engine of `execution` with its ticker, linker and artifact
    /// directory.
    fn new(config: &HostConfig, execution: Execution) -> Result<Runtime, HostError> {
        let engine_err = |e: wasmtime::Error| HostError::Engine(e.to_string());
        let engine = engine::build(config, execution).map_err(engine_err)?;
        engine::start_ticker(&engine, config.epoch_tick)
            .map_err(|e| HostError::Engine(e.to_string()))?;
        let linker = link(&engine, execution).map_err(engine_err)?;
        let disk = match &config.cache_dir {
            Some(path) => {
                Some(
                    DiskCache::open(path, &engine).map_err(|source| HostError::CacheDir {
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        Ok(Runtime {
            engine,
            linker,
            disk,
        })
    }

    /// The compiled component, from the disk cache or freshly compiled.
    fn compile(&self, digest: &str, hex: &str, bytes: &[u8]) -> Result<Component, HostError> {
        if let Some(component) = self.disk.as_ref().and_then(|d| d.get(&self.engine, hex)) {
            tracing::debug!(digest, "component loaded from the artifact cache");
            return Ok(component);
        }
        let started = std::time::Instant::now();
        let component = Component::new(&self.engine, bytes).map_err(|e| HostError::Compile {
            digest: digest.to_string(),
            message: e.to_string(),
        })?;
        tracing::info!(
            digest,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compiled"
        );
        if let Some(disk) = &self.disk
            && let Err(err) = disk.put(hex, &component)
        {
            tracing::warn!(digest, error = %err, "artifact not cached");
        }
        Ok(component)
    }
}

/// Links exactly the WASI interfaces [`check_component`] allows and the
/// `trace:udf` interfaces, each through its own slice of the store.
///
/// Nothing else is linked: no `wasi:sockets`, no `wasi:http`, so a
/// component importing them could not be instantiated even if it got past
/// the import check. The WASI context behind these interfaces is empty (see
/// `run::new_state`). A deterministic linker takes `wasi:random` from the
/// store's seeded streams instead of the host's generators (see
/// `determinism`).
fn link(engine: &Engine, execution: Execution) -> wasmtime::Result<Linker<State>> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sync};
    use wasmtime_wasi::random::{WasiRandom, WasiRandomView};

    let mut linker = Linker::new(engine);
    let l = &mut linker;
    sync::io::error::add_to_linker::<State, HasTable>(l, |s| s.ctx().table)?;
    sync::io::poll::add_to_linker::<State, HasTable>(l, |s| s.ctx().table)?;
    sync::io::streams::add_to_linker::<State, HasTable>(l, |s| s.ctx().table)?;
    clocks::wall_clock::add_to_linker::<State, WasiClocks>(l, State::clocks)?;
    clocks::monotonic_clock::add_to_linker::<State, HasCappedClock>(l, |s| {
        let ends = s.call_ends;
        CappedClock {
            clocks: s.clocks(),
            ends,
        }
    })?;
    match execution {
        Execution::Normal => {
            random::random::add_to_linker::<State, WasiRandom>(l, State::random)?;
            random::insecure::add_to_linker::<State, WasiRandom>(l, State::random)?;
            random::insecure_seed::add_to_linker::<State, WasiRandom>(l, State::random)?;
        }
        Execution::Deterministic => {
            random::random::add_to_linker::<State, HasSeededRandom>(l, seeded)?;
            random::insecure::add_to_linker::<State, HasSeededRandom>(l, seeded)?;
            random::insecure_seed::add_to_linker::<State, HasSeededRandom>(l, seeded)?;
        }
    }
    cli::environment::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::exit::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::stdin::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::stdout::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::stderr::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::terminal_input::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::terminal_output::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::terminal_stdin::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::terminal_stdout::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::terminal_stderr::add_to_linker::<State, WasiCli>(l, State::cli)?;
    sync::filesystem::types::add_to_linker::<State, WasiFilesystem>(l, State::filesystem)?;
    filesystem::preopens::add_to_linker::<State, WasiFilesystem>(l, State::filesystem)?;
    wit::types::add_to_linker::<State, HasSelf<State>>(&mut linker, |state| state)?;
    wit::query::add_to_linker::<State, HasQuery>(&mut linker, |state| &mut state.query)?;
    wit::objects::add_to_linker::<State, HasObjects>(&mut linker, |state| &mut state.objects)?;
    wit::records::add_to_linker::<State, HasRecords>(&mut linker, |state| &mut state.records)?;
    wit::log::add_to_linker::<State, HasLog>(&mut linker, |state| &mut state.log)?;
    Ok(linker)
}

/// The store's seeded random streams, for the deterministic linker.
fn seeded(state: &mut State) -> &mut SeededRandom {
    &mut state.seeded
}

/// Projects the store onto its resource table for the `wasi:io` bindings.
struct HasTable;

impl HasData for HasTable {
    type Data<'a> = &'a mut wasmtime::component::ResourceTable;
}

/// The hex part of a `sha256:<hex>` digest.
fn digest_hex(digest: &str) -> Result<&str, HostError> {
    let bad = || HostError::BadDigest(digest.to_string());
    let hex = digest.strip_prefix("sha256:").ok_or_else(bad)?;
    let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if valid { Ok(hex) } else { Err(bad()) }
}
