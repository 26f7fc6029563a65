//! What a deterministic run sees of time and chance.
//!
//! A job may ask for deterministic execution: then everything its component
//! can observe is a function of the task and of the data it reads, so the
//! same task run twice, on any worker, publishes the same bytes. The engine
//! side of that (fuel instead of wall time as the bound, canonical NaNs,
//! deterministic relaxed SIMD) is in `engine.rs`; this module is the WASI
//! side:
//!
//! - the **wall clock** first reads [`wall_clock_start`]: `from_block`
//!   seconds after the Unix epoch. The task carries no block timestamp, so
//!   the value is derived from the range alone; it is plainly not a real
//!   date, and it orders tasks as their blocks are ordered;
//! - the **monotonic clock** first reads [`MONOTONIC_START`];
//! - each read of either clock advances it by [`CLOCK_STEP`], so a guest
//!   timing itself sees time pass, by an amount that depends only on what
//!   it did. Sleeping still waits in real time, but does not move the
//!   clocks;
//! - **random bytes**, secure and insecure alike, and the insecure seed come
//!   from [`TaskSeed`], the SHA-256 of the task's chain id, block range and
//!   parameters. The task and job ids and the attempt are left out on
//!   purpose: a retry, and a new job over the same range with the same
//!   parameters, see the same bytes. "Secure" randomness is therefore
//!   predictable by anyone who knows the task, which is what was asked for.
//!
//! The byte streams are defined here, not by a library, so that they stay
//! the same across upgrades of wasmtime or of a random-number crate: block
//! `i` of a stream is `SHA-256(seed || label || i as u64 big-endian)`, bytes
//! are taken in order, and a `u64` is the next 8 bytes, little-endian.

use std::cell::Cell;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::HasData;
use wasmtime_wasi::p2::bindings::random::{insecure, insecure_seed, random};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

use crate::run::TaskInput;

/// How far a clock moves at each read: 1 ms, coarse enough that a few reads
/// look like a real clock's progress, fine enough that no plausible number
/// of reads overflows.
pub(crate) const CLOCK_STEP: Duration = Duration::from_millis(1);

/// Where the monotonic clock starts: one day, so that a guest subtracting a
/// timeout from "now" does not underflow.
pub(crate) const MONOTONIC_START: Duration = Duration::from_secs(86_400);

/// The domain tag of [`TaskSeed`]; a new derivation gets a new tag.
const SEED_TAG: &[u8] = b"trace:determinism:v1\0";

/// The largest `get-random-bytes` answer, as wasmtime-wasi's own bound.
const MAX_RANDOM_BYTES: u64 = wasmtime_wasi::random::DEFAULT_MAX_SIZE;

/// Where the wall clock of a deterministic run of `task` starts.
pub(crate) fn wall_clock_start(task: &TaskInput) -> Duration {
    Duration::from_secs(task.from_block)
}

/// The wall clock of a deterministic run: a fixed start, a step per read.
pub(crate) struct SteppedWallClock {
    start: Duration,
    reads: Cell<u32>,
}

impl SteppedWallClock {
    pub(crate) fn new(start: Duration) -> Self {
        Self {
            start,
            reads: Cell::new(0),
        }
    }
}

impl HostWallClock for SteppedWallClock {
    fn resolution(&self) -> Duration {
        CLOCK_STEP
    }

    fn now(&self) -> Duration {
        self.start + step(&self.reads)
    }
}

/// The monotonic clock of a deterministic run, in nanoseconds.
pub(crate) struct SteppedMonotonicClock {
    reads: Cell<u32>,
}

impl SteppedMonotonicClock {
    pub(crate) fn new() -> Self {
        Self {
            reads: Cell::new(0),
        }
    }
}

impl HostMonotonicClock for SteppedMonotonicClock {
    fn resolution(&self) -> u64 {
        CLOCK_STEP.as_nanos() as u64
    }

    fn now(&self) -> u64 {
        (MONOTONIC_START + step(&self.reads)).as_nanos() as u64
    }
}

/// The offset of this read from a clock's start, counting the read.
fn step(reads: &Cell<u32>) -> Duration {
    let n = reads.get();
    reads.set(n.saturating_add(1));
    CLOCK_STEP * n
}

/// The seed of a task's random streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskSeed([u8; 32]);

impl TaskSeed {
    /// The seed of `task`: SHA-256 of [`SEED_TAG`], then the chain id, the
    /// first and last block as `u64` big-endian, the length of the
    /// parameters as `u64` big-endian and the parameters' bytes.
    pub(crate) fn of(task: &TaskInput) -> Self {
        let mut hash = Sha256::new();
        hash.update(SEED_TAG);
        hash.update(task.chain_id.to_be_bytes());
        hash.update(task.from_block.to_be_bytes());
        hash.update(task.to_block.to_be_bytes());
        hash.update((task.params.len() as u64).to_be_bytes());
        hash.update(task.params.as_bytes());
        Self(hash.finalize().into())
    }
}

/// One labelled byte stream of a seed.
struct Stream {
    seed: TaskSeed,
    label: &'static [u8],
    block: [u8; 32],
    /// Bytes of `block` already handed out; 32 when it is spent.
    used: usize,
    next: u64,
}

impl Stream {
    fn new(seed: TaskSeed, label: &'static [u8]) -> Self {
        Self {
            seed,
            label,
            block: [0; 32],
            used: 32,
            next: 0,
        }
    }

    fn fill(&mut self, out: &mut [u8]) {
        let mut at = 0;
        while at < out.len() {
            if self.used == 32 {
                self.refill();
            }
            let n = (out.len() - at).min(32 - self.used);
            out[at..at + n].copy_from_slice(&self.block[self.used..self.used + n]);
            self.used += n;
            at += n;
        }
    }

