//! Configuration from the environment, read once at start-up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use push_core::budget;
use push_core::model::Platform;
use push_core::payload::Priority;
use push_core::ports::SystemClock;
use push_core::secrets::SourceNetwork;
use push_core::{Deps, Limit, Settings, MAX_LOGGED_HITS};

use crate::source_keys::SecretSourceKeys;
use crate::{DynamoStore, SnsGateway};

/// Everything the functions read from their environment.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// `TABLE_NAME`: the single DynamoDB table.
    pub table_name: String,
    /// The default app, served at `/api/v1/` and `/<name>/api/v1/`:
    /// `DEFAULT_APP_NAME` (default `default`), its platform applications
    /// from `APNS_PLATFORM_APPLICATION_ARN` (`APNS` or `APNS_SANDBOX`),
    /// `APNS_SANDBOX_PLATFORM_APPLICATION_ARN` and
    /// `GCM_PLATFORM_APPLICATION_ARN`.
    pub default_app: App,
    /// `APPS`: every other app, each at `/<name>/api/v1/`.
    pub apps: Vec<App>,
    /// `SOURCE_KEY_SECRET`: the Secrets Manager secret (ARN or name) that
    /// hides sign-up sources (`crate::source_keys`); needed when any
    /// per-source sign-up limit is on.
    pub source_key_secret: Option<String>,
    pub settings: Settings,
}

/// One app: a short name and its SNS platform applications, at most one per
/// platform (APNs production, APNs sandbox, FCM), as their ARNs say.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub name: String,
    pub application_arns: Vec<String>,
}

/// What separates `PlatformApplicationPrefix` from the rest of a platform
/// application's name (`<prefix>.<app>-apns`): a character no prefix holds,
/// so `<prefix>.*` in IAM and here names this deployment's applications and
/// no sibling stack's.
pub const PREFIX_SEPARATOR: char = '.';

/// A prefix is 1-64 of letters, digits, `_` and `-` (no separator), as the
/// template's `AllowedPattern` says.
fn check_prefix_name(prefix: &str) -> Result<(), String> {
    let valid = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "PLATFORM_APPLICATION_PREFIX {prefix:?}: 1-64 of letters, digits, '_' and '-' \
             (no {PREFIX_SEPARATOR:?}: it separates the prefix from the rest of the name)"
        ))
    }
}

/// No platform application serves two apps: they would share its endpoints
/// (SNS keeps one per push token), and one app's device deletion would
/// delete the other's endpoint.
pub fn check_distinct_applications<'a>(
    apps: impl IntoIterator<Item = &'a App>,
) -> Result<(), String> {
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for app in apps {
        for arn in &app.application_arns {
            if let Some(first) = owner.insert(arn.as_str(), app.name.as_str()) {
                return Err(format!(
                    "platform application {arn:?} is listed for two apps, {first:?} and {:?}: \
                     each app needs applications of its own",
                    app.name
                ));
            }
        }
    }
    Ok(())
}

impl App {
    /// Checks the name and the ARNs: each a platform application, no
    /// platform twice. (An app without any registers no devices: `400`.)
    pub fn new(name: &str, application_arns: Vec<String>) -> Result<App, String> {
        let valid_name = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && name != "api";
        if !valid_name {
            return Err(format!(
                "app name {name:?}: 1-32 of a-z, 0-9 and '-', not starting with '-', not \"api\""
            ));
        }
        let mut seen = Vec::new();
        for arn in &application_arns {
            let platform = Platform::of_arn(arn)
                .filter(|_| arn.starts_with("arn:") && arn.contains(":app/"))
                .ok_or_else(|| {
                    format!("app {name:?}: {arn:?} is not an SNS platform application ARN")
                })?;
            if seen.contains(&platform) {
                return Err(format!(
                    "app {name:?} has two {} platform applications",
                    platform.sns_name()
                ));
            }
            seen.push(platform);
        }
        Ok(App {
            name: name.to_string(),
            application_arns,
        })
    }

