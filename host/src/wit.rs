//! Host bindings generated from the `trace:udf` WIT package.
//!
//! The bindings are synchronous: the worker runs each component on a blocking
//! thread, and host calls block that thread while they do their I/O. Host
//! functions cannot trap; every expected failure is an error value in the
//! interface, and only broken limits trap (memory, epoch deadline).

wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "trace:udf/udf",
});

pub use trace::udf::{log, objects, query, records, types};
