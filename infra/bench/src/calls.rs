//! AWS calls per operation, counted on the wire by the emulator's recorder.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::common::{apns_token, username, Client};
use crate::latency::Fixture;

/// Runs `op` while the emulator records, and counts the AWS operations it made.
pub async fn count_calls<F, Fut>(op: F) -> (String, BTreeMap<String, usize>)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let ((), recorded) = api_tests::recorded(op()).await;
    let mut calls = BTreeMap::new();
    for call in recorded {
        *calls.entry(call.operation).or_default() += 1;
    }
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
