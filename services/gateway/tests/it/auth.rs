//! Authentication and roles: the key decides the tenant and the role.

use super::support::Gateway;

#[tokio::test]
async fn requests_without_a_key_are_refused_with_401() {
    let gw = Gateway::start().await;
    let resp = gw
        .http
        .get(format!("{}/v1/components", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Authorization: Bearer"), "{message}");
}

#[tokio::test]
async fn an_unknown_or_malformed_key_is_refused_with_401() {
    let gw = Gateway::start().await;
    let _real = gw.key("acme", "admin").await;

    let unknown = gw.get("trk_not-a-key-we-issued", "/v1/components").await;
    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.message(), "unknown or revoked API key");

    let resp = gw
        .http
        .get(format!("{}/v1/components", gw.url))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}

#[tokio::test]
async fn a_valid_key_reaches_the_api_and_healthz_needs_none() {
    let gw = Gateway::start().await;
    let key = gw.key("acme", "member").await;
    let listed = gw.get(&key, "/v1/components").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body, serde_json::json!([]));

    let health = gw
        .http
        .get(format!("{}/healthz", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn keys_are_stored_only_as_their_sha256() {
    let gw = Gateway::start().await;
    let key = gw.key("acme", "admin").await;
    let stored: Vec<(String, String, String)> =
        sqlx::query_as("select key_hash, tenant_id, role from api_keys")
            .fetch_all(&gw.pool)
            .await
            .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, trace_gateway::hash_key(&key));
    assert_ne!(stored[0].0, key);
    assert_eq!(
        (stored[0].1.as_str(), stored[0].2.as_str()),
        ("acme", "admin")
    );
}

#[tokio::test]
async fn member_keys_may_not_ingest_nor_list_recorded_blocks() {
    let gw = Gateway::start().await;
    let key = gw.key("acme", "member").await;
    let job = serde_json::json!({
        "kind": "ingest", "from_block": 1, "to_block": 10, "chunk_size": 5,
    });
    let refused = gw.post(&key, "/v1/jobs", job).await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.message().contains("requires an admin key"),
        "{}",
        refused.message()
    );

    let recorded = gw.get(&key, "/v1/chains/1/recorded").await;
    assert_eq!(recorded.status, 403);
}

#[tokio::test]
async fn a_udf_job_naming_an_unpublished_component_is_404() {
    let gw = Gateway::start().await;
    let key = gw.key("acme", "member").await;
    let job = serde_json::json!({
        "kind": "udf", "component": "nope@1.0.0",
        "from_block": 1, "to_block": 10, "chunk_size": 5,
    });
    let answer = gw.post(&key, "/v1/jobs", job).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.code(), "unknown_component");
    assert!(
        answer.message().contains("`nope@1.0.0`"),
        "{}",
        answer.message()
    );
}
