//! [`Store`] on one DynamoDB table. Every uniqueness rule is a conditional
//! write or a transaction; every read on a request path is a `GetItem` or a
//! `Query`, never a `Scan`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use push_core::model::{
    AccountRecord, ApiKeyRecord, DeviceKind, DeviceRecord, PushTokenClaim, TokenRecord,
};
use push_core::ports::{
    Admission, ClaimChange, CreateAccountError, DeviceRemoval, DeviceWrite, KnockAdmission,
    LimitKey, PortError, Store, WriteConflict,
};
use push_core::time::Micros;
use push_core::Limit;
use serde::{Deserialize, Serialize};

use crate::errors::port_error;
use crate::{keys, limits};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Real DynamoDB rejects a `BatchWriteItem` of more than 25 requests.
const BATCH_LIMIT: usize = 25;

pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
    /// The day's salt, once read (see `counts`).
    pub(crate) salt: std::sync::Mutex<Option<(i64, String)>>,
}

#[derive(Serialize, Deserialize)]
struct AccountItem {
    pk: String,
    sk: String,
    id: String,
    username: String,
    email: String,
    password_hash: String,
    created_us: Micros,
    /// Set when a deletion begins; nothing may be added to the account then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    deleting: bool,
    // The failed-login log (`h0`, `h1`, ...) is read and written only
    // through `limits`.
}

#[derive(Serialize, Deserialize)]
struct EmailItem {
    pk: String,
    sk: String,
    account_id: String,
}

#[derive(Serialize, Deserialize)]
struct KeyItem {
    pk: String,
    sk: String,
    account_id: String,
    username: String,
    email: String,
}

/// The account's copy of an API key: how deletion finds every key with one
/// strongly consistent query.
#[derive(Serialize, Deserialize)]
struct OwnedKeyItem {
    pk: String,
    sk: String,
    key_hash: String,
    created_us: Micros,
}

#[derive(Serialize, Deserialize)]
struct DeviceItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    id: String,
    owner: String,
    kind: DeviceKind,
    registration_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device_id: Option<String>,
    active: bool,
    created_us: Micros,
    endpoint_arn: String,
}

#[derive(Serialize, Deserialize)]
struct ClaimItem {
    pk: String,
    sk: String,
    owner: String,
    device_id: String,
}

/// A whitelist token as the knock finds it by its value.
#[derive(Serialize, Deserialize)]
struct TokenItem {
    pk: String,
    sk: String,
    token: String,
    owner: String,
    device_id: String,
    kind: DeviceKind,
    created_us: Micros,
    expires_us: Micros,
    /// TTL: DynamoDB removes the item some time after this (epoch seconds).
    expires_at: i64,
    // The knock log (`h0`, `h1`, ...) is read and written only through
    // `limits`.
}

/// The owner's copy of a whitelist token, with its name: what listing,
/// retrieval and renaming read and write, in the owner's partition.
#[derive(Serialize, Deserialize)]
struct OwnedTokenItem {
    pk: String,
    sk: String,
    token: String,
    owner: String,
    device_id: String,
    kind: DeviceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    created_us: Micros,
    expires_us: Micros,
    expires_at: i64,
}

impl From<OwnedTokenItem> for TokenRecord {
    fn from(i: OwnedTokenItem) -> Self {
        TokenRecord {
            token: i.token,
            owner: i.owner,
            device_id: i.device_id,
            kind: i.kind,
            name: i.name,
            created_us: i.created_us,
            expires_us: i.expires_us,
        }
    }
}

impl From<DeviceItem> for DeviceRecord {
    fn from(i: DeviceItem) -> Self {
        DeviceRecord {
            id: i.id,
            owner: i.owner,
            kind: i.kind,
            registration_id: i.registration_id,
            name: i.name,
            device_id: i.device_id,
            active: i.active,
            created_us: i.created_us,
            endpoint_arn: i.endpoint_arn,
        }
    }
}

