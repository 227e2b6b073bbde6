//! The knock handler in-process, with the real DynamoDB store against the
//! emulator and SNS simulated: fan-out, handler CPU, account deletion.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use push_aws::AppConfig;
use push_core::model::DeviceKind;
use push_core::testing::SimulatedPublish;
use push_core::{ApiRequest, Deps, Settings};
use serde_json::{json, Value};

use crate::common::{apns_token, percentile, proc_usage, username};

pub const SIMULATED_PUBLISH_MS: u64 = 20;

/// The functions' own ports against a fresh table, with simulated publishing
/// and the abuse limits out of reach (the knock still takes its counting path).
pub async fn in_process_deps() -> Deps {
    let table = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let template =
        local_api::template::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
            .expect("template");
    let props = local_api::template::table_properties(&template).expect("table");
    let sdk = push_aws::load_sdk_config().await;
    local_api::setup::ensure_table(&aws_sdk_dynamodb::Client::new(&sdk), &table, props)
        .await
        .expect("table");
    let sns = aws_sdk_sns::Client::new(&sdk);
    let apns = local_api::setup::ensure_platform_application(
        &sns,
        "chatsecure-push-local.apns",
        "APNS_SANDBOX",
    )
    .await
    .expect("app");
    let settings = bench_settings();
    let source_key = local_api::setup::ensure_source_key_secret(
        &aws_sdk_secretsmanager::Client::new(&sdk),
        "bench-source-key",
    )
    .await
    .expect("source key");
    let config = AppConfig {
        table_name: table,
        default_app: push_aws::App::new("default", vec![apns]).expect("app"),
        apps: vec![],
        source_key_secret: Some(source_key),
        settings,
    };
    let mut deps = push_aws::build_deps(&sdk, &config);
    deps.push = Arc::new(SimulatedPublish::new(
        deps.push.clone(),
        Duration::from_millis(SIMULATED_PUBLISH_MS),
    ));
    deps
}

/// The functions' settings with the abuse limits out of the bench's reach
/// (every knock still takes its counting path) and room for 50 devices.
fn bench_settings() -> Settings {
    let defaults = Settings::default();
    Settings {
        // The default knock log (10 slots), with a window so short that it
        // never refuses: every knock takes the counting path (one conditional
        // UpdateItem, one Query).
        knock_limit: push_core::Limit {
            window: Duration::from_millis(1),
            ..defaults.knock_limit
        },
        token_limit: push_core::Limit {
            max: 0,
            ..defaults.token_limit
        },
        signup_limit: push_core::Limit {
            max: 0,
            ..defaults.signup_limit
        },
        // Room for the 50-device row (the default cap is 20), published in
        // one batch.
        device_limit: 50,
        publish_concurrency: 50,
        device_registration_limit: push_core::Limit {
            max: 0,
            ..defaults.device_registration_limit
        },
        ..defaults.clone()
    }
}

fn api_request(method: &str, segments: &[&str], key: Option<&str>, body: Value) -> ApiRequest {
    ApiRequest {
        method: method.parse().expect("an HTTP method"),
        segments: segments.iter().map(|s| s.to_string()).collect(),
        content_type: Some("application/json".into()),
        authorization: key.map(|k| format!("Token {k}")),
        origin: "http://bench".into(),
        path: "/api/v1/".into(),
        body: Bytes::from(body.to_string()),
        ..Default::default()
    }
}

fn knock_request(token: &str) -> ApiRequest {
    api_request("POST", &["messages"], None, json!({"token": token}))
}

/// An account with `n` APNs devices; returns a whitelist token of it.
pub async fn owner_with_devices(deps: &Deps, n: usize) -> String {
    let key = login(deps, &username()).await;
    let mut first = String::new();
    for _ in 0..n {
        let id = new_device(deps, &key).await;
        if first.is_empty() {
            first = id;
        }
    }
    new_token(deps, &key, &first).await
}

/// Signs `name` up, or logs it in (password `p`): a new API key.
async fn login(deps: &Deps, name: &str) -> String {
    let body = json!({"username": name, "password": "p"});
    let r =
        push_core::accounts::create_or_login(deps, &api_request("POST", &["accounts"], None, body))
            .await
            .expect("login");
    answer_field(&r, "token")
}

/// Registers a new APNs device of the key's account; its id.
async fn new_device(deps: &Deps, key: &str) -> String {
    let body = json!({"registration_id": apns_token()});
    let req = api_request("POST", &["device", "apns"], Some(key), body);
    let r = push_core::devices::register(deps, &req, DeviceKind::Apns)
        .await
        .expect("device");
    answer_field(&r, "id")
}

/// Issues a whitelist token for the device; the token.
async fn new_token(deps: &Deps, key: &str, device: &str) -> String {
    let req = api_request(
        "POST",
        &["tokens"],
        Some(key),
        json!({"apns_device": device}),
    );
    let r = push_core::tokens::create(deps, &req).await.expect("token");
    answer_field(&r, "token")
}

