//! Fault injection for queues, for chaos tests: [`FaultyQueue`] wraps any
//! [`Queue`] and, from a seeded generator, fails, delays, duplicates or drops
//! sends and loses deletes.
//!
//! Every fault stays inside what the queue contract allows, so a platform
//! that is correct under them is correct on SQS and on the Postgres queue,
//! where an acknowledged send is durable:
//!
//! - `send_error`: a send fails before anything is sent; the sender sees it;
//! - `delay`: a send call is held for `delay_ms`, then made;
//! - `duplicate`: a message is sent twice (delivery is at least once);
//! - `drop`: a message to a task wake-up queue (`tasks-*`) is discarded while
//!   the send answers success. Wake-ups carry no data and Postgres state is
//!   the truth, so the reconciler must make up for it; messages of every
//!   other queue are never dropped, since losing an acknowledged send is
//!   not something a real backend does;
//! - `lose_delete`: a delete answers success without deleting, so the
//!   message comes back after its visibility timeout, as after a consumer
//!   crashed just before its delete.
//!
//! Receives pass through: a redelivery is the backend's own doing, counted
//! in [`Received::receive_count`](super::Received::receive_count).
//!
//! The layer is compiled only with this crate's `faults` feature, which the
//! end-to-end test crate turns on, so a service built on its own carries
//! none of it. [`from_env`] exists in every build: it wraps a queue when
//! `TRACE_QUEUE_FAULTS` is set (for example
//! `seed=7,drop=0.1,duplicate=0.2,delay=0.2,delay_ms=1500,send_error=0.05,lose_delete=0.2`)
//! and the build can, and says so in the log when it cannot. Every injected
//! fault is logged at `warn` with the field `fault` naming its kind, and
//! counted ([`FaultyQueue::counts`]).

use std::sync::Arc;

use super::Queue;

#[cfg(feature = "faults")]
pub use layer::{Fault, FaultConfig, FaultCounts, FaultyQueue};

/// The environment variable that configures the layer; unset, nothing is
/// wrapped.
pub const ENV_VAR: &str = "TRACE_QUEUE_FAULTS";

/// A `TRACE_QUEUE_FAULTS` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `TRACE_QUEUE_FAULTS`: {0}")]
pub struct InvalidFaults(String);

/// `queue` behind a [`FaultyQueue`] configured by `TRACE_QUEUE_FAULTS`, or
/// `queue` itself when the variable is unset or this build has no fault
/// layer (then a warning says the variable is ignored).
pub fn from_env(queue: Arc<dyn Queue>) -> Result<Arc<dyn Queue>, InvalidFaults> {
    let Ok(spec) = std::env::var(ENV_VAR) else {
        return Ok(queue);
    };
    wrap(queue, &spec)
}

#[cfg(feature = "faults")]
fn wrap(queue: Arc<dyn Queue>, spec: &str) -> Result<Arc<dyn Queue>, InvalidFaults> {
    let config: FaultConfig = spec.parse()?;
    tracing::warn!(faults = %config, "queue fault injection is on");
    Ok(Arc::new(FaultyQueue::new(queue, config)))
}

#[cfg(not(feature = "faults"))]
fn wrap(queue: Arc<dyn Queue>, _spec: &str) -> Result<Arc<dyn Queue>, InvalidFaults> {
    tracing::warn!(
        "`TRACE_QUEUE_FAULTS` is set but this build has no fault layer \
         (feature `faults` of trace-common); no faults are injected"
    );
    Ok(queue)
}

#[cfg(feature = "faults")]
mod layer {
    use std::fmt;
    use std::str::FromStr;
    use std::sync::Arc;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use rand::distributions::Standard;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::InvalidFaults;
    use crate::queue::{Queue, QueueError, Received};

    /// The queues whose messages may be dropped: task wake-ups only.
    const DROPPABLE_PREFIX: &str = "tasks-";

