//! `local-api`: sets up the emulator (table, platform applications) and serves
//! the handlers at `http://127.0.0.1:$PORT/api/v1/` until SIGINT or SIGTERM.
//! `local-api setup` only sets up, printing `TABLE_NAME=…`,
//! `APNS_PLATFORM_APPLICATION_ARN=…`, `GCM_PLATFORM_APPLICATION_ARN=…`,
//! `DEFAULT_APP_NAME=…` and `APPS=…` (for `make sam-local`, whose functions
//! run in containers).
//!
//! Two apps, as an operator with several would have them: the default app
//! `chatsecure` (APNs sandbox and FCM) at `/api/v1/` and
//! `/chatsecure/api/v1/`, and `zom` (both APNs environments and FCM) at
//! `/zom/api/v1/`.
//!
//! Environment: `PORT` (default 3000), `TEMPLATE` (default `template.yaml`),
//! `TABLE_NAME` (default `chatsecure-push-local`), the standard AWS variables
//! (`AWS_ENDPOINT_URL` points at the emulator), and the functions' own
//! variables (`TOKEN_LIFETIME_SECONDS`, `PUBSUB_JID`, ...). The platform
//! application ARNs are the ones this program creates unless set explicitly.

use std::sync::Arc;

use local_api::server::{serve, State};
use local_api::{setup, template};
use push_aws::{build_deployment, load_sdk_config, AppConfig};
use tracing_subscriber::EnvFilter;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const DEFAULT_TABLE: &str = "chatsecure-push-local";
const DEFAULT_APP: &str = "chatsecure";
const APNS_APP: &str = "chatsecure-push-local.apns";
const GCM_APP: &str = "chatsecure-push-local.gcm";
/// The secret that hides sign-up sources (the stack's `SourceKeySecret`).
const SOURCE_KEY_SECRET: &str = "chatsecure-push-local-source-key";
/// The second app: its name, and its platform applications by platform.
const SECOND_APP: &str = "zom";
const SECOND_APP_APPLICATIONS: &[(&str, &str)] = &[
    ("chatsecure-push-local.zom-apns", "APNS"),
    ("chatsecure-push-local.zom-apns-sandbox", "APNS_SANDBOX"),
    ("chatsecure-push-local.zom-fcm", "GCM"),
];

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let template_path = std::env::var("TEMPLATE").unwrap_or_else(|_| "template.yaml".into());
    let tpl = template::load(&template_path)?;
    let routes = template::routes(&tpl);
    let table_props =
        template::table_properties(&tpl).ok_or("template.yaml declares no DynamoDB table")?;

    let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| DEFAULT_TABLE.into());
    let sdk = load_sdk_config().await;
    // LOCAL_API_SKIP_SETUP=1 serves without touching AWS first (the fault
    // tests point the router at a closed port); the ARNs are then the ones the
    // set-up would have made.
    let skip_setup = std::env::var("LOCAL_API_SKIP_SETUP").is_ok_and(|v| v == "1");
    if !skip_setup {
        setup::ensure_table(&aws_sdk_dynamodb::Client::new(&sdk), &table, table_props).await?;
    }
    let sns = aws_sdk_sns::Client::new(&sdk);
    let application = |name: &'static str, platform: &'static str| {
        let sns = sns.clone();
        async move {
            if skip_setup {
                Ok(format!(
                    "arn:aws:sns:us-east-1:123456789012:app/{platform}/{name}"
                ))
            } else {
                setup::ensure_platform_application(&sns, name, platform).await
            }
        }
    };
    let apns = application(APNS_APP, "APNS_SANDBOX").await?;
    let gcm = application(GCM_APP, "GCM").await?;
    let mut second = Vec::new();
    for (name, platform) in SECOND_APP_APPLICATIONS {
        second.push(application(name, platform).await?);
    }
    let apps = format!("{SECOND_APP}={}", second.join(","));
    let source_key = if skip_setup {
        format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{SOURCE_KEY_SECRET}-AbCdEf")
    } else {
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        setup::ensure_source_key_secret(&secrets, SOURCE_KEY_SECRET).await?
    };
    if std::env::args().nth(1).as_deref() == Some("setup") {
        println!("TABLE_NAME={table}\nAPNS_PLATFORM_APPLICATION_ARN={apns}\nGCM_PLATFORM_APPLICATION_ARN={gcm}\nDEFAULT_APP_NAME={DEFAULT_APP}\nAPPS={apps}\nSOURCE_KEY_SECRET={source_key}");
        return Ok(());
    }

    // What the environment does not say, the local set-up does.
    for (name, value) in [
        ("TABLE_NAME", table.as_str()),
        ("APNS_PLATFORM_APPLICATION_ARN", apns.as_str()),
        ("GCM_PLATFORM_APPLICATION_ARN", gcm.as_str()),
        ("DEFAULT_APP_NAME", DEFAULT_APP),
        ("APPS", apps.as_str()),
        ("SOURCE_KEY_SECRET", source_key.as_str()),
    ] {
        if std::env::var_os(name).is_none() {
            std::env::set_var(name, value);
        }
    }
    let mut config = AppConfig::from_env()?;
    if config.settings.pubsub_jid.is_empty() {
        config.settings.pubsub_jid = "pubsub.localhost".into();
    }
    let apps = build_deployment(&sdk, &config);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!("Listening on http://{addr}/api/v1/");
    for name in apps.names() {
        println!("App {name}: http://{addr}/{name}/api/v1/");
    }
    serve(
        listener,
        Arc::new(State {
            apps,
            routes,
            // Test-only, off by default: the tests of the per-source limits
            // sign up from thousands of addresses (tests/tests/quotas.rs).
            source_header: std::env::var("LOCAL_API_TRUST_SOURCE_HEADER").is_ok_and(|v| v == "1"),
        }),
        shutdown_signal(),
    )
    .await?;
    eprintln!("local-api stopped");
    Ok(())
}
