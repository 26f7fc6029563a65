//! `trace udf new NAME`: a new UDF project that builds as it is.
//!
//! The project is a standalone cargo workspace (so that it builds the same
//! inside or outside another workspace) with a `cdylib` crate, a release
//! profile tuned for small components, a dependency on the guest SDK by
//! absolute path, and a `src/lib.rs` that counts the logs of its task's
//! range and publishes one record. The files come from `sdk/cli/templates`.

use std::path::{Path, PathBuf};

use super::UdfError;

const CARGO_TOML: &str = include_str!("../../templates/udf/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("../../templates/udf/lib.rs.tmpl");
const GITIGNORE: &str = include_str!("../../templates/udf/gitignore.tmpl");

/// The longest name accepted, well within crate-name and file-name limits.
const MAX_NAME_LEN: usize = 64;

/// Creates the UDF project `name` in the directory `dir` (created when
/// missing) and returns `dir`.
///
/// `name` must be a crate name: lower-case ASCII letters, digits, `-` and
/// `_`, starting with a letter. `dir` may exist only if it is empty.
/// `sdk_path` is the guest SDK (`sdk/guest` of the Trace repository); the
/// project depends on it by its absolute path.
pub fn new_project(name: &str, dir: &Path, sdk_path: &Path) -> Result<PathBuf, UdfError> {
    validate_name(name)?;
    let sdk = sdk_path
        .canonicalize()
        .ok()
        .filter(|sdk| sdk.join("Cargo.toml").is_file())
        .ok_or_else(|| UdfError::SdkNotFound(sdk_path.to_path_buf()))?;

    let project = dir.to_path_buf();
    if project.exists() {
        let mut entries = std::fs::read_dir(&project).map_err(UdfError::io(&project))?;
        if entries.next().is_some() {
            return Err(UdfError::NotEmpty(project));
        }
    }

    let src = project.join("src");
    std::fs::create_dir_all(&src).map_err(UdfError::io(&src))?;
    let files = [
        (project.join("Cargo.toml"), render(CARGO_TOML, name, &sdk)),
        (src.join("lib.rs"), render(LIB_RS, name, &sdk)),
        (project.join(".gitignore"), GITIGNORE.to_string()),
    ];
    for (path, text) in files {
        std::fs::write(&path, text).map_err(UdfError::io(&path))?;
    }
    Ok(project)
}

/// Checks that `name` is a crate name cargo and the platform both accept.
fn validate_name(name: &str) -> Result<(), UdfError> {
    let invalid = |reason| {
        Err(UdfError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return invalid("it must be 1 to 64 characters long");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return invalid("it must start with a lower-case letter");
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if !name.chars().all(allowed) {
        return invalid("it may hold only lower-case letters, digits, `-` and `_`");
    }
    if matches!(
        name,
        "test" | "core" | "std" | "alloc" | "proc_macro" | "trace_udf" | "trace-udf"
    ) {
        return invalid("it is reserved");
    }
    Ok(())
}

/// Fills a template's `{{name}}`, `{{type_name}}` and `{{sdk_path}}`.
fn render(template: &str, name: &str, sdk: &Path) -> String {
    template
        .replace("{{name}}", name)
        .replace("{{type_name}}", &type_name(name))
        .replace("{{sdk_path}}", &toml_escape(&sdk.to_string_lossy()))
}

/// `my-udf_2` -> `MyUdf2`: the name of the UDF's struct.
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars).collect::<String>()
        })
        .collect()
}

/// Escapes text for a TOML basic string.
fn toml_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::udf::scratch::Scratch;

    fn sdk() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../guest")
    }

    #[test]
    fn names_that_are_not_crate_names_are_refused_with_the_reason() {
        let dir = Scratch::new();
        for name in ["", "Upper", "9lives", "has space", "dots.no", "test"] {
            let error = new_project(name, &dir.path().join("p"), &sdk()).unwrap_err();
            assert!(
                matches!(error, UdfError::InvalidName { .. }),
                "{name}: {error}"
            );
        }
    }

    #[test]
    fn an_existing_non_empty_directory_is_refused() {
        let dir = Scratch::new();
        std::fs::create_dir(dir.path().join("taken")).unwrap();
        std::fs::write(dir.path().join("taken/file"), "x").unwrap();
        let error = new_project("taken", &dir.path().join("taken"), &sdk()).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "`{}` already exists and is not empty",
                dir.path().join("taken").display()
            )
        );
    }

    #[test]
    fn a_missing_sdk_is_refused() {
        let dir = Scratch::new();
        let error = new_project("ok", &dir.path().join("ok"), &dir.path().join("nowhere"));
        let error = error.unwrap_err();
        assert!(matches!(error, UdfError::SdkNotFound(_)));
    }

    #[test]
    fn the_project_names_its_crate_type_and_sdk_path() {
        let dir = Scratch::new();
        std::fs::create_dir(dir.path().join("my-udf")).unwrap();
        let project = new_project("my-udf", &dir.path().join("my-udf"), &sdk()).unwrap();

        assert_eq!(project, dir.path().join("my-udf"));
        let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
        let manifest: toml::Table = manifest.parse().unwrap();
        assert_eq!(manifest["package"]["name"].as_str(), Some("my-udf"));
        assert_eq!(manifest["lib"]["crate-type"][0].as_str(), Some("cdylib"));
        let sdk_dep = manifest["dependencies"]["trace-udf"]["path"]
            .as_str()
            .unwrap();
        assert_eq!(Path::new(sdk_dep), sdk().canonicalize().unwrap());
        let lib = std::fs::read_to_string(project.join("src/lib.rs")).unwrap();
        assert!(lib.contains("trace_udf::export_udf!(MyUdf);"));
    }
}
