//! The store's accounts and API keys, in memory.

use async_trait::async_trait;

use super::store::MemoryStore;
use crate::model::{AccountRecord, ApiKeyRecord};
use crate::ports::{AccountStore, Admission, CreateAccountError, PortError};
use crate::time::Micros;
use crate::Limit;

#[async_trait]
impl AccountStore for MemoryStore {
    async fn get_account(&self, username: &str) -> Result<Option<AccountRecord>, PortError> {
        self.call("get_account").await?;
        Ok(self.tables().accounts.get(username).cloned())
    }
    async fn create_account(
        &self,
        account: &AccountRecord,
        key: &ApiKeyRecord,
    ) -> Result<(), CreateAccountError> {
        self.call("create_account").await?;
        let mut t = self.tables();
        if t.accounts.contains_key(&account.username) {
            return Err(CreateAccountError::UsernameTaken);
        }
        let email = account.email.to_lowercase();
        if !email.is_empty() && t.emails.contains_key(&email) {
            return Err(CreateAccountError::EmailTaken);
        }
        if !email.is_empty() {
            t.emails.insert(email, account.username.clone());
        }
        t.accounts.insert(account.username.clone(), account.clone());
        t.key_serial += 1;
        let serial = t.key_serial;
        t.keys.insert(key.key_hash.clone(), (key.clone(), serial));
        Ok(())
    }
    async fn log_failed_login(
        &self,
        username: &str,
        now_us: Micros,
        limit: Limit,
    ) -> Result<Admission, PortError> {
        self.call("log_failed_login").await?;
        let mut t = self.tables();
        let Some(account) = t.accounts.get_mut(username) else {
            return Ok(Admission::Missing);
        };
        if let Some(retry_after_seconds) = limit.blocked_by_log(&account.failed_logins, now_us) {
            return Ok(Admission::Limited {
                retry_after_seconds,
            });
        }
        account.failed_logins.insert(0, now_us);
        account.failed_logins.truncate(limit.max.max(1) as usize);
        Ok(Admission::Admitted)
    }
    async fn add_login_key(
        &self,
        key: &ApiKeyRecord,
        now_us: Micros,
        limit: Limit,
    ) -> Result<Admission, PortError> {
        self.call("add_login_key").await?;
        let mut t = self.tables();
        let Some(account) = t.accounts.get_mut(&key.username) else {
            return Ok(Admission::Missing);
        };
        if account.id != key.account_id || account.deleting {
            return Ok(Admission::Missing);
        }
        if let Some(retry_after_seconds) = limit.blocked_by_log(&account.failed_logins, now_us) {
            return Ok(Admission::Limited {
                retry_after_seconds,
            });
        }
        account.failed_logins.clear();
        t.key_serial += 1;
        let serial = t.key_serial;
        t.keys.insert(key.key_hash.clone(), (key.clone(), serial));
        Ok(Admission::Admitted)
    }
    async fn trim_api_keys(&self, account_id: &str, keep: u32) -> Result<usize, PortError> {
        self.call("trim_api_keys").await?;
        let mut t = self.tables();
        let mut own: Vec<(u64, String)> = t
            .keys
            .iter()
            .filter(|(_, (k, _))| k.account_id == account_id)
            .map(|(hash, (_, serial))| (*serial, hash.clone()))
            .collect();
        own.sort_unstable_by(|a, b| b.cmp(a));
        let revoked: Vec<String> = own
            .into_iter()
            .skip(keep as usize)
            .map(|(_, h)| h)
            .collect();
        for hash in &revoked {
            t.keys.remove(hash);
        }
        Ok(revoked.len())
    }
    async fn get_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, PortError> {
        self.call("get_api_key").await?;
        Ok(self.tables().keys.get(key_hash).map(|(k, _)| k.clone()))
    }
    async fn begin_account_deletion(
        &self,
        account_id: &str,
        username: &str,
    ) -> Result<bool, PortError> {
        self.call("begin_account_deletion").await?;
        match self.tables().accounts.get_mut(username) {
            Some(a) if a.id == account_id => {
                a.deleting = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn finish_account_deletion(
        &self,
        account_id: &str,
        username: &str,
        email: &str,
    ) -> Result<(), PortError> {
        self.call("finish_account_deletion").await?;
        let mut t = self.tables();
        // As the DynamoDB store: refused while a device remains.
        if t.devices.keys().any(|(owner, _)| owner == account_id) {
            return Err(PortError::Conflict(
                "account deletion: a device is still being deleted".into(),
            ));
        }
        t.tokens.retain(|_, (tok, _)| tok.owner != account_id);
        // Its counters (token creations, registrations) and its device count
        // live in its partition, which goes with it.
        t.counters.retain(|k, _| !k.contains(account_id));
        t.device_counts.remove(account_id);
        t.keys.retain(|_, (k, _)| k.account_id != account_id);
        let email = email.to_lowercase();
        if t.emails.get(&email).is_some_and(|u| u == username) {
            t.emails.remove(&email);
        }
        if t.accounts.get(username).is_some_and(|a| a.id == account_id) {
            t.accounts.remove(username);
        }
        Ok(())
    }
}
