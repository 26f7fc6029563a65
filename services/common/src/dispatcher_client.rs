//! A typed client of the dispatcher's HTTP API.
//!
//! Workers use the task calls (claim, heartbeat, complete, fail), the broker
//! asks [`DispatcherClient::lease`] whether a lease is live, and the gateway
//! uses the job calls, naming the tenant it authenticated in the
//! `x-trace-tenant` header.

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::api::{
    ClaimRequest, CompleteRequest, CreateJob, FailRequest, HeartbeatRequest, HeartbeatResponse,
    Job, Lease, LeaseStatus, ReleaseRequest, RetryOutcome, TENANT_HEADER, TaskInfo,
};
use crate::http::{ClientError, ServiceClient, check, decode};

/// The error code the dispatcher answers when a task cannot be claimed.
pub const NOT_CLAIMABLE: &str = "not_claimable";
/// The error code the dispatcher answers for an attempt that is not current.
pub const STALE_LEASE: &str = "stale_lease";

/// A client of one dispatcher.
#[derive(Debug, Clone)]
pub struct DispatcherClient {
    client: ServiceClient,
}

impl DispatcherClient {
    /// A client of the dispatcher at `base` such as `http://127.0.0.1:7401`.
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            client: ServiceClient::new(base),
        }
    }

    /// The dispatcher's base URL.
    pub fn base(&self) -> &str {
        self.client.base()
    }

    /// Claims `task` for `worker_id`; `None` when it is not claimable (taken by
    /// someone else, finished, or its job is no longer running).
    pub async fn claim(&self, task: Uuid, worker_id: &str) -> Result<Option<Lease>, ClientError> {
        let body = ClaimRequest {
            worker_id: worker_id.to_string(),
        };
        match self
            .client
            .post(&format!("/v1/tasks/{task}/claim"), &body)
            .await
        {
            Ok(lease) => Ok(Some(lease)),
            Err(err) if err.status() == Some(409) && err.code() == Some(NOT_CLAIMABLE) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Extends the lease of `attempt`; 409 `stale_lease` when it is not current.
    pub async fn heartbeat(
        &self,
        task: Uuid,
        attempt: u32,
    ) -> Result<HeartbeatResponse, ClientError> {
        let body = HeartbeatRequest { attempt };
        self.client
            .post(&format!("/v1/tasks/{task}/heartbeat"), &body)
            .await
    }

    /// Completes the task with the attempt token in `req`.
    pub async fn complete(&self, task: Uuid, req: &CompleteRequest) -> Result<(), ClientError> {
        self.post_empty(&format!("/v1/tasks/{task}/complete"), req)
            .await
    }

    /// Fails the task with the attempt token in `req`.
    pub async fn fail(&self, task: Uuid, req: &FailRequest) -> Result<(), ClientError> {
        self.post_empty(&format!("/v1/tasks/{task}/fail"), req)
            .await
    }

    /// Whether the lease of `attempt` on `task` is live.
    pub async fn lease(&self, task: Uuid, attempt: u32) -> Result<LeaseStatus, ClientError> {
        self.client
            .get(&format!("/v1/tasks/{task}/lease?attempt={attempt}"))
            .await
    }

    /// Creates a job with its tasks.
    pub async fn create_job(&self, req: &CreateJob) -> Result<Job, ClientError> {
        self.client.post("/v1/jobs", req).await
    }

    /// The job `id` of `tenant` (404 for another tenant's job).
    pub async fn job(&self, tenant: &str, id: Uuid) -> Result<Job, ClientError> {
        self.get_as(tenant, &format!("/v1/jobs/{id}")).await
    }

    /// The tasks of job `id` of `tenant`, in order.
    pub async fn tasks(&self, tenant: &str, id: Uuid) -> Result<Vec<TaskInfo>, ClientError> {
        self.get_as(tenant, &format!("/v1/jobs/{id}/tasks")).await
    }

    /// Gives back the running task of `attempt` unfinished; 409
    /// `stale_lease` when it is not current.
    pub async fn release(&self, task: Uuid, attempt: u32) -> Result<(), ClientError> {
        let body = ReleaseRequest { attempt };
        self.post_empty(&format!("/v1/tasks/{task}/release"), &body)
            .await
    }

    /// Cancels running job `id` of `tenant`: its queued tasks are cancelled
    /// and its running ones stop at their next heartbeat. 409 `job_finished`
    /// for a job that already ended.
    pub async fn cancel_job(&self, tenant: &str, id: Uuid) -> Result<Job, ClientError> {
        self.post_as(tenant, &format!("/v1/jobs/{id}/cancel")).await
    }

    /// Queues the dead, failed and cancelled tasks of job `id` of `tenant`
    /// again with a fresh budget of attempts; 409 `nothing_to_retry` when
    /// there are none.
    pub async fn retry_job(&self, tenant: &str, id: Uuid) -> Result<RetryOutcome, ClientError> {
        self.post_as(tenant, &format!("/v1/jobs/{id}/retry")).await
    }

    /// The jobs of `tenant`, newest first.
    pub async fn jobs(&self, tenant: &str) -> Result<Vec<Job>, ClientError> {
        let url = self.client.url("/v1/jobs");
        let req = self
            .client
            .request(reqwest::Method::GET, &url)
            .query(&[("tenant", tenant)]);
        decode(url, req.header(TENANT_HEADER, tenant).send().await).await
    }

    async fn get_as<T: DeserializeOwned>(
        &self,
        tenant: &str,
        path: &str,
    ) -> Result<T, ClientError> {
        self.send_as(reqwest::Method::GET, tenant, path).await
    }

    async fn post_as<T: DeserializeOwned>(
        &self,
        tenant: &str,
        path: &str,
    ) -> Result<T, ClientError> {
        self.send_as(reqwest::Method::POST, tenant, path).await
    }

    /// A bodiless `method` request on `path` as `tenant`, decoded.
    async fn send_as<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        tenant: &str,
        path: &str,
    ) -> Result<T, ClientError> {
        let url = self.client.url(path);
        let req = self.client.request(method, &url);
        decode(url, req.header(TENANT_HEADER, tenant).send().await).await
    }

    async fn post_empty<B: Serialize>(&self, path: &str, body: &B) -> Result<(), ClientError> {
        let url = self.client.url(path);
        let resp = self
            .client
            .request(reqwest::Method::POST, &url)
            .json(body)
            .send()
            .await;
        let resp = resp.map_err(|source| ClientError::Transport {
            url: url.clone(),
            source,
        })?;
        check(url, resp).await?;
        Ok(())
    }
}
