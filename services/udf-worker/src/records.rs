//! The `records` capability: validated records and alerts into the buffer.
//!
//! Records are checked against their dataset's declared columns
//! ([`validate`]) and gathered per dataset; every 1000 rows of a dataset,
//! and every 1000 alerts, or fewer once they reach 192 KiB, become one
//! [`BufferBatch`] on `buffer-records` with the id `{task}:{attempt}:{seq}`,
//! each sent in its own request. What is left is flushed once the run
//! succeeded ([`Publisher::take_all`]). The completion carries the
//! number of batches, and the sinks make an attempt's batches visible only
//! once the dispatcher committed that attempt and all of them arrived, so
//! batches of a failed attempt are harmless.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use trace_common::api::{Alert, BufferBatch, BufferPayload, Column, Lease, QUEUE_BUFFER};
use trace_common::queue::{Queue, QueueError};
use trace_host::RecordsHost;
use trace_host::records::{Alert as WitAlert, Column as WitColumn, RecordsError, Severity};

use crate::bridge::Bridge;

pub mod validate;

/// The most rows, or alerts, in one buffer batch.
pub const BATCH_ROWS: usize = 1000;

/// A batch is cut before its records pass this many bytes of JSON text
/// (192 KiB), so that a batch, sent alone, fits one SQS message (256 KiB,
/// with room for the envelope) and stays far inside what the embedded
/// queue accepts in one request. A single larger record still makes a
/// batch of its own, which SQS cannot carry until record batches travel by
/// claim check (the README's known limits).
pub const BATCH_BYTES: usize = 192 << 10;

/// The largest single record or alert (key, title and payload together), as
/// JSON text: 1 MiB. No dataset row needs more.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// A published item and its size in bytes as the component handed it over.
type WithSize<T> = (T, usize);

/// What a task may publish.
#[derive(Debug, Clone, Copy)]
pub struct PublishLimits {
    /// Records over all datasets.
    pub max_records: u64,
    /// Bytes of records and alerts, as the text the component handed over.
    pub max_record_bytes: u64,
    /// Alerts.
    pub max_alerts: u64,
}

/// A task's published records and alerts on their way to the buffer queue.
pub struct Publisher {
    queue: Arc<dyn Queue>,
    lease: Lease,
    limits: PublishLimits,
    datasets: BTreeMap<String, Vec<Column>>,
    /// Rows not yet in a batch, each with its size as published.
    pending: BTreeMap<String, Vec<WithSize<Map<String, Value>>>>,
    alerts: Vec<WithSize<Alert>>,
    seq: u32,
    records_published: u64,
    record_bytes: u64,
    alerts_published: u64,
    /// A batch was cut but its send failed: the attempt cannot complete,
    /// whatever the component does with the error, since its commit would
    /// name a batch the sinks may never get.
    lost_batch: bool,
}

impl Publisher {
    /// A publisher for the task of `lease`.
    pub fn new(queue: Arc<dyn Queue>, lease: Lease, limits: PublishLimits) -> Self {
        Self {
            queue,
            lease,
            limits,
            datasets: BTreeMap::new(),
            pending: BTreeMap::new(),
            alerts: Vec::new(),
            seq: 0,
            records_published: 0,
            record_bytes: 0,
            alerts_published: 0,
            lost_batch: false,
        }
    }

    /// Whether a batch of this attempt may not have reached the queue.
    pub fn lost_batch(&self) -> bool {
        self.lost_batch
    }

    /// Records published so far, sent or pending.
    pub fn records_published(&self) -> u64 {
        self.records_published
    }

    /// Alerts published so far, sent or pending.
    pub fn alerts_published(&self) -> u64 {
        self.alerts_published
    }

    /// Batches cut so far: their `seq` ran from 0 to this, exclusive. The
    /// completion reports it so the sinks know when they have them all.
    pub fn batches(&self) -> u32 {
        self.seq
    }

    /// Takes everything still pending as batches, for [`send_batches`] once
    /// the run succeeded.
    pub fn take_all(&mut self) -> Vec<BufferBatch> {
        self.take_batches(true)
    }

