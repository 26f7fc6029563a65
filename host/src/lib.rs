//! The wasmtime embedding that runs Trace user components.
//!
//! This is the only crate that configures wasmtime. Start at [`Host`]: it
//! owns the engine, the linker and a cache of compiled components, loads a
//! component by digest ([`Host::load`]) and runs it over one task
//! ([`Host::run`]) with the [`Capabilities`] the caller provides and the
//! [`Limits`] it sets; a component loaded with [`Host::load_for`] and
//! [`Execution::Deterministic`] runs reproducibly. [`check_component`] is
//! the cheap import check the gateway and the CLI run at publish time and
//! the host again at load time.
//!
//! Each capability of the `trace:udf` world is a module holding its trait and
//! its WIT implementation side by side: [`query`], [`objects`], [`records`]
//! and [`log`]. The worker implements the traits; the host adapts them to
//! the guest and sees each one only through its own slice of the store.
//!
//! Only the WASI interfaces the import check allows are linked, one by one:
//! a component importing `wasi:sockets` or `wasi:http` is refused by
//! [`check_component`] and could not be instantiated anyway.
//!
//! Known shortcomings:
//! - a guest whose shadow stack (in linear memory) overflows traps as an
//!   out-of-bounds access, and is reported as such, not as a stack overflow.
//! - standard output and error are captured up to
//!   [`Limits::max_stdio_bytes`] each; a guest write past that fails in the
//!   guest (a `println!` then panics) rather than being dropped quietly.
//! - the world name in [`ComponentInfo`] is derived from the versions of the
//!   `trace:udf` imports, not read from the component's embedded WIT.

#![deny(missing_docs)]

mod cache;
mod check;
mod determinism;
mod engine;
mod host;
mod limits;
pub mod log;
pub mod objects;
pub mod query;
pub mod records;
mod run;
mod sleep;
mod wit;

pub use check::{CheckError, ComponentInfo, HOST_WIT_VERSION, check_component};
pub use engine::{Execution, HostConfig};
pub use host::{Host, HostError, Loaded};
pub use limits::{Breach, Limits};
pub use log::LogHost;
pub use objects::ObjectsHost;
pub use query::QueryHost;
pub use records::RecordsHost;
pub use run::{Capabilities, RunError, RunOutput, TaskInput, Timing};
