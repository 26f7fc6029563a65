//! `check_component` over real components and over files that are not ones.

use trace_host::{CheckError, check_component};

use super::guests::guest;

#[test]
fn random_bytes_are_refused_as_not_webassembly() {
    let err = check_component(b"definitely not wasm at all").unwrap_err();
    assert!(matches!(err, CheckError::Malformed(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("the file is not a WebAssembly component"),
        "{err}"
    );
}

#[test]
fn a_core_module_is_refused_as_not_a_component() {
    // The smallest valid core module: magic number and version 1.
    let err = check_component(b"\0asm\x01\0\0\0").unwrap_err();
    assert!(matches!(err, CheckError::CoreModule), "{err:?}");
    assert!(
        err.to_string()
            .contains("core WebAssembly module, not a component"),
        "{err}"
    );
}

#[test]
fn a_component_importing_sockets_is_refused_naming_the_import() {
    let err = check_component(&guest("sockets").bytes).unwrap_err();
    let CheckError::ForbiddenImport(import) = &err else {
        panic!("{err:?}")
    };
    assert!(import.starts_with("wasi:sockets/"), "{import}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("component imports `{import}`")),
        "{text}"
    );
    assert!(
        text.ends_with("which the trace:udf world does not provide"),
        "{text}"
    );
}

#[test]
fn a_udf_component_passes_and_reports_its_world_and_interfaces() {
    let info = check_component(&guest("echo").bytes).unwrap();
    assert_eq!(info.world, "trace:udf/udf@0.1.0");
    assert_eq!(info.exports, vec!["run".to_string()]);
    for interface in ["query", "records", "log"] {
        let name = format!("trace:udf/{interface}@0.1.0");
        assert!(
            info.imports.contains(&name),
            "{name} missing from {:?}",
            info.imports
        );
    }
    assert!(info.imports.iter().all(|i| !i.starts_with("wasi:sockets")));
}
