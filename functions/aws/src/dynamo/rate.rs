//! The limits held on items: sliding logs (knocks, failed logins) and
//! fixed-window counters.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use push_core::ports::{Admission, LimitKey, LimitStore, PortError};
use push_core::time::Micros;
use push_core::Limit;

use super::*;
use crate::errors::port_error;
use crate::{keys, limits};

#[async_trait]
impl LimitStore for DynamoStore {
    async fn count_hit(
        &self,
        limit_key: &LimitKey,
        now_us: Micros,
        limit: Limit,
    ) -> Result<Admission, PortError> {
        if limit.max == 0 {
            return Ok(Admission::Admitted);
        }
        let (window, retry_after_seconds) = limit.window_at(now_us);
        // This call's own id, in the update and its condition: the SDK's
        // retry of an applied update sends the same and fails its condition.
        let call = limits::counting_call_id();
        let mut names = counter_names();
        names.insert("#ids".into(), limits::COUNTED_BY.into());
        let mut values = counter_values(limit, window);
        values.insert(":id".into(), AttributeValue::Ss(vec![call.clone()]));
        values.insert(":idv".into(), AttributeValue::S(call.clone()));
        let counted = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(counter_key(&self.ns, limit_key, window))))
            .update_expression(COUNT_HIT_ONCE)
            .condition_expression(HAS_ROOM_ONCE)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match counted {
            Ok(_) => Ok(Admission::Admitted),
            Err(e) => match e.as_service_error() {
                // Our own earlier attempt counted it: once is enough.
                Some(UpdateItemError::ConditionalCheckFailedException(c))
                    if c.item
                        .as_ref()
                        .is_some_and(|i| limits::counted_by(i, &call)) =>
                {
                    Ok(Admission::Admitted)
                }
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                    Ok(Admission::Limited {
                        retry_after_seconds,
                    })
                }
                _ => Err(port_error("UpdateItem", e)),
            },
        }
    }
}

/// The outcome of logging a hit on an item's sliding log.
pub(super) enum LogHit {
    /// Logged; the item as it now is.
    Admitted(Item),
    /// The log is full (or the extra condition failed); the item as it is.
    Refused(Item),
    /// No such item.
    Missing,
}

/// `Retry-After` for a refused hit, from the refused call's copy of the item.
pub(super) fn refused_for(item: &Item, now_us: Micros, limit: Limit) -> u64 {
    limit
        .blocked_by_log(&limits::read_log(item), now_us)
        .unwrap_or(1)
}

impl DynamoStore {
    /// Logs a hit at `now_us` on the sliding log of an existing item, if the
    /// log has room and `extra` (a condition that may use `:now`) holds: one
    /// conditional `UpdateItem`, whose failure returns the item as it was.
    pub(super) async fn log_hit(
        &self,
        item_key: Item,
        extra: Option<&str>,
        now_us: Micros,
        limit: Limit,
    ) -> Result<LogHit, PortError> {
        // The hit's own entry, absent from the log: the SDK's retry of an
        // applied update fails its condition instead of logging it twice.
        let entry = limits::log_entry(now_us);
        let mut condition = format!(
            "{} AND {}",
            limits::log_has_room(limit.max),
            limits::log_lacks_entry(limit.max)
        );
        if let Some(extra) = extra {
            condition = format!("{condition} AND {extra}");
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item_key))
            .update_expression(limits::log_push(limit.max))
            .condition_expression(condition)
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (name, value) in limits::log_values(limit, now_us, &entry) {
            update = update.expression_attribute_values(name, value);
        }
        match update.send().await {
            Ok(out) => Ok(out.attributes.map_or(LogHit::Missing, LogHit::Admitted)),
            Err(e) => match e.as_service_error() {
                // Logged by our own earlier attempt, whose answer was lost.
                Some(UpdateItemError::ConditionalCheckFailedException(c))
                    if c.item
                        .as_ref()
                        .is_some_and(|i| limits::log_holds(i, &entry)) =>
                {
                    Ok(c.item.clone().map_or(LogHit::Missing, LogHit::Admitted))
                }
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                    Ok(c.item.clone().map_or(LogHit::Missing, LogHit::Refused))
                }
                _ => Err(port_error("UpdateItem", e)),
            },
        }
    }
}

/// A fixed-window counter: one more hit, while below the maximum.
const COUNT_HIT: &str = "ADD #hits :one SET #ttl = :ttl";
const HAS_ROOM: &str = "attribute_not_exists(#hits) OR #hits < :max";
/// The same as a single call: it also adds its id `:id` to the set of
/// counting calls, on condition that the set lacks it (`:idv`).
const COUNT_HIT_ONCE: &str = "ADD #hits :one, #ids :id SET #ttl = :ttl";
const HAS_ROOM_ONCE: &str =
    "(attribute_not_exists(#hits) OR #hits < :max) AND NOT contains(#ids, :idv)";

fn counter_key(ns: &str, limit_key: &LimitKey, window: i64) -> (String, String) {
    match limit_key {
        LimitKey::TokenCreations { account_id } => keys::token_counter(account_id, window),
        LimitKey::Signups => keys::signup_counter(ns, window),
        LimitKey::SignupsFrom { source } => keys::signup_source_counter(ns, source, window),
        LimitKey::DeviceRegistrations { account_id } => {
            keys::device_registration_counter(account_id, window)
        }
    }
}

fn counter_names() -> std::collections::HashMap<String, String> {
    [("#hits", limits::COUNT), ("#ttl", keys::TTL)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn counter_values(limit: Limit, window: i64) -> Item {
    Item::from([
        (":one".to_string(), AttributeValue::N("1".into())),
        (":max".to_string(), AttributeValue::N(limit.max.to_string())),
        (
            ":ttl".to_string(),
            AttributeValue::N(limits::window_expiry(limit, window).to_string()),
        ),
    ])
}

impl DynamoStore {
    /// A hit on a fixed-window counter as a slot of a transaction, so that
    /// it is counted only if, and exactly when, what it counts is written —
    /// and leaves no counter behind for an account deleted meanwhile.
    /// `None` when the limit is off.
    pub(super) fn counter_slot(
        &self,
        limit_key: &LimitKey,
        now_us: Micros,
        limit: Limit,
    ) -> Result<Option<TransactWriteItem>, PortError> {
        if limit.max == 0 {
            return Ok(None);
        }
        let (window, _) = limit.window_at(now_us);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(counter_key(&self.ns, limit_key, window))))
            .update_expression(COUNT_HIT)
            .condition_expression(HAS_ROOM)
            .set_expression_attribute_names(Some(counter_names()))
            .set_expression_attribute_values(Some(counter_values(limit, window)))
            .build()
            .map_err(build_err)?;
        Ok(Some(TransactWriteItem::builder().update(update).build()))
    }
}
