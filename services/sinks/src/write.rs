//! Writing a committed batch into its dataset or the alerts table.
//!
//! Runs inside the promotion transaction of [`crate::apply`], once per
//! staged batch of the committed attempt, in `seq` order. A records batch
//! is checked in full before any row is written (the checks ran at staging
//! too; the dataset's stored declaration may have changed since); rows go in
//! with one multi-row `INSERT ... SELECT FROM UNNEST(...)`, alerts likewise,
//! keeping existing alert ids.

use serde_json::{Map, Value};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Postgres, Transaction};
use trace_common::api::{Alert, BufferBatch, BufferPayload, Column};

use crate::dataset::{self, Cell, Kind, quote_ident};

/// Writes `batch`; the inner `Err` is a reason to reject it, with nothing
/// of it written. The `Ok` counts the rows or alerts written.
pub async fn write(
    tx: &mut Transaction<'_, Postgres>,
    batch: &BufferBatch,
) -> Result<Result<u64, String>, sqlx::Error> {
    match &batch.payload {
        BufferPayload::Records {
            dataset,
            columns,
            rows,
        } => apply_records(tx, batch, dataset, columns, rows).await,
        BufferPayload::Alerts { alerts } => insert_alerts(tx, batch, alerts).await.map(Ok),
    }
}

/// The checks a batch must pass before it is staged: everything that does
/// not depend on what is stored.
pub fn check(batch: &BufferBatch) -> Result<(), String> {
    if !valid_tenant(&batch.tenant_id) {
        return Err(format!(
            "tenant `{}` is not a valid tenant id",
            batch.tenant_id
        ));
    }
    if let BufferPayload::Records {
        dataset: name,
        columns,
        rows,
    } = &batch.payload
    {
        let kinds = dataset::check_declaration(name, columns)?;
        dataset::check_rows(columns, &kinds, rows).map_err(|r| format!("dataset `{name}`: {r}"))?;
    }
    Ok(())
}

async fn apply_records(
    tx: &mut Transaction<'_, Postgres>,
    batch: &BufferBatch,
    name: &str,
    columns: &[Column],
    rows: &[Map<String, Value>],
) -> Result<Result<u64, String>, sqlx::Error> {
    if !valid_tenant(&batch.tenant_id) {
        return Ok(Err(format!(
            "tenant `{}` is not a valid tenant id",
            batch.tenant_id
        )));
    }
    let kinds = match dataset::check_declaration(name, columns) {
        Ok(kinds) => kinds,
        Err(reason) => return Ok(Err(reason)),
    };
    let cells = match dataset::check_rows(columns, &kinds, rows) {
        Ok(cells) => cells,
        Err(reason) => return Ok(Err(format!("dataset `{name}`: {reason}"))),
    };
    if let Err(reason) = ensure_dataset(tx, &batch.tenant_id, name, columns, &kinds).await? {
        return Ok(Err(reason));
    }
    if !rows.is_empty() {
        insert_rows(tx, batch, name, columns, &kinds, cells).await?;
    }
    Ok(Ok(rows.len() as u64))
}

/// Creates the dataset's schema, table and `datasets` row on first use, or
/// checks the declaration against the stored one.
async fn ensure_dataset(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &str,
    name: &str,
    columns: &[Column],
    kinds: &[Kind],
) -> Result<Result<(), String>, sqlx::Error> {
    let declared = serde_json::to_value(columns).expect("columns serialize");
    if let Some(stored) = stored_columns(tx, tenant, name).await? {
        return Ok(same_declaration(name, &stored, &declared));
    }

    // First use: serialise creators of this tenant's datasets, then look again.
    sqlx::query("select pg_advisory_xact_lock(hashtext('trace-sinks:' || $1))")
        .bind(tenant)
        .execute(&mut **tx)
        .await?;
    if let Some(stored) = stored_columns(tx, tenant, name).await? {
        return Ok(same_declaration(name, &stored, &declared));
    }
    let schema = format!("ds_{tenant}");
    sqlx::query(&format!(
        "create schema if not exists {}",
        quote_ident(&schema)
    ))
    .execute(&mut **tx)
    .await?;
    sqlx::query(&dataset::create_table_sql(&schema, name, columns, kinds))
        .execute(&mut **tx)
        .await?;
    sqlx::query("insert into datasets (tenant_id, name, columns) values ($1, $2, $3)")
        .bind(tenant)
        .bind(name)
        .bind(&declared)
        .execute(&mut **tx)
        .await?;
    Ok(Ok(()))
}

async fn stored_columns(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &str,
    name: &str,
) -> Result<Option<Value>, sqlx::Error> {
    sqlx::query_scalar("select columns from datasets where tenant_id = $1 and name = $2")
        .bind(tenant)
        .bind(name)
        .fetch_optional(&mut **tx)
        .await
}

