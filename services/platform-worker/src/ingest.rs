//! Ingesting a set of blocks: fetch through the rpc-gateway, replace them in
//! Postgres data, write them to the Parquet lake.
//!
//! Full blocks (`eth_getBlockByNumber(n, true)`) give the `blocks` and
//! `transactions` tables, `eth_getLogs({fromBlock: n, toBlock: n})` the
//! `logs` table; requests go out [`RPC_BATCH`] to a JSON-RPC batch. Every
//! block is fetched before anything is written, so a failed fetch writes
//! nothing; the Postgres replacement is one transaction and the lake files
//! are overwritten whole, so running a task again is harmless.

use std::collections::BTreeSet;

use object_store::ObjectStore;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use trace_common::api::Lease;

use crate::lake::{self, LakeError};
use crate::postgres::{self, TaskRows};
use crate::rows::{self, RowError};
use crate::rpc::{RpcClient, RpcError};

/// How many JSON-RPC requests go in one batch.
pub const RPC_BATCH: usize = 10;

/// The most blocks one task may ingest (a guard against a runaway range).
pub const MAX_TASK_BLOCKS: usize = 100_000;

/// Which chain tables a task fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tables {
    pub blocks: bool,
    pub transactions: bool,
    pub logs: bool,
}

impl Tables {
    /// All three tables, the default.
    pub const ALL: Tables = Tables {
        blocks: true,
        transactions: true,
        logs: true,
    };

    /// The tables named by a job's `params.tables` (an array of `"blocks"`,
    /// `"transactions"`, `"logs"`); all three when absent or null.
    pub fn from_params(params: &Value) -> Result<Self, IngestError> {
        let names = match params.get("tables") {
            None | Some(Value::Null) => return Ok(Self::ALL),
            Some(Value::Array(names)) if !names.is_empty() => names,
            Some(other) => return Err(IngestError::InvalidTask(format!("bad tables `{other}`"))),
        };
        let mut tables = Tables {
            blocks: false,
            transactions: false,
            logs: false,
        };
        for name in names {
            match name.as_str() {
                Some("blocks") => tables.blocks = true,
                Some("transactions") => tables.transactions = true,
                Some("logs") => tables.logs = true,
                _ => return Err(IngestError::InvalidTask(format!("unknown table `{name}`"))),
            }
        }
        Ok(tables)
    }
}

/// What one ingest task covers.
#[derive(Debug, Clone)]
pub struct IngestTask {
    pub chain_id: u64,
    /// The task's range, which names its lake files.
    pub from_block: u64,
    pub to_block: u64,
    /// The blocks to ingest, sorted, unique, inside the range.
    pub blocks: Vec<u64>,
    pub tables: Tables,
}

impl IngestTask {
    /// The task a lease describes: `lease.blocks`, or its whole range.
    pub fn from_lease(lease: &Lease) -> Result<Self, IngestError> {
        let (from, to) = (lease.from_block, lease.to_block);
        if from > to {
            return Err(IngestError::InvalidTask(format!(
                "reversed range `{from}`..`{to}`"
            )));
        }
        if to - from >= MAX_TASK_BLOCKS as u64 && lease.blocks.is_none() {
            return Err(IngestError::InvalidTask(format!(
                "range `{from}`..`{to}` is too long"
            )));
        }
        let blocks: BTreeSet<u64> = match &lease.blocks {
            Some(blocks) => blocks.iter().copied().collect(),
            None => (from..=to).collect(),
        };
        if let Some(outside) = blocks.iter().find(|&&n| n < from || n > to) {
            let msg = format!("block `{outside}` is outside the range `{from}`..`{to}`");
            return Err(IngestError::InvalidTask(msg));
        }
        Ok(Self {
            chain_id: lease.chain_id,
            from_block: from,
            to_block: to,
            blocks: blocks.into_iter().collect(),
            tables: Tables::from_params(&lease.params)?,
        })
    }
}

/// What a task wrote, reported as its summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IngestSummary {
    pub blocks: u64,
    pub transactions: u64,
    pub logs: u64,
}

/// A failed ingest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The task itself is malformed (range, blocks or tables).
    #[error("invalid ingest task: {0}")]
    InvalidTask(String),
    /// Fetching through the rpc-gateway failed.
    #[error("fetching from the chain failed")]
    Rpc(#[from] RpcError),
    /// The provider answered something that is not a valid block or log.
    #[error("block `{block}` has a malformed {what}")]
    Malformed {
        /// The block being ingested.
        block: u64,
        /// What was malformed: "block" or "log".
        what: &'static str,
        #[source]
        source: RowError,
    },
    /// The provider has no such block (yet).
    #[error("block `{0}` is not available from the provider")]
    Unavailable(u64),
    /// Writing Postgres data failed.
    #[error("writing the chain tables failed")]
    Database(#[from] sqlx::Error),
    /// Writing the Parquet lake failed.
    #[error("writing the lake failed")]
    Lake(#[from] LakeError),
    /// The task was cancelled before it wrote anything.
    #[error("ingest cancelled")]
    Cancelled,
}

impl IngestError {
    /// Whether running the task again may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Rpc(e) => e.is_transient(),
            Self::Unavailable(_) | Self::Database(_) | Self::Lake(_) | Self::Cancelled => true,
            Self::InvalidTask(_) | Self::Malformed { .. } => false,
        }
    }
}

