//! A gateway on an ephemeral port, API keys, and hand-encoded components.

use std::path::PathBuf;

use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// A running gateway and what the test needs to look behind it.
pub struct Gateway {
    pub url: String,
    pub pool: PgPool,
    pub objects: PathBuf,
    pub http: reqwest::Client,
    _objects_dir: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Gateway {
    /// A gateway with the default limits.
    pub async fn start() -> Self {
        Self::with_limit(trace_gateway::DEFAULT_MAX_COMPONENT_BYTES).await
    }

    /// A gateway refusing components over `max_component_bytes`.
    pub async fn with_limit(max_component_bytes: usize) -> Self {
        let (pool, _data) = trace_common::db::testing::fresh_pools().await;
        let config = trace_gateway::Config {
            max_component_bytes,
            // Nothing listens there: these tests never reach the services.
            dispatcher_url: "http://127.0.0.1:9".into(),
            ..Default::default()
        };
        Self::serve(config, pool).await
    }

    /// A gateway over the state database `pool` with `config`, but for its
    /// object store, which is a new temporary directory.
    pub async fn serve(mut config: trace_gateway::Config, pool: PgPool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        config.objects_dir = dir.path().to_path_buf();
        let state = trace_gateway::AppState::new(&config, pool.clone())
            .await
            .expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let router = trace_gateway::router(state);
            trace_common::http::serve(listener, router, async move { stop.cancelled().await })
                .await
                .expect("serve");
        });
        Self {
            url,
            pool,
            objects: dir.path().to_path_buf(),
            http: reqwest::Client::new(),
            _objects_dir: dir,
            shutdown,
        }
    }

    /// A new key for `tenant` with `role`.
    pub async fn key(&self, tenant: &str, role: &str) -> String {
        trace_gateway::bootstrap_tenant(&self.pool, tenant, role)
            .await
            .expect("bootstrap")
    }

    /// `PUT /v1/components/{name}/{version}` with `bytes`.
    pub async fn publish(&self, key: &str, name: &str, version: &str, bytes: Vec<u8>) -> Answer {
        let url = format!("{}/v1/components/{name}/{version}", self.url);
        let resp = self
            .http
            .put(url)
            .bearer_auth(key)
            .body(bytes)
            .send()
            .await
            .expect("put");
        Answer::read(resp).await
    }

    /// `GET path` with `key`.
    pub async fn get(&self, key: &str, path: &str) -> Answer {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        Answer::read(resp).await
    }

    /// `POST path` with a JSON body and `key`.
    pub async fn post(&self, key: &str, path: &str, body: serde_json::Value) -> Answer {
        let url = format!("{}{path}", self.url);
        let resp = self
            .http
            .post(url)
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        Answer::read(resp).await
    }

    /// `POST path` without a body, as job actions are sent.
    pub async fn act(&self, key: &str, path: &str) -> Answer {
        let url = format!("{}{path}", self.url);
        let resp = self.http.post(url).bearer_auth(key).send().await.unwrap();
        Answer::read(resp).await
    }

    /// Files under the object store's component prefix.
    pub fn stored_components(&self) -> Vec<String> {
        let dir = self.objects.join("components/sha256");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// A status and a JSON body.
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
}

impl Answer {
    async fn read(resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Self { status, body }
    }

    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The error message of an error answer.
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

/// `sha256:<hex>` of `bytes`, computed here independently of the gateway.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The smallest real component that exports a function `run`: one core
/// module with an empty function, instantiated, lifted as `func()` and
/// exported. `marker` goes into a custom section so that two calls with
/// different markers give different bytes for the same component.
pub fn component(marker: &str) -> Vec<u8> {
    let core_module: Vec<u8> = [
        &b"\0asm\x01\0\0\0"[..],
        &[0x01, 0x04, 0x01, 0x60, 0x00, 0x00], // type: () -> ()
        &[0x03, 0x02, 0x01, 0x00],             // func 0 of type 0
        &[0x07, 0x07, 0x01, 0x03, b'r', b'u', b'n', 0x00, 0x00], // export "run"
        &[0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b], // body: end
    ]
    .concat();
    let mut out = b"\0asm\x0d\0\x01\0".to_vec();
    section(&mut out, 0x01, &core_module);
    section(&mut out, 0x02, &[0x01, 0x00, 0x00, 0x00]); // instantiate module 0, no args
    section(
        &mut out,
        0x06,
        &[0x01, 0x00, 0x00, 0x01, 0x00, 0x03, b'r', b'u', b'n'],
    ); // alias
    section(&mut out, 0x07, &[0x01, 0x40, 0x00, 0x01, 0x00]); // type 0: func()
    section(&mut out, 0x08, &[0x01, 0x00, 0x00, 0x00, 0x00, 0x00]); // canon lift
    section(
        &mut out,
        0x0b,
        &[0x01, 0x00, 0x03, b'r', b'u', b'n', 0x01, 0x00, 0x00],
    ); // export
    let mut custom = vec![6];
    custom.extend_from_slice(b"marker");
    custom.extend_from_slice(marker.as_bytes());
    section(&mut out, 0x00, &custom);
    out
}

/// A core module (not a component): just the header.
pub fn core_module() -> Vec<u8> {
    b"\0asm\x01\0\0\0".to_vec()
}

fn section(out: &mut Vec<u8>, id: u8, content: &[u8]) {
    assert!(content.len() < 128, "one-byte LEB128 sizes only");
    out.push(id);
    out.push(content.len() as u8);
    out.extend_from_slice(content);
}
