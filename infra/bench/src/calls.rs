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

/// The calls of knocks at a second app's base URL (`/zom/api/v1/`, which
/// has both APNs environments): its knocks cost the default app's DynamoDB
/// calls, and a device whose environment is unknown one extra publish, until
/// it settles.
pub async fn calls_of_apps_and_environments(out: &mut String, c: &Client) {
    writeln!(out, "\n## AWS calls of a knock by app and APNs environment (counted on the wire)\n\nAt the local stack's second app, `zom` (`/zom/api/v1/`: APNs production and sandbox). The knock's DynamoDB calls are those of the default app's knock above; a device whose APNs environment is unknown gets one publish per environment until one is found dead.\n\n| knock at `/zom/api/v1/`, owner with 1 device | calls |\n| --- | --- |").ok();
    let zom = Client {
        base: c.base.replace("/api/v1/", "/zom/api/v1/"),
        http: c.http.clone(),
    };
    // Two owners: an iPhone whose app names its environment, and one whose
    // app does not.
    let mut whitelist = Vec::new();
    let mut push_tokens = Vec::new();
    for environment in [json!("sandbox"), Value::Null] {
        let (_, account, _) = zom
            .call(
                "POST",
                "accounts/",
                None,
                Some(json!({"username": username(), "password": "p"})),
            )
            .await;
        let key = account["token"].as_str().unwrap_or_default().to_string();
        let push_token = apns_token();
        let body = json!({"registration_id": push_token, "environment": environment});
        let (_, device, _) = zom
            .call("POST", "device/apns/", Some(&key), Some(body))
            .await;
        let body = json!({"apns_device": device["id"]});
        let (_, token, _) = zom.call("POST", "tokens/", Some(&key), Some(body)).await;
        whitelist.push(token["token"].as_str().unwrap_or_default().to_string());
        push_tokens.push(push_token);
    }
    let knock = |token: String| {
        let zom = &zom;
        async move {
            zom.call("POST", "messages/", None, Some(json!({ "token": token })))
                .await;
        }
    };
    let named = count_calls(|| knock(whitelist[0].clone())).await;
    writeln!(
        out,
        "| environment named by the app (`sandbox`) | {} |",
        named.0
    )
    .ok();
    let unknown = count_calls(|| knock(whitelist[1].clone())).await;
    writeln!(
        out,
        "| environment unknown: both endpoints | {} |",
        unknown.0
    )
    .ok();
    // APNs rejects the token in production: SNS disables that endpoint.
    if let Some(production) = api_tests::endpoints_for(&push_tokens[1])
        .await
        .into_iter()
        .find(|e| e.arn.contains(":endpoint/APNS/"))
    {
        api_tests::disable(&production.arn).await;
    }
    let settling = count_calls(|| knock(whitelist[1].clone())).await;
    writeln!(out, "| the knock that finds production disabled: delivered through the sandbox, device settled | {} |", settling.0).ok();
    let settled = count_calls(|| knock(whitelist[1].clone())).await;
    writeln!(out, "| environment settled (sandbox) | {} |", settled.0).ok();
}
