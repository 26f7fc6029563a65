//! Integration tests of the gateway: the real router on loopback HTTP over a
//! fresh, migrated state database and a temporary object store; the job
//! tests put a real dispatcher and the progress routes of the sinks and
//! delivery behind it.

mod it {
    pub mod auth;
    pub mod components;
    pub mod job_control;
    pub mod oidc;
    pub mod platform;
    pub mod support;
    pub mod webhooks;
}
