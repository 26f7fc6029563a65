//! `POST /hooks` verification and the counters behind `GET /stats`.

use tokio_util::sync::CancellationToken;
use trace_webhook_receiver::{Config, Stats, sign};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn start() -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let config = Config::with_secret(SECRET);
    tokio::spawn(trace_webhook_receiver::serve(
        config,
        listener,
        shutdown.clone(),
    ));
    (base, shutdown)
}

async fn post(base: &str, id: &str, timestamp: i64, body: &str, signature: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/hooks"))
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn signed_messages_are_counted_once_per_id_and_bad_ones_refused() {
    let (base, shutdown) = start().await;
    let now = chrono::Utc::now().timestamp();
    let body = r#"{"type":"alert","data":{"id":"a1"}}"#;
    let good = sign(SECRET, "a1", &now.to_string(), body.as_bytes()).unwrap();

    assert_eq!(post(&base, "a1", now, body, &good).await, 204);
    assert_eq!(post(&base, "a1", now, body, &good).await, 204);
    assert_eq!(post(&base, "a2", now, body, &good).await, 401);
    let stale = now - 3600;
    let stale_sig = sign(SECRET, "a1", &stale.to_string(), body.as_bytes()).unwrap();
    assert_eq!(post(&base, "a1", stale, body, &stale_sig).await, 401);

    let stats: Stats = reqwest::get(format!("{base}/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats,
        Stats {
            verified: 2,
            rejected: 2,
            unique_ids: 1
        }
    );
    let alerts: Vec<serde_json::Value> = reqwest::get(format!("{base}/alerts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0]["data"]["id"], "a1");
    shutdown.cancel();
}
