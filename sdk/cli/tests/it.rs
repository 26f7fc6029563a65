//! Integration tests of the `trace` CLI: its commands run against the whole
//! platform started in-process by trace-dev.

mod it {
    pub mod commands;
}
