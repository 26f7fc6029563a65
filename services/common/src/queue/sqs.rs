//! The [`Queue`] trait on Amazon SQS, for deployments on AWS.
//!
//! A Trace queue name (`tasks-udf`, `buffer-records`, ...) is the SQS queue
//! `<prefix><name>`; its URL is looked up once and cached. Sends go in
//! batches of at most ten messages and 256 KiB together, deletes of ten,
//! SQS's most per call; a receive asks for at most ten messages and waits
//! at most 20 s (long polling), and reads `ApproximateReceiveCount` as the
//! message's receive count. A body over SQS's 256 KiB travels by claim
//! check when the queue has an object store ([`SqsQueue::with_claim_checks`]):
//! the body in the store, its key in the message ([`super::claim_check`]);
//! without one it is refused as [`QueueError::TooLarge`], naming its size.
//! A send that fails
//! part-way may have enqueued its first batches; the queues are
//! at-least-once, and every receiver tolerates the repeat when the sender
//! tries again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};

use object_store::ObjectStore;

use super::claim_check::{self, Resolved};
use super::{Queue, QueueError, Received};

/// SQS's largest message body: 256 KiB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// SQS's most entries per batch call and messages per receive.
const BATCH: usize = 10;
/// SQS's longest long poll.
const MAX_WAIT: Duration = Duration::from_secs(20);
/// SQS's longest visibility timeout: 12 hours.
const MAX_VISIBILITY_SECS: u64 = 12 * 3600;

/// `text` as SQS accepts it. SQS takes only characters XML allows;
/// serialised JSON escapes every control character, so the only ones left
/// are U+FFFE and U+FFFF, which are written as JSON escapes instead (they
/// can only stand inside strings, and mean the same there).
fn sqs_text(text: String) -> String {
    if text.contains(['\u{FFFE}', '\u{FFFF}']) {
        text.replace('\u{FFFE}', "\\ufffe")
            .replace('\u{FFFF}', "\\uffff")
    } else {
        text
    }
}

/// `texts` in groups SQS takes in one `SendMessageBatch`: at most ten, and
/// at most [`MAX_BODY_BYTES`] together.
fn send_groups(texts: &[String]) -> Vec<&[String]> {
    let mut groups = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, text) in texts.iter().enumerate() {
        if i > start && (i - start == BATCH || bytes + text.len() > MAX_BODY_BYTES) {
            groups.push(&texts[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += text.len();
    }
    if start < texts.len() {
        groups.push(&texts[start..]);
    }
    groups
}

/// Queues on SQS, named `<prefix><name>`.
#[derive(Debug)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    prefix: String,
    urls: Mutex<HashMap<String, String>>,
    /// Where bodies over [`MAX_BODY_BYTES`] go, if anywhere.
    claims: Option<Arc<dyn ObjectStore>>,
}

impl SqsQueue {
    /// Queues reached as `sdk` says (region, endpoint, credentials), each
    /// Trace queue `name` being the SQS queue `<prefix><name>`.
    pub fn new(sdk: &aws_config::SdkConfig, prefix: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_sqs::Client::new(sdk),
            prefix: prefix.into(),
            urls: Mutex::new(HashMap::new()),
            claims: None,
        }
    }

    /// Sends bodies over SQS's limit by claim check through `store` (in
    /// production the objects bucket, whose lifecycle rule expires what a
    /// failed delete leaves under `claims/`).
    pub fn with_claim_checks(mut self, store: Arc<dyn ObjectStore>) -> Self {
        self.claims = Some(store);
        self
    }

    /// The SQS queue name of Trace queue `name`.
    pub fn sqs_name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The URL of Trace queue `name`, looked up on first use.
    async fn url(&self, name: &str) -> Result<String, QueueError> {
        if let Some(url) = self.cached(name) {
            return Ok(url);
        }
        let sqs_name = self.sqs_name(name);
        let out = self
            .client
            .get_queue_url()
            .queue_name(&sqs_name)
            .send()
            .await
            .map_err(|e| backend(&format!("looking up queue `{sqs_name}`"), e))?;
        let url = out
            .queue_url()
            .ok_or_else(|| QueueError::Backend(format!("queue `{sqs_name}` has no URL")))?
            .to_string();
        self.urls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), url.clone());
        Ok(url)
    }

    fn cached(&self, name: &str) -> Option<String> {
        let urls = self.urls.lock().unwrap_or_else(|p| p.into_inner());
        urls.get(name).cloned()
    }
}

