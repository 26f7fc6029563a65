//! Passing another service's error answers through to the client.
//!
//! [`ApiError`] carries a `&'static str` code; the dispatcher's and query
//! service's codes are only known at run time. They are interned here, from a
//! bounded alphabet and length, so the set stays small whatever a service
//! answers.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use axum::http::StatusCode;
use trace_common::ApiError;
use trace_common::http::ClientError;

/// The interned `&'static str` for `code`, or `upstream_error` for a code
/// that is not a short snake_case word.
fn intern(code: &str) -> &'static str {
    let plausible = !code.is_empty()
        && code.len() <= 40
        && code.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    if !plausible {
        return "upstream_error";
    }
    static CODES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut codes = CODES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(known) = codes.get(code) {
        return known;
    }
    let leaked: &'static str = Box::leak(code.to_string().into_boxed_str());
    codes.insert(leaked);
    leaked
}

/// Maps a failed internal call to the client's answer: 4xx answers pass
/// through with their code and message; anything else is "unavailable".
pub(crate) fn upstream(err: ClientError) -> ApiError {
    match &err {
        ClientError::Status {
            status,
            code,
            message,
            ..
        } if (400..500).contains(status) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST);
            ApiError::new(status, intern(code), message.clone())
        }
        _ => ApiError::unavailable(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_returns_the_same_code_and_refuses_odd_ones() {
        assert_eq!(intern("invalid_range"), "invalid_range");
        assert!(std::ptr::eq(
            intern("invalid_range"),
            intern("invalid_range")
        ));
        assert_eq!(intern("Not A Code"), "upstream_error");
    }
}
