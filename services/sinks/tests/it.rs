//! Integration tests of the sinks: real Postgres, the real `PgQueue`, real
//! HTTP on loopback, and values taken from the recorded mainnet logs.

mod it {
    pub mod apply;
    pub mod commits;
    pub mod drain;
    pub mod support;
}
