//! Peak memory: each function's `bootstrap` after many real invocations,
//! and the router (all four handlers in one process) under concurrent knocks.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::common::{proc_usage, Client};
use crate::latency::{Fixture, KNOCK_TOKENS};
use crate::runtime::{http_event_with, run_bootstrap};

/// The per-function table; returns the worst peak RSS in MB.
pub async fn functions(out: &mut String, release: &str, f: &Fixture) -> f64 {
    let mut worst_rss = 0.0f64;
    // Peak RSS of each function's bootstrap after many real invocations (one
    // at a time, as Lambda delivers them) against the emulator.
    writeln!(out, "\n## Memory of each function under load\n\nPeak RSS (VmHWM) of the `bootstrap` after 200 invocations through the Runtime API stub, each doing its real AWS calls against the emulator.\n\n| function | invocations | peak RSS |\n| --- | --- | ---: |").ok();
    let loads: Vec<(&str, &str, Vec<Value>)> = vec![
        (
            "register",
            "GET accounts/",
            vec![http_event_with("GET", "/api/v1/accounts/", Some(&f.key), None); 200],
        ),
        (
            "tokens",
            "GET tokens/",
            vec![http_event_with("GET", "/api/v1/tokens/", Some(&f.key), None); 200],
        ),
        (
            "knock",
            "POST messages/ (1 device)",
            (0..200)
                .map(|i| {
                    let token = &f.knock_tokens[i % KNOCK_TOKENS];
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
            vec![delivery_failure(); 200],
        ),
    ];
    for (f, what, events) in loads {
        let rss = run_bootstrap(&format!("{release}/{f}"), f, events, &[])
            .await
            .rss_kib;
        worst_rss = worst_rss.max(rss as f64 / 1024.0);
        writeln!(
            out,
            "| {f} | 200 × {what} | {:.1} MB |",
            rss as f64 / 1024.0
        )
        .ok();
    }
    worst_rss
}

/// The router's peak RSS after 200 knocks, eight at a time.
pub async fn router(c: &Client, f: &Fixture, router_pid: &str) -> f64 {
    let load = (0..8).map(|task| async move {
        for i in 0..25 {
            let token = &f.knock_tokens[(task * 25 + i) % KNOCK_TOKENS];
            c.call("POST", "messages/", None, Some(json!({"token": token})))
                .await;
        }
    });
    futures_util::future::join_all(load).await;
    let (_, hwm) = proc_usage(router_pid);
    hwm as f64 / 1024.0
}

/// The sample delivery failure of infra/events/, about an endpoint that
/// does not exist (the function looks it up and finds no device).
fn delivery_failure() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/delivery-failure.json"
    );
    let text = std::fs::read_to_string(path).expect("infra/events/delivery-failure.json");
    let arn = "arn:aws:sns:us-east-1:123456789012:endpoint/APNS/bench/none";
    serde_json::from_str(&text.replace("{{ENDPOINT_ARN}}", arn)).expect("a JSON event")
}
