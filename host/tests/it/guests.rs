//! Builds (when stale) and reads the guest test components.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// Serialises builds between tests running in parallel.
static BUILD: Mutex<()> = Mutex::new(());

/// A guest component's bytes and its `sha256:<hex>` digest.
pub struct Guest {
    pub bytes: Vec<u8>,
    pub digest: String,
}

/// The component built from `tests/guests/<name>`, rebuilt when stale.
pub fn guest(name: &str) -> Guest {
    let _lock = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let host = Path::new(env!("CARGO_MANIFEST_DIR"));
    let artifact = target_dir()
        .join("wasm32-wasip2/release")
        .join(format!("guest_{name}.wasm"));
    let crate_dir = host.join("tests/guests").join(name);
    let sources = [
        crate_dir.join("src"),
        crate_dir.join("Cargo.toml"),
        host.join("../wit/v0.1.0"),
    ];
    if stale(&artifact, &sources) {
        let status = std::process::Command::new(host.join("build-guests.sh"))
            .env("TRACE_GUEST_TARGET", target_dir())
            .status()
            .expect("build-guests.sh runs");
        assert!(status.success(), "building the guest components failed");
    }
    let bytes = std::fs::read(&artifact).expect("the guest component was built");
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    Guest { bytes, digest }
}

/// A guest kept as a prebuilt component, `tests/guests/<name>/<name>.wasm`,
/// for guests that Rust cannot express (see that directory's `build.sh`).
pub fn prebuilt(name: &str) -> Guest {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/guests")
        .join(name)
        .join(format!("{name}.wasm"));
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading `{}`: {e}", path.display()));
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    Guest { bytes, digest }
}

/// Where the guests are built: `TRACE_GUEST_TARGET`, else `guests` under
/// `CARGO_TARGET_DIR` or the repository's `target`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TRACE_GUEST_TARGET") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("guests")
}

/// Whether `artifact` is missing or older than any of `sources`.
fn stale(artifact: &Path, sources: &[PathBuf]) -> bool {
    let Ok(built) = artifact.metadata().and_then(|m| m.modified()) else {
        return true;
    };
    sources.iter().any(|source| newest(source) > built)
}

/// The newest modification time of a file or of the files in a directory.
fn newest(path: &Path) -> SystemTime {
    let meta = path.metadata().expect("guest sources exist");
    if !meta.is_dir() {
        return meta.modified().expect("mtime");
    }
    std::fs::read_dir(path)
        .expect("readable directory")
        .map(|entry| newest(&entry.expect("entry").path()))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}
