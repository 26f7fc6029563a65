//! `trace udf new` and `trace udf build`: scaffolding a UDF project and
//! building it into a checked WebAssembly component.
//!
//! The CLI's argument parsing calls [`new_project`] and [`build_project`];
//! both are plain functions so that tests and `trace dev` can use them too.

mod build;
mod new;

use std::path::PathBuf;

pub use build::{BuiltComponent, build_project};
pub use new::new_project;

/// Why scaffolding or building a UDF failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UdfError {
    /// The project name is not a valid crate name.
    #[error("invalid UDF name `{name}`: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The project directory exists and is not empty.
    #[error("`{0}` already exists and is not empty")]
    NotEmpty(PathBuf),
    /// The guest SDK was not found where it was said to be.
    #[error(
        "no trace-udf SDK at `{0}` (expected its Cargo.toml there); run from the repository \
         root or pass --sdk <repo>/sdk/guest (or set TRACE_SDK_PATH)"
    )]
    SdkNotFound(PathBuf),
    /// Reading or writing a file failed.
    #[error("failed to access `{path}`")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// `cargo` (or `rustc`) could not be started.
    #[error("failed to run `{program}`; is the Rust toolchain installed?")]
    Toolchain {
        /// The program that could not be started.
        program: &'static str,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// The toolchain has no standard library for the component target.
    #[error("the `wasm32-wasip2` target is not installed; run `rustup target add wasm32-wasip2`")]
    TargetMissing,
    /// `cargo build` failed; its diagnostics were printed above.
    #[error("`cargo build` failed in `{dir}` ({status})")]
    BuildFailed {
        /// The project directory.
        dir: PathBuf,
        /// How cargo exited.
        status: std::process::ExitStatus,
    },
    /// The build produced no `cdylib` WebAssembly artifact.
    #[error(
        "the build in `{0}` produced no component; does Cargo.toml say \
         `crate-type = [\"cdylib\"]`?"
    )]
    NoArtifact(PathBuf),
    /// The build produced several components and none is the directory's own package.
    #[error(
        "the build produced several components ({}); build one package's directory",
        .0.join(", ")
    )]
    AmbiguousArtifact(Vec<String>),
    /// The built file is not a component the platform would accept.
    #[error("`{path}` is not a component Trace can run")]
    Check {
        /// The built file.
        path: PathBuf,
        /// What the check refused.
        #[source]
        source: trace_host::CheckError,
    },
}

impl UdfError {
    fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> UdfError {
        let path = path.into();
        move |source| UdfError::Io { path, source }
    }
}

#[cfg(test)]
pub(crate) mod scratch {
    //! Temporary directories for the tests of this module.

    use std::path::{Path, PathBuf};

    /// A fresh directory under the system's temporary directory, removed on
    /// drop (the crate has no tempfile dependency).
    pub(crate) struct Scratch(PathBuf);

    impl Scratch {
        pub(crate) fn new() -> Scratch {
            let path = std::env::temp_dir().join(format!("trace-udf-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path).unwrap();
            Scratch(path)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
