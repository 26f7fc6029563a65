//! What the service refuses, with which code, and the limits it enforces.

use serde_json::json;

use super::support::{code, message, query, query_limited, start};

/// A query that takes many seconds of real work (sleeping is refused).
const SLOW: &str = "select count(*) from generate_series(1, 1000000000)";

#[tokio::test]
async fn writes_ddl_copy_and_multiple_statements_are_denied_on_both_sources() {
    let service = start(|_| {}).await;
    for sql in [
        "insert into logs (chain_id) values (1)",
        "update logs set address = 'x'",
        "delete from logs",
        "create table t (x int)",
        "drop table logs",
        "copy logs to stdout",
        "select 1; select 2",
        "select * from logs for update",
    ] {
        for lake in [false, true] {
            let answer = query(&service.base, "acme", sql, json!([]), lake).await;
            assert_eq!(
                code(&answer),
                (403, "denied".into()),
                "{sql} (lake: {lake})"
            );
        }
    }
    let rows: i64 = sqlx::query_scalar("select count(*) from chain.logs")
        .fetch_one(&service.data)
        .await
        .unwrap();
    assert_eq!(rows, super::support::LOADED as i64);
}

#[tokio::test]
async fn malformed_sql_and_unknown_tables_or_columns_are_invalid_queries() {
    let service = start(|_| {}).await;
    let malformed = query(&service.base, "acme", "selec * frm logs", json!([]), false).await;
    assert_eq!(code(&malformed), (400, "invalid_query".into()));

    for lake in [false, true] {
        let unknown = query(&service.base, "acme", "select * from nope", json!([]), lake).await;
        assert_eq!(code(&unknown), (400, "invalid_query".into()));
        assert!(message(&unknown).contains("nope"), "{}", message(&unknown));
        let column = query(
            &service.base,
            "acme",
            "select nope from logs",
            json!([]),
            lake,
        )
        .await;
        assert_eq!(code(&column), (400, "invalid_query".into()));
        assert!(message(&column).contains("nope"), "{}", message(&column));
    }
    let missing = query(
        &service.base,
        "acme",
        "select * from blocks",
        json!([]),
        true,
    )
    .await;
    assert!(
        message(&missing).contains("with files: logs"),
        "{}",
        message(&missing)
    );

    let interval = query(
        &service.base,
        "acme",
        "select interval '1 day' as x",
        json!([]),
        false,
    )
    .await;
    assert_eq!(code(&interval), (400, "invalid_query".into()));
    assert!(
        message(&interval).contains("`interval`"),
        "{}",
        message(&interval)
    );
}

#[tokio::test]
async fn a_query_past_the_statement_timeout_is_stopped() {
    let service = start(|c| c.statement_timeout_ms = 300).await;
    let started = std::time::Instant::now();
    let answer = query(&service.base, "acme", SLOW, json!([]), false).await;
    assert_eq!(code(&answer), (408, "timeout".into()));
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

#[tokio::test]
async fn results_past_the_row_limit_are_refused_naming_it() {
    let service = start(|c| c.max_rows = 10).await;
    let pg = query(
        &service.base,
        "acme",
        "select generate_series(1, 100) as n",
        json!([]),
        false,
    )
    .await;
    assert_eq!(code(&pg), (422, "limit_exceeded".into()));
    assert!(message(&pg).contains("`10`"), "{}", message(&pg));
    let lake = query(&service.base, "acme", "select * from logs", json!([]), true).await;
    assert_eq!(code(&lake), (422, "limit_exceeded".into()));
    let fits = query(
        &service.base,
        "acme",
        "select * from logs limit 10",
        json!([]),
        true,
    )
    .await;
    assert_eq!(fits.unwrap().num_rows(), 10);
}

#[tokio::test]
async fn a_request_may_lower_the_limits_but_never_raise_them() {
    let service = start(|c| c.max_rows = 10).await;
    let series = "select generate_series(1, 5) as n";
    let ask = |limits| query_limited(&service.base, "acme", series, json!([]), false, limits);

    let lowered = ask(json!({"max_rows": 3})).await;
    assert_eq!(code(&lowered), (422, "limit_exceeded".into()));
    assert_eq!(
        message(&lowered),
        "the result has more than the row limit of `3` rows (max_query_rows)"
    );
    assert_eq!(ask(json!({"max_rows": 5})).await.unwrap().num_rows(), 5);
    let bytes = ask(json!({"max_bytes": 8})).await;
    assert_eq!(
        message(&bytes),
        "the result is larger than the byte limit of `8` bytes (max_query_bytes)"
    );
    let lake = query_limited(
        &service.base,
        "acme",
        "select * from logs limit 5",
        json!([]),
        true,
        json!({"max_rows": 4}),
    )
    .await;
    assert_eq!(code(&lake), (422, "limit_exceeded".into()));

    // Asking for more than the service allows gets the service's limit.
    let raised = query_limited(
        &service.base,
        "acme",
        "select generate_series(1, 100) as n",
        json!([]),
        false,
        json!({"max_rows": 1000}),
    )
    .await;
    assert!(message(&raised).contains("`10`"), "{}", message(&raised));

    let started = std::time::Instant::now();
    let slow = query_limited(
        &service.base,
        "acme",
        SLOW,
        json!([]),
        false,
        json!({"timeout_ms": 200}),
    )
    .await;
    assert_eq!(code(&slow), (408, "timeout".into()));
    assert!(started.elapsed() < std::time::Duration::from_secs(3));

    let unknown = ask(json!({"rows": 1})).await;
    assert_eq!(code(&unknown), (400, "invalid_request".into()));
}

#[tokio::test]
async fn a_missing_or_malformed_tenant_is_refused() {
    let service = start(|_| {}).await;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/query", service.base))
        .json(&json!({"sql": "select 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let bad = query(&service.base, "Acme-1", "select 1", json!([]), false).await;
    assert_eq!(code(&bad), (400, "invalid_tenant".into()));
}
