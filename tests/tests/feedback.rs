//! Delivery feedback: SNS application events (the sample events shipped in
//! infra/events/) fed to the `feedback` function through a Lambda Invoke API
//! (the local router's, or `sam local start-lambda`'s), and the metrics a
//! knock emits.

// Black-box: needs the local stack (`make test` turns this feature on).
#![cfg(feature = "stack")]

use api_tests::*;
use serde_json::{json, Value};

async fn active(api: &Api, account: &Account, kind: &str, id: &str) -> bool {
    let r = api
        .get(&format!("device/{kind}/{id}/"), Some(&account.key))
        .await;
    assert_eq!(r.status, 200);
    r.json["active"].as_bool().unwrap()
}

#[tokio::test]
async fn a_delivery_failure_deactivates_the_device_until_it_registers_again() {
    let api = Api::new();
    let a = api.signup().await;
    let dead_token = apns_token();
    let live_token = fcm_token();
    let dead = api.device(&a, "apns", &dead_token).await;
    let live = api.device(&a, "gcm", &live_token).await;
    let whitelist = api.token(&a, "gcm", live["id"].as_str().unwrap()).await;
    let arn = only_endpoint(&dead_token).await.arn;

    // The feedback function finds devices through an index that may lag:
    // an operator's event comes well after the registration.
    settle_index().await;
    disable(&arn).await;
    let r = invoke_feedback(&api, event("delivery-failure", &arn)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json,
        json!({"records": [{"deactivated": 1, "settled": 0}]})
    );
    assert!(!active(&api, &a, "apns", dead["id"].as_str().unwrap()).await);
    // Idempotent: the same event again changes nothing (the index may not
    // show the device's new version yet: then nothing is found at all).
    let r = invoke_feedback(&api, event("delivery-failure", &arn)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["records"][0]["deactivated"].as_u64().unwrap_or(0), 0);

    assert_eq!(api.knock(&whitelist, json!({})).await.status, 202);
    assert_eq!(
        only_endpoint(&dead_token).await.messages.len(),
        0,
        "the dead device is skipped"
    );
    assert_eq!(only_endpoint(&live_token).await.messages.len(), 1);

    let r = api
        .post(
            "device/apns/",
            Some(&a.key),
            Body::Json(json!({"registration_id": dead_token})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["active"], true);
    assert_eq!(api.knock(&whitelist, json!({})).await.status, 202);
    assert_eq!(
        only_endpoint(&dead_token).await.messages.len(),
        1,
        "back after re-registration"
    );
    // A late copy of the old failure event: the endpoint is enabled again,
    // so the device that registered since stays active.
    let r = invoke_feedback(&api, event("delivery-failure", &arn)).await;
    assert_eq!(r.json, json!({"records": [{"ignored": true}]}));
    assert!(active(&api, &a, "apns", dead["id"].as_str().unwrap()).await);
}

#[tokio::test]
async fn endpoint_updated_acts_only_when_sns_disabled_it_and_deleted_is_not_dead() {
    let api = Api::new();
    let a = api.signup().await;
    let t = fcm_token();
    let d = api.device(&a, "gcm", &t).await;
    let id = d["id"].as_str().unwrap();
    let arn = only_endpoint(&t).await.arn;
    settle_index().await;
    let r = invoke_feedback(&api, event("endpoint-updated", &arn)).await;
    assert_eq!(r.json, json!({"records": [{"ignored": true}]}));
    assert!(active(&api, &a, "gcm", id).await);
    disable(&arn).await;
    let r = invoke_feedback(&api, event("endpoint-updated", &arn)).await;
    assert_eq!(
        r.json,
        json!({"records": [{"deactivated": 1, "settled": 0}]})
    );
    assert!(!active(&api, &a, "gcm", id).await);

    let t2 = apns_token();
    let d2 = api.device(&a, "apns", &t2).await;
    let arn2 = only_endpoint(&t2).await.arn;
    settle_index().await;
    // Deleted behind the service's back (in the console, say).
    sns()
        .await
        .delete_endpoint()
        .endpoint_arn(&arn2)
        .send()
        .await
        .unwrap();
    // SNS never deletes an endpoint itself: not dead. The device's next
    // knock gives it a new one.
    let r = invoke_feedback(&api, event("endpoint-deleted", &arn2)).await;
    assert_eq!(r.json, json!({"records": [{"ignored": true}]}));
    assert!(active(&api, &a, "apns", d2["id"].as_str().unwrap()).await);
}

#[tokio::test]
async fn malformed_events_change_nothing_and_are_not_retried() {
    let api = Api::new();
    let a = api.signup().await;
    let t = apns_token();
    let d = api.device(&a, "apns", &t).await;
    let r = invoke_feedback(&api, event("malformed", "unused")).await;
    assert_eq!(r.status, 200, "dropped, not failed: {}", r.text);
    let records = r.json["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|o| o["dropped"].is_string()));
    let r = invoke_feedback(&api, json!({"not": "an sns event"})).await;
    assert_eq!(r.status, 200);
    // An event for an endpoint no device uses: nothing to act on.
    let r = invoke_feedback(
        &api,
        event(
            "delivery-failure",
            "arn:aws:sns:us-east-1:123456789012:endpoint/APNS/x/unknown",
        ),
    )
    .await;
    assert_eq!(r.json, json!({"records": [{"ignored": true}]}));
    assert!(active(&api, &a, "apns", d["id"].as_str().unwrap()).await);
}

/// Tests that start a router (and sometimes an emulator) of their own, with
/// settings or faults of their own: they exercise the handlers in-process, not
/// through the shared stack, so `make sam-local-test` leaves them out.
mod own_stack {
    use super::*;

    #[tokio::test]
    async fn a_knock_emits_an_embedded_metric_format_line() {
        // A router of its own: its output holds this test's knocks alone.
        let router = Router::start(&[("KNOCK_LIMIT_PER_WINDOW", "1")]).await;
        let api = &router.api;
        let a = api.signup().await;
        let t = apns_token();
        let d = api.device(&a, "apns", &t).await;
        let whitelist = api.token(&a, "apns", d["id"].as_str().unwrap()).await;
        assert_eq!(api.knock(&whitelist, json!({})).await.status, 202);
        // The second is refused by the knock limit: counted once, as the
        // knock function's.
        assert_eq!(api.knock(&whitelist, json!({})).await.status, 429);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let out = router
            .out
            .clone()
            .expect("ROUTER_LOG_DIR (set by make test)");
        let text = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["Function"] == "knock")
            .collect();
        // Every line declares only what the code's catalogue lists (the
        // dashboard is checked against the same list: tests/tests/template.rs).
        for line in &lines {
            let directive = &line["_aws"]["CloudWatchMetrics"][0];
            let dims: Vec<&str> = directive["Dimensions"][0]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap())
                .collect();
            for m in directive["Metrics"].as_array().unwrap() {
                let name = m["Name"].as_str().unwrap();
                assert!(
                    push_core::metrics::CATALOGUE.contains(&(name, dims.as_slice())),
                    "{name} {dims:?} is not in the catalogue"
                );
                assert!(line[name].is_number(), "{name} has a value");
            }
            for d in dims {
                assert!(line[d].is_string(), "dimension {d} has a value");
            }
        }
        let (by_app, lines): (Vec<Value>, Vec<Value>) =
            lines.into_iter().partition(|v| v.get("App").is_some());
        // By app (the default app, `chatsecure`) and APNs environment (its
        // only one, the sandbox).
        let accepted: Vec<&Value> = by_app
            .iter()
            .filter(|v| v.get("KnocksAccepted").is_some())
            .collect();
        assert_eq!(accepted.len(), 1, "{text}");
        assert_eq!(accepted[0]["App"], "chatsecure");
        assert_eq!(
            accepted[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function", "App"]])
        );
        let pushes: Vec<&Value> = by_app
            .iter()
            .filter(|v| v.get("Pushes").is_some())
            .collect();
        assert_eq!(pushes.len(), 1, "{text}");
        assert_eq!(
            (
                &pushes[0]["App"],
                &pushes[0]["Environment"],
                &pushes[0]["Pushes"]
            ),
            (&json!("chatsecure"), &json!("sandbox"), &json!(1.0))
        );
        let (limit_hits, lines): (Vec<Value>, Vec<Value>) = lines
            .into_iter()
            .partition(|v| v.get("LimitHits").is_some());
        assert_eq!(
            lines.len(),
            1,
            "one knock, one function-level metric line: {text}"
        );
        assert_eq!(
            limit_hits.len(),
            1,
            "one refusal, one LimitHits line: {text}"
        );
        assert_eq!(limit_hits[0]["Limit"], "KnocksPerToken");
        assert_eq!(limit_hits[0]["LimitHits"], 1.0);
        let line = &lines[0];
        assert_eq!(line["PushesPublishedApns"], 1.0);
        assert_eq!(line["KnocksAccepted"], 1.0);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "ChatSecurePush"
        );
        let declared: Vec<&str> = line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        for name in [
            "KnocksAccepted",
            "PushesPublishedApns",
            "PushesPublishedFcm",
            "PublishFailures",
            "EndpointsDisabled",
            "EndpointsGone",
            "DevicesDeactivated",
            "DevicesSettled",
            "KnockLatency",
        ] {
            assert!(declared.contains(&name), "{name}");
        }
        // Neither the metric lines nor the log lines carry secrets or identifiers
        // of the phone: whitelist token, API key, device token, endpoint ARN.
        let log = out.with_extension("log");
        let logs = format!(
            "{text}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let arn = only_endpoint(&t).await.arn;
        for (what, secret) in [
            ("whitelist token", &whitelist),
            ("API key", &a.key),
            ("device token", &t),
            ("endpoint ARN", &arn),
        ] {
            assert!(
                !logs.contains(secret.as_str()),
                "a log line contains the {what}"
            );
        }
    }
}
