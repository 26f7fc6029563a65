//! Shared plumbing for Trace services.
//!
//! Every container under `services/` depends on this crate for the types that
//! cross service boundaries ([`api`]), the HTTP error shape ([`error`]), the
//! queue abstraction with its embedded Postgres backend ([`queue`]), platform
//! object storage ([`objects`]), Postgres helpers ([`db`]) and telemetry
//! ([`telemetry`]). It holds no service logic of its own.

pub mod api;
pub mod db;
pub mod error;
pub mod http;
pub mod objects;
pub mod queue;
pub mod telemetry;

pub use error::{ApiError, ErrorBody};
