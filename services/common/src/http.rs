//! Serving routers and calling other services.

use std::net::SocketAddr;

use axum::Router;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;

use crate::error::ErrorBody;

/// Binds `addr` (use port 0 for an ephemeral one).
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `router` on `listener` until the process ends or `shutdown`
/// resolves, with `GET /metrics` added, every request counted
/// ([`crate::metrics`]) and served under the caller's trace
/// ([`crate::telemetry::trace_request`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let traced = router.layer(axum::middleware::from_fn(crate::telemetry::trace_request));
    serve_traced(listener, traced, shutdown).await
}

/// Like [`serve`], for a service facing the public: an inbound
/// `traceparent` is not trusted (a caller could otherwise log under another
/// task's trace), every request gets a new trace.
pub async fn serve_public(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let traced = router.layer(axum::middleware::from_fn(
        crate::telemetry::trace_new_request,
    ));
    serve_traced(listener, traced, shutdown).await
}

async fn serve_traced(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::metrics::handle();
    let router = router
        .route("/metrics", axum::routing::get(crate::metrics::render))
        .layer(axum::middleware::from_fn(crate::metrics::track));
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// A failed call to another service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The service could not be reached or the connection broke.
    #[error("request to `{url}` failed")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The service answered with an error body.
    #[error("`{url}` answered {status} ({code}): {message}")]
    Status {
        url: String,
        status: u16,
        code: String,
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("`{url}` answered a body that could not be decoded")]
    Decode {
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

impl ClientError {
    /// The HTTP status the service answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error code the service answered, if it answered one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Status { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A JSON client for one service's base URL.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    base: String,
    http: reqwest::Client,
}

impl ServiceClient {
    /// A client for `base` such as `http://127.0.0.1:7001`.
    pub fn new(base: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .expect("a reqwest client with only a timeout always builds");
        Self {
            base: base.into().trim_end_matches('/').to_string(),
            http,
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The underlying HTTP client, for requests that are not JSON.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A `method` request to `url`, carrying the current trace
    /// ([`crate::telemetry::with_trace`]) as `traceparent`.
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match crate::telemetry::current_trace() {
            Some(id) => request.header("traceparent", crate::telemetry::traceparent(&id)),
            None => request,
        }
    }

    /// The full URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `GET path`, decoding a JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        let resp = self.request(reqwest::Method::GET, &url).send().await;
        decode(url, resp).await
    }

    /// `POST path` with a JSON body, decoding a JSON answer.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let resp = self
            .request(reqwest::Method::POST, &url)
            .json(body)
            .send()
            .await;
        decode(url, resp).await
    }
}

/// Turns a response into `T`, or its error body into [`ClientError::Status`].
pub async fn decode<T: DeserializeOwned>(
    url: String,
    resp: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, ClientError> {
    let resp = resp.map_err(|source| ClientError::Transport {
        url: url.clone(),
        source,
    })?;
    let resp = check(url.clone(), resp).await?;
    resp.json()
        .await
        .map_err(|source| ClientError::Decode { url, source })
}

/// Passes a successful response through; turns an error answer into [`ClientError::Status`].
pub async fn check(url: String, resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let text = resp.text().await.unwrap_or_default();
    let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => (body.error.code, body.error.message),
        Err(_) => ("http".to_string(), text.chars().take(500).collect()),
    };
    Err(ClientError::Status {
        url,
        status: status.as_u16(),
        code,
        message,
    })
}
