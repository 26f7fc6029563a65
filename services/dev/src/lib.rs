//! The whole platform in one process for `trace dev`.
