//! The ChatSecure Push protocol v3 and its rules.
//!
//! This crate knows PROTOCOL.md: request bodies in three encodings, validation,
//! the JSON shapes, accounts, devices, whitelist tokens, knocks and their push
//! payloads. It reaches storage and push delivery only through the ports in
//! [`ports`], so the same operations run in Lambda, in the local router and in
//! unit tests. No AWS type appears here.

pub mod accounts;
pub mod budget;
pub mod devices;
pub mod entropy;
pub mod error;
pub mod feedback;
pub mod fields;
#[cfg(test)]
mod in_process;
pub mod knock;
pub mod metrics;
pub mod model;
pub mod page;
pub mod payload;
pub mod ports;
pub mod request;
pub mod response;
pub mod retry;
pub mod secrets;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

pub use error::ApiError;
pub use request::ApiRequest;
pub use response::ApiResponse;

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
    /// Whitelist tokens one account may create per window.
    pub token_limit: Limit,
    /// Accounts the whole service creates per window.
    pub signup_limit: Limit,
    /// API keys an account keeps: a login beyond that revokes the oldest.
    pub api_key_limit: u32,
    /// Devices an account may have at once (a cap, not a rate).
    pub device_limit: u32,
    /// New devices one account may register per window.
    pub device_registration_limit: Limit,
    /// Live whitelist tokens an account may have at once.
    pub live_token_limit: u32,
    /// Sign-ups per source per window, at each network it is counted as.
    pub signup_source_limits: SourceLimits,
    /// Publishes one knock has in flight at once.
    pub publish_concurrency: usize,
    /// The priority of a knock that names none (PROTOCOL.md: the operator's
    /// choice, `high` unless configured otherwise).
    pub default_priority: payload::Priority,
    /// The app these ports serve: the `App` dimension of its metrics.
    pub app: String,
    /// Every app of the deployment by its platform applications' ARNs: the
    /// `App` of an endpoint the feedback function hears about.
    pub applications: Vec<(String, String)>,
}

impl Settings {
    /// The app whose platform application made `endpoint_arn`
    /// (`…:endpoint/APNS/<application>/<id>` of `…:app/APNS/<application>`);
    /// `unknown` for one of no app of this deployment.
    pub fn app_of_endpoint(&self, endpoint_arn: &str) -> &str {
        let application = endpoint_arn
            .rsplit_once('/')
            .map(|(application, _)| application.replacen(":endpoint/", ":app/", 1));
        self.applications
            .iter()
            .find(|(arn, _)| Some(arn) == application.as_ref())
            .map_or("unknown", |(_, app)| app.as_str())
    }
}

/// Sign-ups per source: at most so many per `window` from one network of
/// each kind (`0`: that kind not limited). docs/SECURITY.md says why these.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceLimits {
    pub window: Duration,
    /// One IPv4 address: allows for carrier NAT.
    pub ipv4: u32,
    pub ipv6_64: u32,
    pub ipv6_56: u32,
    pub ipv6_48: u32,
}

impl SourceLimits {
    /// Every network kind at `max` (`0`: sources not limited).
    pub fn all(max: u32, window: Duration) -> Self {
        SourceLimits {
            window,
            ipv4: max,
            ipv6_64: max,
            ipv6_56: max,
            ipv6_48: max,
        }
    }

    /// The limit of one network kind.
    pub fn of(&self, network: secrets::SourceNetwork) -> Limit {
        use secrets::SourceNetwork::*;
        let max = match network {
            Ipv4 => self.ipv4,
            Ipv6Slash64 => self.ipv6_64,
            Ipv6Slash56 => self.ipv6_56,
            Ipv6Slash48 => self.ipv6_48,
        };
        Limit {
            max,
            window: self.window,
        }
    }
}

/// A rate limit: at most `max` hits per `window` (`max == 0`: no limit).
///
/// Two ways of holding one in DynamoDB, each one conditional `UpdateItem` per
/// counted hit (see docs/SECURITY.md):
/// - a **sliding log** on an item the path touches anyway: the times of the
///   last `max` admitted hits, newest first ([`Limit::blocked_by_log`]); for
///   knocks (on the token item) and failed logins (on the account item);
/// - a **counter item per fixed window** that DynamoDB's TTL removes
///   afterwards ([`Limit::window_at`]); for token and account creations, whose
///   maxima are too large for a log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

/// The largest `max` a sliding-log limit may have: the log is `max` attributes
/// rewritten by one update expression, which DynamoDB caps at 4 KB.
pub const MAX_LOGGED_HITS: u32 = 100;

