//! OpenTelemetry trace export over OTLP/HTTP (protobuf), configured by the
//! standard `OTEL_*` environment variables.
//!
//! Export is on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, unless `OTEL_SDK_DISABLED=true` or
//! `OTEL_TRACES_EXPORTER=none`. The exporter itself reads the headers,
//! timeout, compression and protocol variables (only `http/protobuf` is
//! built in: `grpc` or `http/json` is refused at start), and the SDK the
//! sampler (`OTEL_TRACES_SAMPLER`), batch (`OTEL_BSP_*`) and resource
//! (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`) variables.
//!
//! Two things are ours. The HTTP client is the services' reqwest client,
//! driven on the service's tokio runtime (the SDK's batch thread has no
//! runtime of its own). And the id generator lets a root span take a trace
//! id chosen by the caller ([`start_root`]), so a task's spans are exported
//! under the task's UUID, the same id its log lines carry.

use std::cell::Cell;
use std::env;

use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracerProvider, Tracer};

/// The exporter could not be configured from the environment.
#[derive(Debug, thiserror::Error)]
#[error("OpenTelemetry export is misconfigured: {0}")]
pub struct ExportError(String);

/// The provider (kept to flush and shut down) and the tracer the `tracing`
/// layer exports through, or `None` when no endpoint is configured.
pub(super) fn tracer(service: &str) -> Result<Option<(SdkTracerProvider, Tracer)>, ExportError> {
    let set = |name: &str| env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
        || env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.trim() == "none");
    if disabled
        || !(set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || set("OTEL_EXPORTER_OTLP_ENDPOINT"))
    {
        return Ok(None);
    }
    if let Ok(exporter) = env::var("OTEL_TRACES_EXPORTER")
        && exporter.trim() != "otlp"
    {
        return Err(ExportError(format!(
            "OTEL_TRACES_EXPORTER={exporter}: only `otlp` (or `none`) is supported"
        )));
    }
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| ExportError("trace export needs a tokio runtime".into()))?;
    let client = RuntimeClient {
        http: reqwest::Client::new(),
        handle,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(protocol()?)
        .build()
        .map_err(|e| ExportError(e.to_string()))?;
    let mut resource = Resource::builder();
    if !set("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name(service.to_owned());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_id_generator(ChosenTraceIds::default())
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("trace");
    Ok(Some((provider, tracer)))
}

/// The protocol: `http/protobuf`, the only one built in, unless the
/// environment asks for another, which is an error rather than a surprise.
fn protocol() -> Result<opentelemetry_otlp::Protocol, ExportError> {
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Ok(value) = env::var(name) {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            if value != "http/protobuf" {
                return Err(ExportError(format!(
                    "{name}={value}: only `http/protobuf` is supported"
                )));
            }
            break;
        }
    }
    Ok(opentelemetry_otlp::Protocol::HttpBinary)
}

/// The services' reqwest client, run on their runtime: the SDK's batch
/// thread blocks on each export, so the request is spawned onto the runtime
/// and its handle awaited.
#[derive(Debug)]
struct RuntimeClient {
    http: reqwest::Client,
    handle: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let http = self.http.clone();
        let sent = self.handle.spawn(async move {
            let request = reqwest::Request::try_from(request)?;
            let response = http.execute(request).await?;
            let mut answer = Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            let body = response.bytes().await?;
            Ok::<_, HttpError>(answer.body(body)?)
        });
        sent.await?
    }
}

thread_local! {
    /// The trace id the next root span started on this thread takes.
    static CHOSEN: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// Random ids, except a root span's trace id while [`start_root`] has
/// chosen one.
#[derive(Debug, Default)]
struct ChosenTraceIds(RandomIdGenerator);

impl IdGenerator for ChosenTraceIds {
    fn new_trace_id(&self) -> TraceId {
        CHOSEN
            .with(Cell::take)
            .unwrap_or_else(|| self.0.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        self.0.new_span_id()
    }
}

/// Starts `span`, which has no parent, as the root of trace `id` (32 hex
/// digits). The span is started here, on this thread, so that the chosen id
/// is taken by it and by nothing else.
pub(super) fn start_root(span: &tracing::Span, id: u128) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    CHOSEN.with(|c| c.set(Some(TraceId::from(id))));
    let _ = span.context();
    CHOSEN.with(|c| c.set(None));
}
