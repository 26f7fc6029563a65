//! Read-only SQL over chain data and user datasets.
