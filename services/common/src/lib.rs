//! Shared plumbing for Trace services.
//!
//! Every container under `services/` depends on this crate for the types that
//! cross service boundaries ([`api`]), the HTTP error shape ([`error`]), the
//! queue abstraction with its Postgres and SQS backends ([`queue`]), platform
//! object storage, local or on S3 ([`objects`]), Postgres helpers ([`db`]),
//! logs and trace ids ([`telemetry`]), Prometheus metrics ([`metrics`]), the
//! dispatcher's client ([`dispatcher_client`]) and the worker loop both
//! worker kinds share ([`worker`]). It holds no service logic of its own.

pub mod api;
pub mod aws;
pub mod db;
pub mod dispatcher_client;
pub mod error;
pub mod http;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod objects;
pub mod queue;
pub mod signal;
pub mod telemetry;
pub mod worker;

pub use error::{ApiError, ErrorBody};
