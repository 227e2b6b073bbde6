//! A whole-store snapshot of the memory store, for checks that look at
//! everything at once (the explorer's invariants, `infra/explore`). Read in
//! one lock: a consistent picture, as of one moment.

use super::store::MemoryStore;
use crate::model::{
    AccountRecord, ApiKeyRecord, DeviceKind, DeviceRecord, PushTokenClaim, TokenRecord,
};

/// Every fact the memory store holds, as of one moment.
#[derive(Debug, Clone, Default)]
pub struct StoreSnapshot {
    pub accounts: Vec<AccountRecord>,
    /// (lower-cased email, username).
    pub emails: Vec<(String, String)>,
    pub api_keys: Vec<ApiKeyRecord>,
    pub devices: Vec<DeviceRecord>,
    /// (kind, push token, claim).
    pub claims: Vec<(DeviceKind, String, PushTokenClaim)>,
    pub tokens: Vec<TokenRecord>,
    /// Each account's device count, as the device writes keep it.
    pub device_counts: Vec<(String, i64)>,
    /// The keys of the fixed-window counters (`"<limit key>/<window>"`).
    pub counters: Vec<String>,
}

impl MemoryStore {
    /// Everything the store holds, read at once.
    pub fn snapshot(&self) -> StoreSnapshot {
        let t = self.tables();
        StoreSnapshot {
            accounts: t.accounts.values().cloned().collect(),
            emails: t
                .emails
                .iter()
                .map(|(e, u)| (e.clone(), u.clone()))
                .collect(),
            api_keys: t.keys.values().map(|(k, _)| k.clone()).collect(),
            devices: t.devices.values().cloned().collect(),
            claims: t
                .claims
                .iter()
                .filter_map(|((kind, token), claim)| {
                    Some((DeviceKind::from_path(kind)?, token.clone(), claim.clone()))
                })
                .collect(),
            tokens: t.tokens.values().map(|(t, _)| t.clone()).collect(),
            device_counts: t
                .device_counts
                .iter()
                .map(|(o, n)| (o.clone(), *n))
                .collect(),
            counters: t.counters.keys().cloned().collect(),
        }
    }
}
