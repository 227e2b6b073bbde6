//! The small interfaces through which the rules reach storage, push delivery
//! and time. `push-aws` implements them with DynamoDB and SNS; unit tests use
//! in-memory fakes.

use async_trait::async_trait;

use crate::model::{
    AccountRecord, ApiKeyRecord, DeviceKind, DeviceRecord, Platform, PushFailure, PushTokenClaim,
    TokenRecord,
};
use crate::time::Micros;
use crate::Limit;

/// A failure of a dependency, by meaning.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Unreachable, timing out or throttling: the client may retry (`503`).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Another request is changing the same item right now (a DynamoDB
    /// transaction conflict): the operation may be retried from its reads.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The dependency refused a value the client sent (e.g. SNS calling a
    /// push token invalid): the client's mistake (`400`).
    #[error("refused: {0}")]
    Refused(String),
    /// Anything else: a bug or misconfiguration (`500`).
    #[error("internal: {0}")]
    Internal(String),
}

/// Which fixed-window counter a rate-limited action is counted on.
#[derive(Debug, Clone, PartialEq)]
pub enum LimitKey {
    /// Token creations of one account.
    TokenCreations { account_id: String },
    /// Account creations, service-wide.
    Signups,
    /// Account creations from one source (a keyed hash of its address).
    SignupsFrom { source: String },
    /// New devices of one account.
    DeviceRegistrations { account_id: String },
}

impl LimitKey {
    pub fn name(&self) -> LimitName {
        match self {
            LimitKey::TokenCreations { .. } => LimitName::TokenCreations,
            LimitKey::Signups => LimitName::Signups,
            LimitKey::SignupsFrom { .. } => LimitName::SignupsPerSource,
            LimitKey::DeviceRegistrations { .. } => LimitName::DeviceRegistrations,
        }
    }
}

/// Every abuse limit, as the `LimitHits` metric names it (its `Limit`
/// dimension) and docs/SECURITY.md lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitName {
    KnocksPerToken,
    FailedLogins,
    TokenCreations,
    Signups,
    SignupsPerSource,
    DeviceRegistrations,
}

impl LimitName {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitName::KnocksPerToken => "KnocksPerToken",
            LimitName::FailedLogins => "FailedLogins",
            LimitName::TokenCreations => "TokenCreations",
            LimitName::Signups => "Signups",
            LimitName::SignupsPerSource => "SignupsPerSource",
            LimitName::DeviceRegistrations => "DeviceRegistrations",
        }
    }
}

/// The outcome of counting a hit against a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Over the limit; retry after this many seconds.
    Limited {
        retry_after_seconds: u64,
    },
    /// The item the hit is counted on does not exist (or has expired).
    Missing,
}

