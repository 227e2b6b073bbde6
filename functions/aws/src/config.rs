//! Configuration from the environment, read once at start-up.

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use push_core::payload::Priority;
use push_core::ports::SystemClock;
use push_core::{Deps, Limit, Settings, MAX_LOGGED_HITS};

use crate::{DynamoStore, SnsGateway};

/// Everything the functions read from their environment.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// `TABLE_NAME`: the single DynamoDB table.
    pub table_name: String,
    /// `APNS_PLATFORM_APPLICATION_ARN`: an `APNS` or `APNS_SANDBOX` SNS app.
    pub apns_application_arn: Option<String>,
    /// `GCM_PLATFORM_APPLICATION_ARN`: the FCM SNS app (optional).
    pub gcm_application_arn: Option<String>,
    pub settings: Settings,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl AppConfig {
    /// Reads `TABLE_NAME`, `APNS_PLATFORM_APPLICATION_ARN`,
    /// `GCM_PLATFORM_APPLICATION_ARN`, `TOKEN_LIFETIME_SECONDS` (default 30
    /// days), the four limits (`KNOCK_LIMIT_*`, `LOGIN_FAILURE_*`,
    /// `TOKEN_CREATE_*`, `SIGNUP_*`; defaults in [`Settings::default`]),
    /// `KNOCK_DEFAULT_PRIORITY` (`high` or `low`, default `high`), `PUBSUB_JID`
    /// and `PUBLIC_BASE_URL`.
    pub fn from_env() -> Result<Self, String> {
        let mut settings = Settings::default();
        if let Some(raw) = var("TOKEN_LIFETIME_SECONDS") {
            let seconds: u64 = raw.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                format!("TOKEN_LIFETIME_SECONDS must be a positive whole number, not {raw:?}")
            })?;
            settings.token_lifetime = Duration::from_secs(seconds);
        }
        // Knocks and failed logins are sliding logs on their items: at most
        // MAX_LOGGED_HITS entries (see `limits`).
        limit_from_env(
            &mut settings.knock_limit,
            "KNOCK_LIMIT_PER_WINDOW",
            "KNOCK_LIMIT_WINDOW_SECONDS",
            MAX_LOGGED_HITS,
        )?;
        limit_from_env(
            &mut settings.login_limit,
            "LOGIN_FAILURE_LIMIT",
            "LOGIN_FAILURE_WINDOW_SECONDS",
            MAX_LOGGED_HITS,
        )?;
        limit_from_env(
            &mut settings.token_limit,
            "TOKEN_CREATE_LIMIT",
            "TOKEN_CREATE_WINDOW_SECONDS",
            u32::MAX,
        )?;
        limit_from_env(
            &mut settings.signup_limit,
            "SIGNUP_LIMIT",
            "SIGNUP_WINDOW_SECONDS",
            u32::MAX,
        )?;
        limit_from_env(
            &mut settings.device_registration_limit,
            "DEVICE_REGISTRATION_LIMIT",
            "DEVICE_REGISTRATION_WINDOW_SECONDS",
            u32::MAX,
        )?;
        limit_from_env(
            &mut settings.signup_source_limit,
            "SIGNUP_PER_SOURCE_LIMIT",
            "SIGNUP_PER_SOURCE_WINDOW_SECONDS",
            u32::MAX,
        )?;
        settings.api_key_limit = count_from_env("API_KEY_LIMIT", settings.api_key_limit)?;
        settings.device_limit = count_from_env("DEVICE_LIMIT", settings.device_limit)?;
        settings.live_token_limit = count_from_env("LIVE_TOKEN_LIMIT", settings.live_token_limit)?;
        settings.publish_concurrency =
            count_from_env("PUBLISH_CONCURRENCY", settings.device_limit)? as usize;
        if let Some(raw) = var("KNOCK_DEFAULT_PRIORITY") {
            settings.default_priority = Priority::parse(&raw).ok_or_else(|| {
                format!("KNOCK_DEFAULT_PRIORITY must be \"high\" or \"low\", not {raw:?}")
            })?;
        }
        settings.pubsub_jid = var("PUBSUB_JID").unwrap_or_default();
        settings.public_base_url = var("PUBLIC_BASE_URL");
        Ok(AppConfig {
            table_name: var("TABLE_NAME").ok_or("TABLE_NAME is not set")?,
            apns_application_arn: var("APNS_PLATFORM_APPLICATION_ARN"),
            gcm_application_arn: var("GCM_PLATFORM_APPLICATION_ARN"),
            settings,
        })
    }
}

/// Reads a positive whole number (a cap) from `name`, else `default`.
fn count_from_env(name: &str, default: u32) -> Result<u32, String> {
    match var(name) {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{name} must be a positive whole number, not {raw:?}")),
    }
}

/// Reads a limit's maximum (0: no limit, else at most `cap`) and window from
/// two variables.
fn limit_from_env(
    limit: &mut Limit,
    max_var: &str,
    window_var: &str,
    cap: u32,
) -> Result<(), String> {
    if let Some(raw) = var(max_var) {
        limit.max = raw.parse().ok().filter(|max| *max <= cap).ok_or_else(|| {
            format!("{max_var} must be a whole number from 0 (no limit) to {cap}, not {raw:?}")
        })?;
    }
    if let Some(raw) = var(window_var) {
        let seconds: u64 =
            raw.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                format!("{window_var} must be a positive whole number, not {raw:?}")
            })?;
        limit.window = Duration::from_secs(seconds);
    }
    Ok(())
}

/// The SDK configuration: standard sources, bounded retries and timeouts so a
/// slow dependency becomes a `503` well before the Lambda's own timeout.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .load()
        .await
}

/// Builds the ports once; the handlers share them for the process's life.
pub fn build_deps(sdk: &SdkConfig, config: &AppConfig) -> Deps {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let sns = aws_sdk_sns::Client::new(sdk);
    Deps {
        store: Arc::new(DynamoStore::new(dynamo, config.table_name.clone())),
        push: Arc::new(SnsGateway::new(
            sns,
            config.apns_application_arn.clone(),
            config.gcm_application_arn.clone(),
        )),
        clock: Arc::new(SystemClock),
        settings: config.settings.clone(),
    }
}
