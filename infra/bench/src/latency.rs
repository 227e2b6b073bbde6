//! Per-operation latency through the local stack; leaves the accounts,
//! devices and tokens it made for the later measurements.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::common::{apns_token, percentile, username, Client};

/// Requests per operation.
pub const N: usize = 200;
/// The knock's tokens: knocks go round them, so that no token nears its limit.
pub const KNOCK_TOKENS: usize = 50;

/// What the latency loops made, for the measurements after them.
pub struct Fixture {
    /// The key of an account with `N` devices, the last of them `device`,
    /// which has `N` tokens, the last of them `token`.
    pub key: String,
    pub device: String,
    pub token: String,
    /// The key of an account with one device, and that device's tokens.
    pub key1: String,
    pub knock_tokens: Vec<String>,
}

pub async fn latency(out: &mut String, c: &Client) -> Fixture {
    writeln!(out, "\n## Latency through the local stack ({N} requests each, sequential)\n\nEvery abuse limit is on and counting, out of the bench's reach (knocks go round {KNOCK_TOKENS} tokens; the knock's write is the default 10-slot log, whose update expression moto evaluates in Python).\n\n| operation | p50 | p99 |\n| --- | ---: | ---: |").ok();
    let mut lat: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut accounts = Vec::new();
    for _ in 0..N {
        let (u, p) = (username(), "bench-password".to_string());
        let body = json!({"username": u, "password": p});
        let (v, ms) = post(c, "accounts/", None, body, 201).await;
        lat.entry("1 sign-up").or_default().push(ms);
        accounts.push((u, p, text(&v["token"])));
    }
    for (u, p, _) in &accounts {
        let body = json!({"username": u, "password": p});
        let (_, ms) = post(c, "accounts/", None, body, 200).await;
        lat.entry("2 login").or_default().push(ms);
    }
    let key = accounts[0].2.clone();
    let mut device = String::new();
    for _ in 0..N {
        let body = json!({"registration_id": apns_token()});
        let (v, ms) = post(c, "device/apns/", Some(&key), body, 201).await;
        device = text(&v["id"]);
        lat.entry("3 device create").or_default().push(ms);
    }
    let mut token = String::new();
    for _ in 0..N {
        let body = json!({"apns_device": device});
        let (v, ms) = post(c, "tokens/", Some(&key), body, 201).await;
        token = text(&v["token"]);
        lat.entry("4 token create").or_default().push(ms);
    }
    // A fresh owner with one device for the knock itself.
    let body = json!({"username": username(), "password": "p"});
    let key1 = text(&post(c, "accounts/", None, body, 201).await.0["token"]);
    let body = json!({"registration_id": apns_token()});
    let device1 = text(&post(c, "device/apns/", Some(&key1), body, 201).await.0["id"]);
    // Knocks go round a pool of the owner's tokens, so that no token comes
    // near its limit (10 per second here) and every knock is admitted.
    let mut knock_tokens = Vec::new();
    for _ in 0..KNOCK_TOKENS {
        let body = json!({"apns_device": device1});
        knock_tokens.push(text(
            &post(c, "tokens/", Some(&key1), body, 201).await.0["token"],
        ));
    }
    for i in 0..N {
        let body = json!({"token": knock_tokens[i % KNOCK_TOKENS]});
        let (_, ms) = post(c, "messages/", None, body, 202).await;
        lat.entry("5 knock (1 device)").or_default().push(ms);
    }
    for (name, samples) in lat.iter_mut() {
        let p50 = percentile(samples, 0.5);
        let p99 = percentile(samples, 0.99);
        writeln!(out, "| {} | {p50:.1} ms | {p99:.1} ms |", &name[2..]).ok();
    }
    Fixture {
        key,
        device,
        token,
        key1,
        knock_tokens,
    }
}

/// POSTs `body` (with the API key if given) and checks the status; the
/// answer and its milliseconds.
async fn post(c: &Client, path: &str, key: Option<&str>, body: Value, expect: u16) -> (Value, f64) {
    let (status, v, ms) = c.call("POST", path, key, Some(body)).await;
    assert_eq!(status, expect, "POST {path}: {v}");
    (v, ms)
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}
