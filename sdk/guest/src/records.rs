//! Output: records into the tenant's datasets and alerts to its webhooks.
//!
//! What a task publishes is buffered by the host and becomes visible only
//! once the task completes; a failed attempt leaves nothing behind. Records
//! are any `Serialize` type whose JSON object keys are the column names;
//! `numeric` columns take decimal text (a [`U256`](crate::U256) serialises
//! that way).

use serde::Serialize;

use crate::bindings::trace::udf::records as wit;

/// The type of a dataset column, as stored in Postgres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ColumnType {
    /// UTF-8 text.
    Text,
    /// A 64-bit signed integer.
    Int64,
    /// A 64-bit float.
    Float64,
    /// A boolean.
    Boolean,
    /// An exact decimal of up to 78 digits, published as a JSON string.
    Numeric,
    /// A timestamp with time zone, published as RFC 3339 text.
    Timestamp,
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Worth looking at soon.
    Warning,
    /// Worth acting on now.
    Critical,
}

/// An alert for the tenant's webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// A key unique within the job, such as `{transaction_hash}:{log_index}`;
    /// a retried task sends the same keys, so no alert is sent twice.
    pub key: String,
    /// How urgent it is.
    pub severity: Severity,
    /// A one-line description.
    pub title: String,
    /// Details as JSON object text, delivered as is.
    pub payload: String,
}

/// Why publishing was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordsError {
    /// The dataset name or its columns are not valid.
    #[error("invalid dataset: {0}")]
    InvalidDataset(String),
    /// A record does not match its dataset's columns.
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// The task has published more than it may.
    #[error("publish limit reached: {0}")]
    Limit(String),
    /// The buffer could not be reached; a retry may work.
    #[error("record buffer unavailable: {0}")]
    Unavailable(String),
    /// A record or payload could not be serialised to JSON.
    #[error("record `{index}` does not serialise to JSON: {message}")]
    Serialize {
        /// The record's position in the published slice.
        index: usize,
        /// serde_json's explanation.
        message: String,
    },
}

/// A dataset the task publishes to, declared with its columns.
///
/// ```ignore
/// let transfers = Dataset::new("erc20_transfers")
///     .column("token", ColumnType::Text, false)
///     .column("amount", ColumnType::Numeric, false)
///     .define()?;
/// transfers.publish(&rows)?;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    name: String,
    columns: Vec<(String, ColumnType, bool)>,
}

impl Dataset {
    /// Starts declaring a dataset: lower-case letters, digits and `_`,
    /// starting with a letter.
    pub fn new(name: impl Into<String>) -> Dataset {
        Dataset {
            name: name.into(),
            columns: Vec::new(),
        }
    }

    /// Adds a column with its type and whether it may hold null.
    pub fn column(mut self, name: impl Into<String>, kind: ColumnType, nullable: bool) -> Self {
        self.columns.push((name.into(), kind, nullable));
        self
    }

    /// The dataset's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Declares the dataset to the host, which creates it on first use and
    /// refuses a redeclaration with other columns.
    pub fn define(self) -> Result<Dataset, RecordsError> {
        let columns: Vec<wit::Column> = self
            .columns
            .iter()
            .map(|(name, kind, nullable)| wit::Column {
                name: name.clone(),
                kind: column_type(*kind),
                nullable: *nullable,
            })
            .collect();
        wit::define_dataset(&self.name, &columns)?;
        Ok(self)
    }

    /// Publishes records, one JSON object each, in one host call.
    pub fn publish<T: Serialize>(&self, records: &[T]) -> Result<(), RecordsError> {
        if records.is_empty() {
            return Ok(());
        }
        let json = to_json_lines(records)?;
        wit::publish(&self.name, &json)?;
        Ok(())
    }
}

/// Publishes alerts in one host call.
pub fn publish_alerts(alerts: &[Alert]) -> Result<(), RecordsError> {
    if alerts.is_empty() {
        return Ok(());
    }
    let alerts: Vec<wit::Alert> = alerts
        .iter()
        .map(|alert| wit::Alert {
            key: alert.key.clone(),
            severity: match alert.severity {
                Severity::Info => wit::Severity::Info,
                Severity::Warning => wit::Severity::Warning,
                Severity::Critical => wit::Severity::Critical,
            },
            title: alert.title.clone(),
            payload: alert.payload.clone(),
        })
        .collect();
    wit::publish_alerts(&alerts)?;
    Ok(())
}

/// Serialises each record to its JSON text, as `publish` sends them.
pub fn to_json_lines<T: Serialize>(records: &[T]) -> Result<Vec<String>, RecordsError> {
    records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            serde_json::to_string(record).map_err(|e| RecordsError::Serialize {
                index,
                message: e.to_string(),
            })
        })
        .collect()
}

fn column_type(kind: ColumnType) -> wit::ColumnType {
    match kind {
        ColumnType::Text => wit::ColumnType::Text,
        ColumnType::Int64 => wit::ColumnType::Int64,
        ColumnType::Float64 => wit::ColumnType::Float64,
        ColumnType::Boolean => wit::ColumnType::Boolean,
        ColumnType::Numeric => wit::ColumnType::Numeric,
        ColumnType::Timestamp => wit::ColumnType::Timestamp,
    }
}

impl From<wit::RecordsError> for RecordsError {
    fn from(error: wit::RecordsError) -> Self {
        match error {
            wit::RecordsError::InvalidDataset(message) => RecordsError::InvalidDataset(message),
            wit::RecordsError::InvalidRecord(message) => RecordsError::InvalidRecord(message),
            wit::RecordsError::Limit(message) => RecordsError::Limit(message),
            wit::RecordsError::Unavailable(message) => RecordsError::Unavailable(message),
        }
    }
}