    /// The queue the batches go to.
    pub fn queue(&self) -> Arc<dyn Queue> {
        self.queue.clone()
    }

    fn define(&mut self, name: &str, columns: &[WitColumn]) -> Result<(), RecordsError> {
        let columns = validate::dataset(name, columns).map_err(RecordsError::InvalidDataset)?;
        match self.datasets.get(name) {
            Some(declared) if *declared == columns => Ok(()),
            Some(_) => Err(RecordsError::InvalidDataset(format!(
                "dataset `{name}` was already declared with other columns"
            ))),
            None => {
                self.datasets.insert(name.to_string(), columns);
                Ok(())
            }
        }
    }

    fn add_records(&mut self, dataset: &str, records: &[String]) -> Result<(), RecordsError> {
        let Some(columns) = self.datasets.get(dataset) else {
            return Err(RecordsError::InvalidDataset(format!(
                "dataset `{dataset}` was not declared; call define-dataset first"
            )));
        };
        let total = self.records_published + records.len() as u64;
        if total > self.limits.max_records {
            let max = self.limits.max_records;
            return Err(RecordsError::Limit(format!(
                "a task may publish at most {max} records (max_records)"
            )));
        }
        if let Some((index, big)) = records
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() > MAX_RECORD_BYTES)
        {
            return Err(RecordsError::Limit(format!(
                "a record may be at most {MAX_RECORD_BYTES} bytes (record {index} has {})",
                big.len()
            )));
        }
        let bytes = self.record_bytes + records.iter().map(|r| r.len() as u64).sum::<u64>();
        if bytes > self.limits.max_record_bytes {
            let max = self.limits.max_record_bytes;
            return Err(RecordsError::Limit(format!(
                "a task may publish at most {max} bytes of records and alerts (max_record_bytes)"
            )));
        }
        let rows = records
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let row = validate::record(i, text, columns)?;
                let size = sized(&row);
                Ok((row, size))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(RecordsError::InvalidRecord)?;
        self.records_published = total;
        self.record_bytes = bytes;
        self.pending
            .entry(dataset.to_string())
            .or_default()
            .extend(rows);
        Ok(())
    }

    fn add_alerts(&mut self, alerts: Vec<WitAlert>) -> Result<(), RecordsError> {
        let total = self.alerts_published + alerts.len() as u64;
        if total > self.limits.max_alerts {
            let max = self.limits.max_alerts;
            return Err(RecordsError::Limit(format!(
                "a task may publish at most {max} alerts (max_alerts)"
            )));
        }
        let size = |a: &WitAlert| a.key.len() + a.title.len() + a.payload.len();
        if let Some((index, big)) = alerts
            .iter()
            .enumerate()
            .find(|(_, a)| size(a) > MAX_RECORD_BYTES)
        {
            return Err(RecordsError::Limit(format!(
                "an alert may be at most {MAX_RECORD_BYTES} bytes of key, title and payload \
                 (alert {index} has {})",
                size(big)
            )));
        }
        let bytes = self.record_bytes + alerts.iter().map(|a| size(a) as u64).sum::<u64>();
        if bytes > self.limits.max_record_bytes {
            let max = self.limits.max_record_bytes;
            return Err(RecordsError::Limit(format!(
                "a task may publish at most {max} bytes of records and alerts (max_record_bytes)"
            )));
        }
        let mut checked = Vec::with_capacity(alerts.len());
        for (index, alert) in alerts.into_iter().enumerate() {
            let payload =
                validate::payload(index, &alert.payload).map_err(RecordsError::InvalidRecord)?;
            validate::alert_text(index, &alert.key, &alert.title)
                .map_err(RecordsError::InvalidRecord)?;
            let alert = Alert {
                id: alert_id(&self.lease.job_id.to_string(), &alert.key),
                key: alert.key,
                severity: severity_name(alert.severity).to_string(),
                title: alert.title,
                payload,
            };
            let bytes = sized(&alert);
            checked.push((alert, bytes));
        }
        self.alerts_published = total;
        self.record_bytes = bytes;
        self.alerts.extend(checked);
        Ok(())
    }

    /// Cuts full batches ([`BATCH_ROWS`] rows or [`BATCH_BYTES`] bytes);
    /// with `all`, the remainders too.
    fn take_batches(&mut self, all: bool) -> Vec<BufferBatch> {
        let mut payloads = Vec::new();
        for (dataset, rows) in &mut self.pending {
            for batch in cut(rows, all) {
                payloads.push(BufferPayload::Records {
                    dataset: dataset.clone(),
                    columns: self.datasets[dataset].clone(),
                    rows: batch,
                });
            }
        }
        for alerts in cut(&mut self.alerts, all) {
            payloads.push(BufferPayload::Alerts { alerts });
        }
        payloads
            .into_iter()
            .map(|payload| self.batch(payload))
            .collect()
    }

    fn batch(&mut self, payload: BufferPayload) -> BufferBatch {
        let seq = self.seq;
        self.seq += 1;
        let lease = &self.lease;
        BufferBatch {
            batch_id: format!("{}:{}:{seq}", lease.task_id, lease.attempt),
            tenant_id: lease.tenant_id.clone(),
            job_id: lease.job_id,
            task_id: lease.task_id,
            attempt: lease.attempt,
            seq,
            payload,
        }
    }
}

