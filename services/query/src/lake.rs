//! Queries over the Parquet lake with DataFusion.
//!
//! The platform worker writes one Parquet file per table per ingest task
//! under `lake/chain=1/<table>/` of the object store (a local directory or
//! an S3 bucket, registered with DataFusion as the `objects://platform/`
//! store, so it plans and reads the same over either). Files appear while
//! ingest runs,
//! so each query gets a fresh `SessionContext` with whichever of the lake's
//! tables have files registered as listing tables; a table without files
//! is not registered and a query naming it is told so. DDL, DML and other
//! statements are refused by the SQL options as well as by the read-only
//! gate, and parameters bind to `$1`, `$2`, ... cast to the types
//! DataFusion inferred for them.
//!
//! Results are reported with every field nullable, as the Postgres source
//! does, so that the same query over the same rows gives the same batches
//! from either source.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::prelude::ParquetReadOptions;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;

use crate::QueryResult;
use crate::error::QueryError;
use crate::limits::{Budget, Limits};

/// The tables the lake holds.
pub const TABLES: [&str; 3] = ["blocks", "transactions", "logs"];

/// The chain the lake serves.
const CHAIN_ID: u64 = 1;

/// The URL the object store is registered under in each query's context.
const STORE_URL: &str = "objects://platform/";

/// Runs queries over the lake in an object store.
#[derive(Debug, Clone)]
pub struct LakeSource {
    store: Arc<dyn ObjectStore>,
    limits: Limits,
}

impl LakeSource {
    /// A source over `lake/chain=1/` of `store` answering under `limits`.
    pub fn new(store: Arc<dyn ObjectStore>, limits: Limits) -> Self {
        Self { store, limits }
    }

    /// The same source under `limits` (a request's, already narrowed).
    pub fn with_limits(&self, limits: Limits) -> Self {
        Self {
            limits,
            store: self.store.clone(),
        }
    }

    /// Runs `sql` with `params` bound to `$1`, `$2`, ...
    pub async fn run(
        &self,
        sql: &str,
        params: &[serde_json::Value],
    ) -> Result<QueryResult, QueryError> {
        tokio::time::timeout(self.limits.timeout, self.execute(sql, params))
            .await
            .map_err(|_| QueryError::Timeout(self.limits.timeout))?
    }

