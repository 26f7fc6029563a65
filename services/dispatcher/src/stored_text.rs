//! Text a worker reports, made storable.
//!
//! Reasons, summaries and log lines come from user components. Postgres
//! refuses U+0000 in `text` and `jsonb`, so a component that puts one in
//! its message would otherwise make the whole report fail, and the task
//! would be retried until it is dead. A NUL is shown as U+FFFD instead, and
//! text is cut to a length the API can return.

use serde_json::Value;

/// What a NUL becomes.
const REPLACEMENT: char = '\u{FFFD}';

/// `text` without NULs and at most `max` characters long.
pub fn text(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c == '\0' { REPLACEMENT } else { c })
        .collect()
}

/// `value` with every NUL in its strings and keys replaced.
pub fn json(value: &Value) -> Value {
    match value {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "\u{FFFD}")),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.replace('\0', "\u{FFFD}"), json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nuls_become_replacement_characters_and_text_is_cut() {
        assert_eq!(text("a\0b", 10), "a\u{FFFD}b");
        assert_eq!(text("héllo", 2), "hé");
    }

    #[test]
    fn nuls_in_nested_strings_and_keys_are_replaced() {
        let dirty = json!({"m\u{0}": ["x\u{0}", 1, {"k": "\u{0}"}], "n": null});
        let clean = json(&dirty);
        assert_eq!(
            clean,
            json!({"m\u{FFFD}": ["x\u{FFFD}", 1, {"k": "\u{FFFD}"}], "n": null})
        );
    }
}
