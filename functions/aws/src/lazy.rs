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
        let this = self.clone();
        std::thread::spawn(move || {
            LazyLock::force(&this.0);
        });
    }
}

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
