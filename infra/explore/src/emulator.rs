//! The emulator mode's set-up: reset the emulator, turn on its random
//! per-call latency if it has the switch, create the table as
//! `template.yaml` declares it and two apps' platform applications, and
//! build the real adapters (`push_aws::Deployment`) on them.

use std::time::Duration;

use push_aws::{App, AppConfig, DynamoStore};
use push_core::Settings;

use crate::world::{AppSetup, Backend, EmulatorEnv};

pub const TABLE: &str = "explore";

/// The two apps: the default one with the APNs sandbox and FCM, and `zom`
/// with both APNs environments (devices settle) and FCM.
const APPLICATIONS: &[(&str, &[(&str, &str)])] = &[
    (
        "chatsecure",
        &[
            ("explore-chatsecure-apns-sandbox", "APNS_SANDBOX"),
            ("explore-chatsecure-fcm", "GCM"),
        ],
    ),
    (
        "zom",
        &[
            ("explore-zom-apns", "APNS"),
            ("explore-zom-apns-sandbox", "APNS_SANDBOX"),
            ("explore-zom-fcm", "GCM"),
        ],
    ),
];

/// What the emulator was told, for the report.
pub struct Prepared {
    pub backend: Backend,
    pub apps: Vec<AppSetup>,
    /// Whether the emulator's own per-call latency switch is on.
    pub emulator_latency: bool,
}

fn template_path() -> String {
    std::env::var("TEMPLATE")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml").into())
}

pub async fn prepare(settings: Settings) -> Result<Prepared, String> {
    let url = std::env::var("AWS_ENDPOINT_URL")
        .map_err(|_| "AWS_ENDPOINT_URL is not set: the emulator mode needs a running emulator")?;
    let url = url.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let reset = http
        .post(format!("{url}/moto-api/reset"))
        .send()
        .await
        .map_err(|e| format!("POST /moto-api/reset: {e}"))?;
    if !reset.status().is_success() {
        return Err(format!("POST /moto-api/reset answered {}", reset.status()));
    }
    // Random latency on every call, so requests overlap in every order
    // (infra/local/fidelity.py); an emulator without the switch leaves it
    // to the scheduler's own client-side pauses. No index lag: the explorer
    // feeds the feedback function its event a moment after the endpoint's
    // device was saved, where SNS reports seconds after a failed delivery
    // (the index is only the feedback function's, docs/ARCHITECTURE.md,
    // "Concurrency"); with `make test`'s 300 ms the event missed a device
    // saved 0.2 s before, and the invariant that it be settled failed by
    // chance. The API tests keep the lag.
    let latency = http
        .post(format!("{url}/fidelity/settings"))
        .json(&serde_json::json!({"conflicts": true, "dynamodb_latency_ms": "0+20", "sns_latency_ms": "0+20", "index_lag_ms": 0}))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    let sdk = push_aws::load_sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let sns = aws_sdk_sns::Client::new(&sdk);
    let template = local_api::template::load(&template_path())?;
    let props = local_api::template::table_properties(&template)
        .ok_or("template.yaml declares no table")?;
    local_api::setup::ensure_table(&dynamo, TABLE, props)
        .await
        .map_err(|e| e.to_string())?;
    let mut applications = Vec::new();
    for (_, apps) in APPLICATIONS {
        let mut arns = Vec::new();
        for (name, platform) in *apps {
            arns.push(
                local_api::setup::ensure_platform_application(&sns, name, platform)
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        applications.push(arns);
    }
    let source_key = local_api::setup::ensure_source_key_secret(
        &aws_sdk_secretsmanager::Client::new(&sdk),
        "explore-source-key",
    )
    .await
    .map_err(|e| e.to_string())?;
    let config = AppConfig {
        table_name: TABLE.into(),
        default_app: App::new(APPLICATIONS[0].0, applications[0].clone())?,
        apps: vec![App::new(APPLICATIONS[1].0, applications[1].clone())?],
        source_key_secret: Some(source_key),
        settings,
    };
    let deployment = push_aws::build_deployment(&sdk, &config);
    let apps = vec![
        AppSetup {
            name: APPLICATIONS[0].0.into(),
            raw: deployment.app(None).ok_or("no default app")?.clone(),
            both_environments: false,
        },
        AppSetup {
            name: APPLICATIONS[1].0.into(),
            raw: deployment
                .app(Some(APPLICATIONS[1].0))
                .ok_or("no second app")?
                .clone(),
            both_environments: true,
        },
    ];
    Ok(Prepared {
        backend: Backend::Emulator(Box::new(EmulatorEnv {
            url,
            http,
            sns,
            table: DynamoStore::new(dynamo, TABLE.into()),
            applications,
        })),
        apps,
        emulator_latency: latency,
    })
}
