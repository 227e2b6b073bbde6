//! The store in memory: its tables, and its devices (accounts:
//! `accounts.rs`; tokens and limits: `tokens.rs`).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use super::{Fault, Faults};
use crate::model::{
    AccountRecord, ApiKeyRecord, DeviceKind, DeviceRecord, PushTokenClaim, TokenRecord,
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
    pub(super) salts: BTreeMap<i64, String>,
}

/// The store, in memory.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    faults: Faults,
    latency: Duration,
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

    /// Every call starts here: its latency, then an injected failure if any.
    pub(super) async fn call(&self, name: &str) -> Result<(), PortError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        self.faults.check(name)
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

    /// Stores a device and its claim directly, as a concurrent registration would.
    pub fn insert_device(&self, device: DeviceRecord) {
        let mut t = self.tables();
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

    /// Deletes a device record directly, as a concurrent deletion would.
    pub fn remove_device(&self, owner: &str, id: &str) {
        self.tables()
            .devices
            .remove(&(owner.to_string(), id.to_string()));
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
        let claim_key = (device.kind.as_str(), device.registration_id.clone());
        let account_ok = t
            .accounts
            .get(&write.owner_username)
            .is_some_and(|a| a.id == device.owner && !a.deleting);
        if !account_ok {
            return Err(WriteConflict::AccountGone);
        }
        if write.is_new {
            let owned = t.devices.keys().filter(|(o, _)| *o == device.owner).count();
            let taken_over =
                matches!(&write.claim, ClaimChange::TakeFrom(c) if c.owner == device.owner);
            if owned.saturating_sub(usize::from(taken_over)) >= write.device_limit as usize {
                return Err(WriteConflict::DeviceLimit);
            }
        }
        let claim_holds = match &write.claim {
            ClaimChange::Keep => t
                .claims
                .get(&claim_key)
                .is_some_and(|c| c.device_id == device.id),
            ClaimChange::Create => !t.claims.contains_key(&claim_key),
            ClaimChange::TakeFrom(previous) => t.claims.get(&claim_key) == Some(previous),
        };
        if t.devices.contains_key(&key) == write.is_new || !claim_holds {
            return Err(WriteConflict::Conflict);
        }
        if write.is_new {
            let counted = LimitKey::DeviceRegistrations {
                account_id: device.owner.clone(),
            };
            super::tokens::limited(
                &counted,
                super::tokens::count(&mut t, &counted, write.now_us, write.registration_limit),
            )?;
        }
        if let ClaimChange::TakeFrom(previous) = &write.claim {
            t.devices
                .remove(&(previous.owner.clone(), previous.device_id.clone()));
        }
        if let Some(old) = &write.release_claim_of {
            let old_key = (device.kind.as_str(), old.clone());
            if t.claims
                .get(&old_key)
                .is_some_and(|c| c.device_id == device.id)
            {
                t.claims.remove(&old_key);
            }
        }
        t.claims.insert(
            claim_key,
            PushTokenClaim {
                owner: device.owner.clone(),
                device_id: device.id.clone(),
            },
        );
        t.devices.insert(key, device.clone());
        Ok(())
    }
    async fn delete_device(&self, device: &DeviceRecord) -> Result<DeviceRemoval, PortError> {
        self.call("delete_device").await?;
        let mut t = self.tables();
        if t.devices
            .remove(&(device.owner.clone(), device.id.clone()))
            .is_none()
        {
            return Ok(DeviceRemoval::Gone);
        }
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
        new_arn: &str,
    ) -> Result<bool, PortError> {
        self.call("replace_endpoint").await?;
        let mut t = self.tables();
        match t
            .devices
            .get_mut(&(device.owner.clone(), device.id.clone()))
        {
            Some(d) if d.endpoint_arn == device.endpoint_arn => {
                d.endpoint_arn = new_arn.into();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn set_device_active(
        &self,
        owner: &str,
        id: &str,
        active: bool,
    ) -> Result<(), PortError> {
        self.call("set_device_active").await?;
        if let Some(d) = self
            .tables()
            .devices
            .get_mut(&(owner.to_string(), id.to_string()))
        {
            d.active = active;
        }
        Ok(())
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
    async fn deactivate_device(&self, device: &DeviceRecord) -> Result<bool, PortError> {
        self.call("deactivate_device").await?;
        let mut t = self.tables();
        match t
            .devices
            .get_mut(&(device.owner.clone(), device.id.clone()))
        {
            Some(d)
                if d.endpoint_arn == device.endpoint_arn
                    && d.alternate_arn.is_none()
                    && d.active =>
            {
                d.active = false;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn drop_endpoint(
        &self,
        device: &DeviceRecord,
        dead_arn: &str,
    ) -> Result<bool, PortError> {
        self.call("drop_endpoint").await?;
        let mut t = self.tables();
        let Some(keep) = device.survivor(dead_arn) else {
            return Ok(false);
        };
        match t
            .devices
            .get_mut(&(device.owner.clone(), device.id.clone()))
        {
            Some(d)
                if d.endpoint_arn == device.endpoint_arn
                    && d.alternate_arn == device.alternate_arn =>
            {
                d.endpoint_arn = keep.to_string();
                d.alternate_arn = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