fn same_declaration(name: &str, stored: &Value, declared: &Value) -> Result<(), String> {
    if stored == declared {
        Ok(())
    } else {
        Err(format!(
            "dataset `{name}` is declared with columns {declared}, but it exists with {stored}"
        ))
    }
}

async fn insert_rows(
    tx: &mut Transaction<'_, Postgres>,
    batch: &BufferBatch,
    name: &str,
    columns: &[Column],
    kinds: &[Kind],
    cells: Vec<Vec<Cell>>,
) -> Result<(), sqlx::Error> {
    let n = columns.len();
    let targets: Vec<String> = columns.iter().map(|c| quote_ident(&c.name)).collect();
    let arrays: Vec<String> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| format!("${}::{}[]", i + 1, array_type(*k)))
        .collect();
    let aliases: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let values: Vec<String> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| match k {
            Kind::Numeric => format!("c{i}::numeric(78, 0)"),
            _ => format!("c{i}"),
        })
        .collect();
    let sql = format!(
        "insert into {}.{} ({}, _job_id, _task_id, _attempt, _batch_seq, _row) \
         select {}, ${}, ${}, ${}, ${}, (ord - 1)::integer \
         from unnest({}) with ordinality as u({}, ord) \
         on conflict (_task_id, _attempt, _batch_seq, _row) do nothing",
        quote_ident(&format!("ds_{}", batch.tenant_id)),
        quote_ident(name),
        targets.join(", "),
        values.join(", "),
        n + 1,
        n + 2,
        n + 3,
        n + 4,
        arrays.join(", "),
        aliases.join(", "),
    );

    let mut query = sqlx::query(&sql);
    for (kind, column) in kinds.iter().zip(cells) {
        query = bind_column(query, *kind, column);
    }
    query
        .bind(batch.job_id)
        .bind(batch.task_id)
        .bind(batch.attempt as i32)
        .bind(batch.seq as i32)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn array_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Text | Kind::Numeric => "text",
        Kind::Int64 => "bigint",
        Kind::Float64 => "double precision",
        Kind::Boolean => "boolean",
        Kind::Timestamp => "timestamptz",
    }
}

fn bind_column<'q>(
    query: Query<'q, Postgres, PgArguments>,
    kind: Kind,
    cells: Vec<Cell>,
) -> Query<'q, Postgres, PgArguments> {
    macro_rules! column {
        ($variant:ident) => {
            cells
                .into_iter()
                .map(|c| match c {
                    Cell::$variant(v) => Some(v),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
    }
    match kind {
        Kind::Text => query.bind(column!(Text)),
        Kind::Numeric => query.bind(column!(Numeric)),
        Kind::Int64 => query.bind(column!(Int)),
        Kind::Float64 => query.bind(column!(Float)),
        Kind::Boolean => query.bind(column!(Bool)),
        Kind::Timestamp => query.bind(column!(Timestamp)),
    }
}

async fn insert_alerts(
    tx: &mut Transaction<'_, Postgres>,
    batch: &BufferBatch,
    alerts: &[Alert],
) -> Result<u64, sqlx::Error> {
    let ids: Vec<&str> = alerts.iter().map(|a| a.id.as_str()).collect();
    let keys: Vec<&str> = alerts.iter().map(|a| a.key.as_str()).collect();
    let severities: Vec<&str> = alerts.iter().map(|a| a.severity.as_str()).collect();
    let titles: Vec<&str> = alerts.iter().map(|a| a.title.as_str()).collect();
    let payloads: Vec<String> = alerts.iter().map(|a| a.payload.to_string()).collect();
    sqlx::query(
        "insert into alerts \
         (id, tenant_id, job_id, task_id, attempt, key, severity, title, payload) \
         select id, $6, $7, $8, $9, key, severity, title, payload::jsonb \
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) \
         as u(id, key, severity, title, payload) \
         on conflict (id) do nothing",
    )
    .bind(ids)
    .bind(keys)
    .bind(severities)
    .bind(titles)
    .bind(payloads)
    .bind(&batch.tenant_id)
    .bind(batch.job_id)
    .bind(batch.task_id)
    .bind(batch.attempt as i32)
    .execute(&mut **tx)
    .await?;
    Ok(alerts.len() as u64)
}

/// Whether `tenant` is a valid tenant id (`^[a-z][a-z0-9_]{0,31}$`).
fn valid_tenant(tenant: &str) -> bool {
    let mut chars = tenant.chars();
    matches!(chars.next(), Some('a'..='z'))
        && tenant.len() <= 32
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}
