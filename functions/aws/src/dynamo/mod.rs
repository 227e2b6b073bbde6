//! [`Store`] on one DynamoDB table. Every uniqueness rule is a conditional
//! write or a transaction; every read on a request path is a `GetItem` or a
//! `Query`, never a `Scan`.
//!
//! Split by aggregate: [`accounts`], [`devices`], [`tokens`], [`rate`]
//! (limit logs and counters), [`counts`] (caps) and [`deletion`]; this file
//! holds the table's plumbing they share.

mod accounts;
mod counts;
mod deletion;
mod device_items;
mod device_save;
mod devices;
mod rate;
#[cfg(feature = "testing")]
pub mod snapshot;
mod tokens;

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, DeleteRequest, Put, TransactWriteItem, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use push_core::ports::PortError;
use serde::{Deserialize, Serialize};

use crate::errors::port_error;
use crate::keys;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Real DynamoDB rejects a `BatchWriteItem` of more than 25 requests.
const BATCH_LIMIT: usize = 25;

pub struct DynamoStore {
    pub(crate) client: crate::lazy::LazyClient<Client>,
    pub(crate) table: String,
    /// The app's key namespace (see `keys`): `""` for the default app.
    pub(crate) ns: String,
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn key((pk, sk): (String, String)) -> Item {
    HashMap::from([(keys::PK.to_string(), s(pk)), (keys::SK.to_string(), s(sk))])
}

pub(crate) fn to_item<T: Serialize>(value: &T) -> Result<Item, PortError> {
    serde_dynamo::to_item(value).map_err(|e| PortError::Internal(format!("item encoding: {e}")))
}

pub(crate) fn from_item<T: for<'de> Deserialize<'de>>(item: Item) -> Result<T, PortError> {
    serde_dynamo::from_item(item).map_err(|e| PortError::Internal(format!("item decoding: {e}")))
}

/// Sends a conditional `UpdateItem`: `false` when its condition failed.
pub(crate) async fn conditional_update(
    update: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
) -> Result<bool, PortError> {
    match update.send().await {
        Ok(_) => Ok(true),
        Err(e) if conditional_failed(&e) => Ok(false),
        Err(e) => Err(port_error("UpdateItem", e)),
    }
}

pub(crate) fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> PortError {
    PortError::Internal(format!("request building: {e}"))
}

/// The cancellation reason codes of a cancelled transaction, by item index;
/// `None` when the error is not a cancellation, or a cancellation for
/// throttling (DynamoDB reports a throttled transaction so: then nothing
/// was decided, and [`cancelled_error`] makes it `Unavailable`).
fn cancellation_codes<R>(err: &SdkError<TransactWriteItemsError, R>) -> Option<Vec<String>> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            let codes: Vec<String> = e
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_string())
                .collect();
            (!codes.iter().any(|c| crate::errors::is_throttling_reason(c))).then_some(codes)
        }
        _ => None,
    }
}

