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
    pub endpoint_arn: String,
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
