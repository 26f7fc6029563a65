//! HTTP client for the queue endpoint.