    /// One kind of injected fault.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Fault {
        /// A wake-up discarded while its send answered success.
        Drop,
        /// A message sent twice.
        Duplicate,
        /// A send call held for the configured delay.
        Delay,
        /// A send refused before anything was sent.
        SendError,
        /// A delete answered with success without deleting.
        LoseDelete,
    }

    impl Fault {
        /// Every kind, in the order of [`Fault::index`].
        pub const ALL: [Fault; 5] = [
            Fault::Drop,
            Fault::Duplicate,
            Fault::Delay,
            Fault::SendError,
            Fault::LoseDelete,
        ];

        /// The name used in `TRACE_QUEUE_FAULTS` and in the `fault` log field.
        pub fn name(self) -> &'static str {
            match self {
                Fault::Drop => "drop",
                Fault::Duplicate => "duplicate",
                Fault::Delay => "delay",
                Fault::SendError => "send_error",
                Fault::LoseDelete => "lose_delete",
            }
        }

        fn index(self) -> usize {
            self as usize
        }
    }

    /// How often each fault happens, from `TRACE_QUEUE_FAULTS`.
    ///
    /// Probabilities are per message for `drop` and `duplicate`, per send
    /// call for `delay` and `send_error`, and per receipt for `lose_delete`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct FaultConfig {
        /// Seeds the generator: the same seed and the same calls give the
        /// same faults.
        pub seed: u64,
        pub drop: f64,
        pub duplicate: f64,
        pub delay: f64,
        /// How long a delayed send is held (`delay_ms`, default 1000).
        pub delay_for: Duration,
        pub send_error: f64,
        pub lose_delete: f64,
    }

    impl Default for FaultConfig {
        /// Seed 0, no faults, a one-second delay.
        fn default() -> Self {
            Self {
                seed: 0,
                drop: 0.0,
                duplicate: 0.0,
                delay: 0.0,
                delay_for: Duration::from_secs(1),
                send_error: 0.0,
                lose_delete: 0.0,
            }
        }
    }

    impl FromStr for FaultConfig {
        type Err = InvalidFaults;

        /// Parses `key=value` pairs separated by commas; keys left out keep
        /// their default, unknown keys are refused.
        fn from_str(spec: &str) -> Result<Self, InvalidFaults> {
            let mut config = FaultConfig::default();
            for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let Some((key, value)) = part.split_once('=') else {
                    return Err(InvalidFaults(format!("`{part}` is not `key=value`")));
                };
                let value = value.trim();
                match key.trim() {
                    "seed" => config.seed = number(key, value)?,
                    "delay_ms" => config.delay_for = Duration::from_millis(number(key, value)?),
                    "drop" => config.drop = odds(key, value)?,
                    "duplicate" => config.duplicate = odds(key, value)?,
                    "delay" => config.delay = odds(key, value)?,
                    "send_error" => config.send_error = odds(key, value)?,
                    "lose_delete" => config.lose_delete = odds(key, value)?,
                    other => return Err(InvalidFaults(format!("unknown key `{other}`"))),
                }
            }
            Ok(config)
        }
    }

    impl fmt::Display for FaultConfig {
        /// The spec in the form [`FaultConfig::from_str`] reads.
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "seed={},drop={},duplicate={},delay={},delay_ms={},send_error={},lose_delete={}",
                self.seed,
                self.drop,
                self.duplicate,
                self.delay,
                self.delay_for.as_millis(),
                self.send_error,
                self.lose_delete
            )
        }
    }

    fn number(key: &str, value: &str) -> Result<u64, InvalidFaults> {
        value
            .parse()
            .map_err(|_| InvalidFaults(format!("`{key}` wants an integer, not `{value}`")))
    }

    fn odds(key: &str, value: &str) -> Result<f64, InvalidFaults> {
        match value.parse::<f64>() {
            Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
            _ => Err(InvalidFaults(format!(
                "`{key}` wants a probability in 0..=1, not `{value}`"
            ))),
        }
    }

    /// How many faults of each kind a [`FaultyQueue`] has injected.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct FaultCounts([u64; 5]);

    impl FaultCounts {
        /// The count of `fault`.
        pub fn get(&self, fault: Fault) -> u64 {
            self.0[fault.index()]
        }

        /// Every fault together.
        pub fn total(&self) -> u64 {
            self.0.iter().sum()
        }
    }

    /// A [`Queue`] that injects the faults its [`FaultConfig`] asks for into
    /// the calls it passes to the queue it wraps.
    #[derive(Debug)]
    pub struct FaultyQueue {
        inner: Arc<dyn Queue>,
        config: FaultConfig,
        rng: Mutex<StdRng>,
        counts: [AtomicU64; 5],
    }

    /// What one send call will suffer, drawn before it starts.
    struct SendPlan {
        fail: bool,
        delay: bool,
        /// Per message: 0 (dropped), 1, or 2 (duplicated) copies.
        copies: Vec<usize>,
    }

    impl FaultyQueue {
        /// Wraps `inner`, drawing faults from a generator seeded with
        /// `config.seed`.
        pub fn new(inner: Arc<dyn Queue>, config: FaultConfig) -> Self {
            Self {
                rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
                inner,
                config,
                counts: Default::default(),
            }
        }

        /// The faults injected so far, by kind.
        pub fn counts(&self) -> FaultCounts {
            FaultCounts(std::array::from_fn(|i| {
                self.counts[i].load(Ordering::Relaxed)
            }))
        }

        /// Draws every decision of a send of `n` messages: always the same
        /// number of draws for the same call, so the sequence depends only on
        /// the seed and the calls.
        fn plan_send(&self, queue: &str, n: usize) -> SendPlan {
            let mut rng = self.rng.lock().expect("fault generator lock");
            let fail = chance(&mut rng, self.config.send_error);
            let delay = chance(&mut rng, self.config.delay);
            let droppable = queue.starts_with(DROPPABLE_PREFIX);
            let copies = (0..n)
                .map(|_| {
                    let dropped = chance(&mut rng, self.config.drop) && droppable;
                    let doubled = chance(&mut rng, self.config.duplicate);
                    match (dropped, doubled) {
                        (true, _) => 0,
                        (false, true) => 2,
                        (false, false) => 1,
                    }
                })
                .collect();
            SendPlan {
                fail,
                delay,
                copies,
            }
        }

        /// Draws, per receipt, whether its delete is lost.
        fn plan_delete(&self, n: usize) -> Vec<bool> {
            let mut rng = self.rng.lock().expect("fault generator lock");
            (0..n)
                .map(|_| chance(&mut rng, self.config.lose_delete))
                .collect()
        }

        fn note(&self, fault: Fault, queue: &str) {
            self.counts[fault.index()].fetch_add(1, Ordering::Relaxed);
            tracing::warn!(fault = fault.name(), queue, "queue fault injected");
        }
    }

    /// True with probability `p`; always one draw, whatever `p` is.
    fn chance(rng: &mut StdRng, p: f64) -> bool {
        let draw: f64 = rng.sample(Standard);
        draw < p
    }

    #[async_trait::async_trait]
    impl Queue for FaultyQueue {
        async fn send(&self, queue: &str, bodies: &[serde_json::Value]) -> Result<(), QueueError> {
            if bodies.is_empty() {
                return self.inner.send(queue, bodies).await;
            }
            let plan = self.plan_send(queue, bodies.len());
            if plan.fail {
                self.note(Fault::SendError, queue);
                let msg = format!("injected fault: send to `{queue}` refused before sending");
                return Err(QueueError::Backend(msg));
            }
            if plan.delay {
                self.note(Fault::Delay, queue);
                tokio::time::sleep(self.config.delay_for).await;
            }

            let mut sent = Vec::with_capacity(bodies.len());
            for (body, copies) in bodies.iter().zip(plan.copies) {
                match copies {
                    0 => self.note(Fault::Drop, queue),
                    2 => self.note(Fault::Duplicate, queue),
                    _ => {}
                }
                sent.extend(std::iter::repeat_n(body.clone(), copies));
            }
            self.inner.send(queue, &sent).await
        }

        async fn receive(
            &self,
            queue: &str,
            max: u32,
            wait: Duration,
            visibility: Duration,
        ) -> Result<Vec<Received>, QueueError> {
            self.inner.receive(queue, max, wait, visibility).await
        }

        async fn delete(&self, queue: &str, receipts: &[String]) -> Result<(), QueueError> {
            let lost = self.plan_delete(receipts.len());
            let mut kept = Vec::with_capacity(receipts.len());
            for (receipt, lost) in receipts.iter().zip(lost) {
                if lost {
                    self.note(Fault::LoseDelete, queue);
                } else {
                    kept.push(receipt.clone());
                }
            }
            if kept.is_empty() {
                return Ok(());
            }
            self.inner.delete(queue, &kept).await
        }
    }
}

#[cfg(all(test, feature = "faults"))]
mod tests;