impl Limit {
    /// The window's length in microseconds (at least 1).
    pub fn window_us(&self) -> time::Micros {
        i64::try_from(self.window.as_micros())
            .unwrap_or(i64::MAX)
            .max(1)
    }

    /// The fixed window `now_us` falls in, and the seconds until it ends.
    pub fn window_at(&self, now_us: time::Micros) -> (i64, u64) {
        let len = self.window_us();
        let w = now_us.div_euclid(len);
        let end = (w + 1).saturating_mul(len);
        (w, seconds_until(end, now_us))
    }

    /// Sliding log: `log` holds the times of the last admitted hits, newest
    /// first. A new hit is refused while the `max`-th newest is still inside
    /// the window; then the answer is the seconds until it leaves it.
    pub fn blocked_by_log(&self, log: &[time::Micros], now_us: time::Micros) -> Option<u64> {
        let oldest = *log.get(usize::try_from(self.max).ok()?.checked_sub(1)?)?;
        let frees_at = oldest.saturating_add(self.window_us());
        (frees_at > now_us).then(|| seconds_until(frees_at, now_us))
    }

    /// The hit time at or before which the `max`-th newest logged hit no
    /// longer blocks a new one.
    pub fn log_cutoff(&self, now_us: time::Micros) -> time::Micros {
        now_us.saturating_sub(self.window_us())
    }
}

/// Whole seconds from `now_us` to `then_us`, rounded up, at least 1 (the
/// value of a `Retry-After`).
fn seconds_until(then_us: time::Micros, now_us: time::Micros) -> u64 {
    u64::try_from((then_us.saturating_sub(now_us)).saturating_add(999_999) / 1_000_000)
        .unwrap_or(1)
        .max(1)
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
            // A ceiling for the whole service, far above what the
            // per-source limit lets one source reach.
            signup_limit: Limit {
                max: 1000,
                window: Duration::from_secs(60),
            },
            default_priority: payload::Priority::High,
            api_key_limit: 100,
            device_limit: 20,
            device_registration_limit: Limit {
                max: 30,
                window: Duration::from_secs(3600),
            },
            live_token_limit: 500,
            signup_source_limits: SourceLimits {
                window: Duration::from_secs(3600),
                ipv4: 60,
                ipv6_64: 20,
                ipv6_56: 60,
                ipv6_48: 200,
            },
            publish_concurrency: 20,
            app: "default".into(),
            applications: Vec::new(),
        }
    }
}

/// Everything an operation needs from the outside world.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn ports::Store>,
    pub push: Arc<dyn ports::PushGateway>,
    pub clock: Arc<dyn ports::Clock>,
    pub source_keys: Arc<dyn ports::SourceKeys>,
    pub settings: Settings,
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn limit(max: u32, seconds: u64) -> Limit {
        Limit {
            max,
            window: Duration::from_secs(seconds),
        }
    }

    #[test]
    fn a_sliding_log_blocks_while_the_max_th_newest_hit_is_in_the_window() {
        let l = limit(3, 60);
        let now = 1_000 * S;
        // Fewer than `max` hits logged: never blocked.
        assert_eq!(l.blocked_by_log(&[], now), None);
        assert_eq!(l.blocked_by_log(&[now, now], now), None);
        // The third newest 20 s ago: blocked for the 40 s it stays inside.
        assert_eq!(l.blocked_by_log(&[now, now, now - 20 * S], now), Some(40));
        // Rounded up, never 0.
        assert_eq!(
            l.blocked_by_log(&[now, now, now - 60 * S + 1], now),
            Some(1)
        );
        // Exactly a window ago: it no longer counts, as in DynamoDB's condition
        // (`h2 <= cutoff`).
        assert_eq!(l.blocked_by_log(&[now, now, now - 60 * S], now), None);
        assert_eq!(l.log_cutoff(now), now - 60 * S);
        // Older entries beyond `max` (a lowered limit) do not matter.
        assert_eq!(l.blocked_by_log(&[now, now, now - 61 * S, now], now), None);
        // `max == 0`: no limit.
        assert_eq!(limit(0, 60).blocked_by_log(&[now; 5], now), None);
    }

    #[test]
    fn fixed_windows_number_the_window_and_count_down_to_its_end() {
        let l = limit(5, 60);
        assert_eq!(l.window_at(120 * S), (2, 60));
        assert_eq!(l.window_at(179 * S + 1), (2, 1));
        assert_eq!(l.window_at(-1), (-1, 1));
    }
}
