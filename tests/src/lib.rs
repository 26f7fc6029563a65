//! End-to-end tests over recorded mainnet data.
