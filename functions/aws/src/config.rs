//! Configuration from the environment, read once at start-up.

use std::collections::HashMap;
use std::time::Duration;

use push_core::model::Platform;
use push_core::payload::Priority;
use push_core::secrets::SourceNetwork;
use push_core::{Limit, Settings, MAX_LOGGED_HITS};

// The SDK clients and the ports: once in this module, still named from here.
pub use crate::deployment::*;

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
        crate::deployment::TrustRoots::parse(var("TLS_TRUST_ROOTS").as_deref())?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::SdkConfig;
    use push_core::Deps;

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
        use aws_config::BehaviorVersion;
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
