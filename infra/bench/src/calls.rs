//! AWS calls per operation, counted on the wire by the emulator's recorder.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::common::{apns_token, env, username, Client};
use crate::latency::Fixture;

// ---------- AWS call counting through the emulator's recorder ----------

pub async fn recorder(action: &str) {
    let base = env("AWS_ENDPOINT_URL");
    reqwest::Client::new()
        .post(format!("{base}/moto-api/recorder/{action}"))
        .send()
        .await
        .expect("recorder");
}

/// The AWS operations the recorder saw, by name.
pub async fn recorded_calls() -> BTreeMap<String, usize> {
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

pub async fn count_calls<F, Fut>(op: F) -> (String, BTreeMap<String, usize>)
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

/// The calls table; returns the calls of a one-device knock, which the cost
/// table prices.
pub async fn calls_per_operation(
    out: &mut String,
    c: &Client,
    f: &Fixture,
) -> (String, BTreeMap<String, usize>) {
    writeln!(out, "\n## AWS calls per operation (counted on the wire)\n\n| operation | calls |\n| --- | --- |").ok();
    let u = username();
    let (_, v, _) = c.call("GET", "device/apns/", Some(&f.key1), None).await;
    let (_, v, _) = c
        .call(
            "POST",
            "tokens/",
            Some(&f.key1),
            Some(json!({"apns_device": v["results"][0]["id"]})),
        )
        .await;
    let fresh_token = v["token"].as_str().unwrap_or_default().to_string();
    let many = format!("knock, owner with {} devices", crate::latency::N + 1);
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
            Some(&f.key),
            json!({"registration_id": apns_token()}),
        ),
        (
            "token create",
            "tokens/",
            Some(&f.key),
            json!({"apns_device": f.device}),
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
        (&many, "messages/", None, json!({"token": f.token})),
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
    knock1
}
