//! The key that hides sign-up sources: a Secrets Manager secret the stack
//! generates (`SourceKeySecret` in template.yaml), never written to the table
//! or the logs. A copy of the table alone (a backup, point-in-time recovery)
//! therefore holds counters keyed by HMACs it cannot recompute: it cannot be
//! hashed against the 2^32 IPv4 addresses.
//!
//! Read at an instance's first sign-up of each UTC day, not at start-up: most
//! cold starts of the register function serve device registrations, which
//! never need it (docs/BENCHMARKS.md, cold starts).
//!
//! Rotation (README, "Operating it"): `put-secret-value` makes a new
//! `AWSCURRENT` version and the old one `AWSPREVIOUS`. A version takes effect
//! at the first UTC midnight at least five minutes after it was made — where
//! the day's key changes anyway — so every instance switches at the same
//! window boundary and no source is counted under two keys within one window.

use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use push_core::ports::{PortError, SourceKeys};

use crate::errors::port_error;

/// How far apart the functions' clocks and Secrets Manager's may be.
const CLOCK_MARGIN_S: i64 = 300;

/// The secret's versions, as `put-secret-value` stages them.
const CURRENT: &str = "AWSCURRENT";
const PREVIOUS: &str = "AWSPREVIOUS";

pub struct SecretSourceKeys {
    /// Built at the first read: only a sign-up needs it, so the other
    /// functions, and every start-up, go without (docs/BENCHMARKS.md,
    /// "Where init goes").
    client: std::sync::LazyLock<
        aws_sdk_secretsmanager::Client,
        Box<dyn FnOnce() -> aws_sdk_secretsmanager::Client + Send>,
    >,
    /// `SOURCE_KEY_SECRET`: the secret's ARN (or name).
    secret_id: String,
    /// The day's key, once derived.
    day_key: Mutex<Option<(i64, String)>>,
}

/// One version of the secret: its value and when it was made (epoch seconds).
struct Version {
    value: String,
    created_s: i64,
}

impl SecretSourceKeys {
    /// The keys of `secret_id`, read through the client `client` builds
    /// when first needed.
    pub fn new(
        client: impl FnOnce() -> aws_sdk_secretsmanager::Client + Send + 'static,
        secret_id: String,
    ) -> Self {
        SecretSourceKeys {
            client: std::sync::LazyLock::new(Box::new(client)),
            secret_id,
            day_key: Mutex::new(None),
        }
    }

    /// The version staged `stage`; `None` when there is none (a secret
    /// never rotated has no previous version).
    async fn version(&self, stage: &str) -> Result<Option<Version>, PortError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage(stage)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e)
                if stage != CURRENT
                    && matches!(
                        e.as_service_error(),
                        Some(GetSecretValueError::ResourceNotFoundException(_))
                    ) =>
            {
                return Ok(None)
            }
            // The secret is the deployment's, not the client's: deleted
            // (pending deletion), denied or undecryptable, the sign-up is
            // `503` and logged until an operator restores it.
            Err(e) => {
                return Err(match port_error("GetSecretValue", e) {
                    PortError::Internal(detail) | PortError::Refused(detail) => {
                        PortError::Unavailable(detail)
                    }
                    other => other,
                })
            }
        };
        let value = out
            .secret_string()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| PortError::Unavailable("the source key secret holds no string".into()))?
            .to_string();
        Ok(Some(Version {
            value,
            // Unknown: taken as made now, so it waits for the next day.
            created_s: out.created_date().map_or(i64::MAX, |d| d.secs()),
        }))
    }

    /// The secret's value in force on `day`: the current version if it was
    /// made (five minutes) before the day began, else the one before it (rotated today:
    /// in force from tomorrow), else the current one (the secret itself was
    /// made today, as on a first deployment).
    async fn secret_in_force(&self, day: i64) -> Result<String, PortError> {
        // Versions made in the last minutes before midnight wait one more
        // day: an instance whose clock runs ahead may already have taken the
        // new day's key from the version before.
        let day_began_s = day.saturating_mul(86_400) - CLOCK_MARGIN_S;
        let current = self
            .version(CURRENT)
            .await?
            .ok_or_else(|| PortError::Unavailable("the source key secret has no version".into()))?;
        if current.created_s < day_began_s {
            return Ok(current.value);
        }
        Ok(match self.version(PREVIOUS).await? {
            Some(previous) => previous.value,
            None => current.value,
        })
    }
}

/// The key of `day` from the secret in force: an HMAC of the day under it,
/// so that one day's counters cannot be linked to another's without it.
pub fn day_key(secret: &str, day: i64) -> String {
    push_core::secrets::keyed_hash(secret, &format!("sign-up sources, day {day}"))
}

#[async_trait]
impl SourceKeys for SecretSourceKeys {
    async fn key_of_day(&self, day: i64) -> Result<String, PortError> {
        let cached = self.day_key.lock().ok().and_then(|c| c.clone());
        if let Some((d, key)) = cached {
            if d == day {
                return Ok(key);
            }
        }
        let key = day_key(&self.secret_in_force(day).await?, day);
        if let Ok(mut cache) = self.day_key.lock() {
            *cache = Some((day, key.clone()));
        }
        Ok(key)
    }
}
