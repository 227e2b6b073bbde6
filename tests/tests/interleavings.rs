//! Races with every AWS call of the emulator taking a random 0–120 ms
//! (its latency switch), so concurrent requests overlap in every order
//! rather than queueing at its single lock: the interleavings a serial
//! emulator hides and AWS produces. On an emulator and router of this
//! test's own.

// Black-box: needs the local stack (`make test` turns this feature on).
#![cfg(feature = "stack")]

// This binary runs one of the shared races.
#[allow(dead_code)]
#[path = "races/mod.rs"]
mod races;

use api_tests::{Emulator, Router};
use races::*;

/// Tests that start a router and an emulator of their own: `make
/// sam-local-test` leaves them out.
mod own_stack {
    use super::*;

    /// The scenario of the issue on read-modify-writes: on code that wrote
    /// a device back whole after its SNS calls, the device named one push
    /// token while its endpoint carried another (round 0 already, seen with
    /// this latency), and tokens stayed claimed by deleted devices.
    #[tokio::test]
    async fn with_random_latency_renames_racing_re_registrations_leave_the_phone_reachable() {
        let emulator = Emulator::start(&[
            ("EMULATOR_DYNAMODB_LATENCY_MS", "0+120"),
            ("EMULATOR_SNS_LATENCY_MS", "0+120"),
        ])
        .await;
        let url = emulator.url();
        let router = Router::start(&[("AWS_ENDPOINT_URL", url.as_str())]).await;
        // This test's own reads of the emulator go to its emulator.
        std::env::set_var("AWS_ENDPOINT_URL", &url);
        renames_racing_re_registrations(&router.api, Model::Conflicts).await;
    }
}
