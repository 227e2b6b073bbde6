//! The support library of the black-box tests and of `make bench`: an HTTP
//! client for the API under test (`PUSH_API_URL`: the local router, or `sam
//! local start-api`), readers of the emulator's state and of its request
//! recorder (`AWS_ENDPOINT_URL`), generators of test data, and stacks of a
//! test's own (`Emulator`, `Router`). `make test` and `make sam-local-test`
//! start the stack and set those variables.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

pub use serde_json;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the black-box tests with `make test`, which starts the local stack")
    })
}

/// A response as a client sees it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// How a request body is encoded.
pub enum Body {
    None,
    Json(Value),
    Form(Vec<(String, String)>),
    Multipart(Vec<(String, String)>),
    Raw(&'static str, Vec<u8>),
}

pub fn form(pairs: &[(&str, &str)]) -> Body {
    Body::Form(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

pub fn multipart(pairs: &[(&str, &str)]) -> Body {
    Body::Multipart(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    client: reqwest::Client,
    /// The source address the router is to report (its test-only hook).
    source: Option<String>,
}

impl Default for Api {
    fn default() -> Self {
        Self::new()
    }
}

impl Api {
    /// The API under test (`PUSH_API_URL`), which `make test` or `make
    /// sam-local-test` started.
    pub fn new() -> Self {
        Self::at(&env("PUSH_API_URL"))
    }

    /// The API of one app by name: `/<app>/api/v1/` on the same server.
    pub fn app(name: &str) -> Self {
        Self::at(&format!("{}/{name}/api/v1/", server_root()))
    }

    pub fn at(base: &str) -> Self {
        Api {
            base: base.trim_end_matches('/').to_string() + "/",
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            source: None,
        }
    }

    /// This API, its requests coming from `ip`: on a router started with
    /// `LOCAL_API_TRUST_SOURCE_HEADER=1`, which reports that address as
    /// API Gateway reports `sourceIp` (nothing deployed can choose it).
    pub fn from_source(&self, ip: &str) -> Api {
        Api {
            source: Some(ip.to_string()),
            ..self.clone()
        }
    }

    /// Sends a request to `path` (relative to `/api/v1/`, or absolute).
    pub async fn send(&self, method: &str, path: &str, key: Option<&str>, body: Body) -> Reply {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        };
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, url);
        if let Some(key) = key {
            req = req.header("Authorization", format!("Token {key}"));
        }
        if let Some(ip) = &self.source {
            req = req.header(local_api::server::SOURCE_HEADER, ip);
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Form(pairs) => req.form(&pairs),
            Body::Multipart(pairs) => {
                let mut f = reqwest::multipart::Form::new();
                for (k, v) in pairs {
                    f = f.text(k, v);
                }
                req.multipart(f)
            }
            Body::Raw(content_type, bytes) => {
                let req = req.body(bytes);
                if content_type.is_empty() {
                    req
                } else {
                    req.header("Content-Type", content_type)
                }
            }
        };
        let resp = req.send().await.expect("request to the local API");
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let text = resp.text().await.expect("body");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("response is not JSON: {status} {text}"))
        };
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> Reply {
        self.send("GET", path, key, Body::None).await
    }

    pub async fn post(&self, path: &str, key: Option<&str>, body: Body) -> Reply {
        self.send("POST", path, key, body).await
    }

    pub async fn delete(&self, path: &str, key: Option<&str>) -> Reply {
        self.send("DELETE", path, key, Body::None).await
    }

    /// A new account with a random username; returns its credentials.
    pub async fn signup(&self) -> Account {
        let username = random_username();
        let password = format!("pw-{}", uuid::Uuid::new_v4());
        let r = self
            .post(
                "accounts/",
                None,
                Body::Json(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        Account {
            id: r.json["id"].as_str().expect("id").to_string(),
            username,
            password,
            key: r.json["token"].as_str().expect("token").to_string(),
        }
    }

    /// Registers a device and returns its JSON (asserting `201`).
    pub async fn device(&self, account: &Account, kind: &str, registration_id: &str) -> Value {
        let r = self
            .post(
                &format!("device/{kind}/"),
                Some(&account.key),
                Body::Json(json!({"registration_id": registration_id})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.json
    }

    /// Issues a whitelist token for a device and returns its value.
    pub async fn token(&self, account: &Account, kind: &str, device_id: &str) -> String {
        let field = if kind == "apns" {
            "apns_device"
        } else {
            "gcm_device"
        };
        let r = self
            .post(
                "tokens/",
                Some(&account.key),
                Body::Json(json!({ field: device_id })),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.json["token"].as_str().expect("token").to_string()
    }

    pub async fn knock(&self, token: &str, body: Value) -> Reply {
        let mut body = body;
        body["token"] = json!(token);
        self.post("messages/", None, Body::Json(body)).await
    }
}

/// The scheme, host and port of the API under test.
fn server_root() -> String {
    env("PUSH_API_URL")
        .trim_end_matches('/')
        .trim_end_matches("/api/v1")
        .to_string()
}

/// A sample SNS application event of infra/events/ about `endpoint_arn`.
pub fn event(name: &str, endpoint_arn: &str) -> Value {
    let path = format!("{}/../infra/events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("sample event");
    serde_json::from_str(&text.replace("{{ENDPOINT_ARN}}", endpoint_arn)).expect("event JSON")
}

/// Invokes the feedback function through Lambda's Invoke API: the router's
/// own (`make test`), or `sam local start-lambda`'s when `LAMBDA_INVOKE_URL`
/// names one (`make sam-local-test`).
pub async fn invoke_feedback(api: &Api, event: Value) -> Reply {
    let root = std::env::var("LAMBDA_INVOKE_URL").unwrap_or_else(|_| server_root());
    let root = root.trim_end_matches('/');
    api.send(
        "POST",
        &format!("{root}/2015-03-31/functions/FeedbackFunction/invocations"),
        None,
        Body::Json(event),
    )
    .await
}

/// Disables an endpoint, as SNS does when the push service rejects its token
/// (before it reports the failure).
pub async fn disable(arn: &str) {
    sns()
        .await
        .set_endpoint_attributes()
        .endpoint_arn(arn)
        .attributes("Enabled", "false")
        .send()
        .await
        .expect("SetEndpointAttributes");
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub password: String,
    pub key: String,
}

pub fn random_username() -> String {
    uuid::Uuid::new_v4().to_string()[..30].to_string()
}

/// A random APNs-style device token: 64 hex characters.
pub fn apns_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A random FCM-style registration token.
pub fn fcm_token() -> String {
    format!(
        "fcm-{}:{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// One SNS platform endpoint as the emulator records it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub arn: String,
    pub token: String,
    pub enabled: bool,
    pub custom_user_data: Value,
    /// Every message published to it, exactly as published.
    pub messages: Vec<String>,
}

impl Endpoint {
    /// The platform payload of message `i` under `key` (`APNS_SANDBOX`, `GCM`).
    pub fn payload(&self, i: usize, key: &str) -> Value {
        let envelope: Value = serde_json::from_str(&self.messages[i]).expect("envelope");
        serde_json::from_str(envelope[key].as_str().expect("platform key")).expect("payload")
    }
}

pub fn emulator_url() -> String {
    env("AWS_ENDPOINT_URL")
}

/// The emulator's whole state as JSON.
pub async fn emulator_state() -> Value {
    reqwest::get(format!("{}/moto-api/data.json", emulator_url()))
        .await
        .expect("emulator")
        .json()
        .await
        .expect("emulator JSON")
}

/// Runs `op` while the emulator records every AWS request, and returns its
/// result with the requests, in order. The recorder is one switch for the
/// whole emulator and sees every client's requests: keep to those of your
/// own table or endpoints (as [`calls_on_table`] does).
pub async fn recorded<T>(
    op: impl std::future::Future<Output = T>,
) -> (T, Vec<local_api::recording::RecordedCall>) {
    let recorder = |action: &'static str| async move {
        reqwest::Client::new()
            .post(format!("{}/moto-api/recorder/{action}", emulator_url()))
            .send()
            .await
            .expect("recorder");
    };
    recorder("reset-recording").await;
    recorder("start-recording").await;
    let out = op.await;
    recorder("stop-recording").await;
    let text = reqwest::get(format!(
        "{}/moto-api/recorder/download-recording",
        emulator_url()
    ))
    .await
    .expect("recording")
    .text()
    .await
    .expect("recording text");
    (out, local_api::recording::parse(&text))
}

/// [`recorded`], keeping the requests that name `table` (a test's own table).
pub async fn calls_on_table<T>(
    table: &str,
    op: impl std::future::Future<Output = T>,
) -> (T, Vec<local_api::recording::RecordedCall>) {
    let (out, calls) = recorded(op).await;
    let quoted = format!("\"{table}\"");
    let calls = calls
        .into_iter()
        .filter(|c| c.body.contains(&quoted))
        .collect();
    (out, calls)
}

/// The one endpoint that carries this push token (asserted).
pub async fn only_endpoint(token: &str) -> Endpoint {
    let mut endpoints = endpoints_for(token).await;
    assert_eq!(
        endpoints.len(),
        1,
        "expected exactly one endpoint for the token: {endpoints:?}"
    );
    endpoints.remove(0)
}

/// All endpoints that exist now (the emulator also lists deleted ones; those
/// are filtered out by asking SNS itself).
pub async fn endpoints_for(token: &str) -> Vec<Endpoint> {
    let state = emulator_state().await;
    let sns = sns().await;
    let mut out = Vec::new();
    for e in state["sns"]["PlatformEndpoint"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        // SetEndpointAttributes changes `attributes.Token`, not `token`.
        if e["token"].as_str() != Some(token) && e["attributes"]["Token"].as_str() != Some(token) {
            continue;
        }
        let arn = e["arn"].as_str().unwrap_or_default().to_string();
        let live = sns
            .get_endpoint_attributes()
            .endpoint_arn(&arn)
            .send()
            .await;
        // Gone since the dump: not there. Any other failure is the test's.
        let live = match live {
            Ok(live) => live,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_not_found_exception()) =>
            {
                continue
            }
            Err(e) => panic!("GetEndpointAttributes {arn}: {e:?}"),
        };
        let attrs = live.attributes.unwrap_or_default();
        if attrs.get("Token").map(String::as_str) != Some(token) {
            continue;
        }
        let mut messages: Vec<(String, String)> = e["messages"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        messages.sort();
        out.push(Endpoint {
            arn,
            token: attrs.get("Token").cloned().unwrap_or_default(),
            enabled: attrs.get("Enabled").map(String::as_str) == Some("true"),
            custom_user_data: e["custom_user_data"].clone(),
            messages: messages.into_iter().map(|(_, m)| m).collect(),
        });
    }
    out
}

/// Messages recorded for every endpoint that ever carried `token`, deleted or not.
pub async fn all_messages_for(token: &str) -> usize {
    let state = emulator_state().await;
    state["sns"]["PlatformEndpoint"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| {
            e["token"].as_str() == Some(token) || e["attributes"]["Token"].as_str() == Some(token)
        })
        .map(|e| e["messages"].as_object().map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Changes some fidelity switches of the emulator at `emulator_url` while it
/// runs (`POST /fidelity/settings`); asserts they were taken.
pub async fn set_fidelity(emulator_url: &str, settings: Value) {
    let r = reqwest::Client::new()
        .post(format!("{emulator_url}/fidelity/settings"))
        .json(&settings)
        .send()
        .await
        .expect("emulator");
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "fidelity settings {settings}: {status} {text}"
    );
}

/// Whether a reply is an honest "try again later": `503` with `Retry-After`.
pub fn is_retry_later(r: &Reply) -> bool {
    r.status == 503 && r.header("retry-after").is_some()
}

/// The tests' own AWS clients retry generously: with injected faults on
/// (`EMULATOR_FAULT_RATE`), reading the emulator's state must not fail.
async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(push_aws::config::https_client())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(10))
        .load()
        .await
}

pub async fn sns() -> aws_sdk_sns::Client {
    // The functions' own SNS client (429 retried; outside a request's
    // budget its interceptor keeps the configured timeouts).
    push_aws::config::sns_client(&sdk_config().await)
}

pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config().await)
}

/// Every item of every table in the emulator, as debug text per item.
pub async fn table_dump() -> Vec<String> {
    let db = dynamodb().await;
    let mut items = Vec::new();
    let tables = db
        .list_tables()
        .send()
        .await
        .expect("ListTables")
        .table_names
        .unwrap_or_default();
    for table in tables {
        let mut start = None;
        loop {
            let out = db
                .scan()
                .table_name(&table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("Scan");
            items.extend(
                out.items
                    .unwrap_or_default()
                    .iter()
                    .map(|i| format!("{i:?}")),
            );
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
    }
    items
}

/// Waits until the emulator's modelled index lag (`EMULATOR_INDEX_LAG_MS`,
/// which `make test` sets) has passed, so that what was just written shows in
/// global secondary indexes, as an operator's later event would find it.
pub async fn settle_index() {
    let lag_ms: u64 = std::env::var("EMULATOR_INDEX_LAG_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if lag_ms > 0 {
        tokio::time::sleep(Duration::from_millis(lag_ms + 100)).await;
    }
}

/// Waits out the last seconds of an hour so that a test using hour-long
/// fixed-window limits (token and account creations) never straddles two of
/// them. Sliding-log limits (knocks, logins) have no edges to avoid.
pub async fn away_from_window_edge() {
    away_from_window_edge_by(Duration::from_secs(20)).await;
}

/// [`away_from_window_edge`] for a test that takes up to `margin`.
pub async fn away_from_window_edge_by(margin: Duration) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if 3600 - now % 3600 < margin.as_secs() {
        tokio::time::sleep(Duration::from_secs(3600 - now % 3600 + 1)).await;
    }
}

/// An emulator of a test's own on a free port, with extra environment (the
/// fidelity switches of `infra/local/fidelity.py`); stopped on drop.
pub struct Emulator {
    child: Option<Child>,
    pub port: u16,
    extra_env: Vec<(String, String)>,
}

impl Emulator {
    pub async fn start(extra_env: &[(&str, &str)]) -> Emulator {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let mut emulator = Emulator {
            child: None,
            port,
            extra_env: extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        emulator.restart().await;
        emulator
    }

    /// Starts it (again, empty) on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/local/emulator.py");
        let mut cmd = Command::new(env("EMULATOR_PYTHON"));
        cmd.args([script, "127.0.0.1", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("emulator"));
        for _ in 0..100 {
            if reqwest::get(format!("{}/moto-api/data.json", self.url()))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("emulator did not start");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Changes some of its fidelity switches while it runs (`POST
    /// /fidelity/settings`, infra/local/fidelity.py), e.g.
    /// `{"applied_fault_rate": 1.0}`; asserts they were taken.
    pub async fn set(&self, settings: Value) {
        set_fidelity(&self.url(), settings).await;
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A second router on a free port with extra environment (e.g. a short token
/// lifetime), sharing the emulator. Stopped on drop.
pub struct Router {
    child: Child,
    pub api: Api,
    /// Where its standard output (the metric lines) goes, when `make test`
    /// gave a log directory (`ROUTER_LOG_DIR`).
    pub out: Option<std::path::PathBuf>,
}

impl Router {
    pub async fn start(extra_env: &[(&str, &str)]) -> Router {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let mut cmd = Command::new(env("LOCAL_API_BIN"));
        // Its log goes where `make test` looks for internal errors (any `500`
        // of the run fails it), else nowhere.
        let dir = std::env::var("ROUTER_LOG_DIR").ok();
        let file = |ending: &str| {
            let path =
                std::path::PathBuf::from(format!("{}/router-{port}.{ending}", dir.as_ref()?));
            std::fs::File::create(&path).ok().map(|f| (path, f))
        };
        let log = file("log").map_or_else(Stdio::null, |(_, f)| Stdio::from(f));
        let (out, stdout) = match file("out") {
            Some((path, f)) => (Some(path), Stdio::from(f)),
            None => (None, Stdio::null()),
        };
        cmd.current_dir(root)
            .env("PORT", port.to_string())
            .stdout(stdout)
            .stderr(log);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start local-api");
        // Owned from here on: dropping the guard stops the process.
        let router = Router {
            child,
            api: Api::at(&format!("http://127.0.0.1:{port}/api/v1/")),
            out,
        };
        for _ in 0..300 {
            if let Ok(r) = reqwest::get(format!("{}pubsub/", router.api.base)).await {
                if r.status().is_success() {
                    return router;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("second router did not start");
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