fn answer_field(r: &push_core::ApiResponse, name: &str) -> String {
    r.body
        .as_ref()
        .and_then(|b| b[name].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Deleting an account at every cap at once (100 API keys, 20 devices, 500
/// live tokens), in-process against the emulator: the worst case a
/// `DELETE accounts/<name>/` has to finish within one request's budget.
/// Returns the milliseconds it took and what was deleted.
pub async fn deletion_at_caps() -> (f64, String) {
    let deps = in_process_deps().await;
    let caps = Settings::default();
    let name = username();
    let mut key = String::new();
    for _ in 0..caps.api_key_limit {
        key = login(&deps, &name).await;
    }
    let mut devices = Vec::new();
    for _ in 0..caps.device_limit {
        devices.push(new_device(&deps, &key).await);
    }
    for i in 0..caps.live_token_limit as usize {
        new_token(&deps, &key, &devices[i % devices.len()]).await;
    }
    let t = Instant::now();
    let r = push_core::accounts::delete_named(
        &deps,
        &api_request("DELETE", &["accounts", &name], Some(&key), Value::Null),
        &name,
    )
    .await;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    match r {
        Ok(r) => assert_eq!(r.status, 204, "deleted"),
        Err(e) => panic!("the deletion at every cap failed: {e:?}"),
    }
    let what = format!(
        "{} API keys, {} devices and their endpoints, {} live tokens",
        caps.api_key_limit, caps.device_limit, caps.live_token_limit
    );
    (ms, what)
}

/// Runs `f` on a current-thread Tokio runtime of its own, as the Lambda
/// binaries run their handlers (one request at a time, no cross-thread
/// wake-ups).
pub fn on_lambda_runtime<T, Fut>(f: impl FnOnce() -> Fut + Send + 'static) -> T
where
    T: Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f())
    })
    .join()
    .expect("in-process bench")
}

/// This process's CPU time per knock over `n` knocks of `token`.
pub async fn cpu_per_knock(deps: &Deps, token: &str, n: usize) -> f64 {
    let (cpu0, _) = proc_usage("self");
    for _ in 0..n {
        let _ = push_core::knock::knock(deps, &knock_request(token)).await;
    }
    let (cpu1, _) = proc_usage("self");
    (cpu1 - cpu0) * 1000.0 / n as f64
}

pub struct InProcess {
    /// The fan-out table's rows.
    pub rows: String,
    pub base_p50: f64,
    pub fan10: f64,
    pub cpu_ms: f64,
}

/// Fan-out and handler CPU, in-process: the knock handler of push-core with
/// the real DynamoDB store (a fresh, small table in the emulator) and an SNS
/// stand-in that answers each publish after a fixed 20 ms, as SNS roughly
/// does. The emulator serialises requests and costs ~50 ms a publish, so
/// through it fan-out would measure moto, not this code.
pub async fn in_process_knocks() -> InProcess {
    let deps = in_process_deps().await;
    let fan = fan_out(&deps).await;
    // CPU per request of the handler code (parsing, rules, SDK client; no
    // password hashing), as this process's CPU time over many requests.
    let cpu_ms = cpu_per_knock(&deps, &fan.one_device_token, 500).await;
    InProcess {
        fan10: fan.ratio(10),
        rows: fan.rows,
        base_p50: fan.base_p50,
        cpu_ms,
    }
}

/// The device counts of the fan-out rows: 1, 10, the default cap, 50.
pub fn fan_out_sizes() -> [usize; 4] {
    [1, 10, Settings::default().device_limit as usize, 50]
}

/// The fan-out table of one set of ports.
pub struct FanOut {
    pub rows: String,
    pub base_p50: f64,
    /// (devices, p50) per row.
    pub p50s: Vec<(usize, f64)>,
    pub one_device_token: String,
}

impl FanOut {
    /// The p50 with `n` devices relative to one device's.
    pub fn ratio(&self, n: usize) -> f64 {
        let p50 = self
            .p50s
            .iter()
            .find(|(d, _)| *d == n)
            .map_or(f64::NAN, |(_, p)| *p);
        p50 / self.base_p50
    }
}

/// 50 knocks on an owner with each number of devices of [`fan_out_sizes`].
pub async fn fan_out(deps: &Deps) -> FanOut {
    let mut fan = FanOut {
        rows: String::new(),
        base_p50: 0.0,
        p50s: Vec::new(),
        one_device_token: String::new(),
    };
    for n in fan_out_sizes() {
        let token = owner_with_devices(deps, n).await;
        let mut samples = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            let r = push_core::knock::knock(deps, &knock_request(&token)).await;
            assert_eq!(r.map(|r| r.status.as_u16()).ok(), Some(202));
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let p50 = percentile(&mut samples, 0.5);
        let p99 = percentile(&mut samples, 0.99);
        if n == 1 {
            fan.base_p50 = p50;
            fan.one_device_token = token;
        }
        fan.p50s.push((n, p50));
        writeln!(
            fan.rows,
            "| {n} | {p50:.1} ms | {p99:.1} ms | {:.2}× |",
            p50 / fan.base_p50
        )
        .ok();
    }
    fan
}

/// A DynamoDB round trip, simulated: every store call answers after this.
pub const SIMULATED_STORE_MS: u64 = 5;

/// The fan-out with store and push both simulated (each store call after
/// [`SIMULATED_STORE_MS`], each publish after [`SIMULATED_PUBLISH_MS`]): the
/// code's own scaling, free of the emulator's.
pub async fn simulated_fan_out() -> FanOut {
    let world = push_core::testing::World::with(
        bench_settings(),
        push_core::testing::MemoryPush::default(),
    );
    let deps = Deps {
        store: Arc::new(push_core::testing::MemoryStore::with_latency(
            Duration::from_millis(SIMULATED_STORE_MS),
        )),
        push: Arc::new(SimulatedPublish::new(
            world.push.clone(),
            Duration::from_millis(SIMULATED_PUBLISH_MS),
        )),
        clock: Arc::new(push_core::ports::SystemClock),
        source_keys: world.deps.source_keys.clone(),
        settings: world.deps.settings.clone(),
    };
    fan_out(&deps).await
}