/// `visibility` in whole seconds, rounded up, within what SQS accepts.
fn visibility_secs(visibility: Duration) -> i32 {
    let secs = visibility
        .as_secs()
        .saturating_add(u64::from(visibility.subsec_nanos() > 0));
    secs.clamp(1, MAX_VISIBILITY_SECS) as i32
}

fn backend(what: &str, err: impl std::error::Error) -> QueueError {
    QueueError::Backend(format!("{what}: {}", DisplayErrorContext(&err)))
}

#[async_trait::async_trait]
impl Queue for SqsQueue {
    async fn send(&self, queue: &str, bodies: &[serde_json::Value]) -> Result<(), QueueError> {
        if bodies.is_empty() {
            return Ok(());
        }
        // Only this queue writes claims: a sender's body shaped like one
        // would make a receiver read, and then delete, the object it names.
        if bodies.iter().any(|b| claim_check::claim_of(b).is_some()) {
            return Err(QueueError::Invalid(
                "a message may not be shaped like a claim check".to_string(),
            ));
        }
        let mut texts: Vec<String> = bodies.iter().map(|b| sqs_text(b.to_string())).collect();
        for text in texts.iter_mut().filter(|t| t.len() > MAX_BODY_BYTES) {
            let Some(store) = &self.claims else {
                return Err(QueueError::TooLarge(format!(
                    "a message of {} bytes is over SQS's limit of {MAX_BODY_BYTES} bytes",
                    text.len()
                )));
            };
            *text = claim_check::check_in(store, &self.sqs_name(queue), text).await?;
        }
        let url = self.url(queue).await?;
        for chunk in send_groups(&texts) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .map_err(|e| backend("building a send entry", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| backend(&format!("sending to `{queue}`"), e))?;
            if let Some(failed) = out.failed().first() {
                return Err(QueueError::Backend(format!(
                    "sqs refused {} of {} messages to `{queue}`: {}",
                    out.failed().len(),
                    chunk.len(),
                    failed.message().unwrap_or(failed.code())
                )));
            }
        }
        Ok(())
    }