/// The outcome of counting a knock against its token.
#[derive(Debug, Clone, PartialEq)]
pub enum KnockAdmission {
    /// No live token with that value.
    Unknown,
    Admitted(TokenRecord),
    /// Over the limit; retry after this many seconds.
    Limited {
        retry_after_seconds: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CreateAccountError {
    #[error("username taken")]
    UsernameTaken,
    #[error("email taken")]
    EmailTaken,
    #[error(transparent)]
    Port(#[from] PortError),
}

/// What a device save must do to the push-token claim, atomically with it.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimChange {
    /// The claim already names this device: on condition that it still does.
    Keep,
    /// Nobody holds the token: claim it.
    Create,
    /// Another device holds it: take it over and delete that device record,
    /// on condition that the claim and that device's push token are still
    /// as read.
    TakeFrom(PushTokenClaim),
    /// The claim names a device that no longer exists (or no longer has
    /// this push token): the token is free to take, on condition that the
    /// claim is still as read and that device still lacks the token.
    TakeOrphan(PushTokenClaim),
}

/// One atomic device write (a DynamoDB transaction in production).
#[derive(Debug, Clone)]
pub struct DeviceWrite {
    pub device: DeviceRecord,
    /// A new device counts against its owner's cap: at most this many.
    pub device_limit: u32,
    /// A new device is also counted against this registration limit, at
    /// this time, in the same write.
    pub registration_limit: Limit,
    pub now_us: Micros,
    /// The owner's username: the write requires that account to exist and not
    /// to be being deleted.
    pub owner_username: String,
    /// The device must not exist yet; else it must still be at
    /// `device.version`, the version it was read at (the store writes the
    /// next one).
    pub is_new: bool,
    pub claim: ClaimChange,
    /// The claim of the device's previous push token, to release.
    pub release_claim_of: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteConflict {
    /// A condition failed: someone else changed the same facts; re-read and retry.
    #[error("conflict")]
    Conflict,
    /// The owning account is gone or being deleted: nothing may be added to it.
    #[error("account gone")]
    AccountGone,
    /// The owning account has as many devices as it may have.
    #[error("device limit reached")]
    DeviceLimit,
    /// Over the limit that the write also counted on; retry after this
    /// many seconds.
    #[error("limit reached")]
    Limited {
        limit: LimitName,
        retry_after_seconds: u64,
    },
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Storage, one trait per aggregate; [`Store`] is all of them, which is
/// what an operation gets (`Deps::store`). Bring the trait of the methods
/// you call into scope.
pub trait Store: AccountStore + DeviceStore + TokenStore + LimitStore {}

impl<T: AccountStore + DeviceStore + TokenStore + LimitStore> Store for T {}

/// Accounts, their API keys and their deletion.
#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn get_account(&self, username: &str) -> Result<Option<AccountRecord>, PortError>;
    /// Creates the account and its first API key; usernames and emails unique.
    async fn create_account(
        &self,
        account: &AccountRecord,
        key: &ApiKeyRecord,
    ) -> Result<(), CreateAccountError>;
    /// Logs a failed login in the username's sliding log: one conditional
    /// write, refused (`Limited`) when the log is already full.
    async fn log_failed_login(
        &self,
        username: &str,
        now_us: Micros,
        limit: Limit,
    ) -> Result<Admission, PortError>;
    /// A successful login: stores the new API key and clears the account's
    /// failed-login log, atomically and only if that log is not full
    /// (`Limited`) and the account `key.account_id` still exists and is not
    /// being deleted (`Missing`).
    async fn add_login_key(
        &self,
        key: &ApiKeyRecord,
        now_us: Micros,
        limit: Limit,
    ) -> Result<Admission, PortError>;
    /// Keeps the newest `keep` API keys of an account and revokes the rest;
    /// returns how many were revoked.
    async fn trim_api_keys(&self, account_id: &str, keep: u32) -> Result<usize, PortError>;
    async fn get_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, PortError>;
    /// Marks the account as being deleted, from which moment nothing can be
    /// added to it (keys, devices; tokens need a device). `false` when there
    /// is no account `account_id` under that username.
    async fn begin_account_deletion(
        &self,
        account_id: &str,
        username: &str,
    ) -> Result<bool, PortError>;
    /// After its devices are gone: removes what else the account owns, its
    /// API keys, then its email and username. Resumable.
    async fn finish_account_deletion(
        &self,
        account_id: &str,
        username: &str,
        email: &str,
    ) -> Result<(), PortError>;
}

/// Devices and the claims on their push tokens.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    async fn list_devices(&self, owner: &str) -> Result<Vec<DeviceRecord>, PortError>;
    async fn get_device(&self, owner: &str, id: &str) -> Result<Option<DeviceRecord>, PortError>;
    async fn get_claim(
        &self,
        kind: DeviceKind,
        registration_id: &str,
    ) -> Result<Option<PushTokenClaim>, PortError>;
    async fn save_device(&self, write: &DeviceWrite) -> Result<(), WriteConflict>;
    /// Deletes a device and releases its claim, on condition that the
    /// device is still at `device.version` (else `Changed`).
    async fn delete_device(&self, device: &DeviceRecord) -> Result<DeviceRemoval, PortError>;
    /// Points a device at `new_arn` in place of its endpoint `old_arn`, on
    /// condition that it is still at `device.version`; `false` when it is
    /// gone or changed meanwhile.
    async fn replace_endpoint(
        &self,
        device: &DeviceRecord,
        old_arn: &str,
        new_arn: &str,
    ) -> Result<bool, PortError>;
    /// The devices with this endpoint, as either of their two (feedback). May
    /// read a moment late.
    async fn devices_by_endpoint(&self, endpoint_arn: &str)
        -> Result<Vec<DeviceRecord>, PortError>;
    /// The push service rejected the device's token: it becomes inactive,
    /// `disabled`, with `failure` as its last error
    /// ([`DeviceRecord::disable`]), on condition that it is still at
    /// `device.version`; `false` when it is gone or changed meanwhile.
    async fn deactivate_device(
        &self,
        device: &DeviceRecord,
        failure: &PushFailure,
    ) -> Result<bool, PortError>;
    /// A push was handed to SNS for it on `day` ([`DeviceRecord::pushed_on`]),
    /// on condition that it is still at `device.version`; `false` when it is
    /// gone or changed meanwhile.
    async fn mark_pushed(&self, device: &DeviceRecord, day: i64) -> Result<bool, PortError>;
    /// SNS enabled its endpoint again: active, unconfirmed
    /// ([`DeviceRecord::reenable`]), on condition that it is still at
    /// `device.version`; `false` when it is gone or changed meanwhile.
    async fn reenable_device(&self, device: &DeviceRecord) -> Result<bool, PortError>;
    /// A device with two endpoints (APNs environment unknown) keeps the one
    /// that is not `dead_arn` — and, with `pushed_on`, is marked pushed that
    /// day in the same write — on condition that it is still at
    /// `device.version`; `false` when it changed meanwhile.
    async fn drop_endpoint(
        &self,
        device: &DeviceRecord,
        dead_arn: &str,
        pushed_on: Option<i64>,
    ) -> Result<bool, PortError>;
}

/// Whitelist tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new token if the value is unused and the device still exists,
    /// counting it on the owner's token-creation limit in the same write.
    async fn create_token(&self, token: &TokenRecord, limit: Limit) -> Result<(), WriteConflict>;
    async fn get_token(&self, token: &str) -> Result<Option<TokenRecord>, PortError>;
    /// `owner`'s token (expired or not), read from the owner's own items.
    async fn get_own_token(
        &self,
        owner: &str,
        token: &str,
    ) -> Result<Option<TokenRecord>, PortError>;
    /// The knock's token lookup: adds the knock to the token's sliding log
    /// in the same conditional write that reads the token (one call).
    async fn admit_knock(
        &self,
        token: &str,
        now_us: Micros,
        limit: Limit,
    ) -> Result<KnockAdmission, PortError>;
    /// How many of `owner`'s tokens are live at `now_us`.
    async fn count_live_tokens(&self, owner: &str, now_us: Micros) -> Result<usize, PortError>;
    async fn list_tokens(&self, owner: &str) -> Result<Vec<TokenRecord>, PortError>;
    /// Renames a live token of `owner`; `None` when there is none.
    async fn rename_token(
        &self,
        owner: &str,
        token: &str,
        name: Option<&str>,
        now_us: Micros,
    ) -> Result<Option<TokenRecord>, PortError>;
    /// Deletes a live token of `owner`; `false` when there is none.
    async fn delete_token(
        &self,
        owner: &str,
        token: &str,
        now_us: Micros,
    ) -> Result<bool, PortError>;
    async fn delete_device_tokens(&self, owner: &str, device_id: &str) -> Result<(), PortError>;
}

/// Counters of the fixed-window limits.
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Counts one hit on the fixed-window counter of `key` (one conditional
    /// write, creating the window's counter item if needed).
    async fn count_hit(
        &self,
        key: &LimitKey,
        now_us: Micros,
        limit: Limit,
    ) -> Result<Admission, PortError>;
}

/// The key that hides sign-up sources in their counters, kept outside the
/// table (a generated secret: a copy of the table alone cannot tell which
/// network a counter counts; docs/SECURITY.md).
#[async_trait]
pub trait SourceKeys: Send + Sync {
    /// The key of day `day` (days since the epoch): the same in every
    /// instance, and unlinkable to another day's without the secret.
    async fn key_of_day(&self, day: i64) -> Result<String, PortError>;
}

/// What deleting a device record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRemoval {
    /// It is gone or changed since it was read: read it again and decide
    /// again.
    Changed,
    /// Deleted. `endpoint_is_ours`: its push token was still its own, so its
    /// SNS endpoint serves no other device and may be deleted; otherwise the
    /// token (and with it the endpoint) moved to another device meanwhile.
    Removed { endpoint_is_ours: bool },
}