/// Ingests `task`: fetches its blocks through `rpc`, replaces them in the
/// chain tables of `data` and writes its lake files to `objects`.
pub async fn ingest_blocks(
    rpc: &RpcClient,
    data: &PgPool,
    objects: &dyn ObjectStore,
    task: &IngestTask,
    cancel: &CancellationToken,
) -> Result<IngestSummary, IngestError> {
    let tables = task.tables;
    let mut rows = TaskRows::default();
    if tables.blocks || tables.transactions {
        let (blocks, txs) = fetch_blocks(rpc, &task.blocks, cancel).await?;
        rows.blocks = tables.blocks.then_some(blocks);
        rows.transactions = tables.transactions.then_some(txs);
    }
    if tables.logs {
        rows.logs = Some(fetch_logs(rpc, &task.blocks, cancel).await?);
    }
    if cancel.is_cancelled() {
        return Err(IngestError::Cancelled);
    }

    postgres::replace_blocks(data, task.chain_id, &task.blocks, &rows).await?;
    write_lake(objects, task, &rows).await?;

    let count = |n: Option<usize>| n.unwrap_or(0) as u64;
    let summary = IngestSummary {
        blocks: count(rows.blocks.as_ref().map(Vec::len)),
        transactions: count(rows.transactions.as_ref().map(Vec::len)),
        logs: count(rows.logs.as_ref().map(Vec::len)),
    };
    tracing::info!(
        chain = task.chain_id,
        from = task.from_block,
        to = task.to_block,
        blocks = summary.blocks,
        transactions = summary.transactions,
        logs = summary.logs,
        "blocks ingested"
    );
    Ok(summary)
}

async fn fetch_blocks(
    rpc: &RpcClient,
    numbers: &[u64],
    cancel: &CancellationToken,
) -> Result<(Vec<rows::BlockRow>, Vec<rows::TransactionRow>), IngestError> {
    let (mut blocks, mut txs) = (Vec::new(), Vec::new());
    for chunk in numbers.chunks(RPC_BATCH) {
        if cancel.is_cancelled() {
            return Err(IngestError::Cancelled);
        }
        let params: Vec<Value> = chunk.iter().map(|&n| json!([hex(n), true])).collect();
        let answers = rpc.batch("eth_getBlockByNumber", &params).await?;
        for (&n, block) in chunk.iter().zip(answers) {
            if block.is_null() {
                return Err(IngestError::Unavailable(n));
            }
            let malformed = |source| IngestError::Malformed {
                block: n,
                what: "block",
                source,
            };
            let (row, block_txs) = rows::block_rows(&block).map_err(malformed)?;
            if row.number as u64 != n {
                let source = RowError::Invalid {
                    field: "number",
                    value: row.number.to_string(),
                };
                return Err(malformed(source));
            }
            blocks.push(row);
            txs.extend(block_txs);
        }
    }
    Ok((blocks, txs))
}

async fn fetch_logs(
    rpc: &RpcClient,
    numbers: &[u64],
    cancel: &CancellationToken,
) -> Result<Vec<rows::LogRow>, IngestError> {
    let mut logs = Vec::new();
    for chunk in numbers.chunks(RPC_BATCH) {
        if cancel.is_cancelled() {
            return Err(IngestError::Cancelled);
        }
        let params: Vec<Value> = chunk
            .iter()
            .map(|&n| json!([{"fromBlock": hex(n), "toBlock": hex(n)}]))
            .collect();
        let answers = rpc.batch("eth_getLogs", &params).await?;
        for (&n, answer) in chunk.iter().zip(answers) {
            let malformed = |source| IngestError::Malformed {
                block: n,
                what: "log",
                source,
            };
            let Value::Array(block_logs) = answer else {
                let source = RowError::Invalid {
                    field: "result",
                    value: answer.to_string(),
                };
                return Err(malformed(source));
            };
            for log in &block_logs {
                let row = rows::log_row(log).map_err(malformed)?;
                if row.block_number as u64 != n {
                    let value = row.block_number.to_string();
                    return Err(malformed(RowError::Invalid {
                        field: "blockNumber",
                        value,
                    }));
                }
                logs.push(row);
            }
        }
    }
    Ok(logs)
}

async fn write_lake(
    objects: &dyn ObjectStore,
    task: &IngestTask,
    rows: &TaskRows,
) -> Result<(), IngestError> {
    let chain = task.chain_id as i64;
    let key = |table| lake::lake_key(task.chain_id, table, task.from_block, task.to_block);
    let encode = |key: &str| {
        let key = key.to_string();
        move |e: arrow::error::ArrowError| LakeError::Encode {
            key,
            source: Box::new(e),
        }
    };
    if let Some(blocks) = &rows.blocks {
        let key = key("blocks");
        let batch = lake::blocks_batch(chain, blocks).map_err(encode(&key))?;
        lake::write(objects, &key, &batch).await?;
    }
    if let Some(txs) = &rows.transactions {
        let key = key("transactions");
        let batch = lake::transactions_batch(chain, txs).map_err(encode(&key))?;
        lake::write(objects, &key, &batch).await?;
    }
    if let Some(logs) = &rows.logs {
        let key = key("logs");
        let batch = lake::logs_batch(chain, logs).map_err(encode(&key))?;
        lake::write(objects, &key, &batch).await?;
    }
    Ok(())
}

fn hex(n: u64) -> String {
    format!("{n:#x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_default_to_all_and_unknown_names_are_refused() {
        assert_eq!(Tables::from_params(&json!({})).unwrap(), Tables::ALL);
        let logs_only = Tables::from_params(&json!({"tables": ["logs"]})).unwrap();
        assert_eq!(
            logs_only,
            Tables {
                blocks: false,
                transactions: false,
                logs: true
            }
        );
        assert!(Tables::from_params(&json!({"tables": ["receipts"]})).is_err());
        assert!(Tables::from_params(&json!({"tables": []})).is_err());
    }
}
