//! The `records` capability: validated records and alerts into the buffer.
//!
//! Records are checked against their dataset's declared columns
//! ([`validate`]) and gathered per dataset; every 1000 rows of a dataset,
//! and every 1000 alerts, become one [`BufferBatch`] on `buffer-records`
//! with the id `{task}:{attempt}:{seq}`. What is left is flushed once the
//! run succeeded ([`Publisher::take_all`]). The completion carries the
//! number of batches, and the sinks make an attempt's batches visible only
//! once the dispatcher committed that attempt and all of them arrived, so
//! batches of a failed attempt are harmless.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use trace_common::api::{Alert, BufferBatch, BufferPayload, Column, Lease, QUEUE_BUFFER};
use trace_common::queue::Queue;
use trace_host::RecordsHost;
use trace_host::records::{Alert as WitAlert, Column as WitColumn, RecordsError, Severity};

use crate::bridge::Bridge;

pub mod validate;

/// The most rows, or alerts, in one buffer batch.
pub const BATCH_ROWS: usize = 1000;

/// The largest single record, as JSON text: 1 MiB. A batch of them still
/// fits a queue message's bounds, and no dataset row needs more.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// What a task may publish.
#[derive(Debug, Clone, Copy)]
pub struct PublishLimits {
    /// Records over all datasets.
    pub max_records: u64,
    /// Bytes of records, as the JSON text the component handed over.
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
    pending: BTreeMap<String, Vec<Map<String, Value>>>,
    alerts: Vec<Alert>,
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
                "a task may publish at most {max} bytes of records (max_record_bytes)"
            )));
        }
        let rows = records
            .iter()
            .enumerate()
            .map(|(i, text)| validate::record(i, text, columns))
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
        let mut checked = Vec::with_capacity(alerts.len());
        for (index, alert) in alerts.into_iter().enumerate() {
            let payload =
                validate::payload(index, &alert.payload).map_err(RecordsError::InvalidRecord)?;
            checked.push(Alert {
                id: alert_id(&self.lease.job_id.to_string(), &alert.key),
                key: alert.key,
                severity: severity_name(alert.severity).to_string(),
                title: alert.title,
                payload,
            });
        }
        self.alerts_published = total;
        self.alerts.extend(checked);
        Ok(())
    }

    /// Cuts batches of [`BATCH_ROWS`]; with `all`, the remainders too.
    fn take_batches(&mut self, all: bool) -> Vec<BufferBatch> {
        let mut payloads = Vec::new();
        for (dataset, rows) in &mut self.pending {
            while rows.len() >= BATCH_ROWS || (all && !rows.is_empty()) {
                let rest = rows.split_off(rows.len().min(BATCH_ROWS));
                let batch = std::mem::replace(rows, rest);
                let columns = self.datasets[dataset].clone();
                payloads.push(BufferPayload::Records {
                    dataset: dataset.clone(),
                    columns,
                    rows: batch,
                });
            }
        }
        while self.alerts.len() >= BATCH_ROWS || (all && !self.alerts.is_empty()) {
            let rest = self.alerts.split_off(self.alerts.len().min(BATCH_ROWS));
            let alerts = std::mem::replace(&mut self.alerts, rest);
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

/// Sends `batches` to the buffer queue in one call.
pub async fn send_batches(
    queue: &dyn Queue,
    batches: &[BufferBatch],
) -> Result<(), trace_common::queue::QueueError> {
    if batches.is_empty() {
        return Ok(());
    }
    let bodies: Vec<Value> = batches
        .iter()
        .map(|b| serde_json::to_value(b).expect("a buffer batch always serialises"))
        .collect();
    queue.send(QUEUE_BUFFER, &bodies).await
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
