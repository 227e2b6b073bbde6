//! The races of `concurrency.rs` on an emulator of this test's own that also
//! injects throttling and internal errors into DynamoDB and SNS, before the
//! call is applied (and, under `make test-faults`, after it, the answer
//! lost): `503` with
//! `Retry-After` at worst, never `500`, and afterwards nothing but what the
//! successful answers promised. One test in this binary: it points the
//! process's own AWS reads at its emulator.

// Black-box: needs the local stack (`make test` turns this feature on).
#![cfg(feature = "stack")]

#[path = "races/mod.rs"]
mod races;

use api_tests::{Emulator, Router};
use races::*;

/// Tests that start a router (and sometimes an emulator) of their own, with
/// settings or faults of their own: they exercise the handlers in-process, not
/// through the shared stack, so `make sam-local-test` leaves them out.
mod own_stack {
    use super::*;

    /// The same races on an emulator of their own that also injects throttling
    /// and internal errors into DynamoDB and SNS: never a `500`.
    #[tokio::test]
    async fn with_injected_faults_the_races_answer_503_at_worst_never_500() {
        // Refused before they are applied; and applied with the answer
        // lost where the caller asks for it (`make test-faults`: 5 %).
        let applied = std::env::var("EMULATOR_APPLIED_FAULT_RATE").unwrap_or_else(|_| "0".into());
        let emulator = Emulator::start(&[
            ("EMULATOR_FAULT_RATE", "0.05"),
            ("EMULATOR_APPLIED_FAULT_RATE", applied.as_str()),
        ])
        .await;
        let url = emulator.url();
        let router = Router::start(&[("AWS_ENDPOINT_URL", url.as_str())]).await;
        let api = &router.api;
        // This test's own reads of the emulator go to its emulator.
        std::env::set_var("AWS_ENDPOINT_URL", &url);
        signups_of_one_username(api, Model::Faults).await;
        token_creations_on_one_device(api, Model::Faults).await;
        logins_right_and_wrong(api, Model::Faults).await;
        device_deletion_racing_token_creation(api, Model::Faults).await;
        account_deletion_racing_logins_and_registrations(api, Model::Faults).await;
        push_token_moving_while_its_device_is_deleted(api, Model::Faults).await;
        renames_racing_re_registrations(api, Model::Faults).await;
    }
}
