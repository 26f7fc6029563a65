//! Postgres rows to Arrow columns, chosen by each result column's type OID.
//!
//! The mapping is fixed so that clients (and the lake, which stores the
//! same chain tables) see one Arrow type per Postgres type: integers keep
//! their width (`int2` as Int16), floats widen to Float64, `numeric` is its
//! exact decimal text, timestamps are microseconds (`timestamptz` in UTC),
//! `json`/`jsonb` are their text, `bytea` is `0x`-hex, `uuid` its text and
//! `void` a null text.
//! Any other type is refused by name rather than guessed at.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int16Builder, Int32Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, TimeUnit};
use sqlx::postgres::{PgColumn, PgRow};
use sqlx::{Column, Row, TypeInfo};

use crate::error::QueryError;

/// How one Postgres type is read.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Bool,
    Text,
    Numeric,
    Json,
    Bytea,
    Uuid,
    TimestampTz,
    Timestamp,
    /// `void` (what `pg_sleep` returns): always null text.
    Void,
}

impl Kind {
    fn of(column: &PgColumn) -> Result<Self, QueryError> {
        let info = column.type_info();
        let oid = info.oid().map(|o| o.0).unwrap_or(0);
        Ok(match oid {
            21 => Kind::Int2,
            23 => Kind::Int4,
            20 => Kind::Int8,
            700 => Kind::Float4,
            701 => Kind::Float8,
            16 => Kind::Bool,
            25 | 1043 | 19 | 1042 => Kind::Text,
            1700 => Kind::Numeric,
            114 | 3802 => Kind::Json,
            17 => Kind::Bytea,
            2950 => Kind::Uuid,
            1184 => Kind::TimestampTz,
            1114 => Kind::Timestamp,
            2278 => Kind::Void,
            _ => {
                return Err(QueryError::InvalidQuery(format!(
                    "column `{}` has type `{}`, which query results cannot carry; cast it \
                     (for example to text)",
                    column.name(),
                    info.name().to_lowercase()
                )));
            }
        })
    }

    fn data_type(self) -> DataType {
        match self {
            Kind::Int2 => DataType::Int16,
            Kind::Int4 => DataType::Int32,
            Kind::Int8 => DataType::Int64,
            Kind::Float4 | Kind::Float8 => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Text | Kind::Numeric | Kind::Json | Kind::Bytea | Kind::Uuid | Kind::Void => {
                DataType::Utf8
            }
            Kind::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        }
    }
}

enum Builder {
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Bool(BooleanBuilder),
    Utf8(StringBuilder),
    Timestamp(TimestampMicrosecondBuilder),
}

impl Builder {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Int2 => Builder::Int16(Int16Builder::new()),
            Kind::Int4 => Builder::Int32(Int32Builder::new()),
            Kind::Int8 => Builder::Int64(Int64Builder::new()),
            Kind::Float4 | Kind::Float8 => Builder::Float64(Float64Builder::new()),
            Kind::Bool => Builder::Bool(BooleanBuilder::new()),
            Kind::TimestampTz => {
                Builder::Timestamp(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
            }
            Kind::Timestamp => Builder::Timestamp(TimestampMicrosecondBuilder::new()),
            _ => Builder::Utf8(StringBuilder::new()),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Int16(b) => Arc::new(b.finish()),
            Builder::Int32(b) => Arc::new(b.finish()),
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::Float64(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Utf8(b) => Arc::new(b.finish()),
            Builder::Timestamp(b) => Arc::new(b.finish()),
        }
    }
}

/// Accumulates rows of one result shape into Arrow columns.
pub struct Columns {
    kinds: Vec<Kind>,
    builders: Vec<Builder>,
    rows: usize,
}

