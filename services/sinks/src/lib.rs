//! Drains dataset buffers into Postgres data.
