//! SDK clients built when first used, not at start-up: building one costs a
//! cold start a few tenths of a millisecond (its TLS roots, its runtime
//! plugins; docs/BENCHMARKS.md, "Where init goes"), and a request that
//! needs no AWS call (`pubsub/`, a `401`) needs none. [`LazyClient::warm`]
//! builds it on another thread meanwhile, so that the first request that
//! does need it finds it built, or nearly.

use std::ops::Deref;
use std::sync::{Arc, LazyLock};

type Build<C> = Box<dyn FnOnce() -> C + Send>;

/// A client built at its first use, once, whichever thread gets there first.
pub struct LazyClient<C>(Arc<LazyLock<C, Build<C>>>);

impl<C> Clone for LazyClient<C> {
    fn clone(&self) -> Self {
        LazyClient(self.0.clone())
    }
}

impl<C: Send + Sync + 'static> LazyClient<C> {
    /// The client `build` makes, when first needed.
    pub fn new(build: impl FnOnce() -> C + Send + 'static) -> Self {
        LazyClient(Arc::new(LazyLock::new(Box::new(build))))
    }

    /// A client built already.
    pub fn ready(client: C) -> Self {
        Self::new(move || client)
    }

    /// Builds it now, on a thread of its own, unless it is built already.
    pub fn warm(&self) {
        warm_in_turn(vec![self.force_later()]);
    }

    /// What builds it, unless it is built already, to run elsewhere.
    pub fn force_later(&self) -> Box<dyn FnOnce() + Send> {
        let this = self.clone();
        Box::new(move || {
            LazyLock::force(&this.0);
        })
    }
}

/// Builds clients in turn, in the order given, on one thread of their own
/// at the lowest priority: one thread rather than one each, as a second
/// thread costs a start-up its own stack and allocator arena, and the
/// lowest priority so that the start-up and a first request that needs no
/// client get the CPU first (docs/BENCHMARKS.md, "Cold start"). A request
/// that needs a client waits for it, and then leaves the CPU to this thread.
pub fn warm_in_turn(builds: Vec<Box<dyn FnOnce() + Send>>) {
    std::thread::spawn(move || {
        lowest_priority();
        for build in builds {
            build();
        }
    });
}

/// This thread at the lowest priority (`nice` 19): while another thread of
/// the process can run, it gets the CPU; a thread waiting for this one's
/// client does not run, and leaves the CPU to it.
#[cfg(target_os = "linux")]
fn lowest_priority() {
    let tid = rustix::thread::gettid();
    let _ = rustix::process::setpriority_process(Some(tid), 19);
}

#[cfg(not(target_os = "linux"))]
fn lowest_priority() {}

impl<C> Deref for LazyClient<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn built_once_at_first_use_whoever_asks() {
        static BUILT: AtomicUsize = AtomicUsize::new(0);
        let client = LazyClient::new(|| {
            BUILT.fetch_add(1, Ordering::SeqCst);
            String::from("client")
        });
        assert_eq!(BUILT.load(Ordering::SeqCst), 0, "not at construction");
        let copy = client.clone();
        copy.warm();
        assert_eq!(client.len(), 6);
        assert_eq!(copy.as_str(), "client");
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(BUILT.load(Ordering::SeqCst), 1);
    }
}
