//! Integration tests of the `trace` CLI: its commands run against the whole
//! platform started in-process by trace-dev.

mod it {
    pub mod commands;
    pub mod job_control;
    pub mod support;
}