    async fn execute(
        &self,
        sql: &str,
        params: &[serde_json::Value],
    ) -> Result<QueryResult, QueryError> {
        let (ctx, present) = self.context().await?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let frame = ctx
            .sql_with_options(sql, options)
            .await
            .map_err(|e| plan_error(e, &present))?;
        let frame = if params.is_empty() {
            frame
        } else {
            let values = bind_values(frame.logical_plan(), params)?;
            frame
                .with_param_values(values)
                .map_err(|e| plan_error(e, &present))?
        };

        let schema = nullable(frame.schema().as_arrow());
        let mut stream = frame
            .execute_stream()
            .await
            .map_err(|e| plan_error(e, &present))?;
        let mut budget = Budget::new(self.limits);
        let mut batches = Vec::new();
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| plan_error(e, &present))?;
            if batch.num_rows() == 0 {
                continue;
            }
            budget.spend(
                batch.num_rows() as u64,
                batch.get_array_memory_size() as u64,
            )?;
            let batch = conform(&schema, &batch)?;
            batches.push(batch);
        }
        Ok(QueryResult { schema, batches })
    }

    /// A context with every lake table that has files; also their names.
    async fn context(&self) -> Result<(SessionContext, Vec<&'static str>), QueryError> {
        let mut config = SessionConfig::new();
        config.options_mut().sql_parser.dialect = "PostgreSQL"
            .parse()
            .map_err(|e| QueryError::Internal(format!("configuring the lake sql dialect: {e}")))?;
        // Plain Utf8 rather than Utf8View, the type the Postgres source answers.
        config
            .options_mut()
            .execution
            .parquet
            .schema_force_view_types = false;
        let ctx = SessionContext::new_with_config(config);
        let store_url = url::Url::parse(STORE_URL).expect("the store url parses");
        ctx.register_object_store(&store_url, self.store.clone());
        let mut present = Vec::new();
        for table in TABLES {
            let prefix = trace_common::objects::lake_prefix(CHAIN_ID, table);
            if !self.has_parquet(&prefix).await? {
                continue;
            }
            let url = format!("{STORE_URL}{prefix}/");
            let options = ParquetReadOptions::default().file_extension(".parquet");
            ctx.register_parquet(table, &url, options)
                .await
                .map_err(|e| {
                    QueryError::Internal(format!("registering lake table `{table}`: {e}"))
                })?;
            present.push(table);
        }
        Ok((ctx, present))
    }

    /// Whether `prefix` holds a Parquet file yet.
    async fn has_parquet(&self, prefix: &str) -> Result<bool, QueryError> {
        let prefix = object_store::path::Path::from(prefix);
        let mut files = self.store.list(Some(&prefix));
        while let Some(meta) = files
            .try_next()
            .await
            .map_err(|e| QueryError::Unavailable(format!("listing the lake: {e}")))?
        {
            if meta.location.as_ref().ends_with(".parquet") {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn bind_values(
    plan: &datafusion::logical_expr::LogicalPlan,
    params: &[serde_json::Value],
) -> Result<Vec<ScalarValue>, QueryError> {
    let types = plan
        .get_parameter_types()
        .map_err(|e| QueryError::InvalidQuery(format!("parameters: {}", e.strip_backtrace())))?;
    params
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let scalar = scalar_of(value)?;
            match types.get(&format!("${}", i + 1)) {
                Some(Some(wanted)) if !scalar.is_null() => scalar.cast_to(wanted).map_err(|_| {
                    QueryError::InvalidQuery(format!(
                        "parameter ${} (`{value}`) cannot be used as `{wanted}`",
                        i + 1
                    ))
                }),
                Some(Some(wanted)) => ScalarValue::try_from(wanted)
                    .map_err(|e| QueryError::InvalidQuery(e.strip_backtrace())),
                _ => Ok(scalar),
            }
        })
        .collect()
}

fn scalar_of(value: &serde_json::Value) -> Result<ScalarValue, QueryError> {
    use serde_json::Value;
    Ok(match value {
        Value::Null => ScalarValue::Null,
        Value::Bool(b) => ScalarValue::Boolean(Some(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => ScalarValue::Int64(Some(i)),
            None if n.is_f64() => ScalarValue::Float64(n.as_f64()),
            None => {
                return Err(QueryError::InvalidQuery(format!(
                    "parameter `{n}` does not fit a 64-bit integer; pass it as a string"
                )));
            }
        },
        Value::String(s) => ScalarValue::Utf8(Some(s.clone())),
        other => {
            return Err(QueryError::InvalidQuery(format!(
                "parameters must be null, booleans, numbers or strings, not `{other}`"
            )));
        }
    })
}

/// The answer's schema: every field nullable, view and large strings as Utf8.
fn nullable(schema: &Schema) -> Arc<Schema> {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let field = f.as_ref().clone().with_nullable(true);
            match f.data_type() {
                DataType::Utf8View | DataType::LargeUtf8 => field.with_data_type(DataType::Utf8),
                _ => field,
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// `batch` under `schema`, casting columns whose type [`nullable`] changed.
fn conform(schema: &Arc<Schema>, batch: &RecordBatch) -> Result<RecordBatch, QueryError> {
    let internal = |e: arrow::error::ArrowError| QueryError::Internal(format!("lake batch: {e}"));
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(column.clone())
            } else {
                arrow::compute::cast(column, field.data_type()).map_err(internal)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(internal)
}

/// A DataFusion failure as the client should see it.
fn plan_error(err: DataFusionError, present: &[&str]) -> QueryError {
    let message = err.strip_backtrace();
    match err.find_root() {
        DataFusionError::ResourcesExhausted(_) => QueryError::LimitExceeded(message),
        DataFusionError::IoError(_)
        | DataFusionError::ObjectStore(_)
        | DataFusionError::ParquetError(_)
        | DataFusionError::Internal(_)
        | DataFusionError::External(_) => QueryError::Internal(message),
        _ if message.contains("not found") && message.contains("table") => {
            let present = if present.is_empty() {
                "none yet".to_string()
            } else {
                present.join(", ")
            };
            QueryError::InvalidQuery(format!(
                "{message}; the lake's tables are {} (with files: {present})",
                TABLES.join(", ")
            ))
        }
        _ => QueryError::InvalidQuery(message),
    }
}
