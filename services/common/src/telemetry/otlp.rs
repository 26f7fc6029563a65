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
use std::time::Duration;

use opentelemetry::trace::{Link, SpanId, SpanKind, TraceId, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    Config, IdGenerator, RandomIdGenerator, SamplingResult, SdkTracerProvider, ShouldSample, Tracer,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The most of a collector's answer read (the SDK's own clients' limit).
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// The exporter could not be configured from the environment.
#[derive(Debug, thiserror::Error)]
#[error("OpenTelemetry export is misconfigured: {0}")]
pub struct ExportError(String);

/// The provider (kept to flush and shut down) and the tracer the `tracing`
/// layer exports through, or `None` when no endpoint is configured.
pub(super) fn tracer(service: &str) -> Result<Option<(SdkTracerProvider, Tracer)>, ExportError> {
    let set = |name: &str| env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let exporter = env::var("OTEL_TRACES_EXPORTER").unwrap_or_default();
    let disabled = env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
        || exporter.trim() == "none";
    if disabled
        || !(set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || set("OTEL_EXPORTER_OTLP_ENDPOINT"))
    {
        return Ok(None);
    }
    if !matches!(exporter.trim(), "" | "otlp") {
        return Err(ExportError(format!(
            "OTEL_TRACES_EXPORTER={exporter}: only `otlp` (or `none`) is supported"
        )));
    }
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| ExportError("trace export needs a tokio runtime".into()))?;
    let client = RuntimeClient {
        http: reqwest::Client::new(),
        handle,
        timeout: timeout()?,
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
    // The sampler the environment chose (OTEL_TRACES_SAMPLER), fed ids it can
    // judge by: see `MixedIds`.
    let sampler = MixedIds(Config::default().sampler);
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler)
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

/// How long one export may take: `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` or
/// `OTEL_EXPORTER_OTLP_TIMEOUT` in milliseconds, 10 s by default. The
/// exporter does not cancel a request in flight, so the client enforces it:
/// a collector that never answers would otherwise hold the export thread.
fn timeout() -> Result<Duration, ExportError> {
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ] {
        if let Ok(value) = env::var(name)
            && !value.trim().is_empty()
        {
            return match value.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
                _ => Err(ExportError(format!(
                    "{name}={value}: not a positive number of milliseconds"
                ))),
            };
        }
    }
    Ok(Duration::from_secs(10))
}

/// The services' reqwest client, run on their runtime: the SDK's batch
/// thread blocks on each export, so the request is spawned onto the runtime
/// and its handle awaited, for at most `timeout`.
#[derive(Debug)]
struct RuntimeClient {
    http: reqwest::Client,
    handle: tokio::runtime::Handle,
    timeout: Duration,
}

#[async_trait::async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let http = self.http.clone();
        let limit = self.timeout;
        let sent = self.handle.spawn(async move {
            let exchange = async {
                let request = reqwest::Request::try_from(request)?;
                let mut response = http.execute(request).await?;
                let mut answer = Response::builder().status(response.status());
                if let Some(headers) = answer.headers_mut() {
                    *headers = response.headers().clone();
                }
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await? {
                    if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                        return Err(HttpError::from("the collector's answer is over 4 MiB"));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok::<_, HttpError>(answer.body(Bytes::from(body))?)
            };
            match tokio::time::timeout(limit, exchange).await {
                Ok(result) => result,
                Err(_) => Err(HttpError::from(format!(
                    "no answer from the collector within {limit:?}"
                ))),
            }
        });
        sent.await?
    }
}

/// The environment's sampler, given each trace id mixed. Task traces take
/// their ids from UUID v4s, whose bytes 6 and 8 hold fixed version and
/// variant bits; the ratio sampler judges bytes 8..16, so under it a ratio
/// of 0.5 or less would keep no task trace at all. Mixing all 128 bits
/// first spreads the ids evenly; the span keeps its real id.
#[derive(Debug, Clone)]
struct MixedIds(Box<dyn ShouldSample>);

impl ShouldSample for MixedIds {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let mixed = TraceId::from(mix(u128::from_be_bytes(trace_id.to_bytes())));
        self.0
            .should_sample(parent_context, mixed, name, span_kind, attributes, links)
    }
}

/// A bijective mix of 128 bits: the splitmix64 finaliser on each half, each
/// folded into the other.
fn mix(id: u128) -> u128 {
    fn round(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let (hi, lo) = ((id >> 64) as u64, id as u64);
    let lo = round(lo ^ round(hi));
    let hi = round(hi ^ lo);
    (u128::from(hi) << 64) | u128::from(lo)
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
    CHOSEN.with(|c| c.set(Some(TraceId::from(id))));
    let _ = span.context();
    CHOSEN.with(|c| c.set(None));
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanKind, TraceId};
    use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample};

    use super::MixedIds;

    /// Task trace ids are UUID v4s: the share of them the SDK's ratio
    /// sampler keeps must follow the ratio once the ids are mixed.
    #[test]
    fn uuid_v4_trace_ids_are_kept_at_the_sampling_ratio() {
        let ids: Vec<TraceId> = (0..20_000)
            .map(|_| TraceId::from(uuid::Uuid::new_v4().as_u128()))
            .collect();
        let share = |sampler: &dyn ShouldSample| {
            let kept = ids
                .iter()
                .filter(|&&id| {
                    let result =
                        sampler.should_sample(None, id, "task", &SpanKind::Internal, &[], &[]);
                    result.decision == SamplingDecision::RecordAndSample
                })
                .count();
            kept as f64 / ids.len() as f64
        };
        // As they are, the variant bits keep none of them at 10 %.
        assert_eq!(share(&Sampler::TraceIdRatioBased(0.1)), 0.0);
        for ratio in [0.1, 0.5, 0.9] {
            let sampler = MixedIds(Box::new(Sampler::TraceIdRatioBased(ratio)));
            let kept = share(&sampler);
            assert!((kept - ratio).abs() < 0.02, "{ratio}: {kept}");
        }
    }
}
