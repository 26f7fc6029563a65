//! Queries over Postgres data: chain tables and the tenant's datasets.
//!
//! A query runs in its own read-only transaction with a statement timeout,
//! `search_path` set to the tenant's dataset schema then `chain`, and the
//! role switched to `trace_reader_<tenant>`, which may read `chain` and its
//! own `ds_<tenant>` schema and nothing else. The search path makes the
//! tenant's tables reachable by bare name; the role is what stops a query
//! naming another tenant's schema outright. Rows stream from the server and
//! become Arrow batches of [`BATCH_ROWS`] rows, with the limits checked as
//! they arrive.
//!
//! The service's database user must be able to create roles and switch to
//! them (a superuser in `trace dev`); reader roles are created on a
//! tenant's first query and their grants refreshed when a query is refused
//! for lack of one (a dataset table created since).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use sqlx::postgres::{PgArguments, PgPool, PgTypeInfo};
use sqlx::query::Query;
use sqlx::{Executor, Postgres, Statement, Type};

use crate::QueryResult;
use crate::error::QueryError;
use crate::limits::{Budget, Limits};

mod columns;

use columns::Columns;

/// Rows per Arrow batch.
pub const BATCH_ROWS: usize = 8192;

/// A parameter as bound to Postgres.
#[derive(Debug, Clone)]
enum Param {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// Runs queries against the data database.
#[derive(Debug, Clone)]
pub struct PgSource {
    pool: PgPool,
    limits: Limits,
    ready: Arc<Mutex<HashSet<String>>>,
    setup: Arc<tokio::sync::Mutex<()>>,
}

impl PgSource {
    /// A source over `pool` answering under `limits`.
    pub fn new(pool: PgPool, limits: Limits) -> Self {
        Self {
            pool,
            limits,
            ready: Arc::default(),
            setup: Arc::default(),
        }
    }

    /// The same source under `limits` (a request's, already narrowed).
    pub fn with_limits(&self, limits: Limits) -> Self {
        Self {
            limits,
            ..self.clone()
        }
    }

    /// Runs `sql` for `tenant` with `params` bound to `$1`, `$2`, ...
    pub async fn run(
        &self,
        tenant: &str,
        sql: &str,
        params: &[serde_json::Value],
    ) -> Result<QueryResult, QueryError> {
        let params = params.iter().map(param_of).collect::<Result<Vec<_>, _>>()?;
        self.ensure_reader(tenant, false).await?;
        match self.run_once(tenant, sql, &params).await {
            Err(QueryError::Denied(_)) if self.own_table_refused(tenant, sql).await => {
                self.ensure_reader(tenant, true).await?;
                self.run_once(tenant, sql, &params).await
            }
            other => other,
        }
    }

    async fn run_once(
        &self,
        tenant: &str,
        sql: &str,
        params: &[Param],
    ) -> Result<QueryResult, QueryError> {
        let backstop = self.limits.timeout + std::time::Duration::from_secs(5);
        tokio::time::timeout(backstop, self.execute(tenant, sql, params))
            .await
            .map_err(|_| QueryError::Timeout(self.limits.timeout))?
    }

    async fn execute(
        &self,
        tenant: &str,
        sql: &str,
        params: &[Param],
    ) -> Result<QueryResult, QueryError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.db_error(e))?;
        let setup = [
            "set transaction read only".to_string(),
            format!(
                "set local statement_timeout = {}",
                self.limits.timeout.as_millis()
            ),
            format!(
                "set local search_path = {}, chain",
                quote_ident(&schema_of(tenant))
            ),
            format!("set local role {}", quote_ident(&reader_of(tenant))),
        ];
        for statement in &setup {
            (&mut *tx)
                .execute(statement.as_str())
                .await
                .map_err(|e| self.db_error(e))?;
        }

        let types: Vec<PgTypeInfo> = params.iter().map(Param::type_info).collect();
        let statement = (&mut *tx)
            .prepare_with(sql, &types)
            .await
            .map_err(|e| self.db_error(e))?;
        let (mut columns, fields) = Columns::new(statement.columns())?;
        let schema = Arc::new(Schema::new(fields));
        let query = params.iter().fold(statement.query(), bind);