    /// Every platform application's name must be `<prefix>.…`: the
    /// functions' IAM policies allow no other (template.yaml). The prefix
    /// holds no `.`, so a sibling stack's prefix that merely starts with
    /// this one (`chatsecure-push-staging` for `chatsecure-push`) is refused.
    pub fn check_prefix(&self, prefix: &str) -> Result<(), String> {
        check_prefix_name(prefix)?;
        for arn in &self.application_arns {
            let name = arn.rsplit('/').next().unwrap_or_default();
            let ours = name
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix(PREFIX_SEPARATOR))
                .is_some_and(|rest| !rest.is_empty());
            if !ours {
                return Err(format!(
                    "app {:?}: platform application {name:?} is not named \
                     {prefix}{PREFIX_SEPARATOR}... (PlatformApplicationPrefix): this deployment \
                     may not use it",
                    self.name
                ));
            }
        }
        Ok(())
    }

    /// Parses `APPS`: entries `name=ARN[,ARN...]` separated by `;` or
    /// whitespace, each ARN an SNS platform application (`APNS`,
    /// `APNS_SANDBOX` or `GCM`, as the ARN says).
    pub fn parse_list(raw: &str) -> Result<Vec<App>, String> {
        let mut apps: Vec<App> = Vec::new();
        for entry in raw
            .split(|c: char| c == ';' || c.is_whitespace())
            .filter(|e| !e.is_empty())
        {
            let (name, arns) = entry
                .split_once('=')
                .ok_or_else(|| format!("APPS entry {entry:?} is not name=ARN[,ARN...]"))?;
            let arns = arns
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>();
            if arns.is_empty() {
                return Err(format!("APPS: app {name:?} has no platform application"));
            }
            let app = App::new(name.trim(), arns)?;
            if apps.iter().any(|a| a.name == app.name) {
                return Err(format!("APPS names app {:?} twice", app.name));
            }
            apps.push(app);
        }
        Ok(apps)
    }
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
        // The service-wide sign-up counter keeps the id of every call that
        // counted in its window (`limits`): at most this many fit an item.
        limit_from_env(
            &mut settings.signup_limit,
            "SIGNUP_LIMIT",
            "SIGNUP_WINDOW_SECONDS",
            crate::limits::MAX_COUNTED_CALLS,
        )?;
        limit_from_env(
            &mut settings.device_registration_limit,
            "DEVICE_REGISTRATION_LIMIT",
            "DEVICE_REGISTRATION_WINDOW_SECONDS",
            u32::MAX,
        )?;
        // Each network of a source is counted like the service-wide
        // sign-ups, with its set of counting calls: the same ceiling.
        let sources = &mut settings.signup_source_limits;
        let mut first = sources.of(SourceNetwork::Ipv4);
        limit_from_env(
            &mut first,
            "SIGNUP_PER_IPV4_LIMIT",
            "SIGNUP_PER_SOURCE_WINDOW_SECONDS",
            crate::limits::MAX_COUNTED_CALLS,
        )?;
        (sources.ipv4, sources.window) = (first.max, first.window);
        // The key that hides sources changes at midnight UTC: a window that
        // straddled it would count one source under two keys.
        if 86_400 % sources.window.as_secs() != 0 {
            return Err(format!(
                "SIGNUP_PER_SOURCE_WINDOW_SECONDS must divide a day (86400), not {}",
                sources.window.as_secs()
            ));
        }
        for (max, name) in [
            (&mut sources.ipv6_64, "SIGNUP_PER_IPV6_64_LIMIT"),
            (&mut sources.ipv6_56, "SIGNUP_PER_IPV6_56_LIMIT"),
            (&mut sources.ipv6_48, "SIGNUP_PER_IPV6_48_LIMIT"),
        ] {
            max_from_env(max, name, crate::limits::MAX_COUNTED_CALLS)?;
        }
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
        let default_arns = [
            "APNS_PLATFORM_APPLICATION_ARN",
            "APNS_SANDBOX_PLATFORM_APPLICATION_ARN",
            "GCM_PLATFORM_APPLICATION_ARN",
        ]
        .iter()
        .filter_map(|name| var(name))
        .collect();
        if let Some(arn) = var("APNS_SANDBOX_PLATFORM_APPLICATION_ARN") {
            if Platform::of_arn(&arn) != Some(Platform::ApnsSandbox) {
                return Err(format!(
                    "APNS_SANDBOX_PLATFORM_APPLICATION_ARN must be an APNS_SANDBOX application, not {arn:?}"
                ));
            }
        }
        let default_app = App::new(
            &var("DEFAULT_APP_NAME").unwrap_or_else(|| "default".into()),
            default_arns,
        )?;
        let apps = App::parse_list(&var("APPS").unwrap_or_default())?;
        if apps.iter().any(|a| a.name == default_app.name) {
            return Err(format!(
                "APPS names the default app {:?} again",
                default_app.name
            ));
        }
        check_distinct_applications(std::iter::once(&default_app).chain(&apps))?;
        if let Some(prefix) = var("PLATFORM_APPLICATION_PREFIX") {
            for app in std::iter::once(&default_app).chain(&apps) {
                app.check_prefix(&prefix)?;
            }
        }
        let source_key_secret = var("SOURCE_KEY_SECRET");
        let sources = settings.signup_source_limits;
        if source_key_secret.is_none()
            && [
                sources.ipv4,
                sources.ipv6_64,
                sources.ipv6_56,
                sources.ipv6_48,
            ]
            .iter()
            .any(|max| *max > 0)
        {
            return Err("SOURCE_KEY_SECRET is not set: the per-source sign-up limits hash sources under it (template.yaml makes it as SourceKeySecret); or set every SIGNUP_PER_*_LIMIT to 0".into());
        }
        Ok(AppConfig {
            table_name: var("TABLE_NAME").ok_or("TABLE_NAME is not set")?,
            default_app,
            apps,
            source_key_secret,
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
    max_from_env(&mut limit.max, max_var, cap)?;
    if let Some(raw) = var(window_var) {
        let seconds: u64 =
            raw.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                format!("{window_var} must be a positive whole number, not {raw:?}")
            })?;
        limit.window = Duration::from_secs(seconds);
    }
    Ok(())
}

