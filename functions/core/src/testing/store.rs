//! The store in memory: its tables, and its devices (accounts:
//! `accounts.rs`; tokens and limits: `tokens.rs`).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use super::{Fault, Faults, Script};
use crate::model::{
    AccountRecord, ApiKeyRecord, DeviceKind, DeviceRecord, PushFailure, PushTokenClaim, TokenRecord,
};
use crate::ports::{
    ClaimChange, DeviceRemoval, DeviceStore, DeviceWrite, LimitKey, PortError, WriteConflict,
};
use crate::secrets;
use crate::time::Micros;

#[derive(Default)]
pub(super) struct Tables {
    /// By username.
    pub(super) accounts: BTreeMap<String, AccountRecord>,
    /// Lower-cased email → username.
    pub(super) emails: BTreeMap<String, String>,
    /// By key hash, with the order of creation.
    pub(super) keys: BTreeMap<String, (ApiKeyRecord, u64)>,
    pub(super) key_serial: u64,
    /// By (owner, id).
    pub(super) devices: BTreeMap<(String, String), DeviceRecord>,
    /// By (kind, push token).
    pub(super) claims: BTreeMap<(&'static str, String), PushTokenClaim>,
    /// By value, with the knock log (newest first).
    pub(super) tokens: BTreeMap<String, (TokenRecord, Vec<Micros>)>,
    /// Fixed-window counters by "limit key/window".
    pub(super) counters: BTreeMap<String, u32>,
    /// Each account's device count, kept by the device writes exactly as
    /// the DynamoDB store keeps its count item (the cap is checked on it).
    pub(super) device_counts: BTreeMap<String, i64>,
    pub(super) day_keys: BTreeMap<i64, String>,
}

/// The store, in memory.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    faults: Faults,
    latency: Duration,
    /// Changes to land before a call, by the call's (port method's) name.
    script: Script,
}

impl MemoryStore {
    /// A store whose every call takes `latency` (a DynamoDB round trip, for
    /// measuring the code's own scaling: `make bench`).
    pub fn with_latency(latency: Duration) -> Self {
        MemoryStore {
            latency,
            ..Self::default()
        }
    }

