//! Claim checks: a message too large for SQS travels as an object, and the
//! message carries only its key, size and SHA-256.
//!
//! The object is written under `claims/<sqs queue>/<uuid>` before the
//! message is sent, read back (and its digest checked) when the message is
//! received, and deleted after the message is. A claim whose object is gone
//! belongs to a message already consumed (the receipt a consumer deleted
//! with was stale, and SQS handed the message out again), so the message is
//! dropped; one whose object does not match its digest is left on the queue
//! to reach the dead-letter queue, as nothing can make it readable. Objects
//! a failed delete leaves behind are expired by the bucket's lifecycle rule
//! on `claims/` (deploy/terraform).

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::QueueError;

/// The field a claim-check message holds, and nothing else.
const FIELD: &str = "trace_claim_check";

/// Where a message's body is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub key: String,
    pub bytes: u64,
    pub sha256: String,
}

/// What a received body turned out to be.
#[derive(Debug)]
pub enum Resolved {
    /// An ordinary message.
    Inline(serde_json::Value),
    /// A claim, with the body read from its object.
    Claimed(Claim, serde_json::Value),
    /// A claim whose object is gone: already consumed.
    Consumed(Claim),
    /// A claim whose object is not what was sent.
    Corrupt(Claim, String),
}

/// Stores `text` for queue `sqs_name` and answers the message to send.
pub async fn check_in(
    store: &Arc<dyn ObjectStore>,
    sqs_name: &str,
    text: &str,
) -> Result<String, QueueError> {
    let claim = Claim {
        key: format!("claims/{sqs_name}/{}", uuid::Uuid::now_v7()),
        bytes: text.len() as u64,
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
    };
    let payload = PutPayload::from(text.as_bytes().to_vec());
    store
        .put(&Path::from(claim.key.as_str()), payload)
        .await
        .map_err(|e| QueueError::Backend(format!("storing a claim-checked message: {e}")))?;
    Ok(serde_json::json!({ FIELD: claim }).to_string())
}

/// The claim `body` is, if it is one.
pub fn claim_of(body: &serde_json::Value) -> Option<Claim> {
    let object = body.as_object()?;
    if object.len() != 1 {
        return None;
    }
    serde_json::from_value(object.get(FIELD)?.clone()).ok()
}

/// Reads the body `body` stands for, received from queue `sqs_name`. A
/// claim naming an object outside that queue's `claims/` prefix is corrupt
/// and never read or deleted, whoever managed to send it.
pub async fn resolve(
    store: &Arc<dyn ObjectStore>,
    sqs_name: &str,
    body: serde_json::Value,
) -> Result<Resolved, QueueError> {
    let Some(claim) = claim_of(&body) else {
        return Ok(Resolved::Inline(body));
    };
    if !is_ours(sqs_name, &claim.key) {
        let why = format!(
            "the claim names `{}`, outside `claims/{sqs_name}/`",
            claim.key
        );
        return Ok(Resolved::Corrupt(claim, why));
    }
    let path = Path::from(claim.key.as_str());
    let bytes = match store.get(&path).await {
        Ok(got) => got.bytes().await,
        Err(err) => Err(err),
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(object_store::Error::NotFound { .. }) => return Ok(Resolved::Consumed(claim)),
        Err(err) => {
            return Err(QueueError::Backend(format!(
                "reading claim-checked message `{}`: {err}",
                claim.key
            )));
        }
    };
    let digest = hex::encode(Sha256::digest(&bytes));
    if bytes.len() as u64 != claim.bytes || digest != claim.sha256 {
        let why = format!(
            "{} bytes with sha256 {digest}, not {} bytes with {}",
            bytes.len(),
            claim.bytes,
            claim.sha256
        );
        return Ok(Resolved::Corrupt(claim, why));
    }
    match serde_json::from_slice(&bytes) {
        Ok(value) => Ok(Resolved::Claimed(claim, value)),
        Err(err) => Ok(Resolved::Corrupt(claim, format!("not JSON: {err}"))),
    }
}

/// Whether `key` is one queue `sqs_name` writes: directly under
/// `claims/<sqs_name>/`.
pub fn is_ours(sqs_name: &str, key: &str) -> bool {
    let tail = key
        .strip_prefix("claims/")
        .and_then(|k| k.strip_prefix(sqs_name))
        .and_then(|k| k.strip_prefix('/'))
        .unwrap_or("");
    !tail.is_empty() && !tail.contains('/') && !tail.contains("..")
}

/// Deletes a consumed claim's object; a failure is only logged, as the
/// lifecycle rule removes what is left.
pub async fn check_out(store: &Arc<dyn ObjectStore>, key: &str) {
    if let Err(err) = store.delete(&Path::from(key)).await {
        tracing::warn!(key, error = %err, "a claim-checked message's object was not deleted");
    }
}

/// A receipt that also names the claim's object, so a delete removes both.
/// SQS receipt handles never hold a newline.
pub fn receipt(sqs_receipt: &str, key: &str) -> String {
    format!("{sqs_receipt}\n{key}")
}

/// The SQS receipt and the claim key, if any, of a receipt.
pub fn split_receipt(receipt: &str) -> (&str, Option<&str>) {
    match receipt.split_once('\n') {
        Some((sqs, key)) => (sqs, Some(key)),
        None => (receipt, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lone_claim_field_is_a_claim() {
        let claim = Claim {
            key: "claims/q/1".into(),
            bytes: 3,
            sha256: "ab".into(),
        };
        let body = serde_json::json!({ FIELD: claim });
        assert_eq!(claim_of(&body), Some(claim.clone()));
        let more = serde_json::json!({ FIELD: claim, "other": 1 });
        assert_eq!(claim_of(&more), None);
        let wrong = serde_json::json!({ FIELD: { "key": "k" } });
        assert_eq!(claim_of(&wrong), None);
    }

    #[test]
    fn only_keys_directly_under_the_queues_claims_are_ours() {
        assert!(is_ours(
            "trace-buffer-records",
            "claims/trace-buffer-records/0190abcd"
        ));
        for key in [
            "components/sha256/abc",
            "claims/trace-buffer-records/",
            "claims/trace-buffer-records/a/b",
            "claims/trace-buffer-records/..",
            "claims/trace-buffer-recordsX/1",
            "claims/trace-tasks-udf/1",
        ] {
            assert!(!is_ours("trace-buffer-records", key), "{key}");
        }
    }

    #[test]
    fn receipts_carry_the_claim_key() {
        let r = receipt("AQEB+abc==", "claims/q/1");
        assert_eq!(split_receipt(&r), ("AQEB+abc==", Some("claims/q/1")));
        assert_eq!(split_receipt("AQEB+abc=="), ("AQEB+abc==", None));
    }
}
