//! Races of concurrent clients under the emulator's model of DynamoDB's
//! transaction conflicts (on in `make test`): with it alone, every outcome is
//! exactly what a serial run promises — retries absorb the conflicts.

#[path = "races/mod.rs"]
mod races;

use api_tests::Api;
use races::*;

#[tokio::test]
async fn fifty_same_username_signups_make_one_account_and_49_logins() {
    signups_of_one_username(&Api::new(), Model::Conflicts).await;
}

#[tokio::test]
async fn twenty_concurrent_token_creations_on_one_device_all_succeed() {
    token_creations_on_one_device(&Api::new(), Model::Conflicts).await;
}

#[tokio::test]
async fn concurrent_logins_right_and_wrong_get_their_own_answers() {
    logins_right_and_wrong(&Api::new(), Model::Conflicts).await;
}

#[tokio::test]
async fn a_device_deleted_while_tokens_are_created_leaves_no_token() {
    device_deletion_racing_token_creation(&Api::new(), Model::Conflicts).await;
}

#[tokio::test]
async fn an_account_deleted_while_logins_and_registrations_race_leaves_nothing() {
    account_deletion_racing_logins_and_registrations(&Api::new(), Model::Conflicts).await;
}

#[tokio::test]
async fn a_push_token_moving_while_its_old_device_is_deleted_still_reaches_the_phone() {
    push_token_moving_while_its_device_is_deleted(&Api::new(), Model::Conflicts).await;
}
