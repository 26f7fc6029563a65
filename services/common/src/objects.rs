//! Platform object storage: components, the Parquet lake, task scratch.
//!
//! Services hold an `Arc<dyn ObjectStore>`; the embedded default is a local
//! directory. Keys used by the platform:
//! - `components/sha256/<hex>`: component bytes by digest;
//! - `lake/chain=<id>/<table>/<from>-<to>.parquet`: the Parquet lake;
//! - `scratch/<tenant>/<job>/<task>/...`: task-scoped user objects.

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

/// Opens (creating it if needed) a local directory as the object store.
pub fn local(root: &Path) -> std::io::Result<Arc<dyn ObjectStore>> {
    std::fs::create_dir_all(root)?;
    let store =
        LocalFileSystem::new_with_prefix(root).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(Arc::new(store))
}

/// The key of a component's bytes, from its `sha256:<hex>` digest.
pub fn component_key(digest: &str) -> String {
    format!("components/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// The prefix of a lake table for a chain.
pub fn lake_prefix(chain_id: u64, table: &str) -> String {
    format!("lake/chain={chain_id}/{table}")
}