fn max_from_env(max: &mut u32, max_var: &str, cap: u32) -> Result<(), String> {
    if let Some(raw) = var(max_var) {
        *max = raw.parse().ok().filter(|max| *max <= cap).ok_or_else(|| {
            format!("{max_var} must be a whole number from 0 (no limit) to {cap}, not {raw:?}")
        })?;
    }
    Ok(())
}

/// The SDK's HTTPS client: rustls with ring for its crypto (one provider; the
/// SDK's default, aws-lc, is C code that makes each function ~2 MB larger),
/// the system's trusted roots.
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The SDK configuration: standard sources, bounded retries and timeouts so a
/// slow dependency becomes a `503` well before the Lambda's own timeout. The
/// clients of [`build_deployment`] also cut each call's timeouts to the
/// request's budget ([`RequestBudget`]).
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(budget::ATTEMPT_TIMEOUT)
                .operation_timeout(budget::OPERATION_TIMEOUT)
                .build(),
        )
        .load()
        .await
}

/// Bounds every SDK call of a client by the budget of the operation that
/// makes it ([`push_core::budget`]): when the call starts, its operation and
/// attempt timeouts become the configured ones or what is left of the budget
/// (less the margin to answer) if that is less; before each attempt is sent,
/// with too little left, it fails at once without being sent. An interceptor
/// on the client, not a `customize()` at each call site: no call can forget
/// it, the device store's included.
///
/// The refusal is an interceptor error before transmission, which the SDK
/// reports as a dispatch failure (transient: `503`) and does not retry.
#[derive(Debug)]
pub struct RequestBudget;

/// Why a call was not sent.
#[derive(Debug)]
pub struct BudgetSpent;

impl std::fmt::Display for BudgetSpent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request's time budget is spent")
    }
}

impl std::error::Error for BudgetSpent {}

impl Intercept for RequestBudget {
    fn name(&self) -> &'static str {
        "RequestBudget"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if budget::remaining().is_none() {
            return Ok(());
        }
        // Spent already: the smallest timeouts; the call is refused before
        // it is sent (`read_before_transmit`).
        let bounds = budget::call_bounds().unwrap_or(budget::CallBounds {
            operation: budget::MIN_CALL,
            attempt: budget::MIN_CALL,
        });
        // Merged over the client's: the connect timeout stays.
        cfg.interceptor_state().store_put(
            TimeoutConfig::builder()
                .operation_timeout(bounds.operation)
                .operation_attempt_timeout(bounds.attempt)
                .build(),
        );
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match budget::call_bounds() {
            Some(_) => Ok(()),
            None => Err(Box::new(BudgetSpent)),
        }
    }
}

/// The DynamoDB client of the functions: the SDK configuration, each call
/// bounded by its request's budget.
pub fn dynamodb_client(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(RequestBudget)
            .build(),
    )
}

/// The Secrets Manager client of the functions (the source key), likewise.
pub fn secrets_client(sdk: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(sdk)
            .interceptor(RequestBudget)
            .build(),
    )
}

