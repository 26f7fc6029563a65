//! Claim checks on the SQS queues against the local AWS emulator: a body
//! over SQS's limit goes through the bucket and comes back whole; its
//! object goes with its message; a corrupt one is never handed out.
//! The large bodies are recorded mainnet blocks.

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use serde_json::json;
use trace_common::aws::testing as moto;
use trace_common::objects::s3::S3Store;
use trace_common::queue::Queue;
use trace_common::queue::sqs::{MAX_BODY_BYTES, SqsQueue};

mod support;
use support::block_json;

const BUCKET: &str = "trace-test-objects";
const QUEUE: &str = "buffer-records";
const NO_WAIT: Duration = Duration::ZERO;

struct Setup {
    _moto: moto::Moto,
    queue: SqsQueue,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
}

async fn setup() -> Setup {
    let moto = moto::start().await;
    let sdk = moto::sdk_config(&moto).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    sqs.create_queue()
        .queue_name(format!("trace-test-{QUEUE}"))
        .send()
        .await
        .unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(S3Store::new(&sdk, BUCKET));
    let queue = SqsQueue::new(&sdk, "trace-test-").with_claim_checks(store);
    Setup {
        _moto: moto,
        queue,
        s3,
        sqs,
    }
}

impl Setup {
    async fn claim_keys(&self) -> Vec<String> {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix("claims/")
            .send()
            .await
            .unwrap();
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    }

    /// The URL of the test's SQS queue.
    async fn queue_url(&self) -> String {
        self.sqs
            .get_queue_url()
            .queue_name(format!("trace-test-{QUEUE}"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap()
    }

    /// The raw SQS bodies waiting on the queue, received with a short
    /// visibility so they come back.
    async fn raw_bodies(&self) -> Vec<serde_json::Value> {
        let url = self.queue_url().await;
        let out = self
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(1)
            .send()
            .await
            .unwrap();
        out.messages()
            .iter()
            .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn a_body_over_the_limit_goes_by_claim_check_and_leaves_with_its_message() {
    let s = setup().await;
    let big = json!({ "batch": 1, "block": block_json("18951920.json.gz") });
    assert!(big.to_string().len() > 3 * MAX_BODY_BYTES);
    let small = json!({ "batch": 2 });

    s.queue
        .send(QUEUE, &[big.clone(), small.clone()])
        .await
        .unwrap();

    // In SQS the large one is only a claim naming its object, size and hash.
    let keys = s.claim_keys().await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with(&format!("claims/trace-test-{QUEUE}/")));
    let mut raw = s.raw_bodies().await;
    raw.sort_by_key(|b| b.to_string().len());
    assert_eq!(raw[0], small);
    let claim = &raw[1]["trace_claim_check"];
    assert_eq!(claim["key"], keys[0].as_str());
    assert_eq!(claim["bytes"], big.to_string().len() as u64);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let mut got = s
        .queue
        .receive(QUEUE, 10, NO_WAIT, Duration::from_secs(30))
        .await
        .unwrap();
    got.sort_by_key(|m| m.body["batch"].as_u64());
    let bodies: Vec<_> = got.iter().map(|m| m.body.clone()).collect();
    assert_eq!(bodies, [big, small]);

    let receipts: Vec<String> = got.iter().map(|m| m.receipt.clone()).collect();
    s.queue.delete(QUEUE, &receipts).await.unwrap();
    assert!(s.claim_keys().await.is_empty());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(s.raw_bodies().await.is_empty());
}

#[tokio::test]
async fn a_claim_whose_object_was_changed_is_not_handed_out_and_stays_for_the_dead_letters() {
    let s = setup().await;
    let big = json!({ "block": block_json("18000000.json.gz") });
    s.queue.send(QUEUE, &[big]).await.unwrap();
    let key = s.claim_keys().await.remove(0);
    let other = block_json("18951920.json.gz").to_string();
    s.s3.put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(other.into_bytes().into())
        .send()
        .await
        .unwrap();

    let got = s
        .queue
        .receive(QUEUE, 10, NO_WAIT, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(got.is_empty());
    // Still on the queue, with its object, for the redrive policy to move.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let raw = s.raw_bodies().await;
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0]["trace_claim_check"]["key"], key.as_str());
    assert_eq!(s.claim_keys().await, [key]);
}

#[tokio::test]
async fn a_claim_whose_object_is_gone_was_consumed_and_is_dropped() {
    let s = setup().await;
    let big = json!({ "block": block_json("18000000.json.gz") });
    s.queue.send(QUEUE, &[big]).await.unwrap();
    let key = s.claim_keys().await.remove(0);
    s.s3.delete_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap();

    let got = s
        .queue
        .receive(QUEUE, 10, NO_WAIT, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(got.is_empty());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(s.raw_bodies().await.is_empty());
}

#[tokio::test]
async fn a_forged_claim_is_refused_at_send_and_never_reads_or_deletes_its_object() {
    let s = setup().await;
    // An object the claim would name: a component, outside `claims/`.
    let key = "components/sha256/forged";
    let bytes = block_json("18000000.json.gz").to_string();
    s.s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(bytes.clone().into_bytes().into())
        .send()
        .await
        .unwrap();
    let digest = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(bytes.as_bytes()))
    };
    let forged = json!({ "trace_claim_check": {
        "key": key, "bytes": bytes.len(), "sha256": digest,
    }});

    // Through the queue, as any sender would: refused.
    let err = s
        .queue
        .send(QUEUE, std::slice::from_ref(&forged))
        .await
        .unwrap_err();
    assert!(
        matches!(err, trace_common::queue::QueueError::Invalid(_)),
        "{err}"
    );

    // Put straight on SQS: never handed out, and the object stays.
    let url = s.queue_url().await;
    s.sqs
        .send_message()
        .queue_url(url)
        .message_body(forged.to_string())
        .send()
        .await
        .unwrap();
    let got = s
        .queue
        .receive(QUEUE, 10, NO_WAIT, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(got.is_empty());
    let kept =
        s.s3.head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
    assert_eq!(kept.content_length(), Some(bytes.len() as i64));

    // A receipt handed back with a foreign key deletes the message only.
    s.queue.send(QUEUE, &[json!({ "batch": 9 })]).await.unwrap();
    let got = s
        .queue
        .receive(QUEUE, 10, NO_WAIT, Duration::from_secs(30))
        .await
        .unwrap();
    let real = got
        .iter()
        .find(|m| m.body == json!({ "batch": 9 }))
        .expect("the message");
    let receipt = format!("{}\n{key}", real.receipt);
    s.queue.delete(QUEUE, &[receipt]).await.unwrap();
    let kept = s.s3.head_object().bucket(BUCKET).key(key).send().await;
    assert!(kept.is_ok(), "the component was deleted");
}

#[tokio::test]
async fn a_queue_without_claim_checks_leaves_a_claim_on_the_queue() {
    let s = setup().await;
    let big = json!({ "block": block_json("18000000.json.gz") });
    s.queue.send(QUEUE, &[big]).await.unwrap();
    let sdk = moto::sdk_config(&s._moto).await;
    let plain = SqsQueue::new(&sdk, "trace-test-");

    let got = plain
        .receive(QUEUE, 10, NO_WAIT, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(got.is_empty());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(s.raw_bodies().await.len(), 1);
    assert_eq!(s.claim_keys().await.len(), 1);
}
