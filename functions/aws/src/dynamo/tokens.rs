//! Whitelist tokens: the knock's lookup item and the owner's copy.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, ReturnValue, TransactWriteItem};
use push_core::model::{DeviceKind, TokenRecord};
use push_core::ports::{KnockAdmission, LimitKey, PortError, TokenStore, WriteConflict};
use push_core::time::Micros;
use push_core::Limit;
use serde::{Deserialize, Serialize};

use super::rate::{refused_for, LogHit};
use super::*;
use crate::errors::port_error;
use crate::keys;

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

#[async_trait]
impl TokenStore for DynamoStore {
    async fn create_token(&self, token: &TokenRecord, limit: Limit) -> Result<(), WriteConflict> {
        let expires_at = token.expires_us.div_euclid(1_000_000) + 1;
        let (pk, sk) = keys::token(&self.ns, &token.token);
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
        let mut items = vec![
            self.put(to_item(&lookup)?, new, vec![])?,
            self.put(to_item(&owned)?, new, vec![])?,
            TransactWriteItem::builder().condition_check(check).build(),
        ];
        // Counted in the same write: only tokens that are created count, and
        // no counter is left for an account deleted meanwhile.
        let counted = LimitKey::TokenCreations {
            account_id: token.owner.clone(),
        };
        let mut counter_slot = None;
        if let Some(slot) = self.counter_slot(&counted, token.created_us, limit)? {
            counter_slot = Some(items.len());
            items.push(slot);
        }
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(err) => match cancellation_codes(&err) {
                Some(codes)
                    if counter_slot
                        .and_then(|i| codes.get(i))
                        .is_some_and(|c| c == "ConditionalCheckFailed") =>
                {
                    Err(WriteConflict::Limited {
                        limit: counted.name(),
                        retry_after_seconds: limit.window_at(token.created_us).1,
                    })
                }
                Some(codes) if codes.iter().any(|c| c == "ConditionalCheckFailed") => {
                    Err(WriteConflict::Conflict)
                }
                _ => Err(cancelled_error(err).into()),
            },
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
        match self.get(key(keys::token(&self.ns, token))).await? {
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
                .log_hit(key(keys::token(&self.ns, token)), Some(live), now_us, limit)
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
    async fn list_tokens(&self, owner: &str) -> Result<Vec<TokenRecord>, PortError> {
        self.query_partition(keys::owner(owner), keys::TOKEN_PREFIX)
            .await?
            .into_iter()
            .map(|item| from_item::<OwnedTokenItem>(item).map(TokenRecord::from))
            .collect()
    }
    async fn count_live_tokens(&self, owner: &str, now_us: Micros) -> Result<usize, PortError> {
        self.live_tokens(owner, now_us).await
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
            self.delete(key(keys::token(&self.ns, token)), None, vec![])?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(err)
                if cancellation_codes(&err)
                    .is_some_and(|c| c.iter().any(|c| c == "ConditionalCheckFailed")) =>
            {
                Ok(false)
            }
            Err(err) => Err(cancelled_error(err)),
        }
    }
    async fn delete_device_tokens(&self, owner: &str, device_id: &str) -> Result<(), PortError> {
        let owned = self
            .query_partition(keys::owner(owner), keys::TOKEN_PREFIX)
            .await?
            .into_iter()
            .filter(|item| matches!(item.get("device_id"), Some(AttributeValue::S(d)) if d == device_id))
            .collect::<Vec<_>>();
        self.delete_all(token_keys(&self.ns, &owned)).await
    }
}

/// The keys of both items of each owned token in `owned` (its copy in the
/// owner's partition and the knock's lookup item).
pub(super) fn token_keys(ns: &str, owned: &[Item]) -> Vec<Item> {
    owned
        .iter()
        .flat_map(|item| {
            let lookup = match item.get("token") {
                Some(AttributeValue::S(t)) => Some(key(keys::token(ns, t))),
                _ => None,
            };
            std::iter::once(DynamoStore::item_key(item)).chain(lookup)
        })
        .collect()
}
