//! The Postgres queue and its HTTP endpoint.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use trace_common::queue::Queue;
use trace_common::queue::http::HttpQueue;
use trace_common::queue::pg::PgQueue;

use super::support::{settings, start};

const NOW: Duration = Duration::ZERO;

#[tokio::test]
async fn an_undeleted_message_is_redelivered_and_a_stale_receipt_deletes_nothing() {
    let (pool, _) = trace_common::db::testing::fresh_pools().await;
    let queue = PgQueue::new(pool.clone());
    queue.send("q", &[json!({ "n": 1 })]).await.unwrap();

    let visibility = Duration::from_millis(200);
    let first = queue.receive("q", 10, NOW, visibility).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].body.clone(), first[0].receive_count),
        (json!({ "n": 1 }), 1)
    );
    assert!(
        queue
            .receive("q", 10, NOW, visibility)
            .await
            .unwrap()
            .is_empty()
    );

    tokio::time::sleep(Duration::from_millis(250)).await;
    let second = queue
        .receive("q", 10, NOW, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].receive_count, 2);
    assert_ne!(second[0].receipt, first[0].receipt);

    queue
        .delete("q", &[first[0].receipt.clone()])
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("select count(*) from queue_messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 1, "the stale receipt deleted nothing");
    queue
        .delete("q", &[second[0].receipt.clone(), "not-a-uuid".into()])
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("select count(*) from queue_messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn concurrent_receivers_never_share_a_message() {
    let (pool, _) = trace_common::db::testing::fresh_pools().await;
    let queue = Arc::new(PgQueue::new(pool));
    let bodies: Vec<_> = (0..40).map(|n| json!(n)).collect();
    queue.send("q", &bodies).await.unwrap();
    queue.send("other", &[json!("elsewhere")]).await.unwrap();

    let receivers = (0..4).map(|_| {
        let queue = queue.clone();
        tokio::spawn(async move {
            queue
                .receive("q", 15, NOW, Duration::from_secs(30))
                .await
                .unwrap()
        })
    });
    let mut seen = HashSet::new();
    for receiver in receivers {
        for message in receiver.await.unwrap() {
            assert!(
                seen.insert(message.body.as_i64().unwrap()),
                "delivered twice"
            );
        }
    }
    assert_eq!(seen, (0..40).collect::<HashSet<i64>>());
}

#[tokio::test]
async fn a_long_poll_returns_a_message_sent_while_it_waits() {
    let (pool, _) = trace_common::db::testing::fresh_pools().await;
    let queue = Arc::new(PgQueue::new(pool));
    let sender = queue.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        sender.send("q", &[json!("late")]).await.unwrap();
    });
    let started = Instant::now();
    let got = queue
        .receive("q", 1, Duration::from_secs(5), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got[0].body, json!("late"));
    assert!(started.elapsed() < Duration::from_secs(2));

    let started = Instant::now();
    let none = queue
        .receive("q", 1, Duration::from_millis(150), Duration::from_secs(1))
        .await;
    assert!(none.unwrap().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn the_http_queue_round_trips_through_the_dispatcher_endpoint() {
    let d = start(settings(30_000, 3)).await;
    let queue = HttpQueue::new(d.base.clone());
    let bodies: Vec<_> = (0..150).map(|n| json!({ "n": n })).collect();
    queue.send("buffer-records", &bodies).await.unwrap();

    let got = queue
        .receive("buffer-records", 500, NOW, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got.len(), 100, "a receive is capped at 100");
    assert_eq!(got[0].body, json!({ "n": 0 }));
    let receipts: Vec<String> = got.iter().map(|m| m.receipt.clone()).collect();
    queue.delete("buffer-records", &receipts).await.unwrap();

    let rest = queue
        .receive("buffer-records", 100, NOW, Duration::from_secs(30))
        .await
        .unwrap();
    let numbers: Vec<i64> = rest.iter().map(|m| m.body["n"].as_i64().unwrap()).collect();
    assert_eq!(numbers, (100..150).collect::<Vec<_>>());

    let err = queue.send("bad name!", &bodies[..1]).await.unwrap_err();
    assert!(err.to_string().contains("invalid_queue"), "{err}");
}