/// A transaction's failure that no slot of its explains, by meaning.
pub(crate) fn cancelled_error(
    err: SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> PortError {
    if let Some(TransactWriteItemsError::TransactionCanceledException(e)) = err.as_service_error() {
        let throttled = e
            .cancellation_reasons()
            .iter()
            .any(|r| r.code().is_some_and(crate::errors::is_throttling_reason));
        if throttled {
            return PortError::Unavailable("TransactWriteItems: throttled".into());
        }
    }
    port_error("TransactWriteItems", err)
}

pub(crate) fn conditional_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    err: &SdkError<E, R>,
) -> bool {
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

impl DynamoStore {
    /// The store of the default app.
    pub fn new(client: Client, table: String) -> Self {
        Self::for_app(crate::lazy::LazyClient::ready(client), table, None)
    }

    /// The store of one app (`None`: the default app).
    pub fn for_app(
        client: crate::lazy::LazyClient<Client>,
        table: String,
        app: Option<&str>,
    ) -> Self {
        DynamoStore {
            client,
            table,
            ns: keys::namespace(app),
        }
    }

    fn put(
        &self,
        item: Item,
        condition: Option<&str>,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem, PortError> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some(c) = condition {
            put = put.condition_expression(c);
        }
        for (name, value) in values {
            put = put.expression_attribute_values(name, value);
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(build_err)?)
            .build())
    }

    fn delete(
        &self,
        k: Item,
        condition: Option<&str>,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem, PortError> {
        let mut delete = Delete::builder().table_name(&self.table).set_key(Some(k));
        if let Some(c) = condition {
            delete = delete.condition_expression(c);
        }
        for (name, value) in values {
            delete = delete.expression_attribute_values(name, value);
        }
        Ok(TransactWriteItem::builder()
            .delete(delete.build().map_err(build_err)?)
            .build())
    }

    pub(crate) async fn get(&self, k: Item) -> Result<Option<Item>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(k))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("GetItem", e))?;
        Ok(out.item)
    }

    /// All items of a base-table partition whose sort key starts with `prefix`
    /// (`""`: all of them).
    pub(crate) async fn query_partition(
        &self,
        pk: String,
        prefix: &str,
    ) -> Result<Vec<Item>, PortError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true);
        self.collect(key_condition(query, (keys::PK, keys::SK), pk, prefix))
            .await
    }

    async fn collect(&self, query: QueryFluentBuilder) -> Result<Vec<Item>, PortError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = query
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| port_error("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// Deletes items by key, 25 at a time, retrying what DynamoDB left unprocessed.
    pub(crate) async fn delete_all(&self, item_keys: Vec<Item>) -> Result<(), PortError> {
        for chunk in item_keys.chunks(BATCH_LIMIT) {
            let mut requests = chunk
                .iter()
                .map(|k| {
                    DeleteRequest::builder()
                        .set_key(Some(k.clone()))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(build_err)
                })
                .collect::<Result<Vec<_>, _>>()?;
            for attempt in 0..5u32 {
                if requests.is_empty() {
                    break;
                }
                if attempt > 0 {
                    let pause = std::time::Duration::from_millis(50 << attempt);
                    if !push_core::budget::affords_pause(pause) {
                        break;
                    }
                    tokio::time::sleep(pause).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| port_error("BatchWriteItem", e))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
            }
            if !requests.is_empty() {
                return Err(PortError::Unavailable(
                    "BatchWriteItem left items unprocessed".into(),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn item_key(item: &Item) -> Item {
        item.iter()
            .filter(|(name, _)| *name == keys::PK || *name == keys::SK)
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }

    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>>
    {
        // The token is ours, not the SDK's (which makes one per call): sent
        // again, this is the same transaction to DynamoDB, which answers a
        // token it has applied with that first answer, applying nothing.
        let token = push_core::secrets::random_hex(16);
        let mut pause = FIRST_RESEND_PAUSE;
        let mut resends = 0;
        loop {
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(&token)
                .send()
                .await;
            match sent {
                // An attempt of ours that timed out is still in flight (the
                // SDK's own retries met it): once it lands, this very
                // transaction sent again gets its answer. Answering `503`
                // instead would tell the client a write failed that lands.
                Err(err)
                    if err.code() == Some(IN_PROGRESS) && another_send_fits(pause, resends) =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_RESEND_PAUSE);
                    resends += 1;
                }
                sent => return sent.map(|_| ()),
            }
        }
    }
}

/// DynamoDB's answer to a transaction whose `ClientRequestToken` is in
/// flight: an earlier attempt of it has not landed yet.
const IN_PROGRESS: &str = "TransactionInProgressException";

/// The pauses before a transaction still in progress is sent again: the
/// first, and the cap of the doubling ones.
const FIRST_RESEND_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);
const MAX_RESEND_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Outside any request's budget (the router's set-up), at most this many.
const MAX_RESENDS: u32 = 8;

/// Whether a transaction still in progress may be sent again after `pause`:
/// if the request's budget then still holds a whole attempt and the answer
/// ([`push_core::retry::RESERVE`]).
fn another_send_fits(pause: std::time::Duration, resends: u32) -> bool {
    match push_core::budget::remaining() {
        Some(left) => left > pause + push_core::retry::RESERVE,
        None => resends < MAX_RESENDS,
    }
}

/// A query's key condition: partition `pk`, sort keys starting with `prefix`
/// (`""`: any).
fn key_condition(
    query: QueryFluentBuilder,
    (pk_attribute, sk_attribute): (&str, &str),
    pk: String,
    prefix: &str,
) -> QueryFluentBuilder {
    let query = query.expression_attribute_values(":pk", s(pk));
    if prefix.is_empty() {
        query.key_condition_expression(format!("{pk_attribute} = :pk"))
    } else {
        query
            .key_condition_expression(format!(
                "{pk_attribute} = :pk AND begins_with({sk_attribute}, :prefix)"
            ))
            .expression_attribute_values(":prefix", s(prefix))
    }
}
