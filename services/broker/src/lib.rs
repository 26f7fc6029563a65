//! Task-scoped object-storage credentials.
