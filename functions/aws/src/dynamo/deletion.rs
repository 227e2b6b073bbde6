//! Deleting an account so that nothing of it remains, even while other
//! requests race the deletion, and so that a deletion cut short resumes.
//!
//! 1. The account item is marked `deleting` (conditional on its id). From then
//!    on no login key, device or device write can be added: each of those
//!    writes is a transaction that checks the mark.
//! 2. The caller deletes the devices (and their endpoints) it lists now, with
//!    a strongly consistent read: it sees every device saved before the mark.
//!    Token creation checks its device in the same transaction, so once the
//!    devices are gone no token can appear.
//! 3. [`DynamoStore::remove_account_items`] reads the account's partition
//!    (consistent) and deletes its tokens and counters, then its API keys,
//!    then the email claim and the account item, each conditional on the
//!    account id — an old key of a deleted account can never delete the next
//!    owner of the username. API keys go before the account item, so a key
//!    that works always belongs to an account that exists; a deletion cut
//!    short before them is resumed by the client's retry (its key still
//!    works), and one cut short after them by the next sign-up or login of
//!    that username, which finds the mark.

use aws_sdk_dynamodb::types::AttributeValue;
use push_core::ports::PortError;

use super::{key, s, DynamoStore, Item};
use crate::errors::port_error;
use crate::keys;

impl DynamoStore {
    /// Step 1. `false` when the username no longer names account `account_id`.
    pub(crate) async fn mark_account_deleting(
        &self,
        account_id: &str,
        username: &str,
    ) -> Result<bool, PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::account(&self.ns, username))))
            .update_expression("SET deleting = :yes")
            .condition_expression("id = :id")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":id", s(account_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if super::conditional_failed(&e) => Ok(false),
            Err(e) => Err(port_error("UpdateItem", e)),
        }
    }

    /// Step 3; fails (to be retried) if a device is still there.
    pub(crate) async fn remove_account_items(
        &self,
        account_id: &str,
        username: &str,
        email: &str,
    ) -> Result<(), PortError> {
        let partition = self.query_partition(keys::owner(account_id), "").await?;
        let sort_key = |item: &Item| match item.get(keys::SK) {
            Some(AttributeValue::S(sk)) => sk.clone(),
            _ => String::new(),
        };
        if partition
            .iter()
            .any(|i| sort_key(i).starts_with(keys::DEVICE_PREFIX))
        {
            // Another request's deletion of this account is under way (or
            // one of ours failed): wait for it, then finish.
            return Err(PortError::Conflict(
                "account deletion: a device is still being deleted".into(),
            ));
        }
        let (api_keys, rest): (Vec<Item>, Vec<Item>) = partition
            .into_iter()
            .partition(|i| sort_key(i).starts_with(keys::KEY_PREFIX));
        let (tokens, counters): (Vec<Item>, Vec<Item>) = rest
            .into_iter()
            .partition(|i| sort_key(i).starts_with(keys::TOKEN_PREFIX));
        let mut doomed = super::tokens::token_keys(&self.ns, &tokens);
        doomed.extend(counters.iter().map(DynamoStore::item_key));
        self.delete_all(doomed).await?;

        let mut key_items = Vec::new();
        for owned in &api_keys {
            if let Some(AttributeValue::S(hash)) = owned.get("key_hash") {
                key_items.push(key(keys::api_key(&self.ns, hash)));
            }
            key_items.push(DynamoStore::item_key(owned));
        }
        self.delete_all(key_items).await?;

        if !email.is_empty() {
            self.delete_if(
                key(keys::email(&self.ns, email)),
                "account_id = :id",
                account_id,
            )
            .await?;
        }
        self.delete_if(
            key(keys::account(&self.ns, username)),
            "id = :id",
            account_id,
        )
        .await
    }

    /// Deletes an item if `condition` (on `:id`) holds; it not holding is fine.
    async fn delete_if(&self, item: Item, condition: &str, id: &str) -> Result<(), PortError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(item))
            .condition_expression(condition)
            .expression_attribute_values(":id", s(id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if super::conditional_failed(&e) => Ok(()),
            Err(e) => Err(port_error("DeleteItem", e)),
        }
    }
}
