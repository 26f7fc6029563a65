//! AWS mode against the local AWS emulator: the broker answers with STS
//! credentials, and the worker takes the task's objects straight to S3
//! under the task's prefix, none of them through the broker.

use trace_common::api::{JobState, TaskState};
use trace_common::aws::testing as moto;

use super::support::{Aws, TENANT, start_aws};

const BUCKET: &str = "trace-objects";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_stores_lists_and_deletes_its_objects_in_s3_with_its_sts_credentials() {
    let moto = moto::start().await;
    let sdk = moto::sdk_config(&moto).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let aws = Aws {
        sdk,
        role_arn: "arn:aws:iam::123456789012:role/trace-task".into(),
        bucket: BUCKET.into(),
    };
    let platform = start_aws(&aws).await;
    let echo = platform.publish("echo");

    let params = serde_json::json!({ "objects": "round-trip" });
    let job = platform.job(echo, params, (100, 101, 2)).await;
    let job = platform.finished(&job).await;

    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    let tasks = platform.dispatcher.tasks(TENANT, job.id).await.unwrap();
    let task = &tasks[0];
    assert_eq!(task.state, TaskState::Succeeded);
    // What the component stored: its two records, one JSON line each.
    let body = format!(
        "{{\"block\":100,\"task\":\"{id}\"}}\n{{\"block\":101,\"task\":\"{id}\"}}",
        id = task.id
    );
    let key = "blocks/100-101.jsonl";
    let told = format!(
        "echoed 2 blocks; stored {} bytes; listed [\"{key}\", \"tmp/scratch\"]; \
         scratch after delete None; listed [\"{key}\"]",
        body.len()
    );
    assert_eq!(task.summary.as_ref().unwrap()["message"], told.as_str());

    // The object is in the bucket under the task's prefix, and it is all
    // the bucket holds: the scratch object was deleted there.
    let prefix = format!("scratch/{TENANT}/{}/{}/", job.id, task.id);
    let listed = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [format!("{prefix}{key}")]);
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key(format!("{prefix}{key}"))
        .send()
        .await
        .unwrap();
    let bytes = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(&bytes[..], body.as_bytes());
    // Nothing went through the broker's own object endpoint.
    assert!(!platform.objects.path().join("scratch").exists());
}