/// The SNS client of the functions, likewise; SNS's own throttling answer
/// is retried like any other ([`SnsThrottled`]).
pub fn sns_client(sdk: &SdkConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(sdk)
            .interceptor(RequestBudget)
            .retry_classifier(SnsThrottled)
            .build(),
    )
}

/// SNS answers a request over its account's rate with `429 Throttled`
/// (`ThrottledException`), a code the SDK's standard classifiers do not know
/// as throttling (they know `ThrottlingException`) and a status they do not
/// count as transient: without this, a throttled publish or endpoint call
/// would fail at its first attempt. Retried with the throttling back-off,
/// within the same attempts and budget as every other retry.
#[derive(Debug)]
pub struct SnsThrottled;

impl aws_sdk_sns::config::retry::ClassifyRetry for SnsThrottled {
    fn classify_retry(
        &self,
        ctx: &aws_sdk_sns::config::interceptors::InterceptorContext,
    ) -> aws_sdk_sns::config::retry::RetryAction {
        match ctx.response() {
            Some(response) if response.status().as_u16() == 429 => {
                aws_sdk_sns::config::retry::RetryAction::throttling_error()
            }
            _ => aws_sdk_sns::config::retry::RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "SnsThrottled"
    }
}

/// Every app's ports, built once; the handlers share them for the
/// process's life.
#[derive(Clone)]
pub struct Deployment {
    default_app: Deps,
    by_name: HashMap<String, Deps>,
}

impl Deployment {
    /// The default app's ports (also what the feedback function uses: it
    /// finds devices by endpoint, whatever their app).
    pub fn default_app(&self) -> &Deps {
        &self.default_app
    }

    /// The app a request's route names: its `{app}` path parameter
    /// (`/{app}/api/v1/…`), or the default app for a route without one
    /// (`/api/v1/…`); `None` for an unknown app.
    pub fn app(&self, name: Option<&str>) -> Option<&Deps> {
        match name {
            None => Some(&self.default_app),
            Some(name) => self.by_name.get(name),
        }
    }

    /// Every app's name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
        names.sort();
        names
    }
}

/// Builds every app's ports once.
pub fn build_deployment(sdk: &SdkConfig, config: &AppConfig) -> Deployment {
    let dynamo = dynamodb_client(sdk);
    let sns = sns_client(sdk);
    // One key for every app: the counters of each app are in its own
    // namespace already. Shared, so an instance reads the secret once a day.
    let source_keys: Arc<dyn push_core::ports::SourceKeys> = Arc::new(SecretSourceKeys::new(
        secrets_client(sdk),
        config.source_key_secret.clone().unwrap_or_default(),
    ));
    let deps = |app: &App, namespace: Option<&str>| Deps {
        store: Arc::new(DynamoStore::for_app(
            dynamo.clone(),
            config.table_name.clone(),
            namespace,
        )),
        push: Arc::new(SnsGateway::new(sns.clone(), &app.application_arns)),
        clock: Arc::new(SystemClock),
        source_keys: source_keys.clone(),
        settings: config.settings.clone(),
    };
    let default_app = deps(&config.default_app, None);
    let mut by_name = HashMap::from([(config.default_app.name.clone(), default_app.clone())]);
    for app in &config.apps {
        by_name.insert(app.name.clone(), deps(app, Some(&app.name)));
    }
    Deployment {
        default_app,
        by_name,
    }
}

/// The default app's ports alone.
pub fn build_deps(sdk: &SdkConfig, config: &AppConfig) -> Deps {
    build_deployment(sdk, config).default_app
}

#[cfg(test)]
mod tests {
    use super::*;

    const APNS: &str = "arn:aws:sns:us-east-1:123456789012:app/APNS/p.zom-apns";
    const SANDBOX: &str = "arn:aws:sns:us-east-1:123456789012:app/APNS_SANDBOX/p.zom-apns-sandbox";
    const FCM: &str = "arn:aws:sns:us-east-1:123456789012:app/GCM/p.zom-fcm";

    #[test]
    fn apps_are_listed_by_name_and_platform_application_arns() {
        let apps = App::parse_list(&format!(
            "zom={APNS},{SANDBOX},{FCM}; other={FCM}\nthird={SANDBOX}"
        ))
        .unwrap();
        assert_eq!(
            apps.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            ["zom", "other", "third"]
        );
        assert_eq!(apps[0].application_arns, [APNS, SANDBOX, FCM]);
        assert_eq!(App::parse_list("  ").unwrap(), []);
    }

