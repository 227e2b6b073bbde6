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
}

impl DeviceRecord {
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
