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
    /// What the function answered to the first event.
    first_answer: String,
    /// Signalled at the first `GET …/invocation/next`: init is over.
    ready: Option<tokio::sync::oneshot::Sender<()>>,
    first: Option<tokio::sync::oneshot::Sender<()>>,
    last: Option<tokio::sync::oneshot::Sender<()>>,
}

pub async fn runtime_api(
    stub: Arc<Mutex<RuntimeStub>>,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut s = stub.lock().await;
    if path.ends_with("/invocation/next") {
        if let Some(ready) = s.ready.take() {
            let _ = ready.send(());
        }
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
        if s.answered == 0 {
            s.first_answer = String::from_utf8_lossy(&body).into_owned();
        }
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

/// What one run of a bootstrap took.
pub struct Run {
    /// Process start to its first `GET …/invocation/next` (init), in ms.
    pub init_ms: f64,
    /// Process start to its first answered invocation, in ms.
    pub first_ms: f64,
    /// Peak RSS once every event is answered, in KiB.
    pub rss_kib: u64,
    /// The answer to the first event.
    pub first_answer: String,
    /// With `STARTUP_TIMINGS=1` in its environment: its start-up phases
    /// (`push_aws::startup`), in ms, in order.
    pub phases: Vec<(String, f64)>,
}

/// Runs a bootstrap against a Runtime API stub that hands it `events`, with
/// the extra environment `env`.
pub async fn run_bootstrap(
    binary: &str,
    function: &str,
    events: Vec<Value>,
    env: &[(&str, &str)],
) -> Run {
    run(binary, &[], function, events, env, false).await
}

/// Runs a bootstrap's init under callgrind (to its first `GET
/// …/invocation/next`, then SIGTERM, on which callgrind writes its
/// profile); its instructions by crate.
pub async fn profile_init(
    binary: &str,
    function: &str,
    env: &[(&str, &str)],
) -> Result<crate::profile::ByCrate, String> {
    let file = std::env::temp_dir().join(format!(
        "bench-{}-init-{function}.callgrind",
        std::process::id()
    ));
    let args = [
        "--tool=callgrind".to_string(),
        format!("--callgrind-out-file={}", file.display()),
        binary.to_string(),
    ];
    run(
        "valgrind",
        &args,
        function,
        vec![event_for(function)],
        env,
        true,
    )
    .await;
    let profile = crate::profile::instructions_by_crate(&file);
    std::fs::remove_file(&file).ok();
    profile
}

/// [`run_bootstrap`] of `program` with `args`; `init_only`: stop it with
/// SIGTERM at its first poll for an event, and wait for it to exit.
async fn run(
    program: &str,
    args: &[String],
    function: &str,
    events: Vec<Value>,
    env: &[(&str, &str)],
    init_only: bool,
) -> Run {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    let (last_tx, last_rx) = tokio::sync::oneshot::channel();
    let stub = Arc::new(Mutex::new(RuntimeStub {
        total: events.len(),
        events,
        answered: 0,
        first_answer: String::new(),
        ready: Some(ready_tx),
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
    let timed = env
        .iter()
        .any(|(k, v)| *k == "STARTUP_TIMINGS" && *v == "1");
    let spawned_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .to_string();
    let start = Instant::now();
    // Lambda sets neither: a host's own choice of roots (this one sets both)
    // must not stand in for the functions'.
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("TABLE_NAME", "chatsecure-push-local")
        // Required by the per-source sign-up limits; read at the first
        // sign-up, never at start-up.
        .env(
            "SOURCE_KEY_SECRET",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-AbCdEf",
        )
        .env("BENCH_SPAWNED_AT_UNIX_NS", &spawned_at)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(if timed { Stdio::piped() } else { Stdio::null() })
        .spawn()
        .expect("spawn bootstrap");
    let ready_within = if init_only { 120 } else { 10 };
    let _ = tokio::time::timeout(Duration::from_secs(ready_within), ready_rx).await;
    let init_ms = start.elapsed().as_secs_f64() * 1000.0;
    if init_only {
        if let Some(pid) = child.id() {
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(120), child.wait()).await;
        server.abort();
        return Run {
            init_ms,
            first_ms: init_ms,
            rss_kib: 0,
            first_answer: String::new(),
            phases: Vec::new(),
        };
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), first_rx).await;
    let first_ms = start.elapsed().as_secs_f64() * 1000.0;
    let _ = tokio::time::timeout(Duration::from_secs(120), last_rx).await;
    let rss_kib = child
        .id()
        .map(|pid| proc_usage(&pid.to_string()).1)
        .unwrap_or(0);
    let _ = child.kill().await;
    server.abort();
    let mut phases = Vec::new();
    if let Some(mut stderr) = child.stderr.take() {
        use tokio::io::AsyncReadExt as _;
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        if let Some(line) = text.lines().find_map(|l| l.strip_prefix("startup-timings")) {
            for field in line.split_whitespace() {
                if let Some((name, us)) = field.split_once('=') {
                    let us: f64 = us.parse().unwrap_or(0.0);
                    phases.push((name.to_string(), us / 1000.0));
                }
            }
        }
    }
    let first_answer = stub.lock().await.first_answer.clone();
    Run {
        init_ms,
        first_ms,
        rss_kib,
        first_answer,
        phases,
    }
}

/// One row of the cold-start table: a bootstrap started fresh, answering
/// `event`, its first answer checked against `expect` (so that a function
/// that failed fast is not timed as a fast one).
struct ColdRow {
    label: String,
    binary: String,
    function: &'static str,
    event: Value,
    env: Vec<(&'static str, String)>,
    expect: &'static str,
}

/// Medians of (init, first response), in ms, of every row over [`starts`]
/// rounds. The rows are interleaved: each round starts every row once, in
/// an order rotated from round to round, after one untimed start of each
/// (the page cache). A drift of the machine over the minutes a table takes
/// then falls on the floors and the functions alike, instead of on whichever
/// rows ran while it lasted.
async fn cold_rows(rows: &[ColdRow]) -> Vec<(f64, f64)> {
    let mut times = vec![(Vec::new(), Vec::new()); rows.len()];
    for round in 0..=starts() {
        for k in 0..rows.len() {
            let i = (round + k) % rows.len();
            let row = &rows[i];
            let env: Vec<(&str, &str)> = row.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let run = run_bootstrap(&row.binary, row.function, vec![row.event.clone()], &env).await;
            assert!(
                run.first_answer.contains(row.expect),
                "{}: expected {:?} in {}",
                row.label,
                row.expect,
                run.first_answer
            );
            if round > 0 {
                times[i].0.push(run.init_ms);
                times[i].1.push(run.first_ms);
            }
        }
    }
    times
        .into_iter()
        .map(|(mut init, mut first)| (percentile(&mut init, 0.5), percentile(&mut first, 0.5)))
        .collect()
}

/// Fresh starts per row: `BENCH_STARTS`, default 15 (the issue's 51 for the
/// cold-start table alone, `BENCH_COLD=1`).
fn starts() -> usize {
    std::env::var("BENCH_STARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(15)
}

/// Extra environment of a bootstrap.
type Env<'a> = &'a [(&'a str, &'a str)];

/// Where init goes, by wall clock: each function's start-up phases
/// (`push_aws::startup`, `STARTUP_TIMINGS=1`), median of [`starts`] fresh
/// starts each; `runtime` is the rest of init, from the clients built to the
/// first poll (the runtime's own start, as in the floor).
pub async fn init_phases(out: &mut String, release: &str) {
    let mut names: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    let timed = [("STARTUP_TIMINGS", "1")];
    let timed_system = [("STARTUP_TIMINGS", "1"), ("TLS_TRUST_ROOTS", "system")];
    let mut runs: Vec<(String, &str, Env)> = FUNCTIONS
        .iter()
        .map(|f| (f.to_string(), *f, &timed[..]))
        .collect();
    runs.push((
        "knock, `TLS_TRUST_ROOTS=system`".into(),
        "knock",
        &timed_system[..],
    ));
    for (label, f, env) in runs {
        let mut by_phase: Vec<(String, Vec<f64>)> = Vec::new();
        let mut init = Vec::new();
        for _ in 0..starts() {
            let run = run_bootstrap(&format!("{release}/{f}"), f, vec![event_for(f)], env).await;
            let mut rest = run.init_ms;
            for (name, ms) in &run.phases {
                rest -= ms;
                match by_phase.iter_mut().find(|(n, _)| n == name) {
                    Some((_, v)) => v.push(*ms),
                    None => by_phase.push((name.clone(), vec![*ms])),
                }
            }
            match by_phase.iter_mut().find(|(n, _)| n == "runtime") {
                Some((_, v)) => v.push(rest.max(0.0)),
                None => by_phase.push(("runtime".into(), vec![rest.max(0.0)])),
            }
            init.push(run.init_ms);
        }
        for (name, _) in &by_phase {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        let medians: Vec<(String, f64)> = by_phase
            .into_iter()
            .map(|(n, mut v)| (n, percentile(&mut v, 0.5)))
            .collect();
        rows.push((label, percentile(&mut init, 0.5), medians));
    }
    writeln!(
        out,
        "\n## Where init goes, in ms (wall clock)\n\nEach function started fresh {} times with `STARTUP_TIMINGS=1` (`push_aws::startup`: a mark at the end of each phase, one line on stderr); medians per phase. `to_main`: from the bench's spawn to `main`'s first line (exec, the loader, the async runtime's start); `log_subscriber`: `tracing`'s set-up; `config`: the environment read; `sdk_config`: the SDK's configuration; each client; `ports`: every app's ports; `runtime`: the rest of init, to the first poll for an event. The medians need not add up to the median init.\n",
        starts()
    )
    .ok();
    writeln!(
        out,
        "| function | init | {} |\n| --- | ---: | {} |",
        names.join(" | "),
        names.iter().map(|_| "---:").collect::<Vec<_>>().join(" | ")
    )
    .ok();
    for (f, init, medians) in rows {
        let cells: Vec<String> = names
            .iter()
            .map(|n| {
                medians
                    .iter()
                    .find(|(m, _)| m == n)
                    .map_or("—".into(), |(_, v)| format!("{v:.2}"))
            })
            .collect();
        writeln!(out, "| {f} | {init:.2} | {} |", cells.join(" | ")).ok();
    }
}

/// The worst ratios of the cold-start table, against the floor.
pub struct ColdStart {
    /// Worst init and worst first response of an HTTP function, each as a
    /// multiple of the `lambda_http` floor's.
    pub init_ratio: f64,
    pub first_ratio: f64,
    /// The feedback function's init and first response against the
    /// `lambda_runtime` floor's.
    pub feedback_init_ratio: f64,
    pub feedback_ratio: f64,
}

/// The cold-start table: every function and the floors, measured side by
/// side in this run, interleaved ([`cold_rows`]).
pub async fn cold_starts(out: &mut String, release: &str) -> ColdStart {
    writeln!(out, "\n## Cold start against the floor\n\nEach `bootstrap` started fresh against a Lambda Runtime API stub, median of {} starts (x86_64, `perf` profile): **init** = process start to its first `GET …/invocation/next` (configuration read, AWS clients built); **first response** = to the answer of a first request that needs no AWS call. The rows are interleaved: each round starts every row once, in a rotated order, after one untimed start of each, so the floors and the functions share the machine's drift. The floors are the smallest functions possible with the same crates, profile and link (`infra/floor`, linked at a fixed address like the functions: `functions/build/fixed-address.rs`): `lambda_http` answering a constant (for the HTTP functions), `lambda_runtime` answering a constant (for `feedback`). Ratio = function ÷ its floor. The functions trust AWS's roots alone, compiled in (`TLS_TRUST_ROOTS=built-in`, `push_aws::deployment::AWS_ROOTS_PEM`); the last two rows start `knock` with the operator's switch to the system's store (`TLS_TRUST_ROOTS=system`: its CA bundle alone, `push_aws::lambda::prefer_one_ca_bundle`), and with that switch and no root at all: the span is what the roots cost.\n\n| function | init | × floor | first response | × floor |\n| --- | ---: | ---: | ---: | ---: |", starts()).ok();
    let http_event = event_for("knock");
    let row = |label: &str,
               binary: &str,
               function: &'static str,
               event: Value,
               env: Vec<(&'static str, String)>,
               expect: &'static str| ColdRow {
        label: label.to_string(),
        binary: format!("{release}/{binary}"),
        function,
        event,
        env,
        expect,
    };
    // 0 and 1: the floors; then the functions, in FUNCTIONS's order.
    let mut rows = vec![
        row(
            "*floor-http*",
            "floor-http",
            "floor-http",
            http_event.clone(),
            vec![],
            "\"statusCode\":200",
        ),
        row(
            "*floor-runtime*",
            "floor-runtime",
            "floor-runtime",
            event_for("feedback"),
            vec![],
            "records",
        ),
    ];
    for f in FUNCTIONS {
        // pubsub/ answers 200, accounts/ and tokens/ without a key 401,
        // feedback its records.
        let expect = match *f {
            "knock" => "\"statusCode\":200",
            "feedback" => "records",
            _ => "\"statusCode\":401",
        };
        rows.push(row(f, f, f, event_for(f), vec![], expect));
    }
    // The first knock of a fresh instance, its AWS calls answered at once by
    // a stub: the SDK's first-call costs (no target yet).
    let stub = crate::stub::start().await;
    let knock_event = http_event_with(
        "POST",
        "/api/v1/messages/",
        None,
        Some(json!({ "token": crate::stub::TOKEN })),
    );
    let stub_env = vec![
        ("AWS_ENDPOINT_URL", stub.clone()),
        ("AWS_ACCESS_KEY_ID", "bench".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
        ("AWS_REGION", "us-east-1".into()),
        (
            "APNS_PLATFORM_APPLICATION_ARN",
            "arn:aws:sns:us-east-1:123456789012:app/APNS_SANDBOX/app".into(),
        ),
    ];
    rows.push(row(
        "knock, a first *knock* (1 device), DynamoDB and SNS answered at once by a stub",
        "knock",
        "knock",
        knock_event,
        stub_env,
        "\"statusCode\":202",
    ));
    // What the trusted roots cost: the functions trust AWS's five, compiled
    // in; the operator's switch to the system's store reads its CA bundle
    // (~140 roots); with no root at all (an empty directory, the bundle
    // named by no one) is what the code costs without them.
    let empty = std::env::temp_dir().join("bench-empty-cert-dir");
    let _ = std::fs::create_dir_all(&empty);
    let empty = empty.to_string_lossy().to_string();
    let system = ("TLS_TRUST_ROOTS", "system".to_string());
    rows.push(row(
        "knock, `TLS_TRUST_ROOTS=system` (the system's CA bundle, ~140 roots)",
        "knock",
        "knock",
        http_event.clone(),
        vec![system.clone()],
        "\"statusCode\":200",
    ));
    rows.push(row(
        "knock, `TLS_TRUST_ROOTS=system` and no root at all (an empty certificate directory)",
        "knock",
        "knock",
        http_event,
        vec![system, ("SSL_CERT_DIR", empty)],
        "\"statusCode\":200",
    ));
    let times = cold_rows(&rows).await;
    let mut result = ColdStart {
        init_ratio: 0.0,
        first_ratio: 0.0,
        feedback_init_ratio: 0.0,
        feedback_ratio: 0.0,
    };
    for (row, &(init, first)) in rows.iter().zip(&times) {
        let floor = if row.function == "feedback" || row.function == "floor-runtime" {
            times[1]
        } else {
            times[0]
        };
        let (ri, rf) = (init / floor.0, first / floor.1);
        match row.label.as_str() {
            "feedback" => {
                result.feedback_init_ratio = ri;
                result.feedback_ratio = rf;
            }
            "register" | "tokens" | "knock" => {
                result.init_ratio = result.init_ratio.max(ri);
                result.first_ratio = result.first_ratio.max(rf);
            }
            _ => {}
        }
        writeln!(
            out,
            "| {} | {init:.1} ms | {ri:.2}× | {first:.1} ms | {rf:.2}× |",
            row.label
        )
        .ok();
    }
    result
}
