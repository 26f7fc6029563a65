//! Integration tests of trace-host against real guest components.
//!
//! The guests under `tests/guests/` are built for `wasm32-wasip2` by
//! `build-guests.sh` when missing or older than their sources; see
//! [`guests`].

mod it {
    pub mod caps;
    pub mod check;
    pub mod determinism;
    pub mod guests;
    pub mod hostile;
    pub mod run;
}
