//! In-memory implementations of the ports, for testing the rules in-process
//! (the `testing` feature; on in this crate's own unit tests). They keep the
//! promises the traits document — the same conditions the DynamoDB store puts
//! on its writes — and let a test inject the failures AWS can answer.

mod accounts;
pub mod contract;
mod http;
pub mod interleavings;
mod interpose;
mod push;
mod snapshot;
mod store;
mod tokens;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

pub use http::{answer, request};
pub use interpose::{Interleaved, Interposed, Script};
pub use push::{Endpoint, MemoryPush, SimulatedPublish};
pub use snapshot::StoreSnapshot;
pub use store::MemoryStore;

use crate::ports::{Clock, PortError};
use crate::time::Micros;
use crate::{Deps, Settings};

/// A failure a fake answers instead of doing the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Throttling or an outage (`PortError::Unavailable`).
    Unavailable,
    /// A DynamoDB transaction conflict (`PortError::Conflict`).
    Conflict,
}

impl Fault {
    fn error(self, call: &str) -> PortError {
        match self {
            Fault::Unavailable => PortError::Unavailable(format!("{call}: injected")),
            Fault::Conflict => PortError::Conflict(format!("{call}: injected")),
        }
    }
}

/// Failures queued per call name (the port method's name), answered in order.
#[derive(Default)]
pub(crate) struct Faults(Mutex<HashMap<String, VecDeque<Fault>>>);

impl Faults {
    pub(crate) fn push(&self, call: &str, fault: Fault, times: usize) {
        let mut faults = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        faults
            .entry(call.to_string())
            .or_default()
            .extend(std::iter::repeat_n(fault, times));
    }
    pub(crate) fn check(&self, call: &str) -> Result<(), PortError> {
        let mut faults = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match faults.get_mut(call).and_then(VecDeque::pop_front) {
            Some(fault) => Err(fault.error(call)),
            None => Ok(()),
        }
    }
}

/// A clock that moves only when told.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn at(now_us: Micros) -> Self {
        ManualClock(AtomicI64::new(now_us))
    }
    pub fn advance(&self, us: Micros) {
        self.0.fetch_add(us, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_us(&self) -> Micros {
        self.0.load(Ordering::SeqCst)
    }
}

/// Everything an operation needs, in memory, with handles on each part.
pub struct World {
    pub store: Arc<MemoryStore>,
    pub push: Arc<MemoryPush>,
    pub clock: Arc<ManualClock>,
    pub deps: Deps,
}

impl World {
    /// Default settings, both kinds of device, the clock at 2026-01-01.
    pub fn new() -> Self {
        Self::with(Settings::default(), MemoryPush::default())
    }

    pub fn with(settings: Settings, push: MemoryPush) -> Self {
        let store = Arc::new(MemoryStore::default());
        let push = Arc::new(push);
        let clock = Arc::new(ManualClock::at(1_767_225_600_000_000));
        let deps = Deps {
            store: store.clone(),
            push: push.clone(),
            clock: clock.clone(),
            source_keys: store.clone(),
            settings,
        };
        World {
            store,
            push,
            clock,
            deps,
        }
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}
