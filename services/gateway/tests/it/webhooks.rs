//! Webhook endpoints: generated secrets and per-tenant listing.

use base64::Engine as _;

use super::support::Gateway;

#[tokio::test]
async fn a_webhook_without_a_secret_gets_a_generated_one() {
    let gw = Gateway::start().await;
    let key = gw.key("acme", "member").await;
    let url = "http://127.0.0.1:7408/hooks";
    let created = gw
        .post(&key, "/v1/webhooks", serde_json::json!({ "url": url }))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    assert_eq!(raw.len(), 24);

    let stored: (String, String, String) =
        sqlx::query_as("select tenant_id, url, secret from webhook_endpoints")
            .fetch_one(&gw.pool)
            .await
            .unwrap();
    assert_eq!(stored, ("acme".into(), url.into(), secret.into()));

    let other = gw.key("globex", "member").await;
    assert_eq!(
        gw.get(&other, "/v1/webhooks").await.body,
        serde_json::json!([])
    );
    let mine = gw.get(&key, "/v1/webhooks").await;
    assert_eq!(mine.body[0]["url"], url);
    assert!(
        mine.body[0]["secret"].is_null(),
        "secrets are shown only once"
    );
}

#[tokio::test]
async fn a_webhook_with_a_bad_url_or_secret_is_refused() {
    let gw = Gateway::start().await;
    let key = gw.key("acme", "member").await;
    let bad_url = gw
        .post(
            &key,
            "/v1/webhooks",
            serde_json::json!({ "url": "ftp://x" }),
        )
        .await;
    assert_eq!((bad_url.status, bad_url.code()), (400, "invalid_url"));
    let body = serde_json::json!({ "url": "http://example.com/h", "secret": "plain" });
    let bad_secret = gw.post(&key, "/v1/webhooks", body).await;
    assert_eq!(
        (bad_secret.status, bad_secret.code()),
        (400, "invalid_secret")
    );
}
