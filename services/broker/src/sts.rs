//! AWS mode: task credentials from STS `AssumeRole` under a session policy.
//!
//! The broker assumes one role (`--sts-role-arn`) for every task, and the
//! inline session policy it passes narrows that role to the task's prefix
//! of the objects bucket: the credentials can read, write and delete keys
//! under `scratch/<tenant>/<job>/<task>/` and list that prefix, nothing else,
//! whatever the role itself allows, and only until the lease (as it stood
//! when they were asked for) expires: STS cannot grant less than 15
//! minutes, so the policy's `aws:CurrentTime` condition is what ends them
//! with the lease. A worker whose lease was extended asks again. The
//! host's own key check (`trace_common::keys`) stays the second wall: a key
//! never leaves the host unless it is relative and under the prefix.

use aws_sdk_sts::error::DisplayErrorContext;
use serde_json::{Value, json};
use trace_common::api::AwsCredentials;
use uuid::Uuid;

/// How long assumed credentials last: 900 s, STS's minimum.
pub const SESSION_SECS: i32 = 900;

/// A failure to assume the task role.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StsError {
    /// STS refused or could not be reached.
    #[error("sts AssumeRole failed: {0}")]
    AssumeRole(String),
    /// STS answered without credentials.
    #[error("sts AssumeRole answered without credentials")]
    NoCredentials,
    /// The prefix holds a character IAM reads as a wildcard or variable;
    /// tenant ids and uuids never do, so this is a bug, refused loudly.
    #[error("the prefix `{0}` cannot be written into a policy")]
    UnsafePrefix(String),
}

/// The session policy of a task: objects under `prefix` in `bucket`, and a
/// listing of that prefix only, before `until`.
pub fn session_policy(
    bucket: &str,
    prefix: &str,
    until: chrono::DateTime<chrono::Utc>,
) -> Result<Value, StsError> {
    if prefix.contains(['*', '?', '$']) || bucket.contains(['*', '?', '$', '/']) {
        return Err(StsError::UnsafePrefix(format!("{bucket}/{prefix}")));
    }
    let until = until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let before = json!({ "aws:CurrentTime": until });
    Ok(json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TaskObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": [format!("arn:aws:s3:::{bucket}/{prefix}*")],
                "Condition": { "DateLessThan": before },
            },
            {
                "Sid": "TaskListing",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [format!("arn:aws:s3:::{bucket}")],
                "Condition": {
                    "StringLike": { "s3:prefix": [format!("{prefix}*")] },
                    "DateLessThan": before,
                },
            },
        ],
    }))
}

/// The role session name of an attempt, which CloudTrail shows for every
/// call made with its credentials.
pub fn session_name(task: Uuid, attempt: u32) -> String {
    format!("trace-{task}-{attempt}")
}

/// Assumes the task role for each credential request.
#[derive(Debug, Clone)]
pub struct StsIssuer {
    client: aws_sdk_sts::Client,
    role_arn: String,
    bucket: String,
}

impl StsIssuer {
    /// An issuer of `role_arn` credentials for `bucket`, calling STS as
    /// `sdk` says (region, endpoint, the broker's own credentials).
    pub fn new(sdk: &aws_config::SdkConfig, role_arn: String, bucket: String) -> Self {
        Self {
            client: aws_sdk_sts::Client::new(sdk),
            role_arn,
            bucket,
        }
    }

    /// Credentials for attempt `attempt` of `task`, limited to `prefix`
    /// and usable until `until`.
    pub async fn assume(
        &self,
        task: Uuid,
        attempt: u32,
        prefix: &str,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<AwsCredentials, StsError> {
        let policy = session_policy(&self.bucket, prefix, until)?;
        let out = self
            .client
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(session_name(task, attempt))
            .policy(policy.to_string())
            .duration_seconds(SESSION_SECS)
            .send()
            .await
            .map_err(|err| StsError::AssumeRole(DisplayErrorContext(&err).to_string()))?;
        let creds = out.credentials().ok_or(StsError::NoCredentials)?;
        let expires_at = chrono::DateTime::from_timestamp(creds.expiration().secs(), 0)
            .ok_or(StsError::NoCredentials)?
            .min(until);
        Ok(AwsCredentials {
            access_key_id: creds.access_key_id().to_string(),
            secret_access_key: creds.secret_access_key().to_string(),
            session_token: creds.session_token().to_string(),
            bucket: self.bucket.clone(),
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_policy_allows_the_task_prefix_and_nothing_else() {
        let prefix = "scratch/acme/00000000-0000-0000-0000-000000000001/\
                      00000000-0000-0000-0000-000000000002/";
        let until = chrono::DateTime::from_timestamp(1_796_000_000, 0).unwrap();
        let policy = session_policy("trace-objects", prefix, until).unwrap();
        // Exactly what STS receives (serde_json writes keys sorted).
        let expected = concat!(
            r#"{"Statement":[{"Action":["s3:GetObject","s3:PutObject","s3:DeleteObject"],"#,
            r#""Condition":{"DateLessThan":{"aws:CurrentTime":"2026-11-30T00:53:20Z"}},"#,
            r#""Effect":"Allow","Resource":["arn:aws:s3:::trace-objects/scratch/acme/"#,
            r#"00000000-0000-0000-0000-000000000001/00000000-0000-0000-0000-000000000002/*"],"#,
            r#""Sid":"TaskObjects"},{"Action":["s3:ListBucket"],"Condition":{"DateLessThan":"#,
            r#"{"aws:CurrentTime":"2026-11-30T00:53:20Z"},"StringLike":"#,
            r#"{"s3:prefix":["scratch/acme/00000000-0000-0000-0000-000000000001/"#,
            r#"00000000-0000-0000-0000-000000000002/*"]}},"Effect":"Allow","#,
            r#""Resource":["arn:aws:s3:::trace-objects"],"Sid":"TaskListing"}],"#,
            r#""Version":"2012-10-17"}"#
        );
        assert_eq!(serde_json::to_string(&policy).unwrap(), expected);
        // STS refuses packed session policies over 2048 characters.
        assert!(expected.len() < 2048);
    }

    #[test]
    fn wildcards_never_reach_a_policy() {
        for prefix in ["scratch/a*/", "scratch/a?/", "scratch/${aws:username}/"] {
            assert!(matches!(
                session_policy("b", prefix, chrono::Utc::now()),
                Err(StsError::UnsafePrefix(_))
            ));
        }
        assert!(session_policy("b/x", "scratch/a/", chrono::Utc::now()).is_err());
    }

    #[test]
    fn the_session_name_fits_the_sts_bound() {
        let name = session_name(Uuid::from_u128(u128::MAX), u32::MAX);
        assert_eq!(
            name,
            "trace-ffffffff-ffff-ffff-ffff-ffffffffffff-4294967295"
        );
        assert!(name.len() <= 64);
    }
}
