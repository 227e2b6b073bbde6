//! What the clients run against, in either mode: the memory ports (one
//! store and gateway per app), or the real adapters on the AWS emulator.
//! Besides the apps' ports (unwrapped: the checker's), each backend can do
//! what the push service does (disable an endpoint), read one endpoint, and
//! take a snapshot of everything for the invariants.

use std::collections::BTreeMap;
use std::sync::Arc;

use push_aws::dynamo::snapshot::TableItem;
use push_aws::DynamoStore;
use push_core::model::{DeviceKind, DeviceRecord, Platform, TokenRecord};
use push_core::ports::Clock;
use push_core::secrets::sha256_hex;
use push_core::testing::{MemoryPush, MemoryStore};
use push_core::time::Micros;
use push_core::Deps;

use crate::sched::Sched;

/// One app: its name and its ports as the functions get them.
pub struct AppSetup {
    pub name: String,
    pub raw: Deps,
    /// Whether it has both APNs environments (devices settle).
    pub both_environments: bool,
}

/// An endpoint as SNS has it.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointState {
    pub token: String,
    pub enabled: bool,
}

#[derive(Debug, Clone)]
pub struct EndpointSnap {
    pub app: usize,
    pub arn: String,
    pub platform: Option<Platform>,
    pub token: String,
    pub enabled: bool,
}

#[derive(Debug, Clone)]
pub struct AccountSnap {
    pub id: String,
    pub username: String,
    pub deleting: bool,
}

#[derive(Debug, Clone)]
pub struct ClaimSnap {
    pub kind: DeviceKind,
    /// SHA-256 of the push token (what the DynamoDB key holds).
    pub token_hash: String,
    pub owner: String,
    pub device_id: String,
}

#[derive(Debug, Clone)]
pub struct TokenSnap {
    pub token: String,
    pub owner: String,
    pub device_id: String,
    pub expires_us: Micros,
}

/// One app's items.
#[derive(Debug, Clone, Default)]
pub struct AppSnap {
    pub accounts: Vec<AccountSnap>,
    /// (key hash, account id).
    pub api_keys: Vec<(String, String)>,
    pub devices: Vec<DeviceRecord>,
    pub claims: Vec<ClaimSnap>,
    /// The whitelist tokens as the knock finds them.
    pub tokens: Vec<TokenSnap>,
}

/// Everything, as of one moment (once every client is done).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub apps: Vec<AppSnap>,
    pub endpoints: Vec<EndpointSnap>,
    /// The accounts' own copies (DynamoDB only: `None` in memory).
    pub owned_keys: Option<Vec<(String, String)>>,
    pub owned_tokens: Option<Vec<TokenRecord>>,
    /// (account id, its device count), as stored.
    pub device_counts: Vec<(String, i64)>,
    /// Anything else kept for accounts (counters...): (a text that names
    /// the account's id, what it is).
    pub account_items: Vec<(String, String)>,
}

pub struct MemoryApp {
    pub store: Arc<MemoryStore>,
    pub push: Arc<MemoryPush>,
}

pub struct EmulatorEnv {
    pub url: String,
    pub http: reqwest::Client,
    pub sns: aws_sdk_sns::Client,
    pub table: DynamoStore,
    /// Each app's platform application ARNs.
    pub applications: Vec<Vec<String>>,
}

pub enum Backend {
    Memory(Vec<MemoryApp>),
    Emulator(Box<EmulatorEnv>),
}

/// Virtual time for the memory mode: the clock the operations read moves
/// with tokio's (paused, auto-advancing) clock, so retries' pauses and the
/// clients' think time pass, and deadlines mean something.
pub struct VirtualClock {
    base_us: Micros,
    start: tokio::time::Instant,
}

