//! Prometheus metrics: every service answers `GET /metrics` in the text
//! exposition format, and counts its HTTP requests by route and status.
//!
//! Metrics are recorded with the `metrics` crate's macros where they happen
//! (task attempts in the dispatcher, instantiation in the UDF worker,
//! records in the sinks, webhook attempts in delivery, RPC calls in the
//! gateway to providers) and rendered by one process-wide recorder,
//! installed on first use. In `trace dev`, where every service shares one
//! process, each `/metrics` shows all of them; deployed, each process shows
//! its own. Names start with `trace_`; durations are in seconds.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The recording macros, so that services record without their own
/// dependency on the `metrics` crate.
pub use ::metrics::{counter, gauge, histogram};

/// Bucket bounds of every histogram, in seconds: 1 ms to 5 min.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first call. None if another
/// recorder was installed first (then this process's metrics go there).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(&BUCKETS).ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    // Histogram samples are kept raw until upkeep folds them
                    // into buckets; without a scraper nothing else would.
                    let upkeep = handle.clone();
                    std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .spawn(move || {
                            loop {
                                std::thread::sleep(std::time::Duration::from_secs(5));
                                upkeep.run_upkeep();
                            }
                        })
                        .ok()?;
                    Some(handle)
                }
                Err(err) => {
                    tracing::warn!(error = %err, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// `GET /metrics`.
pub async fn render() -> Response {
    let Some(handle) = handle() else {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "no metrics recorder",
        )
            .into_response();
    };
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// Middleware counting requests and their durations by method, matched
/// route (not the raw path, whose ids would make every request a series)
/// and status.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    // Any token is a method to hyper; only the standard ones are labels.
    let method = match *request.method() {
        Method::GET | Method::POST | Method::PUT | Method::DELETE | Method::HEAD => {
            request.method().to_string()
        }
        _ => "other".to_string(),
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("trace_http_requests_total", &labels).increment(1);
    metrics::histogram!("trace_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
