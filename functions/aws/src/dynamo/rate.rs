//! The limits held on items: sliding logs (knocks, failed logins) and
//! fixed-window counters.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
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
        let counter = match limit_key {
            LimitKey::TokenCreations { account_id } => keys::token_counter(account_id, window),
            LimitKey::Signups => keys::signup_counter(window),
            LimitKey::SignupsFrom { source } => keys::signup_source_counter(source, window),
            LimitKey::DeviceRegistrations { account_id } => {
                keys::device_registration_counter(account_id, window)
            }
        };
        let counted = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(counter)))
            .update_expression("ADD #hits :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#hits) OR #hits < :max")
            .expression_attribute_names("#hits", limits::COUNT)
            .expression_attribute_names("#ttl", keys::TTL)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":max", AttributeValue::N(limit.max.to_string()))
            .expression_attribute_values(
                ":ttl",
                AttributeValue::N(limits::window_expiry(limit, window).to_string()),
            )
            .send()
            .await;
        match counted {
            Ok(_) => Ok(Admission::Admitted),
            Err(e) if conditional_failed(&e) => Ok(Admission::Limited {
                retry_after_seconds,
            }),
            Err(e) => Err(port_error("UpdateItem", e)),
        }
    }
    async fn daily_salt(&self, day: i64) -> Result<String, PortError> {
        self.salt_of_day(day).await
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
        let mut condition = limits::log_has_room(limit.max);
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
        for (name, value) in limits::log_values(limit, now_us) {
            update = update.expression_attribute_values(name, value);
        }
        match update.send().await {
            Ok(out) => Ok(out.attributes.map_or(LogHit::Missing, LogHit::Admitted)),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                    Ok(c.item.clone().map_or(LogHit::Missing, LogHit::Refused))
                }
                _ => Err(port_error("UpdateItem", e)),
            },
        }
    }
}
