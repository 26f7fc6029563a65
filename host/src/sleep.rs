//! `wasi:clocks/monotonic-clock` with sleeps that end by the call's deadline.
//!
//! A guest that sleeps (`std::thread::sleep`, a `poll` on a clock pollable)
//! blocks in a host call, where epoch interruption cannot reach it: without
//! a bound, `sleep(Duration::MAX)` would hold its worker thread and its
//! lease forever. Every pollable this interface hands out is therefore cut
//! to end no later than the call's deadline; when it does, the guest resumes
//! and the next epoch check interrupts it as if it had spun. A sleep shorter
//! than what is left of the deadline is unchanged.

use std::time::Instant;

use wasmtime::component::{HasData, Resource};
use wasmtime_wasi::clocks::WasiClocksCtxView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::{
    self, Duration as WasiDuration, Instant as WasiInstant,
};

/// The monotonic clock of one store, with the instant its call must end by.
pub(crate) struct CappedClock<'a> {
    pub(crate) clocks: WasiClocksCtxView<'a>,
    pub(crate) ends: Instant,
}

impl CappedClock<'_> {
    /// `asked` nanoseconds, cut to what is left before the deadline.
    fn capped(&self, asked: u64) -> u64 {
        let left = self.ends.saturating_duration_since(Instant::now());
        asked.min(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// Projects the store onto its [`CappedClock`] for the generated bindings.
pub(crate) struct HasCappedClock;

impl HasData for HasCappedClock {
    type Data<'a> = CappedClock<'a>;
}

impl monotonic_clock::Host for CappedClock<'_> {
    fn now(&mut self) -> wasmtime::Result<WasiInstant> {
        self.clocks.now()
    }

    fn resolution(&mut self) -> wasmtime::Result<WasiInstant> {
        self.clocks.resolution()
    }

    fn subscribe_instant(&mut self, when: WasiInstant) -> wasmtime::Result<Resource<DynPollable>> {
        let now = self.clocks.now()?;
        let wait = self.capped(when.saturating_sub(now));
        self.clocks.subscribe_duration(wait)
    }

    fn subscribe_duration(
        &mut self,
        duration: WasiDuration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let wait = self.capped(duration);
        self.clocks.subscribe_duration(wait)
    }
}
