//! The import check a component must pass before it is published or run.
//!
//! The check reads only the component's top-level import and export
//! sections, skipping the core modules nested in it, so it costs far less
//! than compiling. The gateway runs it at publish, `trace udf build` runs it
//! on the freshly built file, and the host runs it again at load, so a
//! component that reaches for anything outside the `trace:udf` world never
//! gets linked.

use wasmparser::{Chunk, ComponentExternalKind, ComponentTypeRef, Encoding, Parser, Payload};

/// The version of the `trace:udf` WIT package this host implements.
pub const HOST_WIT_VERSION: &str = "0.1.0";

/// The name of the function every component exports.
const RUN_EXPORT: &str = "run";

/// The `trace:udf` interfaces a component may import.
const UDF_INTERFACES: &[&str] = &["types", "query", "objects", "records", "log"];

/// The WASI 0.2 interfaces the Rust standard library links, all provided
/// empty by the host.
const WASI_INTERFACES: &[&str] = &[
    "wasi:io/error",
    "wasi:io/streams",
    "wasi:io/poll",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
];

/// What the check learnt about a component that passed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    /// The world the component targets, such as `trace:udf/udf@0.1.0`.
    pub world: String,
    /// Every top-level interface or function import, as named in the
    /// component; type imports are left out.
    pub imports: Vec<String>,
    /// Every top-level export, as named in the component.
    pub exports: Vec<String>,
}

/// Why a file is not a component this host can run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The bytes do not parse as WebAssembly at all.
    #[error("the file is not a WebAssembly component: {0}")]
    Malformed(String),
    /// The bytes are a core WebAssembly module, not a component.
    #[error(
        "the file is a core WebAssembly module, not a component; build it for \
         `wasm32-wasip2` so that it comes out as a component"
    )]
    CoreModule,
    /// The component imports an interface the world does not provide.
    #[error("component imports `{0}`, which the trace:udf world does not provide")]
    ForbiddenImport(String),
    /// The component targets a `trace:udf` version this host cannot run.
    #[error(
        "component targets trace:udf@{found} (import `{import}`), but this host supports \
         trace:udf@{HOST_WIT_VERSION} and its compatible versions"
    )]
    UnsupportedVersion {
        /// The import that names the version.
        import: String,
        /// The version the component targets.
        found: String,
    },
    /// The component does not export the `run` entry point.
    #[error("component does not export the function `run` of the trace:udf world")]
    MissingRun,
}

/// Checks that `bytes` are a component the host may run and says what it
/// imports and exports.
pub fn check_component(bytes: &[u8]) -> Result<ComponentInfo, CheckError> {
    let (imports, exports) = top_level_names(bytes)?;
    let mut world_version = None;
    for import in &imports {
        if let Some(version) = check_import(import)? {
            world_version.get_or_insert(version);
        }
    }
    if !exports
        .iter()
        .any(|(name, kind)| name == RUN_EXPORT && *kind == ExportKind::Func)
    {
        return Err(CheckError::MissingRun);
    }
    let version = world_version.unwrap_or_else(|| HOST_WIT_VERSION.to_string());
    Ok(ComponentInfo {
        world: format!("trace:udf/udf@{version}"),
        imports,
        exports: exports.into_iter().map(|(name, _)| name).collect(),
    })
}

/// Whether an export is a function or something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExportKind {
    Func,
    Other,
}

/// A component's own import names and its exports with their kinds.
type TopLevel = (Vec<String>, Vec<(String, ExportKind)>);

/// Reads the names of the component's own imports and exports.
fn top_level_names(mut bytes: &[u8]) -> Result<TopLevel, CheckError> {
    let malformed = |err: wasmparser::BinaryReaderError| CheckError::Malformed(err.to_string());
    let mut parser = Parser::new(0);
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    loop {
        let (consumed, payload) = match parser.parse(bytes, true).map_err(malformed)? {
            Chunk::Parsed { consumed, payload } => (consumed, payload),
            Chunk::NeedMoreData(_) => {
                return Err(CheckError::Malformed("the file ends early".to_string()));
            }
        };
        bytes = &bytes[consumed..];
        match payload {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } => {
                return Err(CheckError::CoreModule);
            }
            Payload::ModuleSection {
                unchecked_range, ..
            }
            | Payload::ComponentSection {
                unchecked_range, ..
            } => {
                // The parser has already stepped over the nested module;
                // only the data still holds it.
                let len = unchecked_range.len().min(bytes.len());
                bytes = &bytes[len..];
            }
            Payload::ComponentImportSection(reader) => {
                for import in reader {
                    let import = import.map_err(malformed)?;
                    // Type imports (the world's `use`d types) grant nothing.
                    if !matches!(import.ty, ComponentTypeRef::Type(_)) {
                        imports.push(import.name.name.to_string());
                    }
                }
            }
            Payload::ComponentExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(malformed)?;
                    let kind = match export.kind {
                        ComponentExternalKind::Func => ExportKind::Func,
                        _ => ExportKind::Other,
                    };
                    exports.push((export.name.name.to_string(), kind));
                }
            }
            Payload::End(_) => return Ok((imports, exports)),
            _ => {}
        }
    }
}

/// Checks one import; answers the `trace:udf` version it names, if any.
fn check_import(import: &str) -> Result<Option<String>, CheckError> {
    let (path, version) = match import.split_once('@') {
        Some((path, version)) => (path, Some(version)),
        None => (import, None),
    };
    let forbidden = || CheckError::ForbiddenImport(import.to_string());

    if let Some(interface) = path.strip_prefix("trace:udf/") {
        if !UDF_INTERFACES.contains(&interface) {
            return Err(forbidden());
        }
        let version = version.ok_or_else(forbidden)?;
        if !compatible(version, HOST_WIT_VERSION) {
            return Err(CheckError::UnsupportedVersion {
                import: import.to_string(),
                found: version.to_string(),
            });
        }
        return Ok(Some(version.to_string()));
    }

    let wasi_ok = WASI_INTERFACES.contains(&path) && version.is_some_and(|v| v.starts_with("0.2."));
    if wasi_ok { Ok(None) } else { Err(forbidden()) }
}

/// Whether `found` is semver-compatible with `supported`: the same major
/// version, or for `0.x` the same minor version.
fn compatible(found: &str, supported: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split(['.', '-', '+']);
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    match (parse(found), parse(supported)) {
        (Some((0, found_minor)), Some((0, minor))) => found_minor == minor,
        (Some((found_major, _)), Some((major, _))) => found_major == major,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udf_imports_of_the_supported_minor_version_pass() {
        assert_eq!(
            check_import("trace:udf/query@0.1.3").unwrap(),
            Some("0.1.3".into())
        );
        assert_eq!(check_import("wasi:io/streams@0.2.6").unwrap(), None);
    }

    #[test]
    fn imports_outside_the_world_are_refused_by_name() {
        let err = check_import("wasi:sockets/tcp@0.2.0").unwrap_err();
        assert_eq!(
            err.to_string(),
            "component imports `wasi:sockets/tcp@0.2.0`, which the trace:udf world does not provide"
        );
        assert!(check_import("trace:udf/secrets@0.1.0").is_err());
        assert!(check_import("wasi:io/streams@0.3.0").is_err());
    }

    #[test]
    fn another_version_of_the_world_is_named_in_the_refusal() {
        let err = check_import("trace:udf/query@1.0.0").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("trace:udf@1.0.0"), "{text}");
        assert!(text.contains("supports trace:udf@0.1.0"), "{text}");
        assert!(check_import("trace:udf/query@0.2.0").is_err());
    }
}
