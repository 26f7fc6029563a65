//! What the dispatcher's handlers and background loops share.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;
use trace_common::limits::TaskLimits;
use trace_common::queue::pg::PgQueue;
use trace_common::queue::{Queue, faults};

/// The dispatcher's policy knobs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a claim or a heartbeat holds a task.
    pub lease: Duration,
    /// How many attempts a task gets before it is dead; stored on each job.
    pub max_attempts: u32,
    /// The pause before the first retry of a transient failure; it doubles
    /// per attempt, with jitter (see [`crate::attempts::backoff`]).
    pub retry_backoff: Duration,
    /// The most a job may ask for of each limit.
    pub maxima: TaskLimits,
}

impl Default for Settings {
    /// A 30 s lease, 3 attempts and a 1 s first backoff.
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            max_attempts: 3,
            retry_backoff: Duration::from_secs(1),
            maxima: TaskLimits::default(),
        }
    }
}

/// Shared state: the state database, the queue the outbox is relayed to, the
/// settings, and a signal that wakes the relay when outbox rows were written.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) pool: PgPool,
    pub(crate) queue: Arc<dyn Queue>,
    pub(crate) settings: Settings,
    pub(crate) outbox_written: Arc<Notify>,
}

impl AppState {
    /// State over a migrated state database, relaying to the embedded
    /// Postgres queue in the same database.
    ///
    /// The queue is behind the fault layer when `TRACE_QUEUE_FAULTS` is set
    /// in a build that has it ([`trace_common::queue::faults`]); this one
    /// queue serves the relay and the queue endpoint every other service
    /// uses, so its faults reach them all. Panics when the variable does not
    /// parse: a chaos run with a mistyped spec must not pass for a clean one.
    pub fn new(pool: PgPool, settings: Settings) -> Self {
        let queue = Arc::new(PgQueue::new(pool.clone()));
        Self::with_queue(pool, queue, settings)
    }

    /// State relaying the outbox to `queue` instead (SQS in production),
    /// behind the fault layer as [`AppState::new`] says.
    pub fn with_queue(pool: PgPool, queue: Arc<dyn Queue>, settings: Settings) -> Self {
        let queue = faults::from_env(queue).unwrap_or_else(|err| panic!("{err}"));
        Self {
            pool,
            queue,
            settings,
            outbox_written: Arc::new(Notify::new()),
        }
    }

    /// The state database pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The queue the outbox is relayed to.
    pub fn queue(&self) -> Arc<dyn Queue> {
        self.queue.clone()
    }

    /// Tells the relay there is something to send.
    pub(crate) fn wake_relay(&self) {
        self.outbox_written.notify_one();
    }
}