    fn refill(&mut self) {
        let mut hash = Sha256::new();
        hash.update(self.seed.0);
        hash.update(self.label);
        hash.update(self.next.to_be_bytes());
        self.block = hash.finalize().into();
        self.next += 1;
        self.used = 0;
    }

    fn bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        if len > MAX_RANDOM_BYTES {
            wasmtime::bail!("requested len {len:?} exceeds limit {MAX_RANDOM_BYTES}");
        }
        let mut out = vec![0; len as usize];
        self.fill(&mut out);
        Ok(out)
    }

    fn u64(&mut self) -> u64 {
        let mut out = [0; 8];
        self.fill(&mut out);
        u64::from_le_bytes(out)
    }
}

/// The store's slice behind `wasi:random` in a deterministic run; a store
/// of a normal run holds none, and a call reaching it there traps.
pub(crate) struct SeededRandom {
    streams: Option<Streams>,
}

struct Streams {
    seed: TaskSeed,
    secure: Stream,
    insecure: Stream,
}

impl SeededRandom {
    /// The random streams of `seed`.
    pub(crate) fn new(seed: TaskSeed) -> Self {
        Self {
            streams: Some(Streams {
                seed,
                secure: Stream::new(seed, b"random"),
                insecure: Stream::new(seed, b"insecure"),
            }),
        }
    }

    /// No streams: for a store whose `wasi:random` is the host's own.
    pub(crate) fn none() -> Self {
        Self { streams: None }
    }

    fn streams(&mut self) -> wasmtime::Result<&mut Streams> {
        self.streams
            .as_mut()
            .ok_or_else(|| wasmtime::format_err!("this store has no seeded randomness"))
    }
}

impl random::Host for SeededRandom {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.streams()?.secure.bytes(len)
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        Ok(self.streams()?.secure.u64())
    }
}

impl insecure::Host for SeededRandom {
    fn get_insecure_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.streams()?.insecure.bytes(len)
    }

    fn get_insecure_random_u64(&mut self) -> wasmtime::Result<u64> {
        Ok(self.streams()?.insecure.u64())
    }
}

impl insecure_seed::Host for SeededRandom {
    /// The first 16 bytes of `SHA-256(seed || "insecure-seed")`, as two
    /// `u64` little-endian.
    fn insecure_seed(&mut self) -> wasmtime::Result<(u64, u64)> {
        let seed = self.streams()?.seed;
        let mut hash = Sha256::new();
        hash.update(seed.0);
        hash.update(b"insecure-seed");
        let digest: [u8; 32] = hash.finalize().into();
        let half = |i: usize| u64::from_le_bytes(digest[i..i + 8].try_into().expect("8 bytes"));
        Ok((half(0), half(8)))
    }
}

/// Projects the store onto its [`SeededRandom`] for the `wasi:random`
/// bindings of the deterministic linker.
pub(crate) struct HasSeededRandom;

impl HasData for HasSeededRandom {
    type Data<'a> = &'a mut SeededRandom;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(from: u64, params: &str) -> TaskInput {
        TaskInput {
            job_id: "j".into(),
            task_id: "t".into(),
            attempt: 1,
            chain_id: 1,
            from_block: from,
            to_block: from + 9,
            params: params.into(),
        }
    }

    #[test]
    fn the_seed_ignores_ids_and_attempt_but_not_range_or_params() {
        let base = task(100, "{}");
        let retry = TaskInput {
            job_id: "other job".into(),
            task_id: "other task".into(),
            attempt: 3,
            ..base.clone()
        };
        assert_eq!(TaskSeed::of(&base), TaskSeed::of(&retry));
        assert_ne!(TaskSeed::of(&base), TaskSeed::of(&task(101, "{}")));
        assert_ne!(TaskSeed::of(&base), TaskSeed::of(&task(100, "{\"a\":1}")));
    }

    #[test]
    fn a_stream_is_its_sha256_blocks_in_order_whatever_the_read_sizes() {
        let seed = TaskSeed::of(&task(100, "{}"));
        let block = |i: u64| -> Vec<u8> {
            let mut input = seed.0.to_vec();
            input.extend_from_slice(b"random");
            input.extend_from_slice(&i.to_be_bytes());
            Sha256::digest(&input).to_vec()
        };
        let expected: Vec<u8> = [block(0), block(1), block(2)].concat();

        let mut random = SeededRandom::new(seed);
        let mut got = random::Host::get_random_bytes(&mut random, 5).unwrap();
        got.extend(random::Host::get_random_bytes(&mut random, 40).unwrap());
        let word = random::Host::get_random_u64(&mut random).unwrap();
        got.extend(word.to_le_bytes());
        assert_eq!(got, expected[..53]);
    }

    #[test]
    fn the_clocks_start_fixed_and_step_per_read() {
        let wall = SteppedWallClock::new(Duration::from_secs(18_000_000));
        assert_eq!(wall.now(), Duration::from_secs(18_000_000));
        assert_eq!(wall.now(), Duration::from_secs(18_000_000) + CLOCK_STEP);
        let mono = SteppedMonotonicClock::new();
        assert_eq!(mono.now(), 86_400_000_000_000);
        assert_eq!(mono.now(), 86_400_001_000_000);
        assert_eq!(mono.resolution(), 1_000_000);
    }

    #[test]
    fn a_store_without_streams_traps_rather_than_answers() {
        let mut random = SeededRandom::none();
        assert!(random::Host::get_random_u64(&mut random).is_err());
    }
}
