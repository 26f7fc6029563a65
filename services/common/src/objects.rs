//! Platform object storage: components, the Parquet lake, task scratch.
//!
//! Services hold an `Arc<dyn ObjectStore>`: a local directory by default,
//! or an S3 bucket ([`s3`]) when `TRACE_OBJECTS_BUCKET` names one ([`open`]).
//! Keys used by the platform:
//! - `components/sha256/<hex>`: component bytes by digest;
//! - `lake/chain=<id>/<table>/<from>-<to>.parquet`: the Parquet lake;
//! - `scratch/<tenant>/<job>/<task>/...`: task-scoped user objects;
//! - `claims/<queue>/<uuid>`: queue message bodies too large for SQS.

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

pub mod s3;

/// A failure to open the configured object store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The local directory could not be created or opened.
    #[error("cannot open the object directory `{path}`")]
    Local {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bucket could not be reached with the SDK's settings.
    #[error("cannot reach the objects bucket `{bucket}`: {message}")]
    Bucket { bucket: String, message: String },
}

/// The object store a service is configured with: the bucket when one is
/// named (checked with `HeadBucket`, so a wrong name or missing permission
/// stops the service at start rather than at its first task), else the
/// local directory `dir`.
pub async fn open(dir: &Path, bucket: Option<&str>) -> Result<Arc<dyn ObjectStore>, OpenError> {
    let Some(bucket) = bucket else {
        return local(dir).map_err(|source| OpenError::Local {
            path: dir.to_path_buf(),
            source,
        });
    };
    let sdk = crate::aws::sdk_config().await;
    let store = s3::S3Store::new(&sdk, bucket);
    store.check().await.map_err(|message| OpenError::Bucket {
        bucket: bucket.to_string(),
        message,
    })?;
    tracing::info!(bucket, "objects in s3");
    Ok(Arc::new(store))
}

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
