//! Runs user components for tasks.
