//! The `objects` capability straight to S3, with the STS credentials the
//! broker issued for the attempt.
//!
//! Used when the broker runs in AWS mode and its answer carries
//! credentials: the bytes then go between the worker and S3 without passing
//! through the broker, and what bounds them is the session policy the
//! broker attached (the task's prefix of the bucket, until the lease
//! expires). The lease outlives the credentials as heartbeats extend it,
//! so the SDK asks the broker again shortly before they expire
//! ([`FromBroker`]). The key is checked here too, as the broker would, before it is
//! joined to the prefix; the host has already checked it and counted it
//! against the task's object limits.

use std::sync::Arc;

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::future;
use aws_sdk_s3::config::{Credentials, ProvideCredentials};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use trace_broker::client::BrokerClient;
use trace_common::api::AwsCredentials;
use trace_common::api::CredentialRequest;
use trace_common::keys::{check_key, check_prefix};
use trace_common::objects::s3::S3Store;
use trace_host::ObjectsHost;
use trace_host::objects::ObjectError;

use crate::bridge::Bridge;

/// A task's objects in its prefix of the bucket.
pub struct S3Objects {
    store: Arc<dyn ObjectStore>,
    /// `scratch/<tenant>/<job>/<task>/`, with its trailing slash.
    prefix: String,
    bridge: Bridge,
}

impl S3Objects {
    /// The capability for `prefix` with `aws`, reached with `sdk`'s region
    /// and endpoint but none of its credentials; later credentials come from
    /// `broker` for `request`.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        aws: &AwsCredentials,
        refresh: (BrokerClient, CredentialRequest),
        prefix: String,
        bridge: Bridge,
    ) -> Self {
        let credentials = FromBroker {
            broker: refresh.0,
            request: refresh.1,
            first: std::sync::Mutex::new(Some(aws.clone())),
        };
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .credentials_provider(credentials)
            .force_path_style(true)
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        Self {
            store: Arc::new(S3Store::with_client(client, aws.bucket.clone())),
            prefix,
            bridge,
        }
    }

    fn path(&self, key: &str) -> Result<Path, ObjectError> {
        check_key(key).map_err(|e| ObjectError::InvalidKey(e.to_string()))?;
        Path::parse(format!("{}{key}", self.prefix))
            .map_err(|_| ObjectError::InvalidKey("the key is not a valid object path".to_string()))
    }

    fn call<T>(
        &self,
        future: impl Future<Output = Result<T, object_store::Error>>,
    ) -> Result<T, object_store::Error> {
        match self.bridge.block_on(future) {
            Some(result) => result,
            None => Err(object_store::Error::Generic {
                store: "S3",
                source: "the task was cancelled".into(),
            }),
        }
    }
}

impl ObjectsHost for S3Objects {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, ObjectError> {
        let path = self.path(key)?;
        let store = self.store.clone();
        let got = {
            let (store, path) = (store.clone(), path.clone());
            self.call(async move { store.get(&path).await?.bytes().await })
        };
        match got {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            // S3 answers 403, not 404, for a missing key when the caller may
            // not list the bucket, and the session policy allows listing
            // only with the task's prefix: a listing of the key's directory
            // tells a missing key from a refused one.
            Err(object_store::Error::PermissionDenied { .. }) => {
                let parent = path.parts().collect::<Vec<_>>();
                let dir = Path::from_iter(parent[..parent.len().saturating_sub(1)].iter().cloned());
                let listed: Vec<_> = self
                    .call(async move { store.list(Some(&dir)).try_collect().await })
                    .map_err(object_error)?;
                if listed
                    .iter()
                    .any(|m: &object_store::ObjectMeta| m.location == path)
                {
                    Err(ObjectError::Denied(
                        "the task's credentials do not allow this".into(),
                    ))
                } else {
                    Ok(None)
                }
            }
            Err(err) => Err(object_error(err)),
        }
    }

    fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), ObjectError> {
        let path = self.path(key)?;
        let store = self.store.clone();
        self.call(async move { store.put(&path, PutPayload::from(value)).await })
            .map(|_| ())
            .map_err(object_error)
    }

    fn list(&mut self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        check_prefix(prefix).map_err(|e| ObjectError::InvalidKey(e.to_string()))?;
        let scope = Path::parse(self.prefix.trim_end_matches('/'))
            .map_err(|e| ObjectError::Unavailable(format!("the task prefix: {e}")))?;
        let store = self.store.clone();
        let metas: Vec<_> = self
            .call(async move { store.list(Some(&scope)).try_collect().await })
            .map_err(object_error)?;
        let mut keys: Vec<String> = metas
            .into_iter()
            .filter_map(|meta| {
                meta.location
                    .as_ref()
                    .strip_prefix(&self.prefix)
                    .map(str::to_string)
            })
            .filter(|key| key.starts_with(prefix))
            .collect();
        keys.sort();
        Ok(keys)
    }

    fn delete(&mut self, key: &str) -> Result<(), ObjectError> {
        let path = self.path(key)?;
        let store = self.store.clone();
        match self.call(async move { store.delete(&path).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(object_error(err)),
        }
    }
}

/// The attempt's STS credentials: those the task started with, then fresh
/// ones from the broker each time the SDK's cache finds them about to end.
#[derive(Debug)]
struct FromBroker {
    broker: BrokerClient,
    request: CredentialRequest,
    first: std::sync::Mutex<Option<AwsCredentials>>,
}

impl ProvideCredentials for FromBroker {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let first = self.first.lock().unwrap_or_else(|p| p.into_inner()).take();
            let aws = match first {
                Some(aws) => aws,
                None => {
                    let got = self
                        .broker
                        .credentials(&self.request)
                        .await
                        .map_err(CredentialsError::provider_error)?;
                    got.aws.ok_or_else(|| {
                        CredentialsError::not_loaded("the broker answered without STS credentials")
                    })?
                }
            };
            Ok(Credentials::new(
                aws.access_key_id,
                aws.secret_access_key,
                Some(aws.session_token),
                Some(aws.expires_at.into()),
                "trace-broker",
            ))
        })
    }
}

/// The WIT error for a failed S3 call: a refusal of the credentials is
/// `denied` (the session policy, or credentials that ended with the
/// lease), anything else `unavailable`.
fn object_error(err: object_store::Error) -> ObjectError {
    match err {
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            ObjectError::Denied("the task's credentials do not allow this".to_string())
        }
        err => {
            tracing::warn!(error = %err, "s3 object call failed");
            ObjectError::Unavailable("the object store is unavailable".to_string())
        }
    }
}
