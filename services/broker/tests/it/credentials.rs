//! Issuing credentials: only for live leases, expiring with them.

use std::time::Duration;

use trace_common::api::CompleteRequest;

use super::support::{request, start};

const MIB: u64 = 1024 * 1024;

#[tokio::test]
async fn a_live_lease_gets_a_token_scoped_to_its_task_that_expires_with_the_lease() {
    let stack = start(Duration::from_secs(30), 900, MIB).await;
    let lease = stack.claimed(1).await.remove(0);
    let creds = stack.credentials(&lease).await;

    let prefix = format!("scratch/acme/{}/{}/", lease.job_id, lease.task_id);
    assert_eq!(creds.prefix, prefix);
    assert!(creds.expires_at <= lease.expires_at);
    assert!(creds.expires_at > chrono::Utc::now() + chrono::TimeDelta::seconds(25));
    stack
        .broker
        .put(&creds.token, "k", b"v".to_vec())
        .await
        .unwrap();
    assert_eq!(
        stack.broker.get(&creds.token, "k").await.unwrap(),
        Some(b"v".to_vec())
    );
}

#[tokio::test]
async fn the_token_lifetime_is_capped_even_when_the_lease_lasts_longer() {
    let stack = start(Duration::from_secs(3600), 60, MIB).await;
    let lease = stack.claimed(1).await.remove(0);
    let creds = stack.credentials(&lease).await;
    let cap = chrono::Utc::now() + chrono::TimeDelta::seconds(60);
    assert!(creds.expires_at <= cap);
    assert!(creds.expires_at > cap - chrono::TimeDelta::seconds(5));
}

#[tokio::test]
async fn a_stale_or_finished_attempt_gets_no_credentials() {
    let stack = start(Duration::from_secs(30), 900, MIB).await;
    let lease = stack.claimed(1).await.remove(0);

    let err = stack
        .broker
        .credentials(&request(lease.task_id, 2))
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), Some("forbidden")));

    let done = CompleteRequest {
        attempt: 1,
        summary: serde_json::json!({}),
        records_published: 0,
        alerts_published: 0,
        batches: 0,
        logs: vec![],
    };
    stack
        .dispatcher
        .complete(lease.task_id, &done)
        .await
        .unwrap();
    let err = stack
        .broker
        .credentials(&request(lease.task_id, 1))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));

    let err = stack
        .broker
        .credentials(&request(uuid::Uuid::new_v4(), 1))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(404), Some("task_not_found"))
    );
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let stack = start(Duration::from_secs(30), 1, MIB).await;
    let lease = stack.claimed(1).await.remove(0);
    let creds = stack.credentials(&lease).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let err = stack.broker.get(&creds.token, "k").await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(401), Some("unauthorized"))
    );
}

#[tokio::test]
async fn an_expired_token_works_while_heartbeats_keep_its_lease_live() {
    let stack = start(Duration::from_millis(1500), 900, MIB).await;
    let lease = stack.claimed(1).await.remove(0);
    let creds = stack.credentials(&lease).await;
    stack
        .broker
        .put(&creds.token, "k", b"v".to_vec())
        .await
        .unwrap();

    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        stack
            .dispatcher
            .heartbeat(lease.task_id, lease.attempt)
            .await
            .unwrap();
    }
    assert!(
        chrono::Utc::now() > creds.expires_at,
        "the token itself has expired"
    );
    let got = stack.broker.get(&creds.token, "k").await.unwrap();
    assert_eq!(got, Some(b"v".to_vec()));

    let done = CompleteRequest {
        attempt: lease.attempt,
        summary: serde_json::json!({}),
        records_published: 0,
        alerts_published: 0,
        batches: 0,
        logs: vec![],
    };
    stack
        .dispatcher
        .complete(lease.task_id, &done)
        .await
        .unwrap();
    let err = stack.broker.get(&creds.token, "k").await.unwrap_err();
    assert_eq!(
        err.status(),
        Some(401),
        "the lease ended, so the token is dead"
    );
}
