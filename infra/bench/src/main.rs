//! `make bench`: measures the release build and prints one table, also
//! written to `docs/BENCHMARKS.md`. Numbers only: nothing here passes or fails.
//!
//! Environment (set by `infra/local/stack.sh bench`): `PUSH_API_URL` (a release
//! router), `AWS_ENDPOINT_URL` (the emulator), `ROUTER_PID`, `RELEASE_DIR`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use push_aws::AppConfig;
use push_core::model::DeviceKind;
use push_core::ports::{PortError, PublishError, Push, PushGateway};
use push_core::{ApiRequest, Deps, Settings};
use serde_json::{json, Value};
use tokio::sync::Mutex;

const FUNCTIONS: &[&str] = &["register", "tokens", "knock", "feedback"];

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run `make bench`"))
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    if samples.is_empty() {
        return f64::NAN;
    }
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx]
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, f64) {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            url,
        );
        if let Some(k) = key {
            req = req.header("Authorization", format!("Token {k}"));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let start = Instant::now();
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            ms,
        )
    }
}

fn apns_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn username() -> String {
    uuid::Uuid::new_v4().to_string()[..30].to_string()
}

/// Process CPU seconds (user + system) and peak RSS (KiB) from /proc.
fn proc_usage(pid: &str) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks / 100.0, hwm)
}

// ---------- Cold start through a Lambda Runtime API stub ----------

struct RuntimeStub {
    /// Events still to hand out, in order.
    events: Vec<Value>,
    /// Invocations answered so far, and the signals for the first and last.
    answered: usize,
    total: usize,
    first: Option<tokio::sync::oneshot::Sender<()>>,
    last: Option<tokio::sync::oneshot::Sender<()>>,
}

async fn runtime_api(
    stub: Arc<Mutex<RuntimeStub>>,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let _ = req.into_body().collect().await;
    let mut s = stub.lock().await;
    if path.ends_with("/invocation/next") {
        if s.events.is_empty() {
            drop(s);
            // Hold the runtime here until it is killed.
            tokio::time::sleep(Duration::from_secs(30)).await;
            return hyper::Response::new(Full::new(Bytes::new()));
        }
        let event = s.events.remove(0);
        let mut resp = hyper::Response::new(Full::new(Bytes::from(event.to_string())));
        let headers = resp.headers_mut();
        headers.insert(
            "Lambda-Runtime-Aws-Request-Id",
            "bench-1".parse().expect("header"),
        );
        headers.insert(
            "Lambda-Runtime-Deadline-Ms",
            "9999999999999".parse().expect("header"),
        );
        headers.insert(
            "Lambda-Runtime-Invoked-Function-Arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench"
                .parse()
                .expect("header"),
        );
        return resp;
    }
    if path.contains("/response") || path.contains("/error") {
        s.answered += 1;
        if let Some(first) = s.first.take() {
            let _ = first.send(());
        }
        if s.answered == s.total {
            if let Some(last) = s.last.take() {
                let _ = last.send(());
            }
        }
    }
    let mut resp = hyper::Response::new(Full::new(Bytes::from_static(b"{}")));
    *resp.status_mut() = hyper::StatusCode::ACCEPTED;
    resp
}

fn event_for(function: &str) -> Value {
    match function {
        "feedback" => json!({"Records": []}),
        "knock" => http_event("GET", "/api/v1/pubsub/"),
        "tokens" => http_event("GET", "/api/v1/tokens/"),
        _ => http_event("GET", "/api/v1/accounts/"),
    }
}

fn http_event(method: &str, path: &str) -> Value {
    http_event_with(method, path, None, None)
}

fn http_event_with(method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> Value {
    let mut headers = json!({"host": "bench.example", "x-forwarded-proto": "https", "content-type": "application/json"});
    if let Some(k) = key {
        headers["authorization"] = json!(format!("Token {k}"));
    }
    json!({
        "version": "2.0", "routeKey": format!("ANY {path}"), "rawPath": path, "rawQueryString": "",
        "body": body.map(|b| b.to_string()),
        "headers": headers,
        "requestContext": {"accountId": "123456789012", "apiId": "bench", "domainName": "bench.example",
            "domainPrefix": "bench", "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
            "sourceIp": "192.0.2.1", "userAgent": "bench"}, "requestId": "r", "routeKey": format!("ANY {path}"),
            "stage": "$default", "time": "27/Nov/2026:00:00:00 +0000", "timeEpoch": 0},
        "isBase64Encoded": false
    })
}

