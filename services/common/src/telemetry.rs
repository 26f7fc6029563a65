//! Installing a tracing subscriber; only binaries call this.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: an env filter from `RUST_LOG` (default
/// `info`), JSON lines when `json` is set, human-readable lines otherwise.
/// Calling it twice is harmless (the second call does nothing).
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.compact().try_init()
    };
}