impl VirtualClock {
    pub fn new(base_us: Micros) -> Self {
        VirtualClock {
            base_us,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for VirtualClock {
    fn now_us(&self) -> Micros {
        self.base_us + self.start.elapsed().as_micros() as Micros
    }
}

fn sns_error(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

impl Backend {
    /// The push service kills `arn`'s token: SNS disables the endpoint, if
    /// it still carries `token`. `true` when it did.
    pub async fn disable(&self, app: usize, arn: &str, token: &str) -> Result<bool, String> {
        match self {
            Backend::Memory(apps) => {
                let push = &apps[app].push;
                match push.endpoint(arn) {
                    Some(e) if e.token == token => {
                        push.disable(arn);
                        Ok(true)
                    }
                    _ => Ok(false),
                }
            }
            Backend::Emulator(env) => match self.endpoint(app, arn).await? {
                Some(e) if e.token == token => {
                    env.sns
                        .set_endpoint_attributes()
                        .endpoint_arn(arn)
                        .attributes("Enabled", "false")
                        .send()
                        .await
                        .map_err(|e| {
                            sns_error(
                                "SetEndpointAttributes",
                                aws_sdk_sns::error::DisplayErrorContext(e),
                            )
                        })?;
                    Ok(true)
                }
                _ => Ok(false),
            },
        }
    }

    /// One endpoint as SNS has it now; `None` when it does not exist.
    pub async fn endpoint(&self, app: usize, arn: &str) -> Result<Option<EndpointState>, String> {
        match self {
            Backend::Memory(apps) => Ok(apps[app].push.endpoint(arn).map(|e| EndpointState {
                token: e.token,
                enabled: e.enabled,
            })),
            Backend::Emulator(env) => {
                match env
                    .sns
                    .get_endpoint_attributes()
                    .endpoint_arn(arn)
                    .send()
                    .await
                {
                    Ok(out) => {
                        let a = out.attributes.unwrap_or_default();
                        Ok(Some(EndpointState {
                            token: a.get("Token").cloned().unwrap_or_default(),
                            enabled: a.get("Enabled").map(String::as_str) == Some("true"),
                        }))
                    }
                    Err(e)
                        if aws_sdk_sns::error::ProvideErrorMetadata::code(&e)
                            == Some("NotFound") =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(sns_error(
                        "GetEndpointAttributes",
                        aws_sdk_sns::error::DisplayErrorContext(e),
                    )),
                }
            }
        }
    }

    /// Everything, at once (call only when every client is done).
    pub async fn snapshot(&self, sched: &Sched) -> Result<Snapshot, String> {
        match self {
            Backend::Memory(apps) => Ok(memory_snapshot(apps, sched)),
            Backend::Emulator(env) => emulator_snapshot(env).await,
        }
    }
}

fn memory_snapshot(apps: &[MemoryApp], sched: &Sched) -> Snapshot {
    let mut snap = Snapshot::default();
    // Every endpoint the gateway ever handed out (all were made through
    // the scheduler's wrapper), as it is now.
    let known: Vec<Vec<String>> = sched
        .state()
        .endpoints
        .iter()
        .map(|m| m.keys().cloned().collect())
        .collect();
    for (i, app) in apps.iter().enumerate() {
        let s = app.store.snapshot();
        snap.apps.push(AppSnap {
            accounts: s
                .accounts
                .iter()
                .map(|a| AccountSnap {
                    id: a.id.clone(),
                    username: a.username.clone(),
                    deleting: a.deleting,
                })
                .collect(),
            api_keys: s
                .api_keys
                .iter()
                .map(|k| (k.key_hash.clone(), k.account_id.clone()))
                .collect(),
            devices: s.devices.clone(),
            claims: s
                .claims
                .iter()
                .map(|(kind, token, c)| ClaimSnap {
                    kind: *kind,
                    token_hash: sha256_hex(token),
                    owner: c.owner.clone(),
                    device_id: c.device_id.clone(),
                })
                .collect(),
            tokens: s
                .tokens
                .iter()
                .map(|t| TokenSnap {
                    token: t.token.clone(),
                    owner: t.owner.clone(),
                    device_id: t.device_id.clone(),
                    expires_us: t.expires_us,
                })
                .collect(),
        });
        snap.device_counts.extend(s.device_counts.iter().cloned());
        // Counters are keyed by their limit key, which names the account.
        for counter in &s.counters {
            snap.account_items
                .push((counter.clone(), format!("app {i} counter {counter}")));
        }
        for arn in &known[i] {
            if let Some(e) = app.push.endpoint(arn) {
                snap.endpoints.push(EndpointSnap {
                    app: i,
                    arn: arn.clone(),
                    platform: Some(e.platform),
                    token: e.token,
                    enabled: e.enabled,
                });
            }
        }
    }
    snap
}

async fn emulator_snapshot(env: &EmulatorEnv) -> Result<Snapshot, String> {
    let mut snap = Snapshot {
        apps: vec![AppSnap::default(); env.applications.len()],
        owned_keys: Some(Vec::new()),
        owned_tokens: Some(Vec::new()),
        ..Snapshot::default()
    };
    // Endpoints: every platform application's, as SNS lists them (the
    // emulator's data.json keeps deleted endpoints too).
    for (app, applications) in env.applications.iter().enumerate() {
        for application in applications {
            let mut next = None;
            loop {
                let out = env
                    .sns
                    .list_endpoints_by_platform_application()
                    .platform_application_arn(application)
                    .set_next_token(next)
                    .send()
                    .await
                    .map_err(|e| {
                        sns_error(
                            "ListEndpointsByPlatformApplication",
                            aws_sdk_sns::error::DisplayErrorContext(e),
                        )
                    })?;
                for e in out.endpoints() {
                    let arn = e.endpoint_arn().unwrap_or_default().to_string();
                    let attributes = e.attributes().cloned().unwrap_or_default();
                    snap.endpoints.push(EndpointSnap {
                        app,
                        platform: Platform::of_arn(&arn),
                        arn,
                        token: attributes.get("Token").cloned().unwrap_or_default(),
                        enabled: attributes.get("Enabled").map(String::as_str) == Some("true"),
                    });
                }
                match out.next_token {
                    Some(t) if !t.is_empty() => next = Some(t),
                    _ => break,
                }
            }
        }
    }
    let endpoint_app: BTreeMap<String, usize> = snap
        .endpoints
        .iter()
        .map(|e| (e.arn.clone(), e.app))
        .collect();
    let app_of_ns = |ns: &str| -> usize { usize::from(!ns.is_empty()) };
    let table = env
        .table
        .snapshot_table()
        .await
        .map_err(|e| format!("Scan: {e}"))?;
    let mut account_app: BTreeMap<String, usize> = BTreeMap::new();
    for item in &table.items {
        if let TableItem::Account { ns, id, .. } = item {
            account_app.insert(id.clone(), app_of_ns(ns));
        }
    }
    for item in table.items {
        match item {
            TableItem::Account {
                ns,
                username,
                id,
                deleting,
                ..
            } => snap.apps[app_of_ns(&ns)].accounts.push(AccountSnap {
                id,
                username,
                deleting,
            }),
            TableItem::Email { .. } => {}
            TableItem::ApiKey {
                ns,
                key_hash,
                account_id,
                ..
            } => snap.apps[app_of_ns(&ns)]
                .api_keys
                .push((key_hash, account_id)),
            TableItem::OwnedApiKey {
                account_id,
                key_hash,
            } => {
                if let Some(k) = snap.owned_keys.as_mut() {
                    k.push((account_id, key_hash));
                }
            }
            TableItem::Device(d) => {
                let app = account_app
                    .get(&d.owner)
                    .or_else(|| endpoint_app.get(&d.endpoint_arn))
                    .copied()
                    .unwrap_or(0);
                snap.apps[app].devices.push(d);
            }
            TableItem::Claim {
                ns,
                kind,
                token_hash,
                owner,
                device_id,
            } => snap.apps[app_of_ns(&ns)].claims.push(ClaimSnap {
                kind,
                token_hash,
                owner,
                device_id,
            }),
            TableItem::Token {
                ns,
                token,
                owner,
                device_id,
                expires_us,
            } => snap.apps[app_of_ns(&ns)].tokens.push(TokenSnap {
                token,
                owner,
                device_id,
                expires_us,
            }),
            TableItem::OwnedToken(t) => {
                if let Some(o) = snap.owned_tokens.as_mut() {
                    o.push(t);
                }
            }
            TableItem::DeviceCount { account_id, n } => snap.device_counts.push((account_id, n)),
            TableItem::Other { pk, sk } => {
                if let Some(id) = pk.strip_prefix("ACCT#") {
                    snap.account_items.push((id.to_string(), sk));
                }
            }
        }
    }
    Ok(snap)
}
