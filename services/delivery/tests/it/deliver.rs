//! Alerts to endpoints: signed and verified, retried, refused by egress rules.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use trace_common::api::DeliveryProgress;
use trace_webhook_receiver::Stats;
use uuid::Uuid;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Transaction hashes of real mainnet logs (blocks 10000000 and 10356911), used
/// as alert keys.
const KEYS: [&str; 3] = [
    "0x1f17943d5dd7053959f1dc092dfad60a7caa084224212b1adbecaf3137efdfdd",
    "0xa9b04ff42f93868886c1258ba59967ceb6aafa0118655032210a867bdad7cff1",
    "0xf9c5960e12f2f3c6e1461de7f49b814d5ad91fe8cb57b6fa26deecb0a4ab88d7",
];

async fn listen() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, base)
}

async fn start_receiver(shutdown: &CancellationToken) -> String {
    let (listener, base) = listen().await;
    let config = trace_webhook_receiver::Config::with_secret(SECRET);
    tokio::spawn(trace_webhook_receiver::serve(
        config,
        listener,
        shutdown.clone(),
    ));
    base
}

async fn start_delivery(
    config: trace_delivery::Config,
    state: &PgPool,
    data: &PgPool,
    shutdown: &CancellationToken,
) -> String {
    let (listener, base) = listen().await;
    tokio::spawn(trace_delivery::run(
        config,
        state.clone(),
        data.clone(),
        listener,
        shutdown.clone(),
    ));
    base
}

fn fast(allow_private: bool, max_attempts: u32) -> trace_delivery::Config {
    trace_delivery::Config {
        poll_interval_ms: 50,
        retry_base_ms: 20,
        request_timeout_ms: 2_000,
        allow_private_targets: allow_private,
        max_attempts,
        ..Default::default()
    }
}

async fn endpoint(state: &PgPool, url: &str) -> Uuid {
    sqlx::query("insert into tenants (id, name) values ('acme', 'Acme') on conflict do nothing")
        .execute(state)
        .await
        .unwrap();
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into webhook_endpoints (id, tenant_id, url, secret) values ($1, 'acme', $2, $3)",
    )
    .bind(id)
    .bind(url)
    .bind(SECRET)
    .execute(state)
    .await
    .unwrap();
    id
}

async fn alerts(data: &PgPool, job: Uuid, keys: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for key in keys {
        let id = format!("{job}:{key}");
        sqlx::query(
            "insert into alerts (id, tenant_id, job_id, task_id, attempt, key, severity, title, \
             payload) values ($1, 'acme', $2, $3, 1, $4, 'warning', 'large transfer', $5)",
        )
        .bind(&id)
        .bind(job)
        .bind(Uuid::new_v4())
        .bind(key)
        .bind(serde_json::json!({"tx": key, "block": 10000000}))
        .execute(data)
        .await
        .unwrap();
        ids.push(id);
    }
    ids
}

async fn wait_for(
    base: &str,
    job: Uuid,
    done: impl Fn(&DeliveryProgress) -> bool,
) -> DeliveryProgress {
    let url = format!("{base}/v1/progress/{job}");
    let mut progress = DeliveryProgress::default();
    for _ in 0..200 {
        progress = reqwest::get(&url).await.unwrap().json().await.unwrap();
        if done(&progress) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    progress
}

#[tokio::test]
async fn every_alert_reaches_the_receiver_once_with_a_valid_signature() {
    let (state, data) = trace_common::db::testing::fresh_pools().await;
    let shutdown = CancellationToken::new();
    let receiver = start_receiver(&shutdown).await;
    endpoint(&state, &format!("{receiver}/hooks")).await;
    let job = Uuid::new_v4();
    let ids = alerts(&data, job, &KEYS).await;

    let delivery = start_delivery(fast(true, 8), &state, &data, &shutdown).await;
    let progress = wait_for(&delivery, job, |p| p.delivered == 3).await;
    assert_eq!(
        (progress.delivered, progress.pending, progress.failed),
        (3, 0, 0)
    );

    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats: Stats = reqwest::get(format!("{receiver}/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats,
        Stats {
            verified: 3,
            rejected: 0,
            unique_ids: 3
        }
    );
    let bodies: Vec<serde_json::Value> = reqwest::get(format!("{receiver}/alerts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut got: Vec<String> = bodies
        .iter()
        .map(|b| b["data"]["id"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want);
    assert!(
        bodies
            .iter()
            .all(|b| b["type"] == "alert" && b["data"]["job_id"] == job.to_string())
    );
    let first = bodies.iter().find(|b| b["data"]["key"] == KEYS[1]).unwrap();
    assert_eq!(first["data"]["payload"]["tx"], KEYS[1]);
    shutdown.cancel();
}

#[tokio::test]
async fn an_endpoint_answering_500_is_retried_until_max_attempts() {
    let (state, data) = trace_common::db::testing::fresh_pools().await;
    let shutdown = CancellationToken::new();
    let hits = Arc::new(AtomicU32::new(0));
    let (listener, base) = listen().await;
    let counter = hits.clone();
    let failing = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, failing).await });
    let endpoint_id = endpoint(&state, &format!("{base}/hooks")).await;
    let job = Uuid::new_v4();
    alerts(&data, job, &KEYS[..1]).await;

    let delivery = start_delivery(fast(true, 3), &state, &data, &shutdown).await;
    let progress = wait_for(&delivery, job, |p| p.failed == 1).await;
    assert_eq!(
        (progress.delivered, progress.pending, progress.failed),
        (0, 0, 1)
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    let (attempts, status): (i32, Option<i32>) =
        sqlx::query_as("select attempts, last_status from deliveries where endpoint_id = $1")
            .bind(endpoint_id)
            .fetch_one(&state)
            .await
            .unwrap();
    assert_eq!((attempts, status), (3, Some(500)));
    shutdown.cancel();
}

#[tokio::test]
async fn private_targets_are_refused_when_not_allowed() {
    let (state, data) = trace_common::db::testing::fresh_pools().await;
    let shutdown = CancellationToken::new();
    let receiver = start_receiver(&shutdown).await;
    endpoint(&state, &format!("{receiver}/hooks")).await;
    let job = Uuid::new_v4();
    alerts(&data, job, &KEYS[..2]).await;

    let delivery = start_delivery(fast(false, 8), &state, &data, &shutdown).await;
    let progress = wait_for(&delivery, job, |p| p.failed == 2).await;
    assert_eq!(
        (progress.delivered, progress.pending, progress.failed),
        (0, 0, 2)
    );
    let errors: Vec<String> = sqlx::query_scalar("select last_error from deliveries")
        .fetch_all(&state)
        .await
        .unwrap();
    assert!(
        errors
            .iter()
            .all(|e| e.contains("`127.0.0.1`") && e.contains("not a public")),
        "{errors:?}"
    );
    let stats: Stats = reqwest::get(format!("{receiver}/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats, Stats::default());
    shutdown.cancel();
}
