//! A tenant's datasets are visible to that tenant only.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use serde_json::json;

use super::support::{code, query, start};

async fn exec(pool: &sqlx::PgPool, sql: &str) {
    sqlx::query(sql).execute(pool).await.unwrap();
}

#[tokio::test]
async fn a_dataset_is_readable_by_its_tenant_and_no_other() {
    let service = start(|_| {}).await;
    exec(&service.data, "create schema ds_acme").await;
    exec(&service.data, "create table ds_acme.notes (n bigint)").await;
    exec(&service.data, "insert into ds_acme.notes values (7), (8)").await;

    let own = query(
        &service.base,
        "acme",
        "select sum(n)::bigint as s from notes",
        json!([]),
        false,
    )
    .await
    .unwrap();
    assert_eq!(own.column(0).as_primitive::<Int64Type>().value(0), 15);

    let bare = query(
        &service.base,
        "other",
        "select * from notes",
        json!([]),
        false,
    )
    .await;
    assert_eq!(code(&bare), (400, "invalid_query".into()));
    let qualified = query(
        &service.base,
        "other",
        "select * from ds_acme.notes",
        json!([]),
        false,
    )
    .await;
    assert_eq!(code(&qualified), (403, "denied".into()));
    for sql in ["select * from public.sink_batches", "select * from alerts"] {
        let answer = query(&service.base, "acme", sql, json!([]), false).await;
        assert!(code(&answer).0 >= 400, "{sql} was answered");
    }
}

#[tokio::test]
async fn a_dataset_created_after_the_first_query_is_readable_too() {
    let service = start(|_| {}).await;
    query(&service.base, "acme", "select 1 as x", json!([]), false)
        .await
        .unwrap();
    exec(&service.data, "create table ds_acme.later (n bigint)").await;
    exec(&service.data, "insert into ds_acme.later values (3)").await;
    let later = query(
        &service.base,
        "acme",
        "select n from later",
        json!([]),
        false,
    )
    .await
    .unwrap();
    assert_eq!(later.column(0).as_primitive::<Int64Type>().value(0), 3);
}
