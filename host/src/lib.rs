//! The wasmtime embedding that runs Trace user components.
//!
//! This is the only crate that configures wasmtime. Start at [`Host`]: it
//! owns the engine, the linker and a cache of compiled components, loads a
//! component by digest ([`Host::load`]) and runs it over one task
//! ([`Host::run`]) with the [`Capabilities`] the caller provides and the
//! [`Limits`] it sets. [`check_component`] is the cheap import check the
//! gateway and the CLI run at publish time and the host again at load time.
//!
//! Each capability of the `trace:udf` world is a module holding its trait and
//! its WIT implementation side by side: [`query`], [`objects`], [`records`]
//! and [`log`]. The worker implements the traits; the host adapts them to
//! the guest and sees each one only through its own slice of the store.
//!
//! Known shortcomings:
//! - all of WASI 0.2 is linked, `wasi:sockets` included; a component that
//!   imports sockets never gets that far, since [`check_component`] refuses
//!   it at load, and the WASI context grants no network anyway. Linking only
//!   the allowed interfaces one by one would make the refusal structural.
//! - standard output and error are captured up to
//!   [`Limits::max_stdio_bytes`] each; a guest write past that fails in the
//!   guest (a `println!` then panics) rather than being dropped quietly.
//! - the world name in [`ComponentInfo`] is derived from the versions of the
//!   `trace:udf` imports, not read from the component's embedded WIT.

#![deny(missing_docs)]

mod cache;
mod check;
mod engine;
mod host;
mod limits;
pub mod log;
pub mod objects;
pub mod query;
pub mod records;
mod run;
mod wit;

pub use check::{CheckError, ComponentInfo, HOST_WIT_VERSION, check_component};
pub use engine::HostConfig;
pub use host::{Host, HostError, Loaded};
pub use limits::Limits;
pub use log::LogHost;
pub use objects::ObjectsHost;
pub use query::QueryHost;
pub use records::RecordsHost;
pub use run::{Capabilities, RunError, RunOutput, TaskInput, Timing};
