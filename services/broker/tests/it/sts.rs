//! AWS mode against the local AWS emulator: credentials come from STS
//! AssumeRole under the task's session policy, only for a live lease.

use std::time::Duration;

use trace_broker::sts::{StsIssuer, session_name};
use trace_common::api::FailRequest;

use super::support::{Stack, request, start_with};
use trace_common::aws::testing as moto;

const ROLE: &str = "arn:aws:iam::123456789012:role/trace-task";

/// The emulator, SDK settings that reach it, and a stack whose broker
/// assumes [`ROLE`] there for bucket `trace-objects`.
async fn sts_stack(lease: Duration) -> (moto::Moto, aws_config::SdkConfig, Stack) {
    let moto = moto::start().await;
    let sdk = moto::sdk_config(&moto).await;
    let sts = StsIssuer::new(&sdk, ROLE.into(), "trace-objects".into());
    let stack = start_with(lease, 3600, 1 << 20, Some(sts)).await;
    (moto, sdk, stack)
}

#[tokio::test]
async fn a_live_lease_gets_sts_credentials_that_work_and_last_fifteen_minutes() {
    let (_moto, sdk, stack) = sts_stack(Duration::from_secs(3600)).await;
    let lease = stack.claimed(1).await.remove(0);

    let creds = stack.credentials(&lease).await;

    let aws = creds.aws.expect("AWS mode answers with STS credentials");
    assert_eq!(aws.bucket, "trace-objects");
    let now = chrono::Utc::now();
    assert!(
        aws.expires_at <= now + chrono::TimeDelta::seconds(901),
        "{aws:?}"
    );
    assert!(
        aws.expires_at > now + chrono::TimeDelta::seconds(800),
        "{aws:?}"
    );
    assert!(creds.expires_at <= aws.expires_at);
    assert!(!aws.session_token.is_empty());
    // The credentials are real: STS says whose they are.
    let assumed = aws_sdk_sts::config::Builder::from(&sdk)
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            aws.access_key_id,
            aws.secret_access_key,
            Some(aws.session_token),
            None,
            "task",
        ))
        .build();
    let who = aws_sdk_sts::Client::from_conf(assumed)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    let session = session_name(lease.task_id, lease.attempt);
    assert_eq!(
        who.arn(),
        Some(format!("arn:aws:sts::123456789012:assumed-role/trace-task/{session}").as_str())
    );
}

#[tokio::test]
async fn sts_credentials_end_with_the_lease_they_were_asked_under() {
    let (_moto, _sdk, stack) = sts_stack(Duration::from_secs(30)).await;
    let lease = stack.claimed(1).await.remove(0);

    let aws = stack.credentials(&lease).await.aws.unwrap();

    // STS grants 900 s at least; the session policy ends them at the lease.
    assert!(aws.expires_at <= lease.expires_at, "{aws:?} {lease:?}");
    assert!(aws.expires_at > chrono::Utc::now() + chrono::TimeDelta::seconds(20));
}

#[tokio::test]
async fn no_sts_credentials_without_a_live_lease() {
    let (_moto, _sdk, stack) = sts_stack(Duration::from_secs(3600)).await;
    let lease = stack.claimed(1).await.remove(0);
    let failed = FailRequest {
        attempt: lease.attempt,
        reason: "gone".into(),
        class: trace_common::api::FailureClass::Deterministic,
        logs: vec![],
    };
    stack.dispatcher.fail(lease.task_id, &failed).await.unwrap();

    let err = stack
        .broker
        .credentials(&request(lease.task_id, lease.attempt))
        .await
        .unwrap_err();

    assert_eq!((err.status(), err.code()), (Some(403), Some("forbidden")));
}

#[tokio::test]
async fn an_unreachable_sts_answers_unavailable() {
    let moto = moto::start().await;
    let sdk = moto::sdk_config(&moto).await;
    drop(moto);
    let sts = StsIssuer::new(&sdk, ROLE.into(), "trace-objects".into());
    let stack = start_with(Duration::from_secs(3600), 3600, 1 << 20, Some(sts)).await;
    let lease = stack.claimed(1).await.remove(0);

    let err = stack
        .broker
        .credentials(&request(lease.task_id, lease.attempt))
        .await
        .unwrap_err();

    assert_eq!((err.status(), err.code()), (Some(503), Some("unavailable")));
}
