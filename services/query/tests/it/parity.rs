//! The same SQL over the same rows gives the same batches from Postgres and
//! from the lake, and the values the recorded logs hold.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int32Type, Int64Type, TimeUnit};
use serde_json::json;

use super::support::{BLOCK, TRANSFER, logs, quantity, query, start};

#[tokio::test]
async fn a_filtered_ordered_query_gives_identical_batches_from_both_sources() {
    let service = start(|_| {}).await;
    let sql = "select block_number, log_index, address from logs where topic0 = $1 order by 1, 2";

    let pg = query(&service.base, "acme", sql, json!([TRANSFER]), false)
        .await
        .unwrap();
    let lake = query(&service.base, "acme", sql, json!([TRANSFER]), true)
        .await
        .unwrap();
    assert_eq!(pg, lake);

    let mut expected: Vec<(i64, i32, String)> = logs()
        .iter()
        .filter(|l| l["topics"][0] == TRANSFER)
        .map(|l| {
            let address = l["address"].as_str().unwrap().to_string();
            (
                quantity(&l["blockNumber"]),
                quantity(&l["logIndex"]) as i32,
                address,
            )
        })
        .collect();
    expected.sort();
    assert!(expected.len() > 5, "the fixture holds transfers");

    let schema = pg.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["block_number", "log_index", "address"]);
    assert_eq!(pg.column(0).data_type(), &DataType::Int64);
    assert_eq!(pg.column(1).data_type(), &DataType::Int32);
    assert_eq!(pg.column(2).data_type(), &DataType::Utf8);
    let got: Vec<(i64, i32, String)> = (0..pg.num_rows())
        .map(|i| {
            (
                pg.column(0).as_primitive::<Int64Type>().value(i),
                pg.column(1).as_primitive::<Int32Type>().value(i),
                pg.column(2).as_string::<i32>().value(i).to_string(),
            )
        })
        .collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn nulls_and_integer_parameters_agree_across_sources() {
    let service = start(|_| {}).await;
    let sql = "select log_index, topic3, data from logs where block_number = $1 and log_index < $2 \
               order by log_index";
    let params = json!([BLOCK, 20]);
    let pg = query(&service.base, "acme", sql, params.clone(), false)
        .await
        .unwrap();
    let lake = query(&service.base, "acme", sql, params, true)
        .await
        .unwrap();
    assert_eq!(pg, lake);
    assert_eq!(pg.num_rows(), 20);

    let recorded = logs();
    let nulls = recorded
        .iter()
        .take(20)
        .filter(|l| l["topics"].get(3).is_none())
        .count();
    assert_eq!(pg.column(1).null_count(), nulls);
    assert_eq!(
        pg.column(2).as_string::<i32>().value(7),
        recorded[7]["data"].as_str().unwrap()
    );
}

#[tokio::test]
async fn postgres_types_map_to_their_arrow_types() {
    let service = start(|_| {}).await;
    let sql = "select 1::int2 as a, 2::int4 as b, 3::int8 as c, 1.5::float4 as d, true as e, \
               'x'::text as f, \
               115792089237316195423570985008687907853269984665640564039457584007913129639935\
               ::numeric(78, 0) as g, \
               timestamptz '2020-05-04 13:42:22+00' as h, timestamp '2020-05-04 13:42:22' as i, \
               '{\"a\": 1}'::jsonb as j, '\\xdead'::bytea as k, \
               'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid as l";
    let batch = query(&service.base, "acme", sql, json!([]), false)
        .await
        .unwrap();
    let types: Vec<DataType> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert_eq!(
        types,
        [
            DataType::Int16,
            DataType::Int32,
            DataType::Int64,
            DataType::Float64,
            DataType::Boolean,
            DataType::Utf8,
            DataType::Utf8,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Utf8,
            DataType::Utf8,
            DataType::Utf8,
        ]
    );
    let text = |i: usize| batch.column(i).as_string::<i32>().value(0).to_string();
    assert_eq!(
        text(6),
        "115792089237316195423570985008687907853269984665640564039457584007913129639935"
    );
    assert_eq!(text(9), r#"{"a":1}"#);
    assert_eq!(text(10), "0xdead");
    assert_eq!(text(11), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    let micros = batch
        .column(7)
        .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    assert_eq!(micros.value(0), 1_588_599_742_000_000);
}
