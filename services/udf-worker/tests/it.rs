//! Integration tests of the UDF worker: real dispatcher, broker, query
//! service and Postgres in one process, on loopback ports, running the
//! trace-host guest components.

mod it {
    pub mod aws;
    pub mod determinism;
    pub mod hostile;
    pub mod pipeline;
    pub mod support;
}
