//! Wrappers of the store and push ports, around any of them (the memory
//! ones or the real DynamoDB and SNS adapters), that land a chosen
//! concurrent change just before a chosen call, or lose the answer of a
//! chosen call after it applied — deterministically, by the call's (port
//! method's) name. The targeted interleavings (`interleavings.rs`) run
//! through them on both kinds of store.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use crate::model::{
    AccountRecord, ApiKeyRecord, DeviceKind, DeviceRecord, Platform, PushFailure, PushTokenClaim,
    TokenRecord,
};
use crate::ports::{
    AccountStore, Admission, CreateAccountError, DeviceRemoval, DeviceStore, DeviceWrite,
    KnockAdmission, LimitKey, LimitStore, PortError, PublishError, Push, PushGateway, TokenStore,
    WriteConflict,
};
use crate::time::Micros;
use crate::Limit;

/// A concurrent change a test lands just before a chosen call.
pub type Interleaved = Box<dyn FnOnce() -> futures_util::future::BoxFuture<'static, ()> + Send>;

/// What is to happen at which call: changes to land before it, answers to
/// lose after it.
#[derive(Default)]
pub struct Script {
    before: Mutex<HashMap<String, VecDeque<Interleaved>>>,
    lost: Mutex<HashMap<String, usize>>,
    /// Every endpoint `ensure_endpoint` returned, in order.
    ensured: Mutex<Vec<String>>,
}

impl Script {
    /// Lands `change` (another request, say, run through the operations
    /// with the same deps) just before the next call of `call` not yet
    /// given one — between an operation's reads and its write, where AWS
    /// lets other requests in. Queue a no-op first to land it before the
    /// second call instead.
    pub fn before<F>(&self, call: &str, change: impl FnOnce() -> F + Send + 'static)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.before
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(call.to_string())
            .or_default()
            .push_back(Box::new(move || Box::pin(change())));
    }

    /// The next `times` successful calls of `call` take effect, and then
    /// answer `Unavailable`: every attempt's answer lost, as when the SDK
    /// runs out of retries on a write AWS applied.
    pub fn lose_answer(&self, call: &str, times: usize) {
        *self
            .lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(call.to_string())
            .or_default() += times;
    }

