//! Logs and traces: installing the subscriber (only binaries call [`init`]
//! or [`service_main`]), and the trace that follows one task across services.
//!
//! A trace is carried between services in a W3C `traceparent` header: every
//! server opens a `request` span under the caller's trace (or a new one),
//! and every [`crate::http::ServiceClient`] request made under [`with_trace`]
//! sends it on. Workers run each task in a root span whose trace id is the
//! task's own UUID ([`task_trace`], [`root_span`]), and so do the sinks for
//! its batches, so the JSON logs of the dispatcher, the worker, the query
//! service, the broker and the sinks carry the same `trace_id` for one task.
//! With an OTLP endpoint configured ([`otlp`]), the same spans are exported
//! under the same trace id, each request span a child of the caller's span.

mod otlp;

use std::future::Future;
use std::process::ExitCode;
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

pub use otlp::ExportError;

/// What [`init`] installed; [`Telemetry::shutdown`] sends the spans still
/// buffered before the process exits.
#[derive(Debug)]
#[must_use = "dropping it without `shutdown` loses the last spans"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporter (the SDK gives up after 5 s).
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(err)) = flushed {
                eprintln!("trace export did not shut down cleanly: {err}");
            }
        }
    }
}

/// Installs the global subscriber: log lines filtered by `RUST_LOG`
/// (default `info`), JSON when `json` is set, human-readable otherwise; and
/// when the environment configures an OTLP endpoint ([`otlp`]), span export
/// as `service`, filtered apart from the logs (spans at `info` and above, so
/// a quieter `RUST_LOG` does not break traces). Call it inside the tokio
/// runtime. A second call installs nothing and exports nothing.
pub fn init(service: &str, json: bool) -> Result<Telemetry, ExportError> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Two layers, one of them absent: each is typed for its place in the stack.
    let compact = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .compact()
            .with_filter(filter())
    });
    let json = json.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .with_filter(filter())
    });
    let (provider, tracer) = match otlp::tracer(service)? {
        Some((provider, tracer)) => (Some(provider), Some(tracer)),
        None => (None, None),
    };
    let spans = tracer.map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(LevelFilter::INFO)
    });
    let installed = tracing_subscriber::registry()
        .with(json)
        .with(compact)
        .with(spans)
        .try_init()
        .is_ok();
    Ok(Telemetry {
        provider: provider.filter(|_| installed),
    })
}

/// The whole `main` of a service binary: installs telemetry, runs `run`,
/// flushes the exporter, and turns an error into a message on stderr and
/// exit status 1.
pub async fn service_main<F>(service: &str, json: bool, run: F) -> ExitCode
where
    F: Future<Output = anyhow::Result<()>>,
{
    let telemetry = match init(service, json) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("{service}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = run.await;
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{service}: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Makes `span`, created with `parent: None`, the root of trace `id` (32
/// hex digits, as [`task_trace`] gives), so that what is exported under it
/// carries the id its log lines do. Without export it changes nothing.
pub fn root_span(span: &tracing::Span, id: &str) {
    if let Ok(id) = u128::from_str_radix(id, 16) {
        otlp::start_root(span, id);
    }
}

/// Middleware: serves the request in a `request` span under the caller's
/// trace (from `traceparent`) or a new one, and logs it at debug level.
pub async fn trace_request(request: Request, next: Next) -> Response {
    let parent = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(parent_of);
    serve_traced(parent, request, next).await
}

/// Middleware for a public service: like [`trace_request`], but always
/// under a new trace.
pub async fn trace_new_request(request: Request, next: Next) -> Response {
    serve_traced(None, request, next).await
}

async fn serve_traced(parent: Option<Parent>, request: Request, next: Next) -> Response {
    // Probes and scrapes come every few seconds from outside any trace; a
    // root span for each would swamp the traces worth exporting.
    if matches!(request.uri().path(), "/healthz" | "/metrics") {
        return next.run(request).await;
    }
    let id = match &parent {
        Some(parent) => parent.trace.clone(),
        None => format!("{:032x}", rand::random::<u128>() | 1),
    };
    let span = tracing::info_span!(parent: None, "request", trace_id = %id,
        method = %request.method(), path = %request.uri().path());
    match parent {
        Some(parent) => {
            let _ = span.set_parent(parent.context());
        }
        None => root_span(&span, &id),
    }
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

/// The `traceparent` header value a request sent now carries: the current
/// span when it is an exported one, else trace `id` with a new span id.
pub fn traceparent(id: &str) -> String {
    let current = tracing::Span::current().context();
    let current = current.span();
    let current = current.span_context();
    if current.is_valid() && format!("{:032x}", current.trace_id()) == id {
        return format!(
            "00-{:032x}-{:016x}-{:02x}",
            current.trace_id(),
            current.span_id(),
            current.trace_flags().to_u8()
        );
    }
    let span: u64 = rand::random::<u64>() | 1;
    format!("00-{id}-{span:016x}-01")
}

/// The trace id of a `traceparent` header value, if it is a valid one.
pub fn trace_of(header: &str) -> Option<String> {
    parent_of(header).map(|parent| parent.trace)
}

/// The caller's span, as a `traceparent` header names it.
struct Parent {
    trace: String,
    span: u64,
    flags: u8,
}

impl Parent {
    /// An OpenTelemetry context whose (remote) span is the caller's.
    fn context(&self) -> opentelemetry::Context {
        let trace = u128::from_str_radix(&self.trace, 16).unwrap_or(1);
        let remote = SpanContext::new(
            TraceId::from(trace),
            SpanId::from(self.span),
            TraceFlags::new(self.flags),
            true,
            Default::default(),
        );
        opentelemetry::Context::new().with_remote_span_context(remote)
    }
}

fn parent_of(header: &str) -> Option<Parent> {
    let mut parts = header.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && hex(span, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && span.bytes().any(|b| b != b'0');
    valid.then(|| Parent {
        trace: trace.to_ascii_lowercase(),
        span: u64::from_str_radix(span, 16).unwrap_or(1),
        flags: u8::from_str_radix(flags, 16).unwrap_or(1),
    })
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
        assert_eq!(
            trace_of("00-0123456789abcdef0123456789abcdef-0000000000000000-01"),
            None
        );
        let parent = parent_of("00-0123456789ABCDEF0123456789abcdef-00f067aa0ba902b7-00").unwrap();
        assert_eq!(parent.trace, "0123456789abcdef0123456789abcdef");
        assert_eq!((parent.span, parent.flags), (0x00f0_67aa_0ba9_02b7, 0));
        assert_eq!(trace_of(""), None);
    }
}
