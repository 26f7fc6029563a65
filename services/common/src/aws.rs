//! What the AWS backends share: the SDK's settings, and for tests the local
//! emulator they run against ([`testing`]).
//!
//! Every AWS code path (the SQS queues, the broker's STS credentials) takes
//! an [`aws_config::SdkConfig`], so a deployment configures region,
//! endpoint and credentials the SDK's usual way (environment, profile,
//! instance role) and a test points the same code at the emulator.

pub mod testing;

/// The SDK settings from the environment, as every service loads them.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
