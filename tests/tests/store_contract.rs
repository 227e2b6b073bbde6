//! The store contract of `push_core::testing::contract` against the DynamoDB
//! store, through the emulator (with its conflict model): the same scenarios
//! the memory store passes in push-core's unit tests.

// Black-box: needs the local stack (`make test` turns this feature on).
#![cfg(feature = "stack")]

use push_aws::DynamoStore;

#[tokio::test]
async fn the_dynamodb_store_keeps_the_store_contract() {
    let client = api_tests::dynamodb().await;
    let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| "chatsecure-push-local".into());
    let store = DynamoStore::new(client, table);
    let failures = push_core::testing::contract::run(&store).await;
    assert!(failures.is_empty(), "{failures:#?}");
}
