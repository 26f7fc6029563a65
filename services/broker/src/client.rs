//! A typed client of the broker, for the UDF workers and the tests.
//!
//! Object calls carry the token from [`BrokerClient::credentials`]; keys are
//! relative to the task's prefix and percent-encoded into one path segment.

use trace_common::api::{CredentialRequest, Credentials};
use trace_common::http::{ClientError, ServiceClient, check, decode};

/// A client of one broker.
#[derive(Debug, Clone)]
pub struct BrokerClient {
    client: ServiceClient,
}

impl BrokerClient {
    /// A client of the broker at `base` such as `http://127.0.0.1:7403`.
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            client: ServiceClient::new(base),
        }
    }

    /// Credentials for a task attempt that holds a live lease (403 otherwise).
    pub async fn credentials(&self, req: &CredentialRequest) -> Result<Credentials, ClientError> {
        self.client.post("/v1/credentials", req).await
    }

    /// The object under `key`, `None` when there is none.
    pub async fn get(&self, token: &str, key: &str) -> Result<Option<Vec<u8>>, ClientError> {
        let url = self.object_url(key);
        let resp = self
            .client
            .request(reqwest::Method::GET, &url)
            .bearer_auth(token)
            .send()
            .await;
        let resp = resp.map_err(|source| ClientError::Transport {
            url: url.clone(),
            source,
        })?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            let err = check(url.clone(), resp).await.err();
            return match err {
                Some(err) if err.code() == Some("object_not_found") => Ok(None),
                Some(err) => Err(err),
                None => Ok(None),
            };
        }
        let resp = check(url.clone(), resp).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Decode { url, source })?;
        Ok(Some(bytes.to_vec()))
    }

    /// Stores `value` under `key`, replacing any object there.
    pub async fn put(&self, token: &str, key: &str, value: Vec<u8>) -> Result<(), ClientError> {
        let url = self.object_url(key);
        let resp = self
            .client
            .request(reqwest::Method::PUT, &url)
            .bearer_auth(token)
            .body(value)
            .send()
            .await;
        let resp = resp.map_err(|source| ClientError::Transport {
            url: url.clone(),
            source,
        })?;
        check(url, resp).await.map(drop)
    }

    /// Deletes the object under `key`; a missing key is not an error.
    pub async fn delete(&self, token: &str, key: &str) -> Result<(), ClientError> {
        let url = self.object_url(key);
        let resp = self
            .client
            .request(reqwest::Method::DELETE, &url)
            .bearer_auth(token)
            .send()
            .await;
        let resp = resp.map_err(|source| ClientError::Transport {
            url: url.clone(),
            source,
        })?;
        check(url, resp).await.map(drop)
    }

    /// The task's keys that start with `prefix`, sorted.
    pub async fn list(&self, token: &str, prefix: &str) -> Result<Vec<String>, ClientError> {
        let url = self.client.url("/v1/objects");
        let req = self
            .client
            .request(reqwest::Method::GET, &url)
            .query(&[("prefix", prefix)])
            .bearer_auth(token);
        decode(url, req.send().await).await
    }

    fn object_url(&self, key: &str) -> String {
        self.client.url(&format!("/v1/objects/{}", encode_key(key)))
    }
}

/// Percent-encodes every byte of `key` except unreserved characters (so `/`
/// is encoded too): the key travels as one path segment that no URL
/// normalisation of `.` or `..` segments can alter; the broker decodes it.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_percent_encoded_into_one_segment() {
        assert_eq!(super::encode_key("a b/c?d#%"), "a%20b%2Fc%3Fd%23%25");
        assert_eq!(super::encode_key("../x"), "..%2Fx");
    }
}