    /// Every endpoint the push port's `ensure_endpoint` returned so far.
    pub fn ensured(&self) -> Vec<String> {
        self.ensured
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Runs the change queued for this call of `call`, if any.
    pub(crate) async fn enter(&self, call: &str) {
        let change = self
            .before
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(call)
            .and_then(VecDeque::pop_front);
        if let Some(change) = change {
            change().await;
        }
    }

    /// Whether this (successful) call of `call` is to lose its answer.
    fn loses(&self, call: &str) -> bool {
        let mut lost = self.lost.lock().unwrap_or_else(PoisonError::into_inner);
        match lost.get_mut(call) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }
}

/// A port `P`, with a [`Script`] played at its calls.
pub struct Interposed<P: ?Sized> {
    inner: Arc<P>,
    script: Arc<Script>,
}

impl<P: ?Sized> Interposed<P> {
    pub fn new(inner: Arc<P>, script: Arc<Script>) -> Self {
        Interposed { inner, script }
    }
}

/// One call through: the change queued before it, the call, its answer
/// lost if the script says so.
macro_rules! through {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {{
        let name = stringify!($method);
        $self.script.enter(name).await;
        let result = $self.inner.$method($($arg),*).await;
        if result.is_ok() && $self.script.loses(name) {
            return Err(PortError::Unavailable(format!("{name}: answer lost (scripted)")).into());
        }
        result
    }};
}

#[async_trait]
impl<P: AccountStore + ?Sized> AccountStore for Interposed<P> {
    async fn get_account(&self, username: &str) -> Result<Option<AccountRecord>, PortError> {
        through!(self.get_account(username))
    }
    async fn create_account(
        &self,
        account: &AccountRecord,
        key: &ApiKeyRecord,
    ) -> Result<(), CreateAccountError> {
        through!(self.create_account(account, key))
    }
    async fn log_failed_login(
        &self,
        username: &str,
        now_us: Micros,
        limit: Limit,
    ) -> Result<Admission, PortError> {
        through!(self.log_failed_login(username, now_us, limit))
    }
    async fn add_login_key(
        &self,
        key: &ApiKeyRecord,
        now_us: Micros,
        limit: Limit,
    ) -> Result<Admission, PortError> {
        through!(self.add_login_key(key, now_us, limit))
    }
    async fn trim_api_keys(&self, account_id: &str, keep: u32) -> Result<usize, PortError> {
        through!(self.trim_api_keys(account_id, keep))
    }
    async fn get_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, PortError> {
        through!(self.get_api_key(key_hash))
    }
    async fn begin_account_deletion(
        &self,
        account_id: &str,
        username: &str,
    ) -> Result<bool, PortError> {
        through!(self.begin_account_deletion(account_id, username))
    }
    async fn finish_account_deletion(
        &self,
        account_id: &str,
        username: &str,
        email: &str,
    ) -> Result<(), PortError> {
        through!(self.finish_account_deletion(account_id, username, email))
    }
}

#[async_trait]
impl<P: DeviceStore + ?Sized> DeviceStore for Interposed<P> {
    async fn list_devices(&self, owner: &str) -> Result<Vec<DeviceRecord>, PortError> {
        through!(self.list_devices(owner))
    }
    async fn get_device(&self, owner: &str, id: &str) -> Result<Option<DeviceRecord>, PortError> {
        through!(self.get_device(owner, id))
    }
    async fn get_claim(
        &self,
        kind: DeviceKind,
        registration_id: &str,
    ) -> Result<Option<PushTokenClaim>, PortError> {
        through!(self.get_claim(kind, registration_id))
    }
    async fn save_device(&self, write: &DeviceWrite) -> Result<(), WriteConflict> {
        through!(self.save_device(write))
    }
    async fn delete_device(&self, device: &DeviceRecord) -> Result<DeviceRemoval, PortError> {
        through!(self.delete_device(device))
    }
    async fn replace_endpoint(
        &self,
        device: &DeviceRecord,
        old_arn: &str,
        new_arn: &str,
    ) -> Result<bool, PortError> {
        through!(self.replace_endpoint(device, old_arn, new_arn))
    }
    async fn devices_by_endpoint(
        &self,
        endpoint_arn: &str,
    ) -> Result<Vec<DeviceRecord>, PortError> {
        through!(self.devices_by_endpoint(endpoint_arn))
    }
    async fn deactivate_device(
        &self,
        device: &DeviceRecord,
        failure: &PushFailure,
    ) -> Result<bool, PortError> {
        through!(self.deactivate_device(device, failure))
    }
    async fn mark_pushed(&self, device: &DeviceRecord, day: i64) -> Result<bool, PortError> {
        through!(self.mark_pushed(device, day))
    }
    async fn reenable_device(&self, device: &DeviceRecord) -> Result<bool, PortError> {
        through!(self.reenable_device(device))
    }
    async fn drop_endpoint(
        &self,
        device: &DeviceRecord,
        dead_arn: &str,
        pushed_on: Option<i64>,
    ) -> Result<bool, PortError> {
        through!(self.drop_endpoint(device, dead_arn, pushed_on))
    }
}

#[async_trait]
impl<P: TokenStore + ?Sized> TokenStore for Interposed<P> {
    async fn create_token(&self, token: &TokenRecord, limit: Limit) -> Result<(), WriteConflict> {
        through!(self.create_token(token, limit))
    }
    async fn get_token(&self, token: &str) -> Result<Option<TokenRecord>, PortError> {
        through!(self.get_token(token))
    }
    async fn get_own_token(
        &self,
        owner: &str,
        token: &str,
    ) -> Result<Option<TokenRecord>, PortError> {
        through!(self.get_own_token(owner, token))
    }
    async fn admit_knock(
        &self,
        token: &str,
        now_us: Micros,
        limit: Limit,
    ) -> Result<KnockAdmission, PortError> {
        through!(self.admit_knock(token, now_us, limit))
    }
    async fn count_live_tokens(&self, owner: &str, now_us: Micros) -> Result<usize, PortError> {
        through!(self.count_live_tokens(owner, now_us))
    }
    async fn list_tokens(&self, owner: &str) -> Result<Vec<TokenRecord>, PortError> {
        through!(self.list_tokens(owner))
    }
    async fn rename_token(
        &self,
        owner: &str,
        token: &str,
        name: Option<&str>,
        now_us: Micros,
    ) -> Result<Option<TokenRecord>, PortError> {
        through!(self.rename_token(owner, token, name, now_us))
    }
    async fn delete_token(
        &self,
        owner: &str,
        token: &str,
        now_us: Micros,
    ) -> Result<bool, PortError> {
        through!(self.delete_token(owner, token, now_us))
    }
    async fn delete_device_tokens(&self, owner: &str, device_id: &str) -> Result<(), PortError> {
        through!(self.delete_device_tokens(owner, device_id))
    }
}

#[async_trait]
impl<P: LimitStore + ?Sized> LimitStore for Interposed<P> {
    async fn count_hit(
        &self,
        key: &LimitKey,
        now_us: Micros,
        limit: Limit,
    ) -> Result<Admission, PortError> {
        through!(self.count_hit(key, now_us, limit))
    }
}

#[async_trait]
impl<P: PushGateway + ?Sized> PushGateway for Interposed<P> {
    fn platforms(&self, kind: DeviceKind) -> Vec<Platform> {
        self.inner.platforms(kind)
    }
    async fn ensure_endpoint(
        &self,
        platform: Platform,
        token: &str,
        known: Option<&str>,
    ) -> Result<String, PortError> {
        let arn = through!(self.ensure_endpoint(platform, token, known))?;
        self.script
            .ensured
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(arn.clone());
        Ok(arn)
    }
    async fn delete_endpoint(&self, arn: &str) -> Result<(), PortError> {
        through!(self.delete_endpoint(arn))
    }
    async fn endpoint_enabled(&self, arn: &str) -> Result<Option<bool>, PortError> {
        through!(self.endpoint_enabled(arn))
    }
    async fn publish(&self, arn: &str, kind: DeviceKind, push: &Push) -> Result<(), PublishError> {
        through!(self.publish(arn, kind, push))
    }
}
