//! The records the service keeps. Only random identifiers, hashes and the push
//! tokens needed to push: no JIDs, no contact lists, no IP addresses.

use serde::{Deserialize, Serialize};

use crate::time::Micros;

/// Which push service a device is reached through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// Apple Push Notification service (iOS).
    Apns,
    /// Firebase Cloud Messaging, called GCM in the protocol (Android).
    Gcm,
}

impl DeviceKind {
    pub fn from_path(segment: &str) -> Option<Self> {
        match segment {
            "apns" => Some(DeviceKind::Apns),
            "gcm" => Some(DeviceKind::Gcm),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Apns => "apns",
            DeviceKind::Gcm => "gcm",
        }
    }

    /// The token object's key naming a device of this kind.
    pub fn token_field(self) -> &'static str {
        match self {
            DeviceKind::Apns => "apns_device",
            DeviceKind::Gcm => "gcm_device",
        }
    }
}

/// An SNS platform: where an endpoint (or platform application) sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// APNs production: store and TestFlight builds.
    Apns,
    /// The APNs sandbox: development builds.
    ApnsSandbox,
    /// FCM.
    Gcm,
}

impl Platform {
    /// SNS's name of the platform, as in ARNs and as a message's key.
    pub fn sns_name(self) -> &'static str {
        match self {
            Platform::Apns => "APNS",
            Platform::ApnsSandbox => "APNS_SANDBOX",
            Platform::Gcm => "GCM",
        }
    }

    pub fn kind(self) -> DeviceKind {
        match self {
            Platform::Apns | Platform::ApnsSandbox => DeviceKind::Apns,
            Platform::Gcm => DeviceKind::Gcm,
        }
    }

    /// The platform of a platform application's or endpoint's ARN
    /// (`…:app/APNS_SANDBOX/name`, `…:endpoint/GCM/name/id`).
    pub fn of_arn(arn: &str) -> Option<Platform> {
        let (_, rest) = arn
            .split_once(":endpoint/")
            .or_else(|| arn.split_once(":app/"))?;
        match rest.split('/').next()? {
            "APNS" => Some(Platform::Apns),
            "APNS_SANDBOX" => Some(Platform::ApnsSandbox),
            "GCM" => Some(Platform::Gcm),
            _ => None,
        }
    }

    /// The APNs environment a client may name (`production`, `sandbox`).
    pub fn of_environment(name: &str) -> Option<Platform> {
        match name {
            "production" => Some(Platform::Apns),
            "sandbox" => Some(Platform::ApnsSandbox),
            _ => None,
        }
    }

    /// The environment of the platform an endpoint's or application's ARN
    /// names; `unknown` for an ARN of no platform.
    pub fn environment_of_arn(arn: &str) -> &'static str {
        Platform::of_arn(arn).map_or("unknown", Platform::environment)
    }

    pub fn environment(self) -> &'static str {
        match self {
            Platform::Apns => "production",
            Platform::ApnsSandbox => "sandbox",
            Platform::Gcm => "fcm",
        }
    }
}

/// An account, found by its username.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRecord {
    pub id: String,
    pub username: String,
    /// Empty when the account has none.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub created_us: Micros,
    /// Times of the latest failed logins, newest first: the login limit's
    /// sliding log, as stored.
    pub failed_logins: Vec<Micros>,
    /// A deletion began and has not finished: nothing may be added to it.
    pub deleting: bool,
}

/// What an API key (stored only as its SHA-256) tells about its holder.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub key_hash: String,
    pub account_id: String,
    pub username: String,
    pub email: String,
}

/// A device of an account: one app install reachable through one push token.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRecord {
    pub id: String,
    pub owner: String,
    pub kind: DeviceKind,
    pub registration_id: String,
    pub name: Option<String>,
    pub device_id: Option<String>,
    pub active: bool,
    pub created_us: Micros,
    /// The SNS platform endpoint that reaches it; never shown to clients.
    /// While its APNs environment is unknown, its production endpoint.
    pub endpoint_arn: String,
    /// Only while its APNs environment is unknown: its sandbox endpoint. Both
    /// get every knock until one is reported dead (docs/ARCHITECTURE.md,
    /// "APNs environments").
    pub alternate_arn: Option<String>,
    /// How many times the stored record has been written (0: not stored
    /// yet, or stored before records had versions). Every write of a
    /// device is conditional on the version it was decided on and bumps it,
    /// so a decision made on a record that changed meanwhile never lands.
    pub version: u64,
    /// What became of its pushes (its JSON's `push` object).
    pub push: PushRecord,
}

/// What the service keeps of a device's pushes, for its owner to see why a
/// push did or did not arrive (its JSON's `push` object; docs/SECURITY.md
/// says why a day, not a time).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PushRecord {
    /// The push service rejected its token and SNS disabled its endpoint:
    /// the device is inactive (`active` false) until its app registers it
    /// again, gets a new token or SNS enables the endpoint again. An
    /// owner's own `active` overrides it.
    pub disabled: bool,
    /// A push was handed to SNS since it was registered with this token,
    /// turned on again or re-enabled (state `ok`; else `unconfirmed`).
    pub confirmed: bool,
    /// The UTC day (days since the epoch) of the last push handed to SNS.
    pub last_push_day: Option<i64>,
    /// The last failure the push service reported.
    pub last_error: Option<PushFailure>,
}