impl From<&DeviceRecord> for DeviceItem {
    fn from(d: &DeviceRecord) -> Self {
        let (pk, sk) = keys::device(&d.owner, &d.id);
        DeviceItem {
            gsi1pk: keys::endpoint(&d.endpoint_arn),
            gsi1sk: sk.clone(),
            pk,
            sk,
            id: d.id.clone(),
            owner: d.owner.clone(),
            kind: d.kind,
            registration_id: d.registration_id.clone(),
            name: d.name.clone(),
            device_id: d.device_id.clone(),
            active: d.active,
            created_us: d.created_us,
            endpoint_arn: d.endpoint_arn.clone(),
        }
    }
}

impl From<TokenItem> for TokenRecord {
    fn from(i: TokenItem) -> Self {
        TokenRecord {
            token: i.token,
            owner: i.owner,
            device_id: i.device_id,
            kind: i.kind,
            name: None,
            created_us: i.created_us,
            expires_us: i.expires_us,
        }
    }
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

pub(crate) fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> PortError {
    PortError::Internal(format!("request building: {e}"))
}

/// The cancellation reason codes of a cancelled transaction, by item index;
/// `None` when the error is not a cancellation.
fn cancellation_codes<R>(err: &SdkError<TransactWriteItemsError, R>) -> Option<Vec<String>> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => Some(
            e.cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_string())
                .collect(),
        ),
        _ => None,
    }
}

