//! Integration tests of trace-dev: the whole platform started in-process on
//! ephemeral ports over a private Postgres cluster and the recorded data.

mod it {
    pub mod platform;
}
