//! Object keys as a task names them, checked and mapped under its prefix.
//!
//! A key is relative to the task's scope. It must be 1 to 512 bytes, hold no
//! control characters or backslashes, not start with `/`, and have no empty,
//! `.` or `..` segment, so that no key can name anything outside
//! `scratch/<tenant>/<job>/<task>/` once joined to it. The host checks keys
//! before they leave the sandbox and the broker again before it maps them,
//! by these same rules.

/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is empty.
    #[error("the key is empty")]
    Empty,
    /// The key is longer than [`MAX_KEY_BYTES`].
    #[error("the key is `{0}` bytes long; at most 512 are allowed")]
    TooLong(usize),
    /// The key holds a control character or a backslash.
    #[error("the key holds a control character or a backslash")]
    BadCharacter,
    /// The key starts with `/`.
    #[error("the key starts with `/`")]
    Absolute,
    /// The key has an empty, `.` or `..` segment.
    #[error("the key has an empty, `.` or `..` segment")]
    BadSegment,
}

/// Checks a key.
pub fn check_key(key: &str) -> Result<(), KeyError> {
    check_text(key)?;
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key
        .split('/')
        .any(|segment| matches!(segment, "" | "." | ".."))
    {
        return Err(KeyError::BadSegment);
    }
    Ok(())
}

/// Checks a list prefix: like a key, but it may be empty or end with `/`;
/// it matches keys as a string prefix (`logs/20` matches `logs/2024`).
pub fn check_prefix(prefix: &str) -> Result<(), KeyError> {
    if prefix.is_empty() {
        return Ok(());
    }
    check_text(prefix)?;
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed.is_empty()
        || trimmed
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(KeyError::BadSegment);
    }
    Ok(())
}

fn check_text(key: &str) -> Result<(), KeyError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(KeyError::TooLong(key.len()));
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return Err(KeyError::BadCharacter);
    }
    if key.starts_with('/') {
        return Err(KeyError::Absolute);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_keys_are_accepted() {
        for key in [
            "a",
            "state.json",
            "logs/2024/01.txt",
            "a..b",
            ".hidden",
            "ü/ñ",
        ] {
            assert_eq!(check_key(key), Ok(()), "{key}");
        }
    }

    #[test]
    fn keys_that_could_leave_the_scope_are_refused() {
        assert_eq!(check_key(""), Err(KeyError::Empty));
        assert_eq!(check_key("/etc/passwd"), Err(KeyError::Absolute));
        assert_eq!(check_key("../other"), Err(KeyError::BadSegment));
        assert_eq!(check_key("a/../../b"), Err(KeyError::BadSegment));
        assert_eq!(check_key("a/./b"), Err(KeyError::BadSegment));
        assert_eq!(check_key("a//b"), Err(KeyError::BadSegment));
        assert_eq!(check_key("a/"), Err(KeyError::BadSegment));
        assert_eq!(check_key("a\\..\\b"), Err(KeyError::BadCharacter));
        assert_eq!(check_key("a\nb"), Err(KeyError::BadCharacter));
        assert_eq!(check_key(&"k".repeat(513)), Err(KeyError::TooLong(513)));
        assert_eq!(check_key(&"k".repeat(512)), Ok(()));
    }

    #[test]
    fn list_prefixes_may_be_empty_or_end_with_a_slash() {
        assert_eq!(check_prefix(""), Ok(()));
        assert_eq!(check_prefix("logs/"), Ok(()));
        assert_eq!(check_prefix("logs/20"), Ok(()));
        assert_eq!(check_prefix("../"), Err(KeyError::BadSegment));
        assert_eq!(check_prefix("/"), Err(KeyError::Absolute));
    }
}
