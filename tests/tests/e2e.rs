//! End-to-end tests: the whole platform over the recorded mainnet data.
//!
//! One test binary with modules, so the platform's crates link once.

mod e2e {
    pub mod client;
    pub mod collector;
    pub mod mainnet_job;
    pub mod processes;
}
