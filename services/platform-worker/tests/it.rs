//! Integration tests of the platform worker: the real replay provider behind
//! the real rpc-gateway on loopback, a fresh migrated data database, a
//! temporary object store; expected values computed from the raw files here.

mod it {
    pub mod support;

    mod ingest;
    mod worker;
}
