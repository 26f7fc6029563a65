//! How a capability on a blocking thread reaches async I/O.
//!
//! Components run on blocking threads (`spawn_blocking`); their host calls
//! drive the async HTTP clients with the runtime's [`Handle::block_on`], and
//! give up early once the task's cancellation token has fired.

use std::future::Future;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// The runtime and the task's cancellation, shared by its capabilities.
#[derive(Debug, Clone)]
pub struct Bridge {
    handle: Handle,
    cancel: CancellationToken,
    /// The task's trace, which the calls made through the bridge carry on.
    trace: Option<String>,
    /// The span the bridge was made in (the task's), the parent of what the
    /// calls through it do.
    span: tracing::Span,
}

impl Bridge {
    /// A bridge to the current runtime; call it from async code.
    pub fn current(cancel: CancellationToken) -> Self {
        Self {
            handle: Handle::current(),
            cancel,
            trace: trace_common::telemetry::current_trace(),
            span: tracing::Span::current(),
        }
    }

    /// Runs `future` to completion, or answers `None` once the task is
    /// cancelled. Only call it from a blocking thread.
    pub fn block_on<F: Future>(&self, future: F) -> Option<F::Output> {
        let run = async {
            tokio::select! {
                _ = self.cancel.cancelled() => None,
                out = future => Some(out),
            }
        };
        let run = run.instrument(self.span.clone());
        match &self.trace {
            Some(id) => self
                .handle
                .block_on(trace_common::telemetry::with_trace(id.clone(), run)),
            None => self.handle.block_on(run),
        }
    }
}
