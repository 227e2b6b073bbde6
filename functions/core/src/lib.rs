//! The ChatSecure Push protocol v3 and its rules.
//!
//! This crate knows PROTOCOL.md: request bodies in three encodings, validation,
//! the JSON shapes, accounts, devices, whitelist tokens, knocks and their push
//! payloads. It reaches storage and push delivery only through the ports in
//! [`ports`], so the same operations run in Lambda, in the local router and in
//! unit tests. No AWS type appears here.

pub mod accounts;
pub mod devices;
pub mod error;
pub mod feedback;
pub mod fields;
pub mod knock;
pub mod metrics;
pub mod model;
pub mod page;
pub mod payload;
pub mod ports;
pub mod request;
pub mod secrets;
pub mod time;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

pub use error::ApiError;
pub use request::{ApiRequest, ApiResponse};

/// Settings every operation may consult; read once at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a whitelist token lives (PROTOCOL.md: default 30 days).
    pub token_lifetime: Duration,
    /// The XEP-0357 relay JID that `GET pubsub/` answers with.
    pub pubsub_jid: String,
    /// Overrides the scheme and host used for absolute `next`/`previous` URLs.
    pub public_base_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            token_lifetime: Duration::from_secs(30 * 24 * 3600),
            pubsub_jid: String::new(),
            public_base_url: None,
        }
    }
}

/// Everything an operation needs from the outside world.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn ports::Store>,
    pub push: Arc<dyn ports::PushGateway>,
    pub clock: Arc<dyn ports::Clock>,
    pub settings: Settings,
}
