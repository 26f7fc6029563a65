//! The wasmtime embedding that runs Trace user components.
