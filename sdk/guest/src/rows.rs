//! The rows of a query result, decoded from an Arrow IPC stream, with typed
//! access to columns by name.
//!
//! Text comes as Arrow `Utf8`, `LargeUtf8` or `Utf8View`; integers as any
//! signed width, widened on read. A value of the wrong type or an unexpected
//! null is a [`ColumnError`] naming the column, which `?` turns into
//! [`UdfError::InvalidInput`](crate::UdfError::InvalidInput).

use std::io::Cursor;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int8Type, Int16Type, Int32Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use arrow_ipc::reader::StreamReader;
use arrow_schema::DataType;

use crate::QueryError;

/// All rows of a query result.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    batches: Vec<RecordBatch>,
    /// The index of the first row of each batch, for random access.
    starts: Vec<usize>,
    len: usize,
}

/// One row of a [`Rows`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    batch: &'a RecordBatch,
    index: usize,
}

/// Why a column value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ColumnError {
    /// The result has no column of that name.
    #[error("no column `{0}` in the result")]
    Missing(String),
    /// The column holds another type than the one asked for.
    #[error("column `{column}` holds `{found}`, not {wanted}")]
    WrongType {
        /// The column's name.
        column: String,
        /// The Arrow type it holds.
        found: String,
        /// The type asked for.
        wanted: &'static str,
    },
    /// The value is null where a value was required.
    #[error("column `{0}` is null")]
    Null(String),
}

impl Rows {
    /// Decodes an Arrow IPC stream: one schema message and record batches.
    pub fn from_ipc(bytes: &[u8]) -> Result<Rows, QueryError> {
        let reader = StreamReader::try_new(Cursor::new(bytes), None)
            .map_err(|e| QueryError::Decode(e.to_string()))?;
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| QueryError::Decode(e.to_string()))?;
        Ok(Rows::from_batches(batches))
    }

    /// Wraps record batches already in memory.
    pub fn from_batches(batches: Vec<RecordBatch>) -> Rows {
        let mut starts = Vec::with_capacity(batches.len());
        let mut len = 0;
        for batch in &batches {
            starts.push(len);
            len += batch.num_rows();
        }
        Rows {
            batches,
            starts,
            len,
        }
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The row at an index, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<Row<'_>> {
        if index >= self.len {
            return None;
        }
        // The last batch starting at or before the index holds it: a later
        // batch with the same start would be empty.
        let position = self.starts.partition_point(|start| *start <= index) - 1;
        let batch = &self.batches[position];
        Some(Row {
            batch,
            index: index - self.starts[position],
        })
    }

    /// The rows in order.
    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> + '_ {
        let rows = |batch| (0..RecordBatch::num_rows(batch)).map(move |index| Row { batch, index });
        self.batches.iter().flat_map(rows)
    }

    /// The record batches, for code that works on Arrow arrays directly.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }
}

impl<'a> Row<'a> {
    /// A non-null text value.
    pub fn str(&self, column: &str) -> Result<&'a str, ColumnError> {
        self.opt_str(column)?
            .ok_or_else(|| ColumnError::Null(column.to_string()))
    }

    /// A text value, `None` when null.
    pub fn opt_str(&self, column: &str) -> Result<Option<&'a str>, ColumnError> {
        let array = self.column(column)?;
        if array.is_null(self.index) {
            return Ok(None);
        }
        let value = match array.data_type() {
            DataType::Utf8 => array.as_string::<i32>().value(self.index),
            DataType::LargeUtf8 => array.as_string::<i64>().value(self.index),
            DataType::Utf8View => array.as_string_view().value(self.index),
            other => return Err(wrong_type(column, other, "text")),
        };
        Ok(Some(value))
    }

    /// A non-null integer of any signed width, widened to `i64`.
    pub fn i64(&self, column: &str) -> Result<i64, ColumnError> {
        self.opt_i64(column)?
            .ok_or_else(|| ColumnError::Null(column.to_string()))
    }

    /// An integer of any signed width widened to `i64`, `None` when null.
    pub fn opt_i64(&self, column: &str) -> Result<Option<i64>, ColumnError> {
        let array = self.column(column)?;
        if array.is_null(self.index) {
            return Ok(None);
        }
        let i = self.index;
        let value = match array.data_type() {
            DataType::Int64 => array.as_primitive::<Int64Type>().value(i),
            DataType::Int32 => array.as_primitive::<Int32Type>().value(i).into(),
            DataType::Int16 => array.as_primitive::<Int16Type>().value(i).into(),
            DataType::Int8 => array.as_primitive::<Int8Type>().value(i).into(),
            other => return Err(wrong_type(column, other, "an integer")),
        };
        Ok(Some(value))
    }

    /// A non-null 32-bit integer (`int4`), also read from narrower columns.
    pub fn i32(&self, column: &str) -> Result<i32, ColumnError> {
        let array = self.column(column)?;
        if array.is_null(self.index) {
            return Err(ColumnError::Null(column.to_string()));
        }
        let i = self.index;
        match array.data_type() {
            DataType::Int32 => Ok(array.as_primitive::<Int32Type>().value(i)),
            DataType::Int16 => Ok(array.as_primitive::<Int16Type>().value(i).into()),
            DataType::Int8 => Ok(array.as_primitive::<Int8Type>().value(i).into()),
            other => Err(wrong_type(column, other, "a 32-bit integer")),
        }
    }

    /// A non-null 64-bit float.
    pub fn f64(&self, column: &str) -> Result<f64, ColumnError> {
        let array = self.column(column)?;
        if array.is_null(self.index) {
            return Err(ColumnError::Null(column.to_string()));
        }
        match array.data_type() {
            DataType::Float64 => Ok(array.as_primitive::<Float64Type>().value(self.index)),
            other => Err(wrong_type(column, other, "a float")),
        }
    }

    /// A non-null boolean.
    pub fn bool(&self, column: &str) -> Result<bool, ColumnError> {
        let array = self.column(column)?;
        if array.is_null(self.index) {
            return Err(ColumnError::Null(column.to_string()));
        }
        match array.data_type() {
            DataType::Boolean => Ok(array.as_boolean().value(self.index)),
            other => Err(wrong_type(column, other, "a boolean")),
        }
    }

    /// Whether the value is null.
    pub fn is_null(&self, column: &str) -> Result<bool, ColumnError> {
        Ok(self.column(column)?.is_null(self.index))
    }

    fn column(&self, column: &str) -> Result<&'a dyn Array, ColumnError> {
        let batch: &'a RecordBatch = self.batch;
        batch
            .column_by_name(column)
            .map(|array| array.as_ref())
            .ok_or_else(|| ColumnError::Missing(column.to_string()))
    }
}

