//! The store's caps and counts: an account's device count (kept by the
//! device transactions), its API keys beyond the cap, its live tokens.

use aws_sdk_dynamodb::types::{AttributeValue, Select, TransactWriteItem, Update};
use push_core::ports::PortError;
use push_core::time::Micros;

use super::{build_err, key, s, DynamoStore, Item};
use crate::errors::port_error;
use crate::keys;

impl DynamoStore {
    /// The transaction slot that adds `delta` to an account's device count;
    /// with `cap`, on condition that the count is below it.
    pub(crate) fn count_devices(
        &self,
        account_id: &str,
        delta: i64,
        cap: Option<u32>,
    ) -> Result<TransactWriteItem, PortError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::device_count(account_id))))
            .update_expression("ADD n :delta")
            .expression_attribute_values(":delta", AttributeValue::N(delta.to_string()));
        if let Some(cap) = cap {
            update = update
                .condition_expression("attribute_not_exists(n) OR n < :cap")
                .expression_attribute_values(":cap", AttributeValue::N(cap.to_string()));
        }
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(build_err)?)
            .build())
    }

    pub(crate) async fn revoke_oldest_keys(
        &self,
        account_id: &str,
        keep: u32,
    ) -> Result<usize, PortError> {
        let mut owned = self
            .query_partition(keys::owner(account_id), keys::KEY_PREFIX)
            .await?;
        let excess = owned.len().saturating_sub(keep as usize);
        if excess == 0 {
            return Ok(0);
        }
        let created = |item: &Item| match item.get("created_us") {
            Some(AttributeValue::N(n)) => n.parse::<Micros>().unwrap_or(0),
            _ => 0,
        };
        owned.sort_by_key(created);
        let mut doomed = Vec::new();
        for item in &owned[..excess] {
            if let Some(AttributeValue::S(hash)) = item.get("key_hash") {
                doomed.push(key(keys::api_key(&self.ns, hash)));
            }
            doomed.push(DynamoStore::item_key(item));
        }
        self.delete_all(doomed).await?;
        Ok(excess)
    }

    pub(crate) async fn live_tokens(
        &self,
        owner: &str,
        now_us: Micros,
    ) -> Result<usize, PortError> {
        let mut count = 0usize;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .filter_expression("expires_us > :now")
                .expression_attribute_values(":pk", s(keys::owner(owner)))
                .expression_attribute_values(":prefix", s(keys::TOKEN_PREFIX))
                .expression_attribute_values(":now", AttributeValue::N(now_us.to_string()))
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| port_error("Query", e))?;
            count += usize::try_from(out.count).unwrap_or(0);
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(count),
            }
        }
    }
}
