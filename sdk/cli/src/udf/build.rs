//! `trace udf build [DIR]`: the component of a UDF project, built and checked.
//!
//! It runs `cargo build --release --target wasm32-wasip2` in the project,
//! reads cargo's JSON messages to find the `cdylib` artifact (so it works
//! wherever `CARGO_TARGET_DIR` points), and runs the same import check the
//! platform runs at publish and load time. It installs nothing: a missing
//! target is reported with the `rustup` command that adds it. Cargo's
//! rendered diagnostics and progress go to standard error as usual.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::UdfError;

/// The target components are built for.
const TARGET: &str = "wasm32-wasip2";

/// A built component that passed the platform's import check.
#[derive(Debug, Clone)]
pub struct BuiltComponent {
    /// The `.wasm` file cargo wrote.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its digest, `sha256:<hex>`, as the registry names components.
    pub sha256: String,
    /// What the check found: the world, imports and exports.
    pub info: trace_host::ComponentInfo,
}

/// Builds the UDF project in `dir` and checks the component.
///
/// `dir` holds the project's `Cargo.toml`. When it is a workspace with
/// several UDF packages, the build fails with
/// [`UdfError::AmbiguousArtifact`]: build one package's directory instead.
pub fn build_project(dir: &Path) -> Result<BuiltComponent, UdfError> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(UdfError::Io {
            path: manifest,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no Cargo.toml"),
        });
    }
    ensure_target(dir)?;

    let artifacts = cargo_build(dir)?;
    let path = pick_artifact(dir, artifacts)?;

    let bytes = std::fs::read(&path).map_err(UdfError::io(&path))?;
    let info = trace_host::check_component(&bytes).map_err(|source| UdfError::Check {
        path: path.clone(),
        source,
    })?;
    let sha256 = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    Ok(BuiltComponent {
        path,
        size: bytes.len() as u64,
        sha256,
        info,
    })
}

/// A `cdylib` WebAssembly file cargo reported, with its package's manifest.
struct Artifact {
    manifest_path: PathBuf,
    wasm: PathBuf,
}

/// The fields of cargo's JSON messages that the build reads.
#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    manifest_path: Option<PathBuf>,
    #[serde(default)]
    target: Option<MessageTarget>,
    #[serde(default)]
    filenames: Vec<PathBuf>,
}

#[derive(Deserialize)]
struct MessageTarget {
    kind: Vec<String>,
}

/// Fails with the `rustup` hint when the toolchain used in `dir` has no
/// standard library for the component target.
fn ensure_target(dir: &Path) -> Result<(), UdfError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .current_dir(dir)
        .output()
        .map_err(|source| UdfError::Toolchain {
            program: "rustc",
            source,
        })?;
    let libdir = String::from_utf8_lossy(&output.stdout);
    let libdir = Path::new(libdir.trim());
    if !output.status.success() || !libdir.is_dir() {
        return Err(UdfError::TargetMissing);
    }
    Ok(())
}

/// Runs the build and collects the WebAssembly `cdylib` artifacts.
fn cargo_build(dir: &Path) -> Result<Vec<Artifact>, UdfError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(cargo)
        .args(["build", "--release", "--target", TARGET])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| UdfError::Toolchain {
            program: "cargo",
            source,
        })?;

    let mut artifacts = Vec::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(UdfError::io(dir))?;
        let Ok(message) = serde_json::from_str::<Message>(&line) else {
            continue;
        };
        if let Some(artifact) = cdylib_artifact(message) {
            artifacts.push(artifact);
        }
    }

    let status = child.wait().map_err(UdfError::io(dir))?;
    if !status.success() {
        return Err(UdfError::BuildFailed {
            dir: dir.to_path_buf(),
            status,
        });
    }
    Ok(artifacts)
}

/// The WebAssembly file of a `compiler-artifact` message for a `cdylib`.
fn cdylib_artifact(message: Message) -> Option<Artifact> {
    if message.reason != "compiler-artifact" {
        return None;
    }
    if !message.target?.kind.iter().any(|kind| kind == "cdylib") {
        return None;
    }
    let wasm = message
        .filenames
        .into_iter()
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))?;
    Some(Artifact {
        manifest_path: message.manifest_path?,
        wasm,
    })
}

/// The project's own component: the one package whose manifest is
/// `dir/Cargo.toml`, else the only one built.
fn pick_artifact(dir: &Path, mut artifacts: Vec<Artifact>) -> Result<PathBuf, UdfError> {
    let own = dir.join("Cargo.toml").canonicalize().ok();
    let position = artifacts
        .iter()
        .position(|a| own.is_some() && a.manifest_path.canonicalize().ok() == own);
    if let Some(position) = position {
        return Ok(artifacts.swap_remove(position).wasm);
    }
    match artifacts.len() {
        0 => Err(UdfError::NoArtifact(dir.to_path_buf())),
        1 => Ok(artifacts.remove(0).wasm),
        _ => Err(UdfError::AmbiguousArtifact(
            artifacts
                .iter()
                .map(|a| a.wasm.display().to_string())
                .collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::udf::new_project;
    use crate::udf::scratch::Scratch;

    #[test]
    fn a_new_project_builds_into_a_component_that_passes_the_check() {
        let dir = Scratch::new();
        let sdk = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../guest");
        let project = new_project("count-logs", &dir.path().join("count-logs"), &sdk).unwrap();

        let built = build_project(&project).unwrap();

        assert!(
            built
                .path
                .ends_with("wasm32-wasip2/release/count_logs.wasm"),
            "{:?}",
            built.path
        );
        let bytes = std::fs::read(&built.path).unwrap();
        assert_eq!(built.size, bytes.len() as u64);
        assert_eq!(
            built.sha256,
            format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
        );
        assert_eq!(built.info.world, "trace:udf/udf@0.1.0");
        assert!(
            built.info.exports.iter().any(|export| export == "run"),
            "{:?}",
            built.info
        );
        let trace_imports = built
            .info
            .imports
            .iter()
            .filter(|i| i.starts_with("trace:udf/"));
        assert!(trace_imports.count() >= 2, "{:?}", built.info.imports);
    }

    #[test]
    fn a_directory_without_a_manifest_is_refused() {
        let dir = Scratch::new();
        let error = build_project(dir.path()).unwrap_err();
        assert!(matches!(error, UdfError::Io { .. }), "{error}");
    }
}
