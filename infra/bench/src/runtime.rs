//! Functions run as Lambda runs them: each `bootstrap` started against a
//! Lambda Runtime API stub that hands it events and times its answers.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::common::{percentile, proc_usage, FUNCTIONS};

// ---------- Cold start through a Lambda Runtime API stub ----------

pub struct RuntimeStub {
    /// Events still to hand out, in order.
    events: Vec<Value>,
    /// Invocations answered so far, and the signals for the first and last.
    answered: usize,
    total: usize,
    first: Option<tokio::sync::oneshot::Sender<()>>,
    last: Option<tokio::sync::oneshot::Sender<()>>,
}

pub async fn runtime_api(
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

pub fn event_for(function: &str) -> Value {
    match function {
        "feedback" => json!({"Records": []}),
        "knock" => http_event("GET", "/api/v1/pubsub/"),
        "tokens" => http_event("GET", "/api/v1/tokens/"),
        _ => http_event("GET", "/api/v1/accounts/"),
    }
}

pub fn http_event(method: &str, path: &str) -> Value {
    http_event_with(method, path, None, None)
}

pub fn http_event_with(method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> Value {
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
pub async fn run_bootstrap(binary: &str, function: &str, events: Vec<Value>) -> (f64, u64) {
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

pub async fn cold_start(binary: &str, function: &str) -> f64 {
    run_bootstrap(binary, function, vec![event_for(function)])
        .await
        .0
}

/// The cold-start table: each function's median of 15 fresh starts; returns
/// the worst median.
pub async fn cold_starts(out: &mut String, release: &str) -> f64 {
    let mut worst_cold = 0.0f64;
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
    worst_cold
}
