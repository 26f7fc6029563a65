//! Logs and traces: installing the subscriber (only binaries call [`init`]),
//! and the trace id that follows one task across services.
//!
//! A trace id is carried between services in a W3C `traceparent` header:
//! every server opens a `request` span with the caller's trace id (or a new
//! one), and every [`crate::http::ServiceClient`] request made under
//! [`with_trace`] sends it on. Workers run each task under the task's own
//! trace id ([`task_trace`]), and so do the sinks for its batches, so the
//! JSON logs of the dispatcher, the worker, the query service, the broker
//! and the sinks carry the same `trace_id` for one task. Spans are not
//! exported anywhere: a collector (OpenTelemetry) is not wired in.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;
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

/// Middleware: serves the request in a `request` span under the caller's
/// trace (from `traceparent`) or a new one, and logs it at debug level.
pub async fn trace_request(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(trace_of);
    serve_traced(id, request, next).await
}

/// Middleware for a public service: like [`trace_request`], but always
/// under a new trace.
pub async fn trace_new_request(request: Request, next: Next) -> Response {
    serve_traced(None, request, next).await
}

async fn serve_traced(id: Option<String>, request: Request, next: Next) -> Response {
    let id = id.unwrap_or_else(|| format!("{:032x}", rand::random::<u128>() | 1));
    let span = tracing::info_span!("request", trace_id = %id, method = %request.method(),
        path = %request.uri().path());
    let started = Instant::now();
    let response = with_trace(id, next.run(request))
        .instrument(span.clone())
        .await;
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request served"
        );
    });
    response
}

tokio::task_local! {
    /// The trace the current task's work belongs to (32 hex digits).
    static TRACE: String;
}

/// Runs `future` as part of trace `id`: every request it makes through a
/// [`crate::http::ServiceClient`] carries `traceparent` with it, and the
/// receiving service logs under it.
pub async fn with_trace<F: std::future::Future>(id: String, future: F) -> F::Output {
    TRACE.scope(id, future).await
}

/// The current trace id, if the current task runs under one.
pub fn current_trace() -> Option<String> {
    TRACE.try_with(Clone::clone).ok()
}

/// The trace id of a task: its UUID's 32 hex digits, so that every service
/// touching the task logs the same id and a log search by task finds them
/// all.
pub fn task_trace(task: uuid::Uuid) -> String {
    task.simple().to_string()
}

/// A W3C `traceparent` header value for trace `id`, with a new span id.
pub fn traceparent(id: &str) -> String {
    let span: u64 = rand::random::<u64>() | 1;
    format!("00-{id}-{span:016x}-01")
}

/// The trace id of a `traceparent` header value, if it is a valid one.
pub fn trace_of(header: &str) -> Option<String> {
    let mut parts = header.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = hex(version, 2)
        && hex(trace, 32)
        && hex(span, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0');
    valid.then(|| trace.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_round_trip_and_bad_ones_are_ignored() {
        let id = task_trace(uuid::Uuid::from_u128(
            0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
        ));
        assert_eq!(id, "0123456789abcdef0123456789abcdef");
        assert_eq!(trace_of(&traceparent(&id)).as_deref(), Some(id.as_str()));
        assert_eq!(
            trace_of("00-00000000000000000000000000000000-0000000000000001-01"),
            None
        );
        assert_eq!(trace_of("00-xyz-0000000000000001-01"), None);
        assert_eq!(trace_of(""), None);
    }
}