pub(crate) fn conditional_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    err: &SdkError<E, R>,
) -> bool {
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

impl DynamoStore {
    pub fn new(client: Client, table: String) -> Self {
        DynamoStore {
            client,
            table,
            salt: std::sync::Mutex::new(None),
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
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
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
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get_account(&self, username: &str) -> Result<Option<AccountRecord>, PortError> {
        let Some(item) = self.get(key(keys::account(username))).await? else {
            return Ok(None);
        };
        let failed_logins = limits::read_log(&item);
        let a: AccountItem = from_item(item)?;
        Ok(Some(AccountRecord {
            id: a.id,
            username: a.username,
            email: a.email,
            password_hash: a.password_hash,
            created_us: a.created_us,
            failed_logins,
            deleting: a.deleting,
        }))
    }

    async fn create_account(
        &self,
        account: &AccountRecord,
        api_key: &ApiKeyRecord,
    ) -> Result<(), CreateAccountError> {
        let (pk, sk) = keys::account(&account.username);
        let mut items = vec![self.put(
            to_item(&AccountItem {
                pk,
                sk,
                id: account.id.clone(),
                username: account.username.clone(),
                email: account.email.clone(),
                password_hash: account.password_hash.clone(),
                created_us: account.created_us,
                deleting: false,
            })?,
            Some("attribute_not_exists(pk)"),
            vec![],
        )?];
        if !account.email.is_empty() {
            let (pk, sk) = keys::email(&account.email);
            items.push(self.put(
                to_item(&EmailItem {
                    pk,
                    sk,
                    account_id: account.id.clone(),
                })?,
                Some("attribute_not_exists(pk)"),
                vec![],
            )?);
        }
        items.extend(self.key_puts(api_key, account.created_us)?);
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(err) => match cancellation_codes(&err) {
                Some(codes) if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") => {
                    Err(CreateAccountError::UsernameTaken)
                }
                Some(codes) if codes.get(1).is_some_and(|c| c == "ConditionalCheckFailed") => {
                    Err(CreateAccountError::EmailTaken)
                }
                _ => Err(port_error("TransactWriteItems", err).into()),
            },
        }
    }

    async fn log_failed_login(
        &self,
        username: &str,
        now_us: Micros,
        limit: Limit,
    ) -> Result<Admission, PortError> {
        Ok(
            match self
                .log_hit(key(keys::account(username)), None, now_us, limit)
                .await?
            {
                LogHit::Admitted(_) => Admission::Admitted,
                LogHit::Refused(item) => Admission::Limited {
                    retry_after_seconds: refused_for(&item, now_us, limit),
                },
                LogHit::Missing => Admission::Missing,
            },
        )
    }

    async fn add_login_key(
        &self,
        api_key: &ApiKeyRecord,
        now_us: Micros,
        limit: Limit,
    ) -> Result<Admission, PortError> {
        let account = key(keys::account(&api_key.username));
        // The account must still be the one whose password was checked, and
        // not being deleted (a key added then would outlive it).
        let alive = "attribute_exists(pk) AND id = :id AND attribute_not_exists(deleting)";
        let account_slot = if limit.max > 0 {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(account.clone()))
                .update_expression(limits::log_clear(limit.max))
                .condition_expression(format!("{} AND {alive}", limits::log_has_room(limit.max)))
                .expression_attribute_values(
                    ":cutoff",
                    AttributeValue::N(limit.log_cutoff(now_us).to_string()),
                )
                .expression_attribute_values(":id", s(&api_key.account_id));
            TransactWriteItem::builder()
                .update(update.build().map_err(build_err)?)
                .build()
        } else {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(account.clone()))
                .condition_expression(alive)
                .expression_attribute_values(":id", s(&api_key.account_id))
                .build()
                .map_err(build_err)?;
            TransactWriteItem::builder().condition_check(check).build()
        };
        let mut items = self.key_puts(api_key, now_us)?;
        let account_index = items.len();
        items.push(account_slot);
        match self.transact(items).await {
            Ok(()) => Ok(Admission::Admitted),
            Err(err)
                if cancellation_codes(&err).is_some_and(|c| {
                    c.get(account_index)
                        .is_some_and(|c| c == "ConditionalCheckFailed")
                }) =>
            {
                // Locked meanwhile, or deleted: the account as it is now tells.
                Ok(match self.get(account).await? {
                    Some(item) if alive_account(&item, &api_key.account_id) => Admission::Limited {
                        retry_after_seconds: refused_for(&item, now_us, limit),
                    },
                    _ => Admission::Missing,
                })
            }
            Err(err) => Err(port_error("TransactWriteItems", err)),
        }
    }

    async fn trim_api_keys(&self, account_id: &str, keep: u32) -> Result<usize, PortError> {
        self.revoke_oldest_keys(account_id, keep).await
    }

    async fn count_live_tokens(&self, owner: &str, now_us: Micros) -> Result<usize, PortError> {
        self.live_tokens(owner, now_us).await
    }

    async fn daily_salt(&self, day: i64) -> Result<String, PortError> {
        self.salt_of_day(day).await
    }

    async fn get_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, PortError> {
        let Some(item) = self.get(key(keys::api_key(key_hash))).await? else {
            return Ok(None);
        };
        let k: KeyItem = from_item(item)?;
        Ok(Some(ApiKeyRecord {
            key_hash: key_hash.to_string(),
            account_id: k.account_id,
            username: k.username,
            email: k.email,
        }))
    }

    async fn begin_account_deletion(
        &self,
        account_id: &str,
        username: &str,
    ) -> Result<bool, PortError> {
        self.mark_account_deleting(account_id, username).await
    }

    async fn finish_account_deletion(
        &self,
        account_id: &str,
        username: &str,
        email: &str,
    ) -> Result<(), PortError> {
        self.remove_account_items(account_id, username, email).await
    }

    async fn list_devices(&self, owner: &str) -> Result<Vec<DeviceRecord>, PortError> {
        let (pk, _) = keys::device(owner, "");
        self.query_partition(pk, keys::DEVICE_PREFIX)
            .await?
            .into_iter()
            .map(|item| from_item::<DeviceItem>(item).map(DeviceRecord::from))
            .collect()
    }

    async fn get_device(&self, owner: &str, id: &str) -> Result<Option<DeviceRecord>, PortError> {
        match self.get(key(keys::device(owner, id))).await? {
            Some(item) => Ok(Some(from_item::<DeviceItem>(item)?.into())),
            None => Ok(None),
        }
    }

    async fn get_claim(
        &self,
        kind: DeviceKind,
        registration_id: &str,
    ) -> Result<Option<PushTokenClaim>, PortError> {
        match self.get(key(keys::claim(kind, registration_id))).await? {
            Some(item) => {
                let c: ClaimItem = from_item(item)?;
                Ok(Some(PushTokenClaim {
                    owner: c.owner,
                    device_id: c.device_id,
                }))
            }
            None => Ok(None),
        }
    }

    async fn save_device(&self, write: &DeviceWrite) -> Result<(), WriteConflict> {
        let device = &write.device;
        let device_condition = if write.is_new {
            "attribute_not_exists(pk)"
        } else {
            "attribute_exists(pk)"
        };
        let account = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::account(&write.owner_username))))
            .condition_expression("id = :owner AND attribute_not_exists(deleting)")
            .expression_attribute_values(":owner", s(&device.owner))
            .build()
            .map_err(build_err)?;
        // Slot 1 is the owner's account: refused there, the account is gone.
        const ACCOUNT_SLOT: usize = 1;
        let mut items = vec![
            self.put(
                to_item(&DeviceItem::from(device))?,
                Some(device_condition),
                vec![],
            )?,
            TransactWriteItem::builder()
                .condition_check(account)
                .build(),
        ];
        let (pk, sk) = keys::claim(device.kind, &device.registration_id);
        let claim = to_item(&ClaimItem {
            pk,
            sk,
            owner: device.owner.clone(),
            device_id: device.id.clone(),
        })?;
        match &write.claim {
            ClaimChange::Keep => {}
            ClaimChange::Create => {
                items.push(self.put(claim, Some("attribute_not_exists(pk)"), vec![])?)
            }
            ClaimChange::TakeFrom(previous) => {
                items.push(self.put(
                    claim,
                    Some("device_id = :previous"),
                    vec![(":previous", s(&previous.device_id))],
                )?);
                items.push(self.delete(
                    key(keys::device(&previous.owner, &previous.device_id)),
                    Some("attribute_exists(pk)"),
                    vec![],
                )?);
            }
        }
        // The device counts: one more for a new device (within the cap), one
        // less for a device taken over. Within one account the two cancel.
        let taken_from = match &write.claim {
            ClaimChange::TakeFrom(previous) => Some(previous.owner.as_str()),
            _ => None,
        };
        let mut count_slot = None;
        match (write.is_new, taken_from) {
            (true, Some(previous)) if previous == device.owner => {}
            (is_new, previous) => {
                if is_new {
                    count_slot = Some(items.len());
                    items.push(self.count_devices(&device.owner, 1, Some(write.device_limit))?);
                }
                if let Some(previous) = previous {
                    items.push(self.count_devices(previous, -1, None)?);
                }
            }
        }
        if let Some(old_token) = &write.release_claim_of {
            items.push(self.delete(
                key(keys::claim(device.kind, old_token)),
                Some("attribute_not_exists(pk) OR device_id = :me"),
                vec![(":me", s(&device.id))],
            )?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(err) => match cancellation_codes(&err) {
                Some(codes)
                    if codes
                        .get(ACCOUNT_SLOT)
                        .is_some_and(|c| c == "ConditionalCheckFailed") =>
                {
                    Err(WriteConflict::AccountGone)
                }
                Some(codes)
                    if count_slot
                        .and_then(|i| codes.get(i))
                        .is_some_and(|c| c == "ConditionalCheckFailed") =>
                {
                    Err(WriteConflict::DeviceLimit)
                }
                Some(codes)
                    if codes
                        .iter()
                        .any(|c| c == "ConditionalCheckFailed" || c == "TransactionConflict") =>
                {
                    Err(WriteConflict::Conflict)
                }
                _ => Err(port_error("TransactWriteItems", err).into()),
            },
        }
    }

    async fn delete_device(&self, device: &DeviceRecord) -> Result<DeviceRemoval, PortError> {
        let record = key(keys::device(&device.owner, &device.id));
        let items = vec![
            self.delete(record.clone(), Some("attribute_exists(pk)"), vec![])?,
            self.count_devices(&device.owner, -1, None)?,
            self.delete(
                key(keys::claim(device.kind, &device.registration_id)),
                Some("attribute_not_exists(pk) OR device_id = :me"),
                vec![(":me", s(&device.id))],
            )?,
        ];
        const RECORD: usize = 0;
        const CLAIM: usize = 2;
        let failed = |codes: &[String], slot: usize| {
            codes
                .get(slot)
                .is_some_and(|c| c == "ConditionalCheckFailed")
        };
        match self.transact(items).await {
            Ok(()) => Ok(DeviceRemoval::Removed {
                endpoint_is_ours: true,
            }),
            Err(err) => match cancellation_codes(&err) {
                Some(codes) if failed(&codes, RECORD) => Ok(DeviceRemoval::Gone),
                // The claim already belongs to another device, and with it the
                // endpoint (one per push token): ours goes alone.
                Some(codes) if failed(&codes, CLAIM) => {
                    let alone = vec![
                        self.delete(record, Some("attribute_exists(pk)"), vec![])?,
                        self.count_devices(&device.owner, -1, None)?,
                    ];
                    match self.transact(alone).await {
                        Ok(()) => Ok(DeviceRemoval::Removed {
                            endpoint_is_ours: false,
                        }),
                        Err(err)
                            if cancellation_codes(&err).is_some_and(|c| failed(&c, RECORD)) =>
                        {
                            Ok(DeviceRemoval::Gone)
                        }
                        Err(err) => Err(port_error("TransactWriteItems", err)),
                    }
                }
                _ => Err(port_error("TransactWriteItems", err)),
            },
        }
    }

    async fn replace_endpoint(
        &self,
        device: &DeviceRecord,
        new_arn: &str,
    ) -> Result<bool, PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::device(&device.owner, &device.id))))
            .update_expression("SET endpoint_arn = :new, gsi1pk = :index")
            .condition_expression("endpoint_arn = :old")
            .expression_attribute_values(":new", s(new_arn))
            .expression_attribute_values(":index", s(keys::endpoint(new_arn)))
            .expression_attribute_values(":old", s(&device.endpoint_arn))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(port_error("UpdateItem", e)),
        }
    }

    async fn set_device_active(
        &self,
        owner: &str,
        id: &str,
        active: bool,
    ) -> Result<(), PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::device(owner, id))))
            .update_expression("SET #active = :active")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#active", "active")
            .expression_attribute_values(":active", AttributeValue::Bool(active))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if conditional_failed(&e) => Ok(()),
            Err(e) => Err(port_error("UpdateItem", e)),
        }
    }

    async fn deactivate_endpoint(&self, endpoint_arn: &str) -> Result<usize, PortError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(keys::endpoint(endpoint_arn)));
        let mut deactivated = 0;
        for item in self.collect(query).await? {
            let device: DeviceItem = from_item(item)?;
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::device(&device.owner, &device.id))))
                .update_expression("SET #active = :false")
                .condition_expression("endpoint_arn = :arn AND #active = :true")
                .expression_attribute_names("#active", "active")
                .expression_attribute_values(":false", AttributeValue::Bool(false))
                .expression_attribute_values(":true", AttributeValue::Bool(true))
                .expression_attribute_values(":arn", s(endpoint_arn))
                .send()
                .await;
            match result {
                Ok(_) => deactivated += 1,
                Err(e) if conditional_failed(&e) => {}
                Err(e) => return Err(port_error("UpdateItem", e)),
            }
        }
        Ok(deactivated)
    }

    async fn create_token(&self, token: &TokenRecord) -> Result<(), WriteConflict> {
        let expires_at = token.expires_us.div_euclid(1_000_000) + 1;
        let (pk, sk) = keys::token(&token.token);
        let lookup = TokenItem {
            pk,
            sk,
            token: token.token.clone(),
            owner: token.owner.clone(),
            device_id: token.device_id.clone(),
            kind: token.kind,
            created_us: token.created_us,
            expires_us: token.expires_us,
            expires_at,
        };
        let (pk, sk) = keys::owned_token(&token.owner, &token.token);
        let owned = OwnedTokenItem {
            pk,
            sk,
            token: token.token.clone(),
            owner: token.owner.clone(),
            device_id: token.device_id.clone(),
            kind: token.kind,
            name: token.name.clone(),
            created_us: token.created_us,
            expires_us: token.expires_us,
            expires_at,
        };
        // The device must exist when the token is stored: a device deletion
        // (and so an account deletion) that lists tokens after deleting the
        // device finds every token ever issued for it.
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::device(&token.owner, &token.device_id))))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build_err)?;
        let new = Some("attribute_not_exists(pk)");
        let items = vec![
            self.put(to_item(&lookup)?, new, vec![])?,
            self.put(to_item(&owned)?, new, vec![])?,
            TransactWriteItem::builder().condition_check(check).build(),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(err)
                if cancellation_codes(&err)
                    .is_some_and(|c| c.iter().any(|c| c == "ConditionalCheckFailed")) =>
            {
                Err(WriteConflict::Conflict)
            }
            Err(err) => Err(port_error("TransactWriteItems", err).into()),
        }
    }

    async fn get_own_token(
        &self,
        owner: &str,
        token: &str,
    ) -> Result<Option<TokenRecord>, PortError> {
        match self.get(key(keys::owned_token(owner, token))).await? {
            Some(item) => Ok(Some(from_item::<OwnedTokenItem>(item)?.into())),
            None => Ok(None),
        }
    }

    async fn get_token(&self, token: &str) -> Result<Option<TokenRecord>, PortError> {
        match self.get(key(keys::token(token))).await? {
            Some(item) => Ok(Some(from_item::<TokenItem>(item)?.into())),
            None => Ok(None),
        }
    }

    async fn admit_knock(
        &self,
        token: &str,
        now_us: Micros,
        limit: Limit,
    ) -> Result<KnockAdmission, PortError> {
        if limit.max == 0 {
            // No limit to count: a plain (strongly consistent) lookup.
            return Ok(match self.get_token(token).await? {
                Some(t) if t.is_live(now_us) => KnockAdmission::Admitted(t),
                _ => KnockAdmission::Unknown,
            });
        }
        let live = "expires_us > :now";
        Ok(
            match self
                .log_hit(key(keys::token(token)), Some(live), now_us, limit)
                .await?
            {
                LogHit::Admitted(item) => {
                    KnockAdmission::Admitted(from_item::<TokenItem>(item)?.into())
                }
                LogHit::Refused(item) => {
                    let retry_after_seconds = refused_for(&item, now_us, limit);
                    let record: TokenRecord = from_item::<TokenItem>(item)?.into();
                    if record.is_live(now_us) {
                        KnockAdmission::Limited {
                            retry_after_seconds,
                        }
                    } else {
                        KnockAdmission::Unknown
                    }
                }
                LogHit::Missing => KnockAdmission::Unknown,
            },
        )
    }

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

    async fn list_tokens(&self, owner: &str) -> Result<Vec<TokenRecord>, PortError> {
        self.query_partition(keys::owner(owner), keys::TOKEN_PREFIX)
            .await?
            .into_iter()
            .map(|item| from_item::<OwnedTokenItem>(item).map(TokenRecord::from))
            .collect()
    }

    async fn rename_token(
        &self,
        owner: &str,
        token: &str,
        name: Option<&str>,
        now_us: Micros,
    ) -> Result<Option<TokenRecord>, PortError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::owned_token(owner, token))))
            .condition_expression("attribute_exists(pk) AND expires_us > :now")
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":now", AttributeValue::N(now_us.to_string()))
            .return_values(ReturnValue::AllNew);
        update = match name {
            Some(n) => update
                .update_expression("SET #name = :name")
                .expression_attribute_values(":name", s(n)),
            None => update.update_expression("REMOVE #name"),
        };
        match update.send().await {
            Ok(out) => match out.attributes {
                Some(item) => Ok(Some(from_item::<OwnedTokenItem>(item)?.into())),
                None => Ok(None),
            },
            Err(e) if conditional_failed(&e) => Ok(None),
            Err(e) => Err(port_error("UpdateItem", e)),
        }
    }

    async fn delete_token(
        &self,
        owner: &str,
        token: &str,
        now_us: Micros,
    ) -> Result<bool, PortError> {
        let items = vec![
            self.delete(
                key(keys::owned_token(owner, token)),
                Some("attribute_exists(pk) AND expires_us > :now"),
                vec![(":now", AttributeValue::N(now_us.to_string()))],
            )?,
            // The owner's copy proves the token is theirs.
            self.delete(key(keys::token(token)), None, vec![])?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(err)
                if cancellation_codes(&err)
                    .is_some_and(|c| c.iter().any(|c| c == "ConditionalCheckFailed")) =>
            {
                Ok(false)
            }
            Err(err) => Err(port_error("TransactWriteItems", err)),
        }
    }

    async fn delete_device_tokens(&self, owner: &str, device_id: &str) -> Result<(), PortError> {
        let owned = self
            .query_partition(keys::owner(owner), keys::TOKEN_PREFIX)
            .await?
            .into_iter()
            .filter(|item| matches!(item.get("device_id"), Some(AttributeValue::S(d)) if d == device_id))
            .collect::<Vec<_>>();
        self.delete_all(token_keys(&owned)).await
    }
}

