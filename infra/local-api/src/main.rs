//! `local-api`: sets up the emulator (table, platform applications) and serves
//! the handlers at `http://127.0.0.1:$PORT/api/v1/` until SIGINT or SIGTERM.
//! `local-api setup` only sets up, printing `TABLE_NAME=…`,
//! `APNS_PLATFORM_APPLICATION_ARN=…` and `GCM_PLATFORM_APPLICATION_ARN=…`
//! (for `make sam-local`, whose functions run in containers).
//!
//! Environment: `PORT` (default 3000), `TEMPLATE` (default `template.yaml`),
//! `TABLE_NAME` (default `chatsecure-push-local`), the standard AWS variables
//! (`AWS_ENDPOINT_URL` points at the emulator), and the functions' own
//! variables (`TOKEN_LIFETIME_SECONDS`, `PUBSUB_JID`, ...). The platform
//! application ARNs are the ones this program creates unless set explicitly.

use std::sync::Arc;

use local_api::server::{serve, State};
use local_api::{setup, template};
use push_aws::{build_deps, load_sdk_config, AppConfig};
use tracing_subscriber::EnvFilter;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const DEFAULT_TABLE: &str = "chatsecure-push-local";
const APNS_APP: &str = "chatsecure-push-local-apns";
const GCM_APP: &str = "chatsecure-push-local-gcm";

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
    let (apns, gcm) = if std::env::var("LOCAL_API_SKIP_SETUP").is_ok_and(|v| v == "1") {
        (
            format!("arn:aws:sns:us-east-1:123456789012:app/APNS_SANDBOX/{APNS_APP}"),
            format!("arn:aws:sns:us-east-1:123456789012:app/GCM/{GCM_APP}"),
        )
    } else {
        setup::ensure_table(&aws_sdk_dynamodb::Client::new(&sdk), &table, table_props).await?;
        let sns = aws_sdk_sns::Client::new(&sdk);
        (
            setup::ensure_platform_application(&sns, APNS_APP, "APNS_SANDBOX").await?,
            setup::ensure_platform_application(&sns, GCM_APP, "GCM").await?,
        )
    };
    if std::env::args().nth(1).as_deref() == Some("setup") {
        println!("TABLE_NAME={table}\nAPNS_PLATFORM_APPLICATION_ARN={apns}\nGCM_PLATFORM_APPLICATION_ARN={gcm}");
        return Ok(());
    }

    let mut config = match AppConfig::from_env() {
        Ok(c) => c,
        Err(_) => {
            // TABLE_NAME unset: use the local default.
            std::env::set_var("TABLE_NAME", &table);
            AppConfig::from_env()?
        }
    };
    config.apns_application_arn.get_or_insert(apns);
    config.gcm_application_arn.get_or_insert(gcm);
    if config.settings.pubsub_jid.is_empty() {
        config.settings.pubsub_jid = "pubsub.localhost".into();
    }
    let deps = build_deps(&sdk, &config);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!("Listening on http://{addr}/api/v1/");
    serve(
        listener,
        Arc::new(State { deps, routes }),
        shutdown_signal(),
    )
    .await?;
    eprintln!("local-api stopped");
    Ok(())
}
