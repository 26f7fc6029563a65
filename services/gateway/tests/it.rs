//! Integration tests of the gateway: the real router on loopback HTTP over a
//! fresh, migrated state database and a temporary object store.

mod it {
    pub mod auth;
    pub mod components;
    pub mod support;
    pub mod webhooks;
}
