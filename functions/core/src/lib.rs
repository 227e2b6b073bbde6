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
    /// Knocks one whitelist token may make per window.
    pub knock_limit: Limit,
    /// Failed logins per username per window before the username is locked.
    pub login_limit: Limit,
    /// Whitelist tokens one API key may create per window.
    pub token_limit: Limit,
    /// Accounts the whole service creates per window.
    pub signup_limit: Limit,
}

/// A rate limit: at most `max` hits per `window` (`max == 0`: no limit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

impl Limit {
    /// The window `now_us` falls in, and the seconds until it ends.
    pub fn window_at(&self, now_us: time::Micros) -> (i64, u64) {
        let len = i64::try_from(self.window.as_micros())
            .unwrap_or(i64::MAX)
            .max(1);
        let w = now_us.div_euclid(len);
        let end = (w + 1).saturating_mul(len);
        (
            w,
            u64::try_from((end - now_us + 999_999) / 1_000_000)
                .unwrap_or(1)
                .max(1),
        )
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            token_lifetime: Duration::from_secs(30 * 24 * 3600),
            pubsub_jid: String::new(),
            public_base_url: None,
            knock_limit: Limit {
                max: 10,
                window: Duration::from_secs(60),
            },
            login_limit: Limit {
                max: 10,
                window: Duration::from_secs(15 * 60),
            },
            token_limit: Limit {
                max: 200,
                window: Duration::from_secs(3600),
            },
            signup_limit: Limit {
                max: 1000,
                window: Duration::from_secs(60),
            },
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