/// A failure the push service reported for a device: when, and SNS's words
/// (a delivery-failure event's type and message, or `EndpointDisabled` when
/// a knock found its endpoint disabled).
#[derive(Debug, Clone, PartialEq)]
pub struct PushFailure {
    pub at_us: Micros,
    pub reason: String,
}

/// A device's push state, as its owner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushState {
    /// A push was handed to SNS and nothing failed since.
    Ok,
    /// Registered (or re-enabled), never pushed since.
    Unconfirmed,
    /// The push service rejected it (see `last_error`).
    Disabled,
    /// Turned off by its owner.
    Inactive,
}

impl PushState {
    pub fn as_str(self) -> &'static str {
        match self {
            PushState::Ok => "ok",
            PushState::Unconfirmed => "unconfirmed",
            PushState::Disabled => "disabled",
            PushState::Inactive => "inactive",
        }
    }
}

impl DeviceRecord {
    /// Its push state: its owner's `inactive` first, then the push
    /// service's `disabled`.
    pub fn push_state(&self) -> PushState {
        match (self.active, self.push.disabled, self.push.confirmed) {
            (false, true, _) => PushState::Disabled,
            (false, false, _) => PushState::Inactive,
            (true, _, true) => PushState::Ok,
            (true, _, false) => PushState::Unconfirmed,
        }
    }

    /// Its APNs environment as its owner sees it (`None` for FCM):
    /// `unknown` while it has an endpoint in both.
    pub fn environment(&self) -> Option<&'static str> {
        if self.kind != DeviceKind::Apns {
            return None;
        }
        Some(
            match (&self.alternate_arn, Platform::of_arn(&self.endpoint_arn)) {
                (None, Some(platform)) => platform.environment(),
                _ => "unknown",
            },
        )
    }

    /// The environment dimension of its metrics: its APNs environment
    /// (`unknown` while it has two endpoints), or `fcm`.
    pub fn metric_environment(&self) -> &'static str {
        self.environment().unwrap_or("fcm")
    }

    /// As an owner's or app's write leaves it, from `old` as read: `active`
    /// is what the request sent (if anything), `new_token` whether it moves
    /// to another push token, `renewed` whether its endpoints are chosen (and
    /// enabled) anew. The owner's `active` overrides the push service's
    /// verdict; endpoints enabled anew turn on a device only the push
    /// service had turned off; a new token starts afresh, the old token's
    /// last error gone; turned on again it is unconfirmed until pushed,
    /// keeping its last error.
    pub fn written_by_owner(
        &mut self,
        old: &DeviceRecord,
        active: Option<bool>,
        new_token: bool,
        renewed: bool,
    ) {
        match active {
            Some(active) => {
                self.active = active;
                self.push.disabled = false;
            }
            None if renewed && old.push.disabled => {
                self.active = true;
                self.push.disabled = false;
            }
            None => {}
        }
        self.push.confirmed = old.push.confirmed && old.active && self.active && !new_token;
        if new_token {
            self.push.last_error = None;
        }
    }

    /// Whether its endpoints are to be chosen (and enabled) anew when its
    /// owner sends `active`: turned on again after the push service had
    /// disabled it, which it would refuse at once otherwise.
    pub fn revived_by(&self, active: Option<bool>) -> bool {
        self.push.disabled && active == Some(true)
    }

    /// What [`crate::ports::DeviceStore::deactivate_device`] makes of it.
    pub fn disable(&mut self, failure: &PushFailure) {
        self.active = false;
        self.push.disabled = true;
        self.push.confirmed = false;
        self.push.last_error = Some(failure.clone());
    }

    /// What [`crate::ports::DeviceStore::mark_pushed`] makes of it.
    pub fn pushed_on(&mut self, day: i64) {
        self.push.confirmed = true;
        self.push.last_push_day = Some(day);
    }

    /// Whether a push handed to SNS on `day` changes what it shows (else
    /// nothing is written: one write per device per day at most, and none
    /// on a knock's common path).
    pub fn needs_mark(&self, day: i64) -> bool {
        !self.push.confirmed || self.push.last_push_day != Some(day)
    }

    /// What [`crate::ports::DeviceStore::reenable_device`] makes of it.
    pub fn reenable(&mut self) {
        self.active = true;
        self.push.disabled = false;
        self.push.confirmed = false;
    }

    /// Its endpoints: one, or two while its APNs environment is unknown.
    pub fn endpoints(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.endpoint_arn.as_str()).chain(self.alternate_arn.as_deref())
    }

    /// With two endpoints, the one that is not `dead_arn` (if that is the
    /// other): the endpoint the device keeps when it settles.
    pub fn survivor(&self, dead_arn: &str) -> Option<&str> {
        let alternate = self.alternate_arn.as_deref()?;
        if dead_arn == self.endpoint_arn {
            Some(alternate)
        } else if dead_arn == alternate {
            Some(&self.endpoint_arn)
        } else {
            None
        }
    }
}

/// Which device currently holds a push token (one device in the whole service).
#[derive(Debug, Clone, PartialEq)]
pub struct PushTokenClaim {
    pub owner: String,
    pub device_id: String,
}

/// A whitelist token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub token: String,
    pub owner: String,
    pub device_id: String,
    pub kind: DeviceKind,
    pub name: Option<String>,
    pub created_us: Micros,
    pub expires_us: Micros,
}

impl TokenRecord {
    pub fn is_live(&self, now_us: Micros) -> bool {
        self.expires_us > now_us
    }
}
