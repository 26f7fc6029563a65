//! The component registry: validation, immutability and tenant isolation.

use super::support::{Gateway, component, core_module, digest};

#[tokio::test]
async fn garbage_and_core_modules_are_refused_as_invalid_components() {
    let gw = Gateway::start().await;
    let key = gw.key("acme", "member").await;

    let garbage = gw
        .publish(&key, "thing", "1.0.0", b"definitely not wasm".to_vec())
        .await;
    assert_eq!(garbage.status, 400);
    assert_eq!(garbage.code(), "invalid_component");
    assert!(
        garbage.message().contains("not a WebAssembly component"),
        "{}",
        garbage.message()
    );

    let module = gw.publish(&key, "thing", "1.0.0", core_module()).await;
    assert_eq!(module.status, 400);
    assert!(
        module.message().contains("core WebAssembly module"),
        "{}",
        module.message()
    );

    let rows: i64 = sqlx::query_scalar("select count(*) from components")
        .fetch_one(&gw.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    assert!(gw.stored_components().is_empty());
}

#[tokio::test]
async fn a_component_over_the_limit_is_refused_with_413_naming_the_limit() {
    let gw = Gateway::with_limit(1024).await;
    let key = gw.key("acme", "member").await;
    let answer = gw.publish(&key, "big", "1.0.0", vec![0u8; 4096]).await;
    assert_eq!(answer.status, 413);
    assert!(
        answer.message().contains("1024 bytes"),
        "{}",
        answer.message()
    );
}

#[tokio::test]
async fn bad_names_and_versions_are_refused() {
    let gw = Gateway::start().await;
    let key = gw.key("acme", "member").await;
    for name in [
        "Upper",
        "1digit",
        "under_score",
        &format!("a{}", "b".repeat(64)),
    ] {
        let answer = gw.publish(&key, name, "1.0.0", component("x")).await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "invalid_name"),
            "{name}"
        );
        assert!(answer.message().contains(&format!("`{name}`")));
    }
    for version in ["1.0", "v1.0.0", "01.0.0", "latest"] {
        let answer = gw.publish(&key, "thing", version, component("x")).await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "invalid_version"),
            "{version}"
        );
    }
}

#[tokio::test]
async fn a_published_component_is_stored_under_its_digest() {
    let gw = Gateway::start().await;
    let key = gw.key("acme", "member").await;
    let bytes = component("one");
    let expected = digest(&bytes);

    let answer = gw
        .publish(&key, "erc20-transfers", "0.1.0", bytes.clone())
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["digest"], expected.as_str());
    assert_eq!(answer.body["size_bytes"], bytes.len() as u64);
    assert_eq!(answer.body["world"], "trace:udf/udf@0.1.0");

    let hex = expected.trim_start_matches("sha256:");
    let stored = std::fs::read(gw.objects.join("components/sha256").join(hex)).unwrap();
    assert_eq!(stored, bytes);

    let shown = gw.get(&key, "/v1/components/erc20-transfers/0.1.0").await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["digest"], expected.as_str());

    let audit: Vec<(String, String, String)> =
        sqlx::query_as("select tenant_id, action, target from audit_log")
            .fetch_all(&gw.pool)
            .await
            .unwrap();
    let expected_audit = (
        "acme".into(),
        "component.publish".into(),
        "erc20-transfers@0.1.0".into(),
    );
    assert_eq!(audit, vec![expected_audit]);
}

#[tokio::test]
async fn a_published_version_is_immutable() {
    let gw = Gateway::start().await;
    let key = gw.key("acme", "member").await;
    let first = component("first");
    assert_eq!(
        gw.publish(&key, "thing", "1.0.0", first.clone())
            .await
            .status,
        201
    );

    let again = gw.publish(&key, "thing", "1.0.0", first.clone()).await;
    assert_eq!(again.status, 200, "the same bytes again are idempotent");
    assert_eq!(again.body["digest"], digest(&first).as_str());

    let other = component("second");
    let refused = gw.publish(&key, "thing", "1.0.0", other.clone()).await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.code(), "version_exists");
    assert!(
        refused.message().contains("versions are immutable"),
        "{}",
        refused.message()
    );

    let rows: Vec<(String,)> = sqlx::query_as("select digest from components")
        .fetch_all(&gw.pool)
        .await
        .unwrap();
    assert_eq!(rows, vec![(digest(&first),)]);
    let first_hex = digest(&first).trim_start_matches("sha256:").to_string();
    assert_eq!(
        gw.stored_components(),
        vec![first_hex],
        "the refused bytes were not stored"
    );
    let audits: i64 = sqlx::query_scalar("select count(*) from audit_log")
        .fetch_one(&gw.pool)
        .await
        .unwrap();
    assert_eq!(audits, 1);
}

#[tokio::test]
async fn tenants_see_only_their_own_components() {
    let gw = Gateway::start().await;
    let acme = gw.key("acme", "member").await;
    let globex = gw.key("globex", "member").await;
    let acme_bytes = component("acme");
    assert_eq!(
        gw.publish(&acme, "thing", "1.0.0", acme_bytes.clone())
            .await
            .status,
        201
    );

    let listed = gw.get(&globex, "/v1/components").await;
    assert_eq!(listed.body, serde_json::json!([]));
    let shown = gw.get(&globex, "/v1/components/thing/1.0.0").await;
    assert_eq!((shown.status, shown.code()), (404, "unknown_component"));

    let job = serde_json::json!({
        "kind": "udf", "component": "thing@1.0.0",
        "from_block": 1, "to_block": 10, "chunk_size": 5,
    });
    assert_eq!(gw.post(&globex, "/v1/jobs", job).await.status, 404);

    let globex_bytes = component("globex");
    let own = gw
        .publish(&globex, "thing", "1.0.0", globex_bytes.clone())
        .await;
    assert_eq!(own.status, 201, "names are per tenant");
    let acme_view = gw.get(&acme, "/v1/components/thing/1.0.0").await;
    assert_eq!(acme_view.body["digest"], digest(&acme_bytes).as_str());
    let acme_list = gw.get(&acme, "/v1/components").await;
    assert_eq!(acme_list.body.as_array().unwrap().len(), 1);
}
