//! The on-disk cache of compiled components.
//!
//! Artifacts live at `<dir>/<engine key>/<digest hex>.cwasm`, where the engine
//! key comes from [`Engine::precompile_compatibility_hash`]: a restarted
//! worker with the same engine loads them in well under a millisecond
//! instead of compiling again, and an upgraded engine simply misses. Files are
//! written to a temporary name and renamed, so a reader never sees half a
//! file.

use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of artifacts for one engine.
#[derive(Debug, Clone)]
pub(crate) struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// Opens (creating it) the directory for `engine` under `root`.
    pub(crate) fn open(root: &Path, engine: &Engine) -> std::io::Result<Self> {
        let dir = root.join(crate::engine::compatibility_key(engine));
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// Loads the artifact of `hex`, if one was stored. A file that does not
    /// load is removed and counts as a miss.
    pub(crate) fn get(&self, engine: &Engine, hex: &str) -> Option<Component> {
        let path = self.path(hex);
        if !path.exists() {
            return None;
        }
        match deserialize(engine, &path) {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "dropping unusable artifact");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores the artifact of `hex`.
    pub(crate) fn put(&self, hex: &str, component: &Component) -> Result<(), CacheWriteError> {
        let bytes = component
            .serialize()
            .map_err(|e| CacheWriteError(e.to_string()))?;
        let path = self.path(hex);
        let tmp = self.dir.join(format!(".{hex}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, &bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| CacheWriteError(e.to_string()))
    }

    fn path(&self, hex: &str) -> PathBuf {
        self.dir.join(format!("{hex}.cwasm"))
    }
}

/// An artifact could not be written; the component still runs.
#[derive(Debug, thiserror::Error)]
#[error("could not store the compiled artifact: {0}")]
pub(crate) struct CacheWriteError(String);

/// Loads a compiled artifact from `path`.
///
/// `Component::deserialize_file` trusts the file to be machine code that
/// wasmtime produced: loading attacker-controlled bytes would run them. This
/// is sound here because the only files in this directory are those
/// [`DiskCache::put`] wrote, with this host's own `Component::serialize`,
/// under a subdirectory named for this engine's compatibility hash, in a
/// directory the host's operator gives to it alone; user input never
/// reaches it (users publish components, which are always compiled, never
/// deserialised). wasmtime also checks the file's header against the engine
/// and refuses an artifact built with another configuration.
#[expect(
    unsafe_code,
    reason = "loading artifacts this host compiled and wrote itself"
)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: see the function's documentation: the file was written by this
    // host for this engine, in a directory it owns.
    unsafe { Component::deserialize_file(engine, path) }
}
