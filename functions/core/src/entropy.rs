//! Randomness for identifiers, secrets and retry jitter, from one place.
//!
//! Normally the operating system's secure source (jitter: the thread's
//! generator). With the `testing` feature a test may install a seeded
//! generator on its thread ([`seed_thread`]): everything drawn on that
//! thread then comes from it, so a seeded run (the explorer, `infra/explore`)
//! replays exactly.

use std::ops::RangeInclusive;

use rand::rngs::OsRng;
use rand::{Rng, RngCore};

#[cfg(any(test, feature = "testing"))]
mod seeded {
    use std::cell::RefCell;

    use rand::rngs::StdRng;

    thread_local! {
        pub(super) static RNG: RefCell<Option<StdRng>> = const { RefCell::new(None) };
    }

    /// Runs `f` on the thread's seeded generator, if one is installed.
    pub(super) fn with<T>(f: impl FnOnce(&mut StdRng) -> T) -> Option<T> {
        RNG.with(|cell| cell.borrow_mut().as_mut().map(f))
    }
}

/// From now on, randomness drawn on this thread comes from a generator
/// seeded with `seed` (until [`unseed_thread`]).
#[cfg(any(test, feature = "testing"))]
pub fn seed_thread(seed: u64) {
    use rand::SeedableRng;
    seeded::RNG.with(|cell| *cell.borrow_mut() = Some(rand::rngs::StdRng::seed_from_u64(seed)));
}

/// Back to the operating system's source on this thread.
#[cfg(any(test, feature = "testing"))]
pub fn unseed_thread() {
    seeded::RNG.with(|cell| *cell.borrow_mut() = None);
}

/// Fills `buf` with random bytes (secure unless a test seeded the thread).
pub fn fill_bytes(buf: &mut [u8]) {
    #[cfg(any(test, feature = "testing"))]
    if seeded::with(|rng| rng.fill_bytes(buf)).is_some() {
        return;
    }
    OsRng.fill_bytes(buf);
}

/// A random (version 4) UUID.
pub fn uuid_v4() -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// A pause length drawn uniformly from `range` (milliseconds), for the
/// full jitter of retries.
pub fn jitter_ms(range: RangeInclusive<u64>) -> u64 {
    #[cfg(any(test, feature = "testing"))]
    if let Some(ms) = seeded::with(|rng| rng.gen_range(range.clone())) {
        return ms;
    }
    rand::thread_rng().gen_range(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_thread_draws_the_same_values_again() {
        seed_thread(7);
        let first = (uuid_v4(), jitter_ms(1..=1000));
        seed_thread(7);
        let again = (uuid_v4(), jitter_ms(1..=1000));
        unseed_thread();
        assert_eq!(first, again);
        assert_eq!(first.0.get_version_num(), 4);
        assert_ne!(uuid_v4(), first.0, "unseeded: from the OS again");
    }
}