/// The keys of both items of each owned token in `owned` (its copy in the
/// owner's partition and the knock's lookup item).
pub(crate) fn token_keys(owned: &[Item]) -> Vec<Item> {
    owned
        .iter()
        .flat_map(|item| {
            let lookup = match item.get("token") {
                Some(AttributeValue::S(t)) => Some(key(keys::token(t))),
                _ => None,
            };
            std::iter::once(DynamoStore::item_key(item)).chain(lookup)
        })
        .collect()
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

/// The outcome of logging a hit on an item's sliding log.
enum LogHit {
    /// Logged; the item as it now is.
    Admitted(Item),
    /// The log is full (or the extra condition failed); the item as it is.
    Refused(Item),
    /// No such item.
    Missing,
}

/// `Retry-After` for a refused hit, from the refused call's copy of the item.
fn refused_for(item: &Item, now_us: Micros, limit: Limit) -> u64 {
    limit
        .blocked_by_log(&limits::read_log(item), now_us)
        .unwrap_or(1)
}

impl DynamoStore {
    /// Logs a hit at `now_us` on the sliding log of an existing item, if the
    /// log has room and `extra` (a condition that may use `:now`) holds: one
    /// conditional `UpdateItem`, whose failure returns the item as it was.
    async fn log_hit(
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

/// Whether an account item is the account `account_id`, and not being deleted.
fn alive_account(item: &Item, account_id: &str) -> bool {
    matches!(item.get("id"), Some(AttributeValue::S(id)) if id == account_id)
        && !item.contains_key("deleting")
}

impl DynamoStore {
    /// The two puts that store an API key: the item a request's key is
    /// looked up by, and the account's copy of it.
    fn key_puts(
        &self,
        k: &ApiKeyRecord,
        created_us: Micros,
    ) -> Result<Vec<TransactWriteItem>, PortError> {
        let (pk, sk) = keys::api_key(&k.key_hash);
        let lookup = KeyItem {
            pk,
            sk,
            account_id: k.account_id.clone(),
            username: k.username.clone(),
            email: k.email.clone(),
        };
        let (pk, sk) = keys::owned_api_key(&k.account_id, &k.key_hash);
        let owned = OwnedKeyItem {
            pk,
            sk,
            key_hash: k.key_hash.clone(),
            created_us,
        };
        Ok(vec![
            self.put(to_item(&lookup)?, None, vec![])?,
            self.put(to_item(&owned)?, None, vec![])?,
        ])
    }
}
