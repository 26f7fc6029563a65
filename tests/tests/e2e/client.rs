//! A small client for the public REST API, written against the documented
//! HTTP contract rather than the CLI's own client.

use std::io::Cursor;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Value, json};
use trace_common::api::{JobState, JobStatus};

/// An authenticated client for the gateway.
pub struct Gateway {
    pub base: String,
    pub key: String,
    pub http: reqwest::Client,
}

/// What the gateway answered to a request that is expected to fail.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Gateway {
    pub fn new(base: &str, key: &str) -> Self {
        Self {
            base: base.to_string(),
            key: key.to_string(),
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        ok_json(resp).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, Refusal> {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap();
        json_or_refusal(resp).await
    }

    pub async fn put_bytes(&self, path: &str, bytes: Vec<u8>) -> Result<Value, Refusal> {
        let resp = self
            .http
            .put(self.url(path))
            .bearer_auth(&self.key)
            .body(bytes)
            .send()
            .await
            .unwrap();
        json_or_refusal(resp).await
    }

    /// Runs a query and returns its rows as display strings.
    pub async fn query(
        &self,
        sql: &str,
        params: Vec<Value>,
        lake: bool,
    ) -> Result<Vec<Vec<String>>, Refusal> {
        let body = json!({
            "sql": sql,
            "params": params,
            "source": if lake { "lake" } else { "postgres" },
        });
        let resp = self
            .http
            .post(self.url("/v1/query"))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        if !resp.status().is_success() {
            return Err(refusal(resp).await);
        }
        let bytes = resp.bytes().await.unwrap();
        let reader = arrow::ipc::reader::StreamReader::try_new(Cursor::new(bytes), None).unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        Ok(rows(&batches))
    }

    /// Polls a job until it has ended and the data plane has caught up with
    /// what it published, or panics after `limit`.
    pub async fn wait(&self, job: &str, limit: Duration) -> JobStatus {
        let start = Instant::now();
        loop {
            let value = self.get(&format!("/v1/jobs/{job}")).await;
            let status: JobStatus = serde_json::from_value(value).unwrap();
            let ended = status.job.state != JobState::Running;
            let sunk = status.sunk.records >= status.job.records_published
                && status.sunk.alerts >= status.job.alerts_published;
            if ended && sunk {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "job {job} did not finish in time: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Submits an ingest job over exactly `blocks`, ten a task; returns its id.
pub async fn ingest(gw: &Gateway, blocks: &[u64], tables: &[&str]) -> String {
    let job = gw
        .post(
            "/v1/jobs",
            &json!({
                "kind": "ingest",
                "params": {"tables": tables},
                "from_block": blocks[0],
                "to_block": blocks[blocks.len() - 1],
                "chunk_size": 10,
                "blocks": blocks,
            }),
        )
        .await
        .expect("ingest job accepted");
    job["id"].as_str().unwrap().to_string()
}

/// The single integer a `select count(*) ...` answers.
pub async fn count(gw: &Gateway, sql: &str) -> u64 {
    let rows = gw.query(sql, vec![], false).await.unwrap();
    rows[0][0].parse().unwrap()
}

/// Polls the receiver's stats until it saw `expected` unique alert ids, or
/// ten minutes passed; returns the last stats.
pub async fn wait_for_deliveries(receiver: &str, expected: u64) -> Value {
    let start = Instant::now();
    loop {
        let stats: Value = reqwest::get(format!("{receiver}/stats"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if stats["unique_ids"].as_u64() >= Some(expected) || start.elapsed() > WAIT_LIMIT {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How long the helpers wait for the platform before giving up.
const WAIT_LIMIT: Duration = Duration::from_secs(600);

/// Every cell of every batch, rendered as text.
pub fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for row in 0..batch.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect(),
            );
        }
    }
    out
}

async fn ok_json(resp: reqwest::Response) -> Value {
    match json_or_refusal(resp).await {
        Ok(v) => v,
        Err(r) => panic!("request refused: {r:?}"),
    }
}

async fn json_or_refusal(resp: reqwest::Response) -> Result<Value, Refusal> {
    if resp.status().is_success() {
        Ok(resp.json().await.unwrap())
    } else {
        Err(refusal(resp).await)
    }
}

async fn refusal(resp: reqwest::Response) -> Refusal {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    Refusal {
        status,
        code: body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        message: body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}