/// How many bytes `item` takes in a batch: its serialised JSON, which is
/// what a batch is cut by (the text a component handed over can be much
/// shorter: `1e15` is sent as `1000000000000000.0`).
fn sized<T: serde::Serialize>(item: &T) -> usize {
    serde_json::to_vec(item).map_or(0, |v| v.len())
}

/// Takes full batches off the front of `items`, each of at most
/// [`BATCH_ROWS`] items and, unless one item alone is larger, at most
/// [`BATCH_BYTES`] bytes; with `all`, what is left too.
fn cut<T>(items: &mut Vec<(T, usize)>, all: bool) -> Vec<Vec<T>> {
    let mut batches = Vec::new();
    loop {
        let mut bytes = 0;
        let mut len = 0;
        for (_, size) in items.iter().take(BATCH_ROWS) {
            if len > 0 && bytes + size > BATCH_BYTES {
                break;
            }
            bytes += size;
            len += 1;
        }
        let full = len == BATCH_ROWS || len < items.len();
        if len == 0 || !(full || all) {
            return batches;
        }
        let rest = items.split_off(len);
        let batch = std::mem::replace(items, rest);
        batches.push(batch.into_iter().map(|(item, _)| item).collect());
    }
}

/// Sends `batches` to the buffer queue, one request each, so that no
/// request holds more than one batch's bytes.
pub async fn send_batches(
    queue: &dyn Queue,
    batches: &[BufferBatch],
) -> Result<(), trace_common::queue::QueueError> {
    for batch in batches {
        let body = serde_json::to_value(batch).expect("a buffer batch always serialises");
        queue.send(QUEUE_BUFFER, &[body]).await?;
    }
    Ok(())
}

/// The stable id of an alert: hex SHA-256 of `{job_id}:{key}`.
pub fn alert_id(job_id: &str, key: &str) -> String {
    hex::encode(Sha256::digest(format!("{job_id}:{key}").as_bytes()))
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// The capability the component calls: a shared [`Publisher`] and a bridge.
pub struct RecordsCap {
    publisher: Arc<Mutex<Publisher>>,
    bridge: Bridge,
}

impl RecordsCap {
    /// A capability over `publisher`.
    pub fn new(publisher: Arc<Mutex<Publisher>>, bridge: Bridge) -> Self {
        Self { publisher, bridge }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Publisher) -> T) -> T {
        let mut publisher = self.publisher.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut publisher)
    }

    /// Sends whatever full batches are ready.
    fn send_full(&self) -> Result<(), RecordsError> {
        let (queue, batches) = self.with(|p| (p.queue.clone(), p.take_batches(false)));
        let sent = self.bridge.block_on(send_batches(queue.as_ref(), &batches));
        if !matches!(sent, Some(Ok(()))) && !batches.is_empty() {
            self.with(|p| p.lost_batch = true);
        }
        match sent {
            Some(Ok(())) => Ok(()),
            // Too large for the queue: the component's doing, and the same
            // every time, so a limit rather than an outage.
            Some(Err(QueueError::TooLarge(message))) => Err(RecordsError::Limit(format!(
                "a batch of records is too large for the record buffer: {message}"
            ))),
            Some(Err(err)) => {
                tracing::warn!(error = %err, "buffer queue send failed");
                Err(RecordsError::Unavailable(
                    "the record buffer is unavailable".to_string(),
                ))
            }
            None => Err(RecordsError::Unavailable(
                "the task was cancelled".to_string(),
            )),
        }
    }
}