/// A push for one device, already encoded for its platform.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    /// The platform payload (APNs JSON or FCM JSON), as a string.
    pub payload: String,
    /// APNs only: `alert` or `background`.
    pub apns_push_type: Option<&'static str>,
    /// APNs only: `10` or `5`.
    pub apns_priority: Option<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The endpoint is disabled (the push service reported the token dead).
    #[error("endpoint disabled")]
    Disabled,
    /// The endpoint no longer exists.
    #[error("endpoint gone")]
    Gone,
    #[error(transparent)]
    Port(#[from] PortError),
}

#[async_trait]
pub trait PushGateway: Send + Sync {
    /// The platforms devices of this kind are pushed through (the app's
    /// platform applications; APNs production first). Empty: not served.
    fn platforms(&self, kind: DeviceKind) -> Vec<Platform>;
    /// Returns an enabled endpoint carrying `token` on `platform`: the `known`
    /// one updated if it still exists, else a new (or the existing identical)
    /// one.
    async fn ensure_endpoint(
        &self,
        platform: Platform,
        token: &str,
        known: Option<&str>,
    ) -> Result<String, PortError>;
    /// Deletes an endpoint; deleting one that is gone succeeds.
    async fn delete_endpoint(&self, arn: &str) -> Result<(), PortError>;
    /// `Some(enabled)` for an existing endpoint, `None` when it is gone.
    async fn endpoint_enabled(&self, arn: &str) -> Result<Option<bool>, PortError>;
    async fn publish(&self, arn: &str, kind: DeviceKind, push: &Push) -> Result<(), PublishError>;
}

pub trait Clock: Send + Sync {
    fn now_us(&self) -> Micros;
}

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_us(&self) -> Micros {
        chrono::Utc::now().timestamp_micros()
    }
}