fn wrong_type(column: &str, found: &DataType, wanted: &'static str) -> ColumnError {
    ColumnError::WrongType {
        column: column.to_string(),
        found: found.to_string(),
        wanted,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int32Array, Int64Array, StringArray};
    use arrow_ipc::writer::StreamWriter;
    use arrow_schema::{Field, Schema};

    use super::*;

    fn ipc(batches: &[(Vec<Option<&str>>, Vec<i32>, Vec<i64>)]) -> Vec<u8> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("address", DataType::Utf8, true),
            Field::new("log_index", DataType::Int32, false),
            Field::new("block_number", DataType::Int64, false),
        ]));
        let mut out = Vec::new();
        let mut writer = StreamWriter::try_new(&mut out, &schema).unwrap();
        for (text, small, big) in batches {
            let columns: Vec<Arc<dyn Array>> = vec![
                Arc::new(StringArray::from(text.clone())),
                Arc::new(Int32Array::from(small.clone())),
                Arc::new(Int64Array::from(big.clone())),
            ];
            writer
                .write(&RecordBatch::try_new(schema.clone(), columns).unwrap())
                .unwrap();
        }
        writer.finish().unwrap();
        drop(writer);
        out
    }

    #[test]
    fn rows_of_every_batch_are_read_in_order_with_typed_access() {
        let bytes = ipc(&[
            (vec![Some("0xaa"), None], vec![1, 2], vec![10, 11]),
            (vec![], vec![], vec![]),
            (vec![Some("0xbb")], vec![3], vec![12]),
        ]);
        let rows = Rows::from_ipc(&bytes).unwrap();
        assert_eq!(rows.len(), 3);

        let third = rows.get(2).unwrap();
        assert_eq!(third.str("address").unwrap(), "0xbb");
        assert_eq!(third.i32("log_index").unwrap(), 3);
        assert_eq!(third.i64("log_index").unwrap(), 3);
        assert_eq!(third.i64("block_number").unwrap(), 12);
        assert!(rows.get(3).is_none());

        let blocks: Vec<i64> = rows
            .iter()
            .map(|row| row.i64("block_number").unwrap())
            .collect();
        assert_eq!(blocks, vec![10, 11, 12]);
    }

    #[test]
    fn nulls_missing_columns_and_wrong_types_are_named() {
        let rows = Rows::from_ipc(&ipc(&[(vec![None], vec![1], vec![2])])).unwrap();
        let row = rows.get(0).unwrap();
        assert_eq!(row.opt_str("address").unwrap(), None);
        assert_eq!(
            row.str("address").unwrap_err(),
            ColumnError::Null("address".into())
        );
        assert_eq!(
            row.str("topic9").unwrap_err(),
            ColumnError::Missing("topic9".into())
        );
        let error = row.str("log_index").unwrap_err().to_string();
        assert_eq!(error, "column `log_index` holds `Int32`, not text");
        assert!(row.i32("block_number").is_err());
    }

    #[test]
    fn bytes_that_are_not_an_ipc_stream_are_a_decode_error() {
        assert!(matches!(
            Rows::from_ipc(b"not arrow"),
            Err(QueryError::Decode(_))
        ));
    }
}
