//! Support for the end-to-end tests: where the recorded mainnet data is, and
//! expected values computed straight from its JSON.
//!
//! Nothing here shares code with the platform: the expected values of the
//! end-to-end tests come from reading the recorded files with `serde_json`
//! and summing with `num-bigint`, not from the ingest, the SDK or the UDF.

pub mod expected;

use std::path::PathBuf;

/// The recorded mainnet data: `TRACE_DATA_DIR`, or `../shared/data/mainnet`
/// beside the repository.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("TRACE_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("../shared/data/mainnet"),
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
