//! The gateway's HTTP API as the CLI calls it.

use serde::Serialize;
use serde::de::DeserializeOwned;
use trace_common::ErrorBody;

/// An authenticated client of the gateway.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    key: String,
    http: reqwest::Client,
}

/// A failed call to the gateway.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The gateway could not be reached.
    #[error("cannot reach the gateway at `{url}`; is `trace dev` running?")]
    Transport {
        /// The URL called.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The gateway answered with an error.
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The machine-readable code.
        code: String,
        /// The gateway's message.
        message: String,
    },
    /// The answer could not be decoded.
    #[error("the gateway's answer from `{url}` could not be decoded")]
    Decode {
        /// The URL called.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
}

impl Client {
    /// A client for `base` with `key`.
    pub fn new(base: impl Into<String>, key: impl Into<String>) -> Self {
        let base = base.into().trim_end_matches('/').to_string();
        Self {
            base,
            key: key.into(),
            http: reqwest::Client::new(),
        }
    }

    /// `GET path`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let resp = self.http.get(&url).bearer_auth(&self.key).send().await;
        json(url, resp).await
    }

    /// `POST path` with a JSON body.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await;
        json(url, resp).await
    }

    /// `POST path` without a body, as actions on a resource are sent.
    pub async fn post_action<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let resp = self.http.post(&url).bearer_auth(&self.key).send().await;
        json(url, resp).await
    }

    /// `PUT path` with raw bytes.
    pub async fn put_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .put(&url)
            .bearer_auth(&self.key)
            .body(bytes)
            .send()
            .await;
        json(url, resp).await
    }

    /// `POST path` with a JSON body, answering the raw bytes.
    pub async fn post_raw<B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<bytes::Bytes, ClientError> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await;
        let resp = checked(url.clone(), resp).await?;
        resp.bytes()
            .await
            .map_err(|source| ClientError::Decode { url, source })
    }
}

async fn checked(
    url: String,
    resp: Result<reqwest::Response, reqwest::Error>,
) -> Result<reqwest::Response, ClientError> {
    let resp = resp.map_err(|source| ClientError::Transport { url, source })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let text = resp.text().await.unwrap_or_default();
    let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => (body.error.code, body.error.message),
        Err(_) => ("http".into(), text.chars().take(300).collect()),
    };
    Err(ClientError::Api {
        status: status.as_u16(),
        code,
        message,
    })
}

async fn json<T: DeserializeOwned>(
    url: String,
    resp: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, ClientError> {
    let resp = checked(url.clone(), resp).await?;
    resp.json()
        .await
        .map_err(|source| ClientError::Decode { url, source })
}
