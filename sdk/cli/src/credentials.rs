//! `<home>/credentials.toml`: the gateway URL and API key `trace dev` wrote.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What the CLI needs to reach the gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The gateway's base URL.
    pub gateway: String,
    /// The API key.
    pub api_key: String,
    /// The local webhook receiver, when `trace dev` runs one.
    #[serde(default)]
    pub receiver: Option<String>,
}

/// Where the credentials of `home` live.
pub fn path(home: &Path) -> PathBuf {
    home.join("credentials.toml")
}

impl Credentials {
    /// Reads `<home>/credentials.toml`.
    pub fn read(home: &Path) -> Result<Self, crate::Error> {
        let path = path(home);
        let text = std::fs::read_to_string(&path).map_err(|source| crate::Error::Io {
            path: path.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| crate::Error::Usage(format!("`{}`: {e}", path.display())))
    }
}