impl Columns {
    /// Builders for `columns`, or an error naming the first column whose
    /// type has no Arrow mapping.
    pub fn new(columns: &[PgColumn]) -> Result<(Self, Vec<Field>), QueryError> {
        let kinds = columns
            .iter()
            .map(Kind::of)
            .collect::<Result<Vec<_>, _>>()?;
        let fields = columns
            .iter()
            .zip(&kinds)
            .map(|(c, k)| Field::new(c.name(), k.data_type(), true))
            .collect();
        let builders = kinds.iter().map(|k| Builder::new(*k)).collect();
        Ok((
            Self {
                kinds,
                builders,
                rows: 0,
            },
            fields,
        ))
    }

    /// Rows appended since the last [`Columns::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended since the last [`Columns::finish`].
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends `row`; returns the bytes its values take.
    pub fn push(&mut self, row: &PgRow) -> Result<u64, QueryError> {
        let mut bytes = 0;
        for (i, (kind, builder)) in self.kinds.iter().zip(&mut self.builders).enumerate() {
            bytes += push_value(*kind, builder, row, i).map_err(|e| {
                QueryError::Internal(format!("decoding column {i} of a result row: {e}"))
            })?;
        }
        self.rows += 1;
        Ok(bytes)
    }

    /// The accumulated columns; the builders start over empty.
    pub fn finish(&mut self) -> Vec<ArrayRef> {
        self.rows = 0;
        self.builders.iter_mut().map(Builder::finish).collect()
    }
}

fn push_value(
    kind: Kind,
    builder: &mut Builder,
    row: &PgRow,
    i: usize,
) -> Result<u64, sqlx::Error> {
    match (kind, builder) {
        (Kind::Int2, Builder::Int16(b)) => b.append_option(row.try_get::<Option<i16>, _>(i)?),
        (Kind::Int4, Builder::Int32(b)) => b.append_option(row.try_get::<Option<i32>, _>(i)?),
        (Kind::Int8, Builder::Int64(b)) => b.append_option(row.try_get::<Option<i64>, _>(i)?),
        (Kind::Float4, Builder::Float64(b)) => {
            b.append_option(row.try_get::<Option<f32>, _>(i)?.map(f64::from))
        }
        (Kind::Float8, Builder::Float64(b)) => b.append_option(row.try_get::<Option<f64>, _>(i)?),
        (Kind::Bool, Builder::Bool(b)) => b.append_option(row.try_get::<Option<bool>, _>(i)?),
        (Kind::TimestampTz, Builder::Timestamp(b)) => {
            let value = row.try_get::<Option<chrono::DateTime<chrono::Utc>>, _>(i)?;
            b.append_option(value.map(|t| t.timestamp_micros()));
        }
        (Kind::Timestamp, Builder::Timestamp(b)) => {
            let value = row.try_get::<Option<chrono::NaiveDateTime>, _>(i)?;
            b.append_option(value.map(|t| t.and_utc().timestamp_micros()));
        }
        (kind, Builder::Utf8(b)) => {
            let text = text_value(kind, row, i)?;
            let len = text.as_ref().map_or(0, |t| t.len() as u64);
            b.append_option(text);
            return Ok(len + 4);
        }
        _ => unreachable!("a builder is always made for its own kind"),
    }
    Ok(8)
}

fn text_value(kind: Kind, row: &PgRow, i: usize) -> Result<Option<String>, sqlx::Error> {
    Ok(match kind {
        Kind::Numeric => row
            .try_get::<Option<bigdecimal::BigDecimal>, _>(i)?
            .map(|d| d.to_plain_string()),
        Kind::Json => row
            .try_get::<Option<serde_json::Value>, _>(i)?
            .map(|v| v.to_string()),
        Kind::Bytea => row
            .try_get::<Option<Vec<u8>>, _>(i)?
            .map(|b| format!("0x{}", hex::encode(b))),
        Kind::Uuid => row
            .try_get::<Option<uuid::Uuid>, _>(i)?
            .map(|u| u.to_string()),
        Kind::Void => None,
        _ => row.try_get::<Option<String>, _>(i)?,
    })
}
