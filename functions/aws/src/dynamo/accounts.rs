//! Accounts: the account item, its email claim, its API keys.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
use push_core::model::{AccountRecord, ApiKeyRecord};
use push_core::ports::{AccountStore, Admission, CreateAccountError, PortError};
use push_core::time::Micros;
use push_core::Limit;
use serde::{Deserialize, Serialize};

use super::rate::{refused_for, LogHit};
use super::*;
use crate::{keys, limits};

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

#[async_trait]
impl AccountStore for DynamoStore {
    async fn get_account(&self, username: &str) -> Result<Option<AccountRecord>, PortError> {
        let Some(item) = self.get(key(keys::account(&self.ns, username))).await? else {
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
        let (pk, sk) = keys::account(&self.ns, &account.username);
        // Named slots: the username's item first, then the email's if any.
        const USERNAME_SLOT: usize = 0;
        let mut email_slot = None;
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
            let (pk, sk) = keys::email(&self.ns, &account.email);
            email_slot = Some(items.len());
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
        let err = match self.transact(items).await {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        let failed = |codes: &[String], slot: Option<usize>| {
            slot.and_then(|i| codes.get(i))
                .is_some_and(|c| c == "ConditionalCheckFailed")
        };
        match cancellation_codes(&err) {
            Some(codes) if failed(&codes, Some(USERNAME_SLOT)) => {
                Err(CreateAccountError::UsernameTaken)
            }
            Some(codes) if failed(&codes, email_slot) => Err(CreateAccountError::EmailTaken),
            _ => Err(cancelled_error(err).into()),
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
                .log_hit(key(keys::account(&self.ns, username)), None, now_us, limit)
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
        let account = key(keys::account(&self.ns, &api_key.username));
        // The account must still be the one whose password was checked, and
        // not being deleted (a key added then would outlive it).
        let alive = "attribute_exists(pk) AND id = :id AND attribute_not_exists(deleting)";
        let account_slot = if limit.max > 0 {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(account.clone()))
                .update_expression(limits::log_clear(limit.max))
                .condition_expression(format!("{} AND {alive}", limits::log_has_room(limit.max)))
                .expression_attribute_values(":cutoff", limits::cutoff_value(limit, now_us))
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
            Err(err) => Err(cancelled_error(err)),
        }
    }
    async fn trim_api_keys(&self, account_id: &str, keep: u32) -> Result<usize, PortError> {
        self.revoke_oldest_keys(account_id, keep).await
    }
    async fn get_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, PortError> {
        let Some(item) = self.get(key(keys::api_key(&self.ns, key_hash))).await? else {
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
        let (pk, sk) = keys::api_key(&self.ns, &k.key_hash);
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