    #[test]
    fn bad_app_lists_are_refused_with_a_reason() {
        for (raw, reason) in [
            ("zom".to_string(), "not name=ARN"),
            ("zom=".to_string(), "no platform application"),
            (format!("Zom={APNS}"), "app name"),
            (format!("api={APNS}"), "app name"),
            (format!("zom={APNS},{APNS}"), "two APNS"),
            (
                "zom=arn:aws:sns:us-east-1:1:mytopic".to_string(),
                "not an SNS platform application",
            ),
            (format!("zom={APNS};zom={FCM}"), "twice"),
        ] {
            let err = App::parse_list(&raw).unwrap_err();
            assert!(err.contains(reason), "{raw}: {err}");
        }
    }

    #[test]
    fn platform_applications_must_carry_the_deployments_prefix() {
        let app = App::new("zom", vec![APNS.into(), FCM.into()]).unwrap();
        assert!(app.check_prefix("p").is_ok());
        let err = app.check_prefix("chatsecure-push").unwrap_err();
        assert!(err.contains("p.zom-apns"), "{err}");
    }

    #[test]
    fn a_sibling_stacks_applications_are_refused() {
        let arn = |name: &str| format!("arn:aws:sns:us-east-1:123456789012:app/APNS/{name}");
        let ours = App::new("zom", vec![arn("chatsecure-push.zom-apns")]).unwrap();
        assert!(ours.check_prefix("chatsecure-push").is_ok());
        for name in [
            // A prefix that starts with ours, however it goes on.
            "chatsecure-push-staging.zom-apns",
            "chatsecure-push-zom-apns",
            "chatsecure-pushx.zom-apns",
            "chatsecure-push.",
        ] {
            let theirs = App::new("zom", vec![arn(name)]).unwrap();
            let err = theirs.check_prefix("chatsecure-push").unwrap_err();
            assert!(err.contains(name), "{name}: {err}");
        }
        // A prefix holding the separator could match another's applications.
        for prefix in ["chatsecure.push", "", "a b"] {
            let err = ours.check_prefix(prefix).unwrap_err();
            assert!(
                err.contains("PLATFORM_APPLICATION_PREFIX"),
                "{prefix}: {err}"
            );
        }
    }

    #[test]
    fn a_platform_application_listed_for_two_apps_is_refused_by_name() {
        let default = App::new("chatsecure", vec![SANDBOX.into()]).unwrap();
        let apps = App::parse_list(&format!("zom={APNS},{FCM}; other={FCM}")).unwrap();
        let err = check_distinct_applications(std::iter::once(&default).chain(&apps)).unwrap_err();
        assert!(
            err.contains(FCM) && err.contains("zom") && err.contains("other"),
            "{err}"
        );
        let apps = App::parse_list(&format!("zom={SANDBOX}")).unwrap();
        let err = check_distinct_applications(std::iter::once(&default).chain(&apps)).unwrap_err();
        assert!(err.contains(SANDBOX), "{err}");
        let apps = App::parse_list(&format!("zom={APNS},{FCM}")).unwrap();
        assert!(check_distinct_applications(std::iter::once(&default).chain(&apps)).is_ok());
    }

    #[test]
    fn routes_name_their_app() {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        let config = AppConfig {
            table_name: "t".into(),
            default_app: App::new("chatsecure", vec![SANDBOX.into()]).unwrap(),
            apps: vec![App::new("zom", vec![APNS.into(), SANDBOX.into()]).unwrap()],
            source_key_secret: Some("source-key".into()),
            settings: Settings::default(),
        };
        let d = build_deployment(&sdk, &config);
        let platforms = |deps: &Deps| deps.push.platforms(push_core::model::DeviceKind::Apns);
        assert_eq!(platforms(d.app(None).unwrap()), [Platform::ApnsSandbox]);
        assert_eq!(
            platforms(d.app(Some("chatsecure")).unwrap()),
            [Platform::ApnsSandbox]
        );
        assert_eq!(
            platforms(d.app(Some("zom")).unwrap()),
            [Platform::Apns, Platform::ApnsSandbox]
        );
        assert!(d.app(Some("nope")).is_none());
        assert!(d.app(Some("")).is_none());
        assert_eq!(d.names(), ["chatsecure", "zom"]);
    }
}
