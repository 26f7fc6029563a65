//! Starting a provider on loopback and reading the raw recorded files.

use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};
use trace_replay_provider::Store;

/// The recorded data directory: `TRACE_DATA_DIR` or `<repo>/../shared/data/mainnet`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("TRACE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mainnet")
        })
}

/// A raw recorded file, `kind/<n>.json.gz`, parsed.
pub fn raw(kind: &str, number: u64) -> Value {
    let path = data_dir().join(kind).join(format!("{number}.json.gz"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("open raw file"))
        .read_to_string(&mut text)
        .expect("gunzip raw file");
    serde_json::from_str(&text).expect("raw file is JSON")
}

/// The block numbers that have a `kind/<n>.json.gz` file, sorted.
pub fn numbers(kind: &str) -> Vec<u64> {
    let mut out: Vec<u64> = std::fs::read_dir(data_dir().join(kind))
        .expect("list data dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".json.gz")?.parse().ok()
        })
        .collect();
    out.sort();
    out
}

fn store() -> Arc<Store> {
    static STORE: OnceLock<Arc<Store>> = OnceLock::new();
    STORE
        .get_or_init(|| Arc::new(Store::load(&data_dir()).expect("load data dir")))
        .clone()
}

/// A provider serving the data directory on an ephemeral loopback port.
pub struct Provider {
    pub url: String,
    http: reqwest::Client,
}

impl Provider {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("local addr"));
        let app = trace_replay_provider::router(store());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            http: reqwest::Client::new(),
        }
    }

    /// Posts a raw body, returning the status and the JSON answer.
    pub async fn post_raw(&self, body: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("post");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }

    /// Calls `method` with `params`, returning the whole response object.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        let (status, answer) = self.post_raw(&body.to_string()).await;
        assert_eq!(status, 200);
        assert_eq!(answer["jsonrpc"], "2.0");
        assert_eq!(answer["id"], 7);
        answer
    }

    /// Calls `method` and returns its result, panicking on an error answer.
    pub async fn result(&self, method: &str, params: Value) -> Value {
        let answer = self.call(method, params).await;
        assert!(answer.get("error").is_none(), "{method} failed: {answer}");
        answer["result"].clone()
    }

    /// Calls `method` and returns its error's code and message.
    pub async fn error(&self, method: &str, params: Value) -> (i64, String) {
        let answer = self.call(method, params).await;
        let err = &answer["error"];
        assert!(err.is_object(), "{method} did not fail: {answer}");
        (
            err["code"].as_i64().unwrap(),
            err["message"].as_str().unwrap().to_string(),
        )
    }
}

/// `n` as a hex quantity.
pub fn hex(n: u64) -> String {
    format!("{n:#x}")
}