impl RecordsHost for RecordsCap {
    fn define_dataset(&mut self, name: &str, columns: Vec<WitColumn>) -> Result<(), RecordsError> {
        self.with(|p| p.define(name, &columns))
    }

    fn publish(&mut self, dataset: &str, records: Vec<String>) -> Result<(), RecordsError> {
        self.with(|p| p.add_records(dataset, &records))?;
        self.send_full()
    }

    fn publish_alerts(&mut self, alerts: Vec<WitAlert>) -> Result<(), RecordsError> {
        self.with(|p| p.add_alerts(alerts))?;
        self.send_full()
    }
}

#[cfg(test)]
mod tests {
    use trace_common::api::JobKind;
    use trace_common::queue::http::HttpQueue;
    use trace_host::records::ColumnType;
    use uuid::Uuid;

    use super::*;

    fn publisher() -> Publisher {
        let lease = Lease {
            task_id: Uuid::from_u128(2),
            job_id: Uuid::from_u128(1),
            tenant_id: "acme".into(),
            kind: JobKind::Udf,
            attempt: 3,
            expires_at: chrono::Utc::now(),
            component: None,
            params: serde_json::json!({}),
            chain_id: 1,
            from_block: 1,
            to_block: 1,
            blocks: None,
            limits: Default::default(),
            deterministic: false,
        };
        // Batching never calls the queue; it is only handed back for sending.
        let queue = Arc::new(HttpQueue::new("http://127.0.0.1:9"));
        let limits = PublishLimits {
            max_records: 3000,
            max_record_bytes: 1 << 20,
            max_alerts: 10,
        };
        Publisher::new(queue, lease, limits)
    }

    fn block_column() -> WitColumn {
        WitColumn {
            name: "block".into(),
            kind: ColumnType::Int64,
            nullable: false,
        }
    }

    #[test]
    fn records_are_cut_into_batches_of_at_most_a_thousand_rows() {
        let mut p = publisher();
        p.define("blocks", &[block_column()]).unwrap();
        let rows: Vec<String> = (0..2500).map(|b| format!("{{\"block\":{b}}}")).collect();
        p.add_records("blocks", &rows).unwrap();

        let full = p.take_batches(false);
        let rest = p.take_all();

        let sizes: Vec<usize> = full
            .iter()
            .chain(&rest)
            .map(|b| match &b.payload {
                BufferPayload::Records { rows, .. } => rows.len(),
                BufferPayload::Alerts { alerts } => alerts.len(),
            })
            .collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        let ids: Vec<&str> = full
            .iter()
            .chain(&rest)
            .map(|b| b.batch_id.as_str())
            .collect();
        let task = Uuid::from_u128(2);
        assert_eq!(
            ids,
            [
                format!("{task}:3:0"),
                format!("{task}:3:1"),
                format!("{task}:3:2")
            ]
        );
        assert_eq!(p.records_published(), 2500);
    }

    #[test]
    fn publishing_past_the_limit_or_to_an_undeclared_dataset_is_refused() {
        let mut p = publisher();
        let err = p.add_records("nope", &["{}".to_string()]).unwrap_err();
        assert!(matches!(err, RecordsError::InvalidDataset(m) if m.contains("`nope`")));
        p.define("blocks", &[block_column()]).unwrap();
        let other = WitColumn {
            name: "other".into(),
            ..block_column()
        };
        assert!(p.define("blocks", &[other]).is_err());
        let rows: Vec<String> = (0..3001).map(|b| format!("{{\"block\":{b}}}")).collect();
        let err = p.add_records("blocks", &rows).unwrap_err();
        assert!(matches!(err, RecordsError::Limit(m) if m.contains("3000 records")));
        assert_eq!(p.records_published(), 0);
    }

