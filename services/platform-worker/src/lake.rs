//! Writing a task's rows to the Parquet lake.
//!
//! One file per table per task, at
//! `lake/chain=<id>/<table>/<from:012>-<to:012>.parquet` (zero-padded so that
//! names sort by block). The Arrow types follow the Postgres columns:
//! `int8` is Int64, `int4` Int32, `text` Utf8, `numeric` Utf8 holding the
//! exact decimal, `timestamptz` Timestamp(Microsecond, "UTC"). Files are
//! written whole with snappy compression; a re-run overwrites them.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::rows::{BlockRow, LogRow, TransactionRow};

/// A failure to write a lake file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LakeError {
    /// Building the Arrow batch or encoding Parquet failed.
    #[error("cannot encode `{key}` as Parquet")]
    Encode {
        /// The object key being written.
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The object store refused the write.
    #[error("cannot store `{key}`")]
    Store {
        /// The object key being written.
        key: String,
        #[source]
        source: object_store::Error,
    },
}

/// The key of a task's file of `table`.
pub fn lake_key(chain_id: u64, table: &str, from: u64, to: u64) -> String {
    let prefix = trace_common::objects::lake_prefix(chain_id, table);
    format!("{prefix}/{from:012}-{to:012}.parquet")
}

/// The Arrow batch of `chain.blocks` rows.
pub fn blocks_batch(
    chain_id: i64,
    rows: &[BlockRow],
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let columns: Vec<(&str, ArrayRef, bool)> = vec![
        ("chain_id", int64(rows, |_| chain_id), false),
        ("number", int64(rows, |r| r.number), false),
        ("hash", utf8(rows, |r| Some(&r.hash)), false),
        ("parent_hash", utf8(rows, |r| Some(&r.parent_hash)), false),
        ("timestamp", timestamps(rows), false),
        ("miner", utf8(rows, |r| Some(&r.miner)), false),
        ("gas_used", int64(rows, |r| r.gas_used), false),
        ("gas_limit", int64(rows, |r| r.gas_limit), false),
        (
            "base_fee_per_gas",
            utf8(rows, |r| r.base_fee_per_gas.as_ref()),
            true,
        ),
        (
            "transaction_count",
            int32(rows, |r| r.transaction_count),
            false,
        ),
    ];
    batch(columns)
}

/// The Arrow batch of `chain.transactions` rows.
pub fn transactions_batch(
    chain_id: i64,
    rows: &[TransactionRow],
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let columns: Vec<(&str, ArrayRef, bool)> = vec![
        ("chain_id", int64(rows, |_| chain_id), false),
        ("block_number", int64(rows, |r| r.block_number), false),
        (
            "transaction_index",
            int32(rows, |r| r.transaction_index),
            false,
        ),
        ("hash", utf8(rows, |r| Some(&r.hash)), false),
        ("from_address", utf8(rows, |r| Some(&r.from_address)), false),
        ("to_address", utf8(rows, |r| r.to_address.as_ref()), true),
        ("value", utf8(rows, |r| Some(&r.value)), false),
        ("gas", int64(rows, |r| r.gas), false),
        ("gas_price", utf8(rows, |r| r.gas_price.as_ref()), true),
        ("nonce", int64(rows, |r| r.nonce), false),
        ("input", utf8(rows, |r| Some(&r.input)), false),
        ("type", int32(rows, |r| r.tx_type), false),
    ];
    batch(columns)
}

/// The Arrow batch of `chain.logs` rows.
pub fn logs_batch(chain_id: i64, rows: &[LogRow]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let columns: Vec<(&str, ArrayRef, bool)> = vec![
        ("chain_id", int64(rows, |_| chain_id), false),
        ("block_number", int64(rows, |r| r.block_number), false),
        ("block_hash", utf8(rows, |r| Some(&r.block_hash)), false),
        (
            "transaction_hash",
            utf8(rows, |r| Some(&r.transaction_hash)),
            false,
        ),
        (
            "transaction_index",
            int32(rows, |r| r.transaction_index),
            false,
        ),
        ("log_index", int32(rows, |r| r.log_index), false),
        ("address", utf8(rows, |r| Some(&r.address)), false),
        ("topic0", utf8(rows, |r| r.topics[0].as_ref()), true),
        ("topic1", utf8(rows, |r| r.topics[1].as_ref()), true),
        ("topic2", utf8(rows, |r| r.topics[2].as_ref()), true),
        ("topic3", utf8(rows, |r| r.topics[3].as_ref()), true),
        ("data", utf8(rows, |r| Some(&r.data)), false),
    ];
    batch(columns)
}

/// Encodes `batch` as one snappy Parquet file and stores it under `key`.
pub async fn write(
    store: &dyn ObjectStore,
    key: &str,
    batch: &RecordBatch,
) -> Result<(), LakeError> {
    let encode = |source: parquet::errors::ParquetError| LakeError::Encode {
        key: key.to_string(),
        source: Box::new(source),
    };
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut bytes = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut bytes, batch.schema(), Some(props)).map_err(encode)?;
    writer.write(batch).map_err(encode)?;
    writer.close().map_err(encode)?;

    store
        .put(&Path::from(key), PutPayload::from(bytes))
        .await
        .map_err(|source| LakeError::Store {
            key: key.to_string(),
            source,
        })?;
    Ok(())
}

fn batch(columns: Vec<(&str, ArrayRef, bool)>) -> Result<RecordBatch, arrow::error::ArrowError> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array, nullable)| Field::new(*name, array.data_type().clone(), *nullable))
        .collect();
    let arrays = columns.into_iter().map(|(_, array, _)| array).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
}

fn int64<R>(rows: &[R], f: impl Fn(&R) -> i64) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(rows.iter().map(f)))
}

fn int32<R>(rows: &[R], f: impl Fn(&R) -> i32) -> ArrayRef {
    Arc::new(Int32Array::from_iter_values(rows.iter().map(f)))
}

fn utf8<R>(rows: &[R], f: impl Fn(&R) -> Option<&String>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<StringArray>())
}

fn timestamps(rows: &[BlockRow]) -> ArrayRef {
    let micros = rows.iter().map(|r| r.timestamp.timestamp_micros());
    Arc::new(TimestampMicrosecondArray::from_iter_values(micros).with_timezone("UTC"))
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, TimeUnit};

    use super::*;

    #[test]
    fn block_timestamps_are_utc_microseconds() {
        let row = BlockRow {
            number: 1,
            hash: "0x01".into(),
            parent_hash: "0x00".into(),
            timestamp: chrono::DateTime::from_timestamp(1_438_269_988, 0).unwrap(),
            miner: "0x02".into(),
            gas_used: 0,
            gas_limit: 5000,
            base_fee_per_gas: None,
            transaction_count: 0,
        };
        let batch = blocks_batch(1, &[row]).unwrap();
        let field = batch.schema().field_with_name("timestamp").unwrap().clone();
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        assert_eq!(field.data_type(), &utc);
        let column = batch.column_by_name("timestamp").unwrap();
        let micros = column
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(micros.value(0), 1_438_269_988_000_000);
        assert!(
            batch
                .schema()
                .field_with_name("base_fee_per_gas")
                .unwrap()
                .is_nullable()
        );
    }

    #[test]
    fn lake_keys_are_zero_padded_block_ranges() {
        assert_eq!(
            lake_key(1, "logs", 15_537_393, 15_537_394),
            "lake/chain=1/logs/000015537393-000015537394.parquet"
        );
    }
}
