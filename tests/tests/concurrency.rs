//! Races of concurrent clients under the emulator's model of DynamoDB's
//! transaction conflicts (on in `make test`): with it alone, every outcome is
//! exactly what a serial run promises — retries absorb the conflicts.

// Black-box: needs the local stack (`make test` turns this feature on).
#![cfg(feature = "stack")]

#[path = "races/mod.rs"]
mod races;

use api_tests::Api;
use races::*;
use tokio::sync::Mutex;

/// One race at a time: each scenario's concurrency is its own, not the sum
/// of all of them queueing at the emulator's single lock (where queueing
/// already counts as "in flight", stricter than DynamoDB).
static ONE_RACE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

#[tokio::test]
async fn fifty_same_username_signups_make_one_account_and_49_logins() {
    let race = ONE_RACE_AT_A_TIME.lock().await;
    signups_of_one_username(&Api::new(), Model::Conflicts).await;
    drop(race);
}

#[tokio::test]
async fn twenty_concurrent_token_creations_on_one_device_all_succeed() {
    let race = ONE_RACE_AT_A_TIME.lock().await;
    token_creations_on_one_device(&Api::new(), Model::Conflicts).await;
    drop(race);
}

#[tokio::test]
async fn concurrent_logins_right_and_wrong_get_their_own_answers() {
    let race = ONE_RACE_AT_A_TIME.lock().await;
    logins_right_and_wrong(&Api::new(), Model::Conflicts).await;
    drop(race);
}

#[tokio::test]
async fn a_device_deleted_while_tokens_are_created_leaves_no_token() {
    let race = ONE_RACE_AT_A_TIME.lock().await;
    device_deletion_racing_token_creation(&Api::new(), Model::Conflicts).await;
    drop(race);
}

#[tokio::test]
async fn an_account_deleted_while_logins_and_registrations_race_leaves_nothing() {
    let race = ONE_RACE_AT_A_TIME.lock().await;
    account_deletion_racing_logins_and_registrations(&Api::new(), Model::Conflicts).await;
    drop(race);
}

#[tokio::test]
async fn a_push_token_moving_while_its_old_device_is_deleted_still_reaches_the_phone() {
    let race = ONE_RACE_AT_A_TIME.lock().await;
    push_token_moving_while_its_device_is_deleted(&Api::new(), Model::Conflicts).await;
    drop(race);
}

#[tokio::test]
async fn renames_racing_re_registrations_leave_the_phone_reachable_and_every_token_free() {
    let race = ONE_RACE_AT_A_TIME.lock().await;
    renames_racing_re_registrations(&Api::new(), Model::Conflicts).await;
    drop(race);
}
