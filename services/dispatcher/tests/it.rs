//! Integration tests of the dispatcher: real Postgres, real HTTP on loopback.

mod it {
    pub mod jobs;
    pub mod leases;
    pub mod lifecycle;
    pub mod queue;
    pub mod reports;
    pub mod support;
    pub mod worker;
}
