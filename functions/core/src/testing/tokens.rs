//! The store's whitelist tokens and fixed-window counters, in memory.

use async_trait::async_trait;

use super::store::{MemoryStore, Tables};
use crate::model::TokenRecord;
use crate::ports::{
    Admission, KnockAdmission, LimitKey, LimitStore, PortError, SourceKeys, TokenStore,
    WriteConflict,
};
use crate::time::Micros;
use crate::{secrets, Limit};

/// Counts a hit on a fixed-window counter: the rule of `count_hit` and of the
/// counter slots inside device and token creations.
pub(super) fn count(t: &mut Tables, key: &LimitKey, now_us: Micros, limit: Limit) -> Admission {
    let admission = peek(t, key, now_us, limit);
    if admission == Admission::Admitted && limit.max > 0 {
        let (window, _) = limit.window_at(now_us);
        *t.counters.entry(format!("{key:?}/{window}")).or_default() += 1;
    }
    admission
}

/// What [`count`] would answer, counting nothing.
pub(super) fn peek(t: &Tables, key: &LimitKey, now_us: Micros, limit: Limit) -> Admission {
    if limit.max == 0 {
        return Admission::Admitted;
    }
    let (window, retry_after_seconds) = limit.window_at(now_us);
    match t.counters.get(&format!("{key:?}/{window}")) {
        Some(n) if *n >= limit.max => Admission::Limited {
            retry_after_seconds,
        },
        _ => Admission::Admitted,
    }
}

pub(super) fn limited(key: &LimitKey, admission: Admission) -> Result<(), WriteConflict> {
    match admission {
        Admission::Limited {
            retry_after_seconds,
        } => Err(WriteConflict::Limited {
            limit: key.name(),
            retry_after_seconds,
        }),
        _ => Ok(()),
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn create_token(&self, token: &TokenRecord, limit: Limit) -> Result<(), WriteConflict> {
        self.call("create_token").await?;
        let mut t = self.tables();
        let device = (token.owner.clone(), token.device_id.clone());
        let counted = LimitKey::TokenCreations {
            account_id: token.owner.clone(),
        };
        // As the adapter reads the transaction's cancellation: the counter
        // slot first, so a full counter is `Limited` whatever else failed.
        limited(&counted, peek(&t, &counted, token.created_us, limit))?;
        if t.tokens.contains_key(&token.token) || !t.devices.contains_key(&device) {
            return Err(WriteConflict::Conflict);
        }
        count(&mut t, &counted, token.created_us, limit);
        t.tokens
            .insert(token.token.clone(), (token.clone(), Vec::new()));
        Ok(())
    }
    async fn get_token(&self, token: &str) -> Result<Option<TokenRecord>, PortError> {
        self.call("get_token").await?;
        Ok(self.tables().tokens.get(token).map(|(t, _)| t.clone()))
    }
    async fn get_own_token(
        &self,
        owner: &str,
        token: &str,
    ) -> Result<Option<TokenRecord>, PortError> {
        self.call("get_own_token").await?;
        let t = self.tables();
        Ok(t.tokens
            .get(token)
            .filter(|(t, _)| t.owner == owner)
            .map(|(t, _)| t.clone()))
    }
    async fn admit_knock(
        &self,
        token: &str,
        now_us: Micros,
        limit: Limit,
    ) -> Result<KnockAdmission, PortError> {
        self.call("admit_knock").await?;
        let mut t = self.tables();
        let Some((record, log)) = t.tokens.get_mut(token).filter(|(t, _)| t.is_live(now_us)) else {
            return Ok(KnockAdmission::Unknown);
        };
        if let Some(retry_after_seconds) = limit.blocked_by_log(log, now_us) {
            return Ok(KnockAdmission::Limited {
                retry_after_seconds,
            });
        }
        log.insert(0, now_us);
        log.truncate(limit.max.max(1) as usize);
        Ok(KnockAdmission::Admitted(record.clone()))
    }
    async fn count_live_tokens(&self, owner: &str, now_us: Micros) -> Result<usize, PortError> {
        self.call("count_live_tokens").await?;
        let t = self.tables();
        Ok(t.tokens
            .values()
            .filter(|(t, _)| t.owner == owner && t.is_live(now_us))
            .count())
    }
    async fn list_tokens(&self, owner: &str) -> Result<Vec<TokenRecord>, PortError> {
        self.call("list_tokens").await?;
        let t = self.tables();
        Ok(t.tokens
            .values()
            .filter(|(t, _)| t.owner == owner)
            .map(|(t, _)| t.clone())
            .collect())
    }
    async fn rename_token(
        &self,
        owner: &str,
        token: &str,
        name: Option<&str>,
        now_us: Micros,
    ) -> Result<Option<TokenRecord>, PortError> {
        self.call("rename_token").await?;
        let mut t = self.tables();
        match t.tokens.get_mut(token) {
            Some((t, _)) if t.owner == owner && t.is_live(now_us) => {
                t.name = name.map(str::to_string);
                Ok(Some(t.clone()))
            }
            _ => Ok(None),
        }
    }
    async fn delete_token(
        &self,
        owner: &str,
        token: &str,
        now_us: Micros,
    ) -> Result<bool, PortError> {
        self.call("delete_token").await?;
        let mut t = self.tables();
        let own = t
            .tokens
            .get(token)
            .is_some_and(|(t, _)| t.owner == owner && t.is_live(now_us));
        if own {
            t.tokens.remove(token);
        }
        Ok(own)
    }
    async fn delete_device_tokens(&self, owner: &str, device_id: &str) -> Result<(), PortError> {
        self.call("delete_device_tokens").await?;
        self.tables()
            .tokens
            .retain(|_, (t, _)| !(t.owner == owner && t.device_id == device_id));
        Ok(())
    }
}

#[async_trait]
impl LimitStore for MemoryStore {
    async fn count_hit(
        &self,
        key: &LimitKey,
        now_us: Micros,
        limit: Limit,
    ) -> Result<Admission, PortError> {
        self.call("count_hit").await?;
        Ok(count(&mut self.tables(), key, now_us, limit))
    }
}

/// The memory world's source keys: a random key per day, the same for every
/// caller of this store (as every instance derives the same from the secret).
#[async_trait]
impl SourceKeys for MemoryStore {
    async fn key_of_day(&self, day: i64) -> Result<String, PortError> {
        self.call("key_of_day").await?;
        let mut t = self.tables();
        Ok(t.day_keys
            .entry(day)
            .or_insert_with(|| secrets::random_hex(32))
            .clone())
    }
}