    async fn receive(
        &self,
        queue: &str,
        max: u32,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        let url = self.url(queue).await?;
        let secs = |d: Duration| i32::try_from(d.as_secs()).unwrap_or(i32::MAX);
        let out = self
            .client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(max.clamp(1, BATCH as u32) as i32)
            .wait_time_seconds(secs(wait.min(MAX_WAIT)))
            // SQS counts whole seconds, up to 12 hours: round up, so a
            // message is never visible again sooner than asked.
            .visibility_timeout(visibility_secs(visibility))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| backend(&format!("receiving from `{queue}`"), e))?;
        let mut received = Vec::new();
        for message in out.messages() {
            let (Some(receipt), Some(body)) = (message.receipt_handle(), message.body()) else {
                continue;
            };
            let body = match serde_json::from_str(body) {
                Ok(body) => body,
                Err(err) => {
                    // Not ours to read: a message no Trace service sent.
                    tracing::warn!(queue, error = %err, "dropping a message that is not JSON");
                    self.delete(queue, &[receipt.to_string()]).await?;
                    continue;
                }
            };
            let (body, receipt) = match &self.claims {
                // A claim reaching a queue that cannot read claims (the
                // dispatcher was restarted without the bucket) stays for
                // the dead-letter queue rather than reach a receiver as a
                // body it would drop.
                None if claim_check::claim_of(&body).is_some() => {
                    tracing::error!(queue, "a claim check arrived but claim checks are off");
                    continue;
                }
                None => (body, receipt.to_string()),
                Some(store) => match claim_check::resolve(store, &self.sqs_name(queue), body).await
                {
                    // One unreadable claim leaves only its own message for
                    // redelivery, not the others received with it.
                    Err(err) => {
                        tracing::warn!(queue, error = %err, "a claim could not be read now");
                        continue;
                    }
                    Ok(resolved) => match resolved {
                        Resolved::Inline(body) => (body, receipt.to_string()),
                        Resolved::Claimed(claim, body) => {
                            (body, claim_check::receipt(receipt, &claim.key))
                        }
                        Resolved::Consumed(claim) => {
                            tracing::info!(
                                queue,
                                key = claim.key,
                                "dropping a consumed claim check"
                            );
                            self.delete(queue, &[receipt.to_string()]).await?;
                            continue;
                        }
                        Resolved::Corrupt(claim, why) => {
                            // Left for the dead-letter queue: it cannot be read.
                            tracing::error!(
                                queue,
                                key = claim.key,
                                why,
                                "a claim-checked message is corrupt"
                            );
                            continue;
                        }
                    },
                },
            };
            let receive_count = message
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            received.push(Received {
                receipt,
                body,
                receive_count,
            });
        }
        Ok(received)
    }

    async fn delete(&self, queue: &str, receipts: &[String]) -> Result<(), QueueError> {
        if receipts.is_empty() {
            return Ok(());
        }
        let url = self.url(queue).await?;
        for chunk in receipts.chunks(BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, receipt)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(claim_check::split_receipt(receipt).0)
                        .build()
                        .map_err(|e| backend("building a delete entry", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| backend(&format!("deleting from `{queue}`"), e))?;
            // A receipt that is no longer valid (its message was received
            // again, or is gone) deletes nothing, as the trait allows.
            for failed in out.failed() {
                tracing::debug!(
                    queue,
                    code = failed.code(),
                    "delete of a stale receipt ignored"
                );
            }
            // A claim's object goes with its message, and only then: a
            // message whose delete failed may come round again.
            let Some(store) = &self.claims else { continue };
            let sqs_name = self.sqs_name(queue);
            for (i, receipt) in chunk.iter().enumerate() {
                let kept = out.failed().iter().any(|f| f.id() == i.to_string());
                if let (false, (_, Some(key))) = (kept, claim_check::split_receipt(receipt)) {
                    // A receipt comes back from the caller: only a key this
                    // queue could have written is ever deleted.
                    if claim_check::is_ours(&sqs_name, key) {
                        claim_check::check_out(store, key).await;
                    } else {
                        tracing::warn!(queue, key, "a receipt named a foreign object");
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_are_grouped_by_ten_and_by_bytes() {
        let small: Vec<String> = (0..25).map(|n| n.to_string()).collect();
        let sizes: Vec<usize> = send_groups(&small).iter().map(|g| g.len()).collect();
        assert_eq!(sizes, [10, 10, 5]);
        let big = vec!["x".repeat(100 << 10); 5];
        let sizes: Vec<usize> = send_groups(&big).iter().map(|g| g.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        assert!(send_groups(&[]).is_empty());
    }

    #[test]
    fn characters_sqs_refuses_are_sent_as_json_escapes() {
        let body = serde_json::json!({ "t": "a\u{FFFF}b\u{FFFE}" }).to_string();
        let sent = sqs_text(body);
        assert_eq!(sent, r#"{"t":"a\uffffb\ufffe"}"#);
        let back: serde_json::Value = serde_json::from_str(&sent).unwrap();
        assert_eq!(back["t"], "a\u{FFFF}b\u{FFFE}");
    }

    #[test]
    fn visibility_is_rounded_up_and_bounded() {
        assert_eq!(visibility_secs(Duration::from_millis(1900)), 2);
        assert_eq!(visibility_secs(Duration::ZERO), 1);
        assert_eq!(visibility_secs(Duration::from_secs(u64::MAX)), 43_200);
    }
}