    fn text_column() -> WitColumn {
        WitColumn {
            name: "text".into(),
            kind: ColumnType::Text,
            nullable: false,
        }
    }

    #[test]
    fn batches_are_also_cut_by_bytes() {
        let mut p = publisher();
        p.limits.max_record_bytes = 64 << 20;
        p.define("texts", &[text_column()]).unwrap();
        // 10 rows of 50 KiB: three fit in 192 KiB, a fourth would not.
        let text = "y".repeat((50 << 10) - 11);
        let rows: Vec<String> = (0..10)
            .map(|_| format!("{{\"text\":\"{text}\"}}"))
            .collect();
        p.add_records("texts", &rows).unwrap();

        let full = p.take_batches(false);
        let rest = p.take_all();

        let sizes = |batches: &[BufferBatch]| -> Vec<usize> {
            batches
                .iter()
                .map(|b| match &b.payload {
                    BufferPayload::Records { rows, .. } => rows.len(),
                    BufferPayload::Alerts { alerts } => alerts.len(),
                })
                .collect()
        };
        assert_eq!(sizes(&full), [3, 3, 3]);
        assert_eq!(sizes(&rest), [1]);
        for batch in full.iter().chain(&rest) {
            let bytes = serde_json::to_vec(batch).unwrap().len();
            assert!(bytes <= BATCH_BYTES + 1024, "{bytes}");
        }
        // A record larger than a batch's bytes goes alone.
        let big = format!("{{\"text\":\"{}\"}}", "z".repeat(300 << 10));
        p.add_records("texts", &[big.clone(), big]).unwrap();
        assert_eq!(sizes(&p.take_all()), [1, 1]);
    }

    #[test]
    fn an_oversized_alert_or_one_holding_a_nul_is_refused_and_alert_bytes_count() {
        let mut p = publisher();
        let alert = |payload: String| WitAlert {
            key: "k".into(),
            severity: Severity::Info,
            title: "t".into(),
            payload,
        };
        let big = format!("{{\"v\":\"{}\"}}", "z".repeat(MAX_RECORD_BYTES));
        let err = p.add_alerts(vec![alert(big)]).unwrap_err();
        assert!(
            matches!(&err, RecordsError::Limit(m) if m.contains("alert 0 has")),
            "{err:?}"
        );

        let err = p
            .add_alerts(vec![WitAlert {
                title: "a\0b".into(),
                ..alert("{}".into())
            }])
            .unwrap_err();
        assert!(
            matches!(&err, RecordsError::InvalidRecord(m) if m.contains("NUL")),
            "{err:?}"
        );

        // 1 MiB of max_record_bytes: two alerts of 600 KiB do not both fit.
        let half = format!("{{\"v\":\"{}\"}}", "z".repeat(600 << 10));
        p.add_alerts(vec![alert(half.clone())]).unwrap();
        let err = p.add_alerts(vec![alert(half)]).unwrap_err();
        assert!(matches!(&err, RecordsError::Limit(m) if m.contains("max_record_bytes")));
        assert_eq!(p.alerts_published(), 1);
    }

    #[test]
    fn an_alert_id_is_the_sha256_of_its_job_and_key() {
        let mut p = publisher();
        let alert = WitAlert {
            key: "0xabc:1".into(),
            severity: Severity::Critical,
            title: "big transfer".into(),
            payload: r#"{"value":"1"}"#.into(),
        };
        p.add_alerts(vec![alert]).unwrap();

        let batch = p.take_all().remove(0);

        let BufferPayload::Alerts { alerts } = batch.payload else {
            panic!("not alerts")
        };
        let expected = hex::encode(Sha256::digest(format!("{}:0xabc:1", Uuid::from_u128(1))));
        assert_eq!(alerts[0].id, expected);
        assert_eq!(alerts[0].severity, "critical");
        assert_eq!(alerts[0].payload["value"], "1");
    }
}
