//! `trace udf publish`: build the project, then PUT its component.

use std::path::{Path, PathBuf};

use trace_common::api::ComponentVersion;

use crate::{Cli, Error};

/// Arguments of `trace udf publish`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The component name (default: the package name, `_` as `-`).
    #[arg(long)]
    pub name: Option<String>,
    /// The version (default: the package version).
    #[arg(long)]
    pub version: Option<String>,
}

pub(super) async fn run(cli: &Cli, args: &PublishArgs) -> Result<(), Error> {
    let client = cli.client()?;
    let (package, package_version) = package_of(&args.dir)?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| package.replace('_', "-"));
    let version = args.version.clone().unwrap_or(package_version);

    let dir = args.dir.clone();
    let built = super::blocking(move || crate::udf::build_project(&dir)).await?;
    let bytes = std::fs::read(&built.path).map_err(|source| Error::Io {
        path: built.path.clone(),
        source,
    })?;

    let path = format!("/v1/components/{name}/{version}");
    let published: ComponentVersion = client.put_bytes(&path, bytes).await?;
    crate::outln!(
        "published {}@{} {}",
        published.name,
        published.version,
        published.digest
    );
    Ok(())
}

/// The `[package]` name and version of `dir/Cargo.toml`.
fn package_of(dir: &Path) -> Result<(String, String), Error> {
    let path = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let manifest: toml::Value =
        toml::from_str(&text).map_err(|e| Error::Usage(format!("`{}`: {e}", path.display())))?;
    let field = |key: &str| {
        manifest
            .get("package")
            .and_then(|p| p.get(key))
            .and_then(|v| v.as_str())
            .map(String::from)
    };
    match (field("name"), field("version")) {
        (Some(name), Some(version)) => Ok((name, version)),
        _ => Err(Error::Usage(format!(
            "`{}` has no [package] name and version; pass --name and --version",
            path.display()
        ))),
    }
}
