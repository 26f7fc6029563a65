//! Postgres-backed queue.
