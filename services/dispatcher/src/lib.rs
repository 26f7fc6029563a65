//! Jobs, tasks, leases and the outbox.
