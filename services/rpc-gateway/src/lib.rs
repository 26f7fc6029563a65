//! The only way out to chain RPC providers.