/// Runs a bootstrap against a Runtime API stub that hands it `events`:
/// milliseconds from spawning it to its first answered invocation, and its
/// peak RSS (KiB) once every event is answered.
async fn run_bootstrap(binary: &str, function: &str, events: Vec<Value>) -> (f64, u64) {
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    let (last_tx, last_rx) = tokio::sync::oneshot::channel();
    let stub = Arc::new(Mutex::new(RuntimeStub {
        total: events.len(),
        events,
        answered: 0,
        first: Some(first_tx),
        last: Some(last_tx),
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server_stub = stub.clone();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let stub = server_stub.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let stub = stub.clone();
                    async move { Ok::<_, Infallible>(runtime_api(stub, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let start = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("TABLE_NAME", "chatsecure-push-local")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn bootstrap");
    let _ = tokio::time::timeout(Duration::from_secs(10), first_rx).await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let _ = tokio::time::timeout(Duration::from_secs(120), last_rx).await;
    let rss = child
        .id()
        .map(|pid| proc_usage(&pid.to_string()).1)
        .unwrap_or(0);
    let _ = child.kill().await;
    server.abort();
    (ms, rss)
}

async fn cold_start(binary: &str, function: &str) -> f64 {
    run_bootstrap(binary, function, vec![event_for(function)])
        .await
        .0
}

// ---------- AWS call counting through the emulator's recorder ----------

async fn recorder(action: &str) {
    let base = env("AWS_ENDPOINT_URL");
    reqwest::Client::new()
        .post(format!("{base}/moto-api/recorder/{action}"))
        .send()
        .await
        .expect("recorder");
}

/// The AWS operations the recorder saw, by name.
async fn recorded_calls() -> BTreeMap<String, usize> {
    let base = env("AWS_ENDPOINT_URL");
    let text = reqwest::get(format!("{base}/moto-api/recorder/download-recording"))
        .await
        .expect("recording")
        .text()
        .await
        .unwrap_or_default();
    let mut counts = BTreeMap::new();
    for call in local_api::recording::parse(&text) {
        *counts.entry(call.operation).or_default() += 1;
    }
    counts
}

async fn count_calls<F, Fut>(op: F) -> (String, BTreeMap<String, usize>)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    recorder("reset-recording").await;
    recorder("start-recording").await;
    op().await;
    recorder("stop-recording").await;
    let calls = recorded_calls().await;
    let text = calls
        .iter()
        .map(|(k, v)| format!("{v}× {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    (text, calls)
}

const SIMULATED_PUBLISH_MS: u64 = 20;

/// SNS as far as publishing goes: every publish succeeds after a fixed delay.
struct SimulatedSns {
    inner: Arc<dyn PushGateway>,
}

#[async_trait::async_trait]
impl PushGateway for SimulatedSns {
    fn supports(&self, kind: DeviceKind) -> bool {
        self.inner.supports(kind)
    }
    async fn ensure_endpoint(
        &self,
        kind: DeviceKind,
        token: &str,
        known: Option<&str>,
    ) -> Result<String, PortError> {
        self.inner.ensure_endpoint(kind, token, known).await
    }
    async fn delete_endpoint(&self, arn: &str) -> Result<(), PortError> {
        self.inner.delete_endpoint(arn).await
    }
    async fn endpoint_enabled(&self, arn: &str) -> Result<Option<bool>, PortError> {
        self.inner.endpoint_enabled(arn).await
    }
    async fn publish(
        &self,
        _arn: &str,
        _kind: DeviceKind,
        _push: &Push,
    ) -> Result<(), PublishError> {
        tokio::time::sleep(Duration::from_millis(SIMULATED_PUBLISH_MS)).await;
        Ok(())
    }
}

/// The functions' own ports against a fresh table, with simulated publishing
/// and the abuse limits out of reach (the knock still takes its counting path).
async fn in_process_deps() -> Deps {
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
        "chatsecure-push-local-apns",
        "APNS_SANDBOX",
    )
    .await
    .expect("app");
    let defaults = Settings::default();
    let settings = Settings {
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
    };
    let config = AppConfig {
        table_name: table,
        apns_application_arn: Some(apns),
        gcm_application_arn: None,
        settings,
    };
    let mut deps = push_aws::build_deps(&sdk, &config);
    deps.push = Arc::new(SimulatedSns {
        inner: deps.push.clone(),
    });
    deps
}

fn api_request(method: &str, segments: &[&str], key: Option<&str>, body: Value) -> ApiRequest {
    ApiRequest {
        method: method.into(),
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
async fn owner_with_devices(deps: &Deps, n: usize) -> String {
    let r = push_core::accounts::create_or_login(
        deps,
        &api_request(
            "POST",
            &["accounts"],
            None,
            json!({"username": username(), "password": "p"}),
        ),
    )
    .await
    .expect("account");
    let key = r
        .body
        .as_ref()
        .and_then(|b| b["token"].as_str())
        .unwrap_or_default()
        .to_string();
    let mut first = String::new();
    for _ in 0..n {
        let r = push_core::devices::register(
            deps,
            &api_request(
                "POST",
                &["device", "apns"],
                Some(&key),
                json!({"registration_id": apns_token()}),
            ),
            DeviceKind::Apns,
        )
        .await
        .expect("device");
        if first.is_empty() {
            first = r
                .body
                .as_ref()
                .and_then(|b| b["id"].as_str())
                .unwrap_or_default()
                .to_string();
        }
    }
    let r = push_core::tokens::create(
        deps,
        &api_request(
            "POST",
            &["tokens"],
            Some(&key),
            json!({"apns_device": first}),
        ),
    )
    .await
    .expect("token");
    r.body
        .as_ref()
        .and_then(|b| b["token"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Deleting an account at every cap at once (100 API keys, 20 devices, 500
/// live tokens), in-process against the emulator: the worst case a
/// `DELETE accounts/<name>/` has to finish within one request's budget.
/// Returns the milliseconds it took and what was deleted.
async fn deletion_at_caps() -> (f64, String) {
    let deps = in_process_deps().await;
    let caps = Settings::default();
    let name = username();
    let body = json!({"username": name, "password": "p"});
    let mut key = String::new();
    for _ in 0..caps.api_key_limit {
        let r = push_core::accounts::create_or_login(
            &deps,
            &api_request("POST", &["accounts"], None, body.clone()),
        )
        .await
        .expect("login");
        key = r
            .body
            .as_ref()
            .and_then(|b| b["token"].as_str())
            .unwrap_or_default()
            .to_string();
    }
    let mut devices = Vec::new();
    for _ in 0..caps.device_limit {
        let r = push_core::devices::register(
            &deps,
            &api_request(
                "POST",
                &["device", "apns"],
                Some(&key),
                json!({"registration_id": apns_token()}),
            ),
            DeviceKind::Apns,
        )
        .await
        .expect("device");
        devices.push(
            r.body
                .as_ref()
                .and_then(|b| b["id"].as_str())
                .unwrap_or_default()
                .to_string(),
        );
    }
    for i in 0..caps.live_token_limit as usize {
        let device = &devices[i % devices.len()];
        push_core::tokens::create(
            &deps,
            &api_request(
                "POST",
                &["tokens"],
                Some(&key),
                json!({"apns_device": device}),
            ),
        )
        .await
        .expect("token");
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
fn on_lambda_runtime<T, Fut>(f: impl FnOnce() -> Fut + Send + 'static) -> T
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
async fn cpu_per_knock(deps: &Deps, token: &str, n: usize) -> f64 {
    let (cpu0, _) = proc_usage("self");
    for _ in 0..n {
        let _ = push_core::knock::knock(deps, &knock_request(token)).await;
    }
    let (cpu1, _) = proc_usage("self");
    (cpu1 - cpu0) * 1000.0 / n as f64
}

struct InProcess {
    /// The fan-out table's rows.
    rows: String,
    base_p50: f64,
    fan10: f64,
    cpu_ms: f64,
}

/// Fan-out and handler CPU, in-process: the knock handler of push-core with
/// the real DynamoDB store (a fresh, small table in the emulator) and an SNS
/// stand-in that answers each publish after a fixed 20 ms, as SNS roughly
/// does. The emulator serialises requests and costs ~50 ms a publish, so
/// through it fan-out would measure moto, not this code.
async fn in_process_knocks() -> InProcess {
    let deps = in_process_deps().await;
    let (mut rows, mut base_p50, mut fan10) = (String::new(), 0.0, 0.0);
    let mut cpu_token = String::new();
    for n in [1usize, 10, Settings::default().device_limit as usize, 50] {
        let token = owner_with_devices(&deps, n).await;
        let mut samples = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            let r = push_core::knock::knock(&deps, &knock_request(&token)).await;
            assert_eq!(r.map(|r| r.status).ok(), Some(202));
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let p50 = percentile(&mut samples, 0.5);
        let p99 = percentile(&mut samples, 0.99);
        if n == 1 {
            base_p50 = p50;
            cpu_token = token;
        }
        if n == 10 {
            fan10 = p50 / base_p50;
        }
        writeln!(
            rows,
            "| {n} | {p50:.1} ms | {p99:.1} ms | {:.2}× |",
            p50 / base_p50
        )
        .ok();
    }
    // CPU per request of the handler code (parsing, rules, SDK client; no
    // password hashing), as this process's CPU time over many requests.
    let cpu_ms = cpu_per_knock(&deps, &cpu_token, 500).await;
    InProcess {
        rows,
        base_p50,
        fan10,
        cpu_ms,
    }
}

#[tokio::main]
async fn main() {
    // `BENCH_KNOCKS=N`: only the in-process knock loop, N times, for a
    // profiler (`perf record`) to watch; needs just the emulator.
    if let Ok(n) = std::env::var("BENCH_KNOCKS") {
        let n: usize = n.parse().expect("BENCH_KNOCKS: a number");
        let ms = on_lambda_runtime(move || async move {
            let deps = in_process_deps().await;
            let token = owner_with_devices(&deps, 1).await;
            cpu_per_knock(&deps, &token, n).await
        });
        println!("{ms:.3} ms CPU per knock");
        return;
    }
    let release = env("RELEASE_DIR");
    let router_pid = env("ROUTER_PID");
    let c = Client {
        base: env("PUSH_API_URL"),
        http: reqwest::Client::new(),
    };
    let mut out = String::new();
    let machine = machine_description();
    writeln!(out, "# Benchmarks\n\nMeasured by `make bench` on {machine}.\nTimings use the `perf` profile (release code generation without whole-program LTO), x86_64. Local stack: the optimised router in front of the moto emulator on loopback, so latencies include the emulator's own cost (a few ms per AWS call), not AWS's.\n").ok();

    // Footprint: the Lambda artifacts `make package` (sam build) made.
    let lambda_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/lambda");
    writeln!(out, "## Footprint\n\nThe arm64 `bootstrap` each function deploys, as `make package` (`sam build` → cargo-lambda, `[profile.release]`: opt-level 3, fat LTO, one codegen unit, stripped) built it, and zipped as Lambda stores it.\n\n| function | bootstrap | zipped |\n| --- | ---: | ---: |").ok();
    let (mut worst_zip, mut worst_cold, mut worst_rss) = (0.0f64, 0.0f64, 0.0f64);
    for f in FUNCTIONS {
        // Without `make package` (a 19-minute arm64 fat-LTO build), measure
        // the x86_64 `perf` build of the same code and say so.
        let packaged = format!("{lambda_dir}/{f}/bootstrap");
        let (path, label) = if std::path::Path::new(&packaged).exists() {
            (packaged, "")
        } else {
            (
                format!("{release}/{f}"),
                " (x86_64 `perf` build; run `make package` for the arm64 artifact)",
            )
        };
        let Ok(meta) = std::fs::metadata(&path) else {
            writeln!(out, "| {f} | missing: {path} | |").ok();
            continue;
        };
        let zipped = Command::new("python3")
            .args(["-c", "import io,sys,zipfile; b=io.BytesIO(); z=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED,compresslevel=9); z.write(sys.argv[1],'bootstrap'); z.close(); print(len(b.getvalue()))", &path])
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        worst_zip = worst_zip.max(zipped as f64 / 1e6);
        writeln!(
            out,
            "| {f}{label} | {:.1} MB | {:.1} MB |",
            meta.len() as f64 / 1e6,
            zipped as f64 / 1e6
        )
        .ok();
    }

    // Cold start.
    writeln!(out, "\n## Cold start\n\nProcess start to first invocation answered through a Lambda Runtime API stub (config read, AWS clients built, one request handled; the HTTP functions answer a request that needs no AWS call), median of 15 runs (x86_64, `perf` profile).\n\n| function | median | min | max |\n| --- | ---: | ---: | ---: |").ok();
    for f in FUNCTIONS {
        let mut samples = Vec::new();
        for _ in 0..15 {
            samples.push(cold_start(&format!("{release}/{f}"), f).await);
        }
        worst_cold = worst_cold.max(percentile(&mut samples, 0.5));
        let min = samples.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = samples.iter().cloned().fold(0.0, f64::max);
        writeln!(
            out,
            "| {f} | {:.1} ms | {:.1} ms | {:.1} ms |",
            percentile(&mut samples, 0.5),
            min,
            max
        )
        .ok();
    }

    // Per-operation latency.
    const N: usize = 200;
    const KNOCK_TOKENS: usize = 50;
    writeln!(out, "\n## Latency through the local stack ({N} requests each, sequential)\n\nEvery abuse limit is on and counting, out of the bench's reach (knocks go round {KNOCK_TOKENS} tokens; the knock's write is the default 10-slot log, whose update expression moto evaluates in Python).\n\n| operation | p50 | p99 |\n| --- | ---: | ---: |").ok();
    let mut lat: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut accounts = Vec::new();
    for _ in 0..N {
        let (u, p) = (username(), "bench-password".to_string());
        let (s, v, ms) = c
            .call(
                "POST",
                "accounts/",
                None,
                Some(json!({"username": u, "password": p})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        lat.entry("1 sign-up").or_default().push(ms);
        accounts.push((u, p, v["token"].as_str().unwrap_or_default().to_string()));
    }
    for (u, p, _) in &accounts {
        let (_, _, ms) = c
            .call(
                "POST",
                "accounts/",
                None,
                Some(json!({"username": u, "password": p})),
            )
            .await;
        lat.entry("2 login").or_default().push(ms);
    }
    let key = accounts[0].2.clone();
    let mut device = String::new();
    for _ in 0..N {
        let (s, v, ms) = c
            .call(
                "POST",
                "device/apns/",
                Some(&key),
                Some(json!({"registration_id": apns_token()})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        device = v["id"].as_str().unwrap_or_default().to_string();
        lat.entry("3 device create").or_default().push(ms);
    }
    let mut token = String::new();
    for _ in 0..N {
        let (s, v, ms) = c
            .call(
                "POST",
                "tokens/",
                Some(&key),
                Some(json!({"apns_device": device})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        token = v["token"].as_str().unwrap_or_default().to_string();
        lat.entry("4 token create").or_default().push(ms);
    }
    // A fresh owner with one device for the knock itself.
    let (_, v, _) = c
        .call(
            "POST",
            "accounts/",
            None,
            Some(json!({"username": username(), "password": "p"})),
        )
        .await;
    let key1 = v["token"].as_str().unwrap_or_default().to_string();
    let (_, v, _) = c
        .call(
            "POST",
            "device/apns/",
            Some(&key1),
            Some(json!({"registration_id": apns_token()})),
        )
        .await;
    // Knocks go round a pool of the owner's tokens, so that no token comes
    // near its limit (10 per second here) and every knock is admitted.
    let mut knock_tokens = Vec::new();
    for _ in 0..KNOCK_TOKENS {
        let (_, t, _) = c
            .call(
                "POST",
                "tokens/",
                Some(&key1),
                Some(json!({"apns_device": v["id"]})),
            )
            .await;
        knock_tokens.push(t["token"].as_str().unwrap_or_default().to_string());
    }
    for i in 0..N {
        let (s, _, ms) = c
            .call(
                "POST",
                "messages/",
                None,
                Some(json!({"token": knock_tokens[i % KNOCK_TOKENS]})),
            )
            .await;
        assert_eq!(s, 202);
        lat.entry("5 knock (1 device)").or_default().push(ms);
    }
    for (name, samples) in lat.iter_mut() {
        let p50 = percentile(samples, 0.5);
        let p99 = percentile(samples, 0.99);
        writeln!(out, "| {} | {p50:.1} ms | {p99:.1} ms |", &name[2..]).ok();
    }

    // Peak RSS of each function's bootstrap after many real invocations (one
    // at a time, as Lambda delivers them) against the emulator.
    writeln!(out, "\n## Memory of each function under load\n\nPeak RSS (VmHWM) of the `bootstrap` after 200 invocations through the Runtime API stub, each doing its real AWS calls against the emulator.\n\n| function | invocations | peak RSS |\n| --- | --- | ---: |").ok();
    let loads: Vec<(&str, &str, Vec<Value>)> = vec![
        (
            "register",
            "GET accounts/",
            vec![http_event_with("GET", "/api/v1/accounts/", Some(&key), None); 200],
        ),
        (
            "tokens",
            "GET tokens/",
            vec![http_event_with("GET", "/api/v1/tokens/", Some(&key), None); 200],
        ),
        (
            "knock",
            "POST messages/ (1 device)",
            (0..200)
                .map(|i| {
                    let token = &knock_tokens[i % KNOCK_TOKENS];
                    http_event_with(
                        "POST",
                        "/api/v1/messages/",
                        None,
                        Some(json!({"token": token})),
                    )
                })
                .collect(),
        ),
        (
            "feedback",
            "delivery failure event",
            vec![
                json!({"Records": [{"Sns": {"Message": json!({"EventType": "DeliveryFailure", "EndpointArn": "arn:aws:sns:us-east-1:123456789012:endpoint/APNS/x/y"}).to_string()}}]});
                200
            ],
        ),
    ];
    for (f, what, events) in loads {
        let (_, rss) = run_bootstrap(&format!("{release}/{f}"), f, events).await;
        worst_rss = worst_rss.max(rss as f64 / 1024.0);
        writeln!(
            out,
            "| {f} | 200 × {what} | {:.1} MB |",
            rss as f64 / 1024.0
        )
        .ok();
    }

    // AWS calls per operation, counted on the wire by the emulator's recorder.
    writeln!(out, "\n## AWS calls per operation (counted on the wire)\n\n| operation | calls |\n| --- | --- |").ok();
    let u = username();
    let (_, v, _) = c.call("GET", "device/apns/", Some(&key1), None).await;
    let (_, v, _) = c
        .call(
            "POST",
            "tokens/",
            Some(&key1),
            Some(json!({"apns_device": v["results"][0]["id"]})),
        )
        .await;
    let fresh_token = v["token"].as_str().unwrap_or_default().to_string();
    let many = format!("knock, owner with {} devices", N + 1);
    let operations: Vec<(&str, &str, Option<&str>, Value)> = vec![
        (
            "sign-up",
            "accounts/",
            None,
            json!({"username": u, "password": "p"}),
        ),
        (
            "login",
            "accounts/",
            None,
            json!({"username": u, "password": "p"}),
        ),
        (
            "login, wrong password",
            "accounts/",
            None,
            json!({"username": u, "password": "wrong"}),
        ),
        (
            "device create",
            "device/apns/",
            Some(&key),
            json!({"registration_id": apns_token()}),
        ),
        (
            "token create",
            "tokens/",
            Some(&key),
            json!({"apns_device": device}),
        ),
        (
            "knock, 1 device, first knock of the token",
            "messages/",
            None,
            json!({"token": fresh_token}),
        ),
        (
            "knock, 1 device, again at once",
            "messages/",
            None,
            json!({"token": fresh_token}),
        ),
        (&many, "messages/", None, json!({"token": token})),
    ];
    let mut knock1 = (String::new(), BTreeMap::new());
    for (name, path, key, body) in operations {
        let calls = count_calls(|| async {
            c.call("POST", path, key, Some(body)).await;
        })
        .await;
        writeln!(out, "| {name} | {} |", calls.0).ok();
        // The cost table prices a one-device knock (every knock costs the same).
        if name.contains("first knock") {
            knock1 = calls;
        }
    }

    // Fan-out and handler CPU, in-process (see `in_process_knocks`).
    writeln!(out, "\n## Knock fan-out (in-process, publishes answered after {SIMULATED_PUBLISH_MS} ms, 50 knocks each)\n\nThe knock handler with the real DynamoDB store on a current-thread Tokio runtime, as the Lambda binaries run it.\n\n| devices | p50 | p99 | p50 relative to 1 device |\n| ---: | ---: | ---: | ---: |").ok();
    let in_process = on_lambda_runtime(in_process_knocks);
    out.push_str(&in_process.rows);
    let (deletion_ms, deleted) = on_lambda_runtime(deletion_at_caps);
    writeln!(out, "\n## Account deletion at every cap\n\n{deleted}, deleted by one `DELETE accounts/<name>/` in-process against the emulator (each call slower than DynamoDB's): {deletion_ms:.0} ms, against a budget of 10 s (the functions' timeout) less 2.5 s kept in hand.").ok();
    let fan10 = in_process.fan10;
    let base_p50 = in_process.base_p50;
    let cpu_ms = in_process.cpu_ms;
    // Peak RSS of the router (all four handlers in one process) under
    // concurrent knocks through HTTP.
    let load = (0..8).map(|task| {
        let (c, knock_tokens) = (&c, &knock_tokens);
        async move {
            for i in 0..25 {
                let token = &knock_tokens[(task * 25 + i) % KNOCK_TOKENS];
                c.call("POST", "messages/", None, Some(json!({"token": token})))
                    .await;
            }
        }
    });
    futures_util::future::join_all(load).await;
    let (_, hwm) = proc_usage(&router_pid);
    writeln!(
        out,
        "\n## CPU and memory\n\n| measure | value |\n| --- | ---: |"
    )
    .ok();
    writeln!(out, "| handler CPU per knock (1 device; parsing, rules, payloads, SDK client; in-process) | {cpu_ms:.3} ms |").ok();
    writeln!(out, "| peak RSS of the router (all four handlers, one process) after 200 concurrent knocks | {:.1} MB |", hwm as f64 / 1024.0).ok();

    // Password hashing.
    let mut hash_ms = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let _ = push_core::secrets::hash_password("bench-password");
        hash_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let hash = percentile(&mut hash_ms, 0.5);
    writeln!(out, "\n## Password hashing\n\nargon2id, m = 19 MiB, t = 2, p = 1 (OWASP's baseline): **{hash:.1} ms** per hash on one core of this machine (median of 20). Lambda gives a function CPU in proportion to its memory (1,769 MB = one vCPU), so a hash costs about {hash:.0} ms × 1769 / memory:\n\n| Lambda memory | est. hash time |\n| ---: | ---: |").ok();
    for mem in [128.0, 256.0, 512.0, 1024.0] {
        writeln!(out, "| {mem:.0} MB | {:.0} ms |", hash * 1769.0 / mem).ok();
    }

    // Cost.
    let knock_ms = base_p50;
    let gb_s = 0.25 * (knock_ms.max(1.0) / 1000.0);
    let lambda = 0.20 + gb_s * 1e6 * 0.0000133334;
    let api = 1.00;
    let counted = |name: &str| knock1.1.get(name).copied().unwrap_or(0) as f64;
    // On-demand: a write request unit is $0.625 per million, a read request
    // unit (strongly consistent, < 4 KB) $0.125 per million.
    let dynamo = counted("UpdateItem") * 0.625 + (counted("Query") + counted("GetItem")) * 0.125; // strongly consistent GetItem + Query of < 4 KB: 1 RRU each
    let sns = counted("Publish") * 0.50;
    writeln!(out, "\n## Cost per million knocks (us-east-1 list prices, owner with one device)\n\n| item | basis | USD |\n| --- | --- | ---: |").ok();
    writeln!(
        out,
        "| API Gateway HTTP API | $1.00 per million requests | {api:.2} |"
    )
    .ok();
    writeln!(out, "| Lambda (arm64, 256 MB) | $0.20 per million requests + $0.0000133334 per GB-s × {knock_ms:.1} ms (the in-process knock p50 above, 20 ms publish) | {lambda:.2} |").ok();
    writeln!(out, "| DynamoDB on demand | the counted calls of a knock above: {} UpdateItem × $0.625 (write unit) + {} Query × $0.125 (read unit) per million | {dynamo:.2} |", counted("UpdateItem"), counted("Query")).ok();
    writeln!(out, "| SNS mobile push | {} publish × $0.50 per million (first million a month free) | {sns:.2} |", counted("Publish")).ok();
    writeln!(
        out,
        "| **total** | each further device adds one publish ($0.50 per million) | **{:.2}** |",
        api + lambda + dynamo + sns
    )
    .ok();
    writeln!(out, "\nIdle cost: $0 in requests (on-demand table, Lambda, HTTP API bill per use); storage $0.25 per GB-month plus $0.20 per GB-month for point-in-time recovery — an account with two devices and a pool of tokens is well under 2 KB, so 100,000 accounts cost about $0.10 a month at rest.").ok();

    // Targets, judged by the numbers above.
    let verdict = |met: bool| if met { "met" } else { "**missed**" };
    writeln!(out, "\n## Targets\n\n| target | measured | verdict | what would close it |\n| --- | ---: | --- | --- |").ok();
    writeln!(out, "| cold start ≤ 20 ms (median, worst function) | {worst_cold:.1} ms | {} | most of it is building the SDK clients and the first request; a smaller binary (`opt-level = \"s\"`) and lazy client construction would trim it |", verdict(worst_cold <= 20.0)).ok();
    writeln!(out, "| ≤ 5 MB zipped (largest function) | {worst_zip:.1} MB | {} | `opt-level = \"z\"` and `panic = \"abort\"` in `[profile.release]` (≈ 40 % smaller in LOCAL-AWS's measurement), or dropping the unused SDK features (SSO/STS credential providers) |", verdict(worst_zip <= 5.0)).ok();
    writeln!(
        out,
        "| peak RSS ≤ 32 MB under load (worst function) | {worst_rss:.1} MB | {} | |",
        verdict(worst_rss <= 32.0)
    )
    .ok();
    writeln!(out, "| 10 devices ≤ 1.5 × one device | {fan10:.2}× | {} | publishes run concurrently; what grows with the device count is the emulator's `Query` (moto scans) and decoding the items. The ratio varies between runs on this shared 2-core machine (1.2–1.7× seen) |", verdict(fan10 <= 1.5)).ok();
    writeln!(out, "| handler CPU ≤ 1 ms per knock | {cpu_ms:.2} ms | {} | 0.7–1.0 ms across runs on this shared machine, so at the edge. Profiled with `perf` (`BENCH_KNOCKS=N` runs this loop alone against the emulator): what remains is mostly the SDK's orchestrator for the two signed calls, HTTP and socket syscalls. Two costs were the setup's, not the code's, and are gone: moto's server closed every connection (two TCP connects per knock, ~1.4 ms; the emulator now keeps them alive like AWS), and the multi-thread runtime's cross-thread wake-ups (~0.4 ms; the binaries and this loop run current-thread) |", verdict(cpu_ms <= 1.0)).ok();

    println!("{out}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/BENCHMARKS.md");
    std::fs::write(path, out).expect("write docs/BENCHMARKS.md");
    eprintln!("written to docs/BENCHMARKS.md");
}

fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cores} cores of {cpu}, {mem} RAM")
}