    /// Every call starts here: its latency, a concurrent change a test
    /// queued for it, then an injected failure if any.
    pub(super) async fn call(&self, name: &str) -> Result<(), PortError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        self.script.enter(name).await;
        self.faults.check(name)
    }

    /// Lands `change` (another request, say, run through the operations
    /// with the same deps) just before the next call of `call` — between an
    /// operation's reads and its write, where AWS lets other requests in.
    pub fn before<F>(&self, call: &str, change: impl FnOnce() -> F + Send + 'static)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.script.before(call, change);
    }

    pub(super) fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next `times` calls of `call` (a port method's name) fail so.
    pub fn fail(&self, call: &str, fault: Fault, times: usize) {
        self.faults.push(call, fault, times);
    }

    /// An account with one API key, written directly; returns the key.
    pub fn add_account(&self, username: &str) -> (AccountRecord, String) {
        let account = AccountRecord {
            id: uuid::Uuid::new_v4().to_string(),
            username: username.into(),
            email: String::new(),
            password_hash: String::new(),
            created_us: 0,
            failed_logins: vec![],
            deleting: false,
        };
        let key = secrets::new_api_key();
        let record = ApiKeyRecord {
            key_hash: secrets::sha256_hex(&key),
            account_id: account.id.clone(),
            username: username.into(),
            email: String::new(),
        };
        let mut t = self.tables();
        t.accounts.insert(username.into(), account.clone());
        t.key_serial += 1;
        let serial = t.key_serial;
        t.keys.insert(record.key_hash.clone(), (record, serial));
        (account, key)
    }

    /// Every device, as stored.
    pub fn devices(&self) -> Vec<DeviceRecord> {
        self.tables().devices.values().cloned().collect()
    }

    /// The claim on a push token.
    pub fn claim(&self, kind: DeviceKind, registration_id: &str) -> Option<PushTokenClaim> {
        self.tables()
            .claims
            .get(&(kind.as_str(), registration_id.to_string()))
            .cloned()
    }

    /// Stores a device and its claim directly, as a concurrent registration
    /// would (counted on its owner's device count).
    pub fn insert_device(&self, mut device: DeviceRecord) {
        let mut t = self.tables();
        device.version = device.version.max(1);
        *t.device_counts.entry(device.owner.clone()).or_default() += 1;
        t.claims.insert(
            (device.kind.as_str(), device.registration_id.clone()),
            PushTokenClaim {
                owner: device.owner.clone(),
                device_id: device.id.clone(),
            },
        );
        t.devices
            .insert((device.owner.clone(), device.id.clone()), device);
    }

    /// Deletes a device record directly, as a concurrent deletion would
    /// (its claim and count left as they are).
    pub fn remove_device(&self, owner: &str, id: &str) {
        self.tables()
            .devices
            .remove(&(owner.to_string(), id.to_string()));
    }

    /// Switches a device on or off directly, as its owner's `PATCH` would
    /// (a write: its version moves on).
    pub fn set_active(&self, owner: &str, id: &str, active: bool) {
        if let Some(d) = self
            .tables()
            .devices
            .get_mut(&(owner.to_string(), id.to_string()))
        {
            d.active = active;
            d.version += 1;
        }
    }

    /// An account's device count, as stored.
    pub fn device_count(&self, owner: &str) -> i64 {
        self.tables().device_counts.get(owner).copied().unwrap_or(0)
    }

    /// Every whitelist token, as stored.
    pub fn tokens(&self) -> Vec<TokenRecord> {
        self.tables()
            .tokens
            .values()
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Marks an account as being deleted, as a deletion's first step does.
    pub fn mark_deleting(&self, username: &str) {
        if let Some(a) = self.tables().accounts.get_mut(username) {
            a.deleting = true;
        }
    }
}

#[async_trait]
impl DeviceStore for MemoryStore {
    async fn list_devices(&self, owner: &str) -> Result<Vec<DeviceRecord>, PortError> {
        self.call("list_devices").await?;
        let t = self.tables();
        Ok(t.devices
            .values()
            .filter(|d| d.owner == owner)
            .cloned()
            .collect())
    }
    async fn get_device(&self, owner: &str, id: &str) -> Result<Option<DeviceRecord>, PortError> {
        self.call("get_device").await?;
        let key = (owner.to_string(), id.to_string());
        Ok(self.tables().devices.get(&key).cloned())
    }
    async fn get_claim(
        &self,
        kind: DeviceKind,
        registration_id: &str,
    ) -> Result<Option<PushTokenClaim>, PortError> {
        self.call("get_claim").await?;
        Ok(self.claim(kind, registration_id))
    }
    /// All or nothing, refused as the DynamoDB transaction is: the account
    /// first, then the device cap, then the registration limit, then any
    /// other condition (a conflict).
    async fn save_device(&self, write: &DeviceWrite) -> Result<(), WriteConflict> {
        self.call("save_device").await?;
        let mut t = self.tables();
        let device = &write.device;
        let key = (device.owner.clone(), device.id.clone());
        let account_ok = t
            .accounts
            .get(&write.owner_username)
            .is_some_and(|a| a.id == device.owner && !a.deleting);
        if !account_ok {
            return Err(WriteConflict::AccountGone);
        }
        let taken_from = match &write.claim {
            ClaimChange::TakeFrom(previous) => Some(previous.owner.clone()),
            _ => None,
        };
        let same_owner = taken_from.as_deref() == Some(device.owner.as_str());
        if write.is_new && !same_owner {
            let count = t.device_counts.get(&device.owner).copied().unwrap_or(0);
            if count >= i64::from(write.device_limit) {
                return Err(WriteConflict::DeviceLimit);
            }
        }
        let counted = LimitKey::DeviceRegistrations {
            account_id: device.owner.clone(),
        };
        if write.is_new {
            let admission =
                super::tokens::peek(&t, &counted, write.now_us, write.registration_limit);
            super::tokens::limited(&counted, admission)?;
        }
        if !device_condition_holds(&t, write) {
            return Err(WriteConflict::Conflict);
        }
        // Every condition holds: the writes of the transaction.
        if write.is_new {
            super::tokens::count(&mut t, &counted, write.now_us, write.registration_limit);
            if !same_owner {
                *t.device_counts.entry(device.owner.clone()).or_default() += 1;
            }
        }
        if let ClaimChange::TakeFrom(previous) = &write.claim {
            t.devices
                .remove(&(previous.owner.clone(), previous.device_id.clone()));
            if !(write.is_new && same_owner) {
                *t.device_counts.entry(previous.owner.clone()).or_default() -= 1;
            }
        }
        if let Some(old) = &write.release_claim_of {
            t.claims.remove(&(device.kind.as_str(), old.clone()));
        }
        t.claims.insert(
            (device.kind.as_str(), device.registration_id.clone()),
            PushTokenClaim {
                owner: device.owner.clone(),
                device_id: device.id.clone(),
            },
        );
        let mut stored = device.clone();
        stored.version = device.version + 1;
        t.devices.insert(key, stored);
        Ok(())
    }
    async fn delete_device(&self, device: &DeviceRecord) -> Result<DeviceRemoval, PortError> {
        self.call("delete_device").await?;
        let mut t = self.tables();
        let key = (device.owner.clone(), device.id.clone());
        if !at_version(&t, device) {
            return Ok(DeviceRemoval::Changed);
        }
        t.devices.remove(&key);
        *t.device_counts.entry(device.owner.clone()).or_default() -= 1;
        let claim_key = (device.kind.as_str(), device.registration_id.clone());
        let endpoint_is_ours = match t.claims.get(&claim_key) {
            None => true,
            Some(c) if c.device_id == device.id => {
                t.claims.remove(&claim_key);
                true
            }
            Some(_) => false,
        };
        Ok(DeviceRemoval::Removed { endpoint_is_ours })
    }
    async fn replace_endpoint(
        &self,
        device: &DeviceRecord,
        old_arn: &str,
        new_arn: &str,
    ) -> Result<bool, PortError> {
        self.call("replace_endpoint").await?;
        let mut t = self.tables();
        let in_first = old_arn == device.endpoint_arn;
        if !in_first && device.alternate_arn.as_deref() != Some(old_arn) {
            return Ok(false);
        }
        Ok(update_at_version(&mut t, device, |d| {
            if in_first {
                d.endpoint_arn = new_arn.into();
            } else {
                d.alternate_arn = Some(new_arn.into());
            }
        }))
    }
    async fn devices_by_endpoint(
        &self,
        endpoint_arn: &str,
    ) -> Result<Vec<DeviceRecord>, PortError> {
        self.call("devices_by_endpoint").await?;
        Ok(self
            .tables()
            .devices
            .values()
            .filter(|d| d.endpoints().any(|e| e == endpoint_arn))
            .cloned()
            .collect())
    }
    async fn deactivate_device(
        &self,
        device: &DeviceRecord,
        failure: &PushFailure,
    ) -> Result<bool, PortError> {
        self.call("deactivate_device").await?;
        Ok(update_at_version(&mut self.tables(), device, |d| {
            d.disable(failure)
        }))
    }
    async fn mark_pushed(&self, device: &DeviceRecord, day: i64) -> Result<bool, PortError> {
        self.call("mark_pushed").await?;
        Ok(update_at_version(&mut self.tables(), device, |d| {
            d.pushed_on(day)
        }))
    }
    async fn reenable_device(&self, device: &DeviceRecord) -> Result<bool, PortError> {
        self.call("reenable_device").await?;
        Ok(update_at_version(&mut self.tables(), device, |d| {
            d.reenable()
        }))
    }
    async fn drop_endpoint(
        &self,
        device: &DeviceRecord,
        dead_arn: &str,
        pushed_on: Option<i64>,
    ) -> Result<bool, PortError> {
        self.call("drop_endpoint").await?;
        let Some(keep) = device.survivor(dead_arn) else {
            return Ok(false);
        };
        Ok(update_at_version(&mut self.tables(), device, |d| {
            d.endpoint_arn = keep.to_string();
            d.alternate_arn = None;
            if let Some(day) = pushed_on {
                d.pushed_on(day);
            }
        }))
    }
}

/// Whether the stored device is still at the version `device` was read at
/// (and exists).
fn at_version(t: &Tables, device: &DeviceRecord) -> bool {
    t.devices
        .get(&(device.owner.clone(), device.id.clone()))
        .is_some_and(|d| d.version == device.version)
}

/// Changes the stored device by `change` and bumps its version, if it is
/// still at the version `device` was read at; `false` (nothing done) if not.
fn update_at_version(
    t: &mut Tables,
    device: &DeviceRecord,
    change: impl FnOnce(&mut DeviceRecord),
) -> bool {
    match t
        .devices
        .get_mut(&(device.owner.clone(), device.id.clone()))
    {
        Some(d) if d.version == device.version => {
            change(d);
            d.version += 1;
            true
        }
        _ => false,
    }
}

/// The conditions of a device save other than its account, cap and limit,
/// as the DynamoDB transaction puts them: the device new or still as read,
/// the claim as the change expects it, the device it takes the token from
/// still holding it (or, for an orphaned claim, still not holding it), and
/// the previous token's claim not another device's.
fn device_condition_holds(t: &Tables, write: &DeviceWrite) -> bool {
    let device = &write.device;
    let key = (device.owner.clone(), device.id.clone());
    let token = &device.registration_id;
    let device_ok = if write.is_new {
        !t.devices.contains_key(&key)
    } else {
        at_version(t, device)
    };
    let claim = t.claims.get(&(device.kind.as_str(), token.clone()));
    let holds_token = |previous: &PushTokenClaim| {
        t.devices
            .get(&(previous.owner.clone(), previous.device_id.clone()))
            .is_some_and(|d| d.registration_id == *token)
    };
    let claim_ok = match &write.claim {
        ClaimChange::Keep => claim.is_some_and(|c| c.device_id == device.id),
        ClaimChange::Create => claim.is_none(),
        ClaimChange::TakeFrom(previous) => {
            claim.is_some_and(|c| c.device_id == previous.device_id) && holds_token(previous)
        }
        ClaimChange::TakeOrphan(previous) => {
            claim.is_some_and(|c| c.device_id == previous.device_id) && !holds_token(previous)
        }
    };
    let release_ok = write.release_claim_of.as_ref().is_none_or(|old| {
        t.claims
            .get(&(device.kind.as_str(), old.clone()))
            .is_none_or(|c| c.device_id == device.id)
    });
    device_ok && claim_ok && release_ok
}