        let mut budget = Budget::new(self.limits);
        let mut batches = Vec::new();
        let mut rows = query.fetch(&mut *tx);
        while let Some(row) = rows.try_next().await.map_err(|e| self.db_error(e))? {
            let bytes = columns.push(&row)?;
            budget.spend(1, bytes)?;
            if columns.len() == BATCH_ROWS {
                batches.push(finish(&schema, &mut columns)?);
            }
        }
        drop(rows);
        if !columns.is_empty() {
            batches.push(finish(&schema, &mut columns)?);
        }
        tx.rollback().await.map_err(|e| self.db_error(e))?;
        Ok(QueryResult { schema, batches })
    }

    /// Creates the tenant's reader role and schema if needed and grants it
    /// `chain` and its own schema; `refresh` redoes the grants even when this
    /// process has done them before.
    async fn ensure_reader(&self, tenant: &str, refresh: bool) -> Result<(), QueryError> {
        if !refresh
            && self
                .ready
                .lock()
                .expect("reader cache lock")
                .contains(tenant)
        {
            return Ok(());
        }
        let _serial = self.setup.lock().await;
        let (role, schema) = (
            quote_ident(&reader_of(tenant)),
            quote_ident(&schema_of(tenant)),
        );
        let create_role = format!(
            "do $$ begin create role {role} nologin; \
             exception when duplicate_object or unique_violation then null; end $$"
        );
        let statements = [
            create_role,
            format!("create schema if not exists {schema}"),
            format!("grant usage on schema chain, {schema} to {role}"),
            format!("grant select on all tables in schema chain to {role}"),
            format!("grant select on all tables in schema {schema} to {role}"),
            format!("alter default privileges in schema {schema} grant select on tables to {role}"),
        ];
        let mut tx = self.pool.begin().await.map_err(|e| self.db_error(e))?;
        for statement in &statements {
            (&mut *tx)
                .execute(statement.as_str())
                .await
                .map_err(|e| self.db_error(e))?;
        }
        tx.commit().await.map_err(|e| self.db_error(e))?;
        self.ready
            .lock()
            .expect("reader cache lock")
            .insert(tenant.to_string());
        Ok(())
    }

    /// Whether the tenant's own schema holds a table its role cannot read,
    /// which a refreshed grant fixes.
    async fn own_table_refused(&self, tenant: &str, _sql: &str) -> bool {
        let sql = "select count(*) from pg_tables \
                   where schemaname = $1 and not has_table_privilege($2, \
                   format('%I.%I', schemaname, tablename), 'select')";
        let missing: Result<i64, _> = sqlx::query_scalar(sql)
            .bind(schema_of(tenant))
            .bind(reader_of(tenant))
            .fetch_one(&self.pool)
            .await;
        matches!(missing, Ok(n) if n > 0)
    }

    fn db_error(&self, err: sqlx::Error) -> QueryError {
        let Some(db) = err.as_database_error() else {
            return match err {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_) => QueryError::Unavailable(err.to_string()),
                _ => QueryError::Internal(err.to_string()),
            };
        };
        let code = db.code().map(|c| c.to_string()).unwrap_or_default();
        let message = db.message().to_string();
        match code.as_str() {
            "57014" => QueryError::Timeout(self.limits.timeout),
            // Connection exceptions, and the server shutting down or starting.
            c if c.starts_with("08") && !message.contains("parameters") => {
                QueryError::Unavailable(message)
            }
            "57P01" | "57P02" | "57P03" => QueryError::Unavailable(message),
            "25006" => QueryError::Denied(format!("the query may only read: {message}")),
            "42501" => QueryError::Denied(message),
            // A bind with fewer or more values than the statement's `$n`.
            "08P01" if message.contains("parameters") => QueryError::InvalidQuery(format!(
                "parameters do not match the statement: {message}"
            )),
            c if ["42", "22", "21", "0A", "2F", "3F", "54", "P0"]
                .iter()
                .any(|p| c.starts_with(p)) =>
            {
                QueryError::InvalidQuery(message)
            }
            _ => QueryError::Internal(err.to_string()),
        }
    }
}

impl Param {
    fn type_info(&self) -> PgTypeInfo {
        match self {
            Param::Null | Param::Text(_) => <String as Type<Postgres>>::type_info(),
            Param::Bool(_) => <bool as Type<Postgres>>::type_info(),
            Param::Int(_) => <i64 as Type<Postgres>>::type_info(),
            Param::Float(_) => <f64 as Type<Postgres>>::type_info(),
        }
    }
}

fn param_of(value: &serde_json::Value) -> Result<Param, QueryError> {
    use serde_json::Value;
    Ok(match value {
        Value::Null => Param::Null,
        Value::Bool(b) => Param::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Param::Int(i),
            (None, Some(f)) if n.is_f64() => Param::Float(f),
            _ => {
                return Err(QueryError::InvalidQuery(format!(
                    "parameter `{n}` does not fit a 64-bit integer; pass it as a string"
                )));
            }
        },
        Value::String(s) => Param::Text(s.clone()),
        other => {
            return Err(QueryError::InvalidQuery(format!(
                "parameters must be null, booleans, numbers or strings, not `{other}`"
            )));
        }
    })
}

fn bind<'q>(
    query: Query<'q, Postgres, PgArguments>,
    param: &Param,
) -> Query<'q, Postgres, PgArguments> {
    match param.clone() {
        Param::Null => query.bind(None::<String>),
        Param::Bool(b) => query.bind(b),
        Param::Int(i) => query.bind(i),
        Param::Float(f) => query.bind(f),
        Param::Text(s) => query.bind(s),
    }
}

fn finish(schema: &Arc<Schema>, columns: &mut Columns) -> Result<RecordBatch, QueryError> {
    RecordBatch::try_new(schema.clone(), columns.finish())
        .map_err(|e| QueryError::Internal(format!("building a result batch: {e}")))
}

/// The schema holding `tenant`'s datasets.
pub fn schema_of(tenant: &str) -> String {
    format!("ds_{tenant}")
}

/// The role `tenant`'s queries run as.
pub fn reader_of(tenant: &str) -> String {
    format!("trace_reader_{tenant}")
}

/// `name` as a quoted SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
