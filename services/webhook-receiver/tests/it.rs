//! Integration tests of the webhook receiver over real HTTP on loopback.

mod it {
    pub mod hooks;
}
