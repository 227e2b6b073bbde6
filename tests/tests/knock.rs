//! messages/ (the knock) and pubsub/ over HTTP, reading what the emulator
//! recorded for each SNS endpoint.

// Black-box: needs the local stack (`make test` turns this feature on).
#![cfg(feature = "stack")]

use api_tests::*;
use push_core::payload::Priority;
use serde_json::{json, Value};

struct Owner {
    account: Account,
    apns: Vec<String>,
    fcm: String,
    token: String,
}

/// An owner with 2 APNS devices and 1 FCM device; the token is issued for the FCM one.
async fn owner(api: &Api) -> Owner {
    let account = api.signup().await;
    let apns = vec![apns_token(), apns_token()];
    for t in &apns {
        api.device(&account, "apns", t).await;
    }
    let fcm = fcm_token();
    let d = api.device(&account, "gcm", &fcm).await;
    let token = api.token(&account, "gcm", d["id"].as_str().unwrap()).await;
    Owner {
        account,
        apns,
        fcm,
        token,
    }
}

/// What an owner's phones received for one knock without `priority`: each
/// APNs payload and the FCM message, after checking each device got exactly one.
async fn pushes_of_a_knock_without_priority(
    api: &Api,
    expected_priority: &str,
) -> (Vec<Value>, Value) {
    let o = owner(api).await;
    let r = api
        .send(
            "POST",
            "messages/",
            Some("stale-key"),
            Body::Json(json!({"token": o.token, "data": {"k": "v"}})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(
        r.json,
        json!({"token": o.token, "data": {"k": "v"}, "priority": expected_priority})
    );
    let message = json!({"token": o.token, "data": {"k": "v"}});
    let mut apns = Vec::new();
    for t in &o.apns {
        let e = only_endpoint(t).await;
        assert_eq!(e.messages.len(), 1);
        let envelope: Value = serde_json::from_str(&e.messages[0]).unwrap();
        assert!(envelope["default"].is_string());
        let p = e.payload(0, "APNS_SANDBOX");
        // Where the iOS SDK reads the token, and at the top level too.
        assert_eq!(p["aps"]["alert"]["message"], message);
        assert_eq!(p["message"], message);
        apns.push(p);
    }
    let e = only_endpoint(&o.fcm).await;
    assert_eq!(e.messages.len(), 1);
    let gcm = e.payload(0, "GCM");
    let inner: Value = serde_json::from_str(gcm["data"]["message"].as_str().unwrap()).unwrap();
    assert_eq!(
        inner,
        json!({"message": {"token": o.token, "data": "{\"k\":\"v\"}"}})
    );
    (apns, gcm)
}

#[tokio::test]
async fn a_knock_without_priority_wakes_every_device_once_as_high_by_default() {
    let (apns, gcm) = pushes_of_a_knock_without_priority(&Api::new(), "high").await;
    for p in apns {
        assert_eq!(p["aps"]["alert"]["body"], "New Message!");
        assert_eq!(p["aps"]["sound"], "default");
        assert_eq!(p["aps"]["content-available"], 1);
    }
    assert_eq!(gcm["priority"], "high");
}

#[tokio::test]
async fn high_priority_multipart_knock_is_an_alert() {
    let api = Api::new();
    let o = owner(&api).await;
    // RubDub: multipart, always high, sometimes an ignored `message` field; no slash.
    let r = api
        .post(
            "messages",
            None,
            multipart(&[
                ("token", &o.token),
                ("priority", "high"),
                ("message", "ignored"),
            ]),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(
        r.json,
        json!({"token": o.token, "data": null, "priority": "high"})
    );
    // Each iPhone got exactly the alert push the payload builder makes
    // (whose content PROTOCOL.md fixes and push_core's own tests pin).
    let alert = push_core::payload::apns_push(&o.token, &Value::Null, Priority::High);
    let alert: Value = serde_json::from_str(&alert.payload).unwrap();
    assert_eq!(alert["aps"]["alert"]["body"], "New Message!");
    for t in &o.apns {
        assert_eq!(only_endpoint(t).await.payload(0, "APNS_SANDBOX"), alert);
    }
    let gcm = only_endpoint(&o.fcm).await.payload(0, "GCM");
    assert_eq!(gcm["priority"], "high");
    let inner: Value = serde_json::from_str(gcm["data"]["message"].as_str().unwrap()).unwrap();
    assert_eq!(inner, json!({"message": {"token": o.token, "data": null}}));
}

#[tokio::test]
async fn android_form_knock_with_string_data() {
    let api = Api::new();
    let o = owner(&api).await;
    let r = api
        .post(
            "messages/",
            Some(&o.account.key),
            form(&[("token", &o.token), ("data", "hello")]),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["data"], "hello");
    let p = only_endpoint(&o.apns[0]).await.payload(0, "APNS_SANDBOX");
    assert_eq!(p["aps"]["alert"]["message"]["data"], "hello");
    // The Android SDK sends no priority either: the default, an alert.
    assert_eq!(p["aps"]["sound"], "default");
}

#[tokio::test]
async fn apns_priority_and_push_type_attributes() {
    // moto keeps no message attributes in its state, so read the recorder.
    let api = Api::new();
    let o = owner(&api).await;
    let ((), calls) = recorded(async {
        assert_eq!(
            api.knock(&o.token, json!({"priority": "high"}))
                .await
                .status,
            202
        );
        assert_eq!(
            api.knock(&o.token, json!({"priority": "low"})).await.status,
            202
        );
        // No priority: the default, high.
        assert_eq!(api.knock(&o.token, json!({})).await.status, 202);
    })
    .await;
    let arn = only_endpoint(&o.apns[0]).await.arn;
    let mut found = Vec::new();
    for call in calls.iter().filter(|c| c.operation == "Publish") {
        let pairs = call.form();
        let get = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        if get("TargetArn").as_deref() != Some(arn.as_str()) {
            continue;
        }
        let mut attrs = std::collections::HashMap::new();
        for i in 1..=4 {
            if let (Some(name), Some(value)) = (
                get(&format!("MessageAttributes.entry.{i}.Name")),
                get(&format!("MessageAttributes.entry.{i}.Value.StringValue")),
            ) {
                attrs.insert(name, value);
            }
        }
        found.push((
            attrs.get("AWS.SNS.MOBILE.APNS.PUSH_TYPE").cloned(),
            attrs.get("AWS.SNS.MOBILE.APNS.PRIORITY").cloned(),
        ));
    }
    found.sort();
    assert_eq!(
        found,
        vec![
            (Some("alert".to_string()), Some("10".to_string())),
            (Some("alert".to_string()), Some("10".to_string())),
            (Some("background".to_string()), Some("5".to_string())),
        ],
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_disabled_endpoint_is_skipped_and_its_device_marked_inactive() {
    let api = Api::new();
    let o = owner(&api).await;
    let dead = only_endpoint(&o.apns[0]).await;
    sns()
        .await
        .set_endpoint_attributes()
        .endpoint_arn(&dead.arn)
        .attributes("Enabled", "false")
        .send()
        .await
        .unwrap();
    let r = api.knock(&o.token, json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(only_endpoint(&o.apns[0]).await.messages.len(), 0);
    assert_eq!(only_endpoint(&o.apns[1]).await.messages.len(), 1);
    assert_eq!(only_endpoint(&o.fcm).await.messages.len(), 1);
    let list = api.get("device/apns/", Some(&o.account.key)).await;
    let states: Vec<(Value, Value)> = list.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["registration_id"].clone(), d["active"].clone()))
        .collect();
    assert!(
        states.contains(&(json!(o.apns[0]), json!(false))),
        "{states:?}"
    );
    assert!(
        states.contains(&(json!(o.apns[1]), json!(true))),
        "{states:?}"
    );
    // The next knock does not even try it; re-registration brings it back.
    assert_eq!(api.knock(&o.token, json!({})).await.status, 202);
    assert_eq!(only_endpoint(&o.apns[1]).await.messages.len(), 2);
    let r = api
        .post(
            "device/apns/",
            Some(&o.account.key),
            Body::Json(json!({"registration_id": o.apns[0]})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["active"], true);
    assert_eq!(api.knock(&o.token, json!({})).await.status, 202);
    assert_eq!(only_endpoint(&o.apns[0]).await.messages.len(), 1);
}

#[tokio::test]
async fn inactive_devices_get_nothing_and_other_accounts_get_nothing() {
    let api = Api::new();
    let o = owner(&api).await;
    let bystander = api.signup().await;
    let other = apns_token();
    api.device(&bystander, "apns", &other).await;
    let list = api.get("device/apns/", Some(&o.account.key)).await;
    let id = list.json["results"][0]["id"].as_str().unwrap().to_string();
    let quiet = list.json["results"][0]["registration_id"]
        .as_str()
        .unwrap()
        .to_string();
    api.send(
        "PATCH",
        &format!("device/apns/{id}/"),
        Some(&o.account.key),
        form(&[("active", "false")]),
    )
    .await;
    assert_eq!(api.knock(&o.token, json!({})).await.status, 202);
    assert_eq!(only_endpoint(&quiet).await.messages.len(), 0);
    assert_eq!(only_endpoint(&other).await.messages.len(), 0);
    assert_eq!(only_endpoint(&o.fcm).await.messages.len(), 1);
}

#[tokio::test]
async fn unknown_tokens_are_404_and_push_nothing() {
    let api = Api::new();
    let o = owner(&api).await;
    for token in [
        "0000000000000000000000000000000000000000".to_string(),
        o.token.to_uppercase(),
        "x".into(),
    ] {
        let r = api.knock(&token, json!({})).await;
        assert_eq!(r.status, 404, "{token}");
        assert!(r.json.is_object());
    }
    assert_eq!(all_messages_for(&o.fcm).await, 0);
}

#[tokio::test]
async fn knock_validation() {
    let api = Api::new();
    let o = owner(&api).await;
    let too_big = "x".repeat(1023); // 1025 bytes with its quotes
    let cases = [
        (json!({}), "token"),
        (json!({"token": ""}), "token"),
        (json!({"token": "t".repeat(201)}), "token"),
        (json!({"token": 5}), "token"),
        (json!({"token": o.token, "priority": "urgent"}), "priority"),
        (json!({"token": o.token, "priority": 10}), "priority"),
        (json!({"token": o.token, "data": 5}), "data"),
        (json!({"token": o.token, "data": [1, 2]}), "data"),
        (json!({"token": o.token, "data": too_big}), "data"),
        (
            json!({"token": o.token, "data": {"k": "v".repeat(1020)}}),
            "data",
        ),
    ];
    for (body, field) in cases {
        let r = api.post("messages/", None, Body::Json(body.clone())).await;
        assert_eq!(r.status, 400, "{body} -> {}", r.text);
        assert!(r.json[field].is_array(), "{body} -> {}", r.text);
    }
    assert_eq!(all_messages_for(&o.fcm).await, 0, "nothing was pushed");
    // 1024 bytes exactly is fine.
    let r = api.knock(&o.token, json!({"data": "x".repeat(1022)})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let r = api
        .knock(&o.token, json!({"data": null, "priority": null}))
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(r.json["priority"], "high", "null is the configured default");
    let r = api.send("GET", "messages/", None, Body::None).await;
    assert_eq!(r.status, 405);
}

/// Waits out a `Retry-After` as a client would, with a little margin.
async fn wait_out(r: &Reply) {
    let seconds: u64 = r.header("retry-after").unwrap().parse().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(seconds * 1000 + 300)).await;
}

#[tokio::test]
async fn a_device_whose_endpoint_was_deleted_gets_a_new_one_and_the_knock() {
    // What a deletion racing a registration of the same push token can do:
    // delete the endpoint the registration had just adopted.
    let api = Api::new();
    let o = owner(&api).await;
    let old = only_endpoint(&o.apns[0]).await;
    sns()
        .await
        .delete_endpoint()
        .endpoint_arn(&old.arn)
        .send()
        .await
        .unwrap();
    let r = api.knock(&o.token, json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let new = only_endpoint(&o.apns[0]).await;
    assert_ne!(new.arn, old.arn);
    assert_eq!(
        new.messages.len(),
        1,
        "the knock arrived through the new endpoint"
    );
    // The device keeps the new endpoint: the next knock goes straight there.
    assert_eq!(api.knock(&o.token, json!({})).await.status, 202);
    assert_eq!(only_endpoint(&o.apns[0]).await.messages.len(), 2);
    let list = api.get("device/apns/", Some(&o.account.key)).await;
    assert!(list.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["active"] == true));
}

/// Tests that start a router (and sometimes an emulator) of their own, with
/// settings or faults of their own: they exercise the handlers in-process, not
/// through the shared stack, so `make sam-local-test` leaves them out.
mod own_stack {
    use super::*;

    #[tokio::test]
    async fn a_limit_of_one_knock_admits_one() {
        let router = Router::start(&[
            ("KNOCK_LIMIT_PER_WINDOW", "1"),
            ("KNOCK_LIMIT_WINDOW_SECONDS", "3600"),
        ])
        .await;
        let api = &router.api;
        let o = owner(api).await;
        assert_eq!(api.knock(&o.token, json!({})).await.status, 202);
        let r = api.knock(&o.token, json!({})).await;
        assert_eq!(r.status, 429, "{}", r.text);
        assert_eq!(only_endpoint(&o.fcm).await.messages.len(), 1);
    }

    #[tokio::test]
    async fn a_token_that_knocks_too_often_gets_429_and_pushes_nothing_more() {
        let router = Router::start(&[
            ("KNOCK_LIMIT_PER_WINDOW", "3"),
            ("KNOCK_LIMIT_WINDOW_SECONDS", "3600"),
        ])
        .await;
        let api = &router.api;
        let o = owner(api).await;
        for _ in 0..3 {
            assert_eq!(api.knock(&o.token, json!({})).await.status, 202);
        }
        let r = api.knock(&o.token, json!({"priority": "high"})).await;
        assert_eq!(r.status, 429, "{}", r.text);
        assert!(r.json["detail"].is_string());
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=3600).contains(&retry), "{retry}");
        assert_eq!(
            only_endpoint(&o.fcm).await.messages.len(),
            3,
            "nothing pushed for the refused knock"
        );
        // Another token of the same owner has its own budget; unknown tokens stay 404.
        let d = api.get("device/gcm/", Some(&o.account.key)).await;
        let other = api
            .token(
                &o.account,
                "gcm",
                d.json["results"][0]["id"].as_str().unwrap(),
            )
            .await;
        assert_eq!(api.knock(&other, json!({})).await.status, 202);
        assert_eq!(api.knock(&"f".repeat(40), json!({})).await.status, 404);
    }

    #[tokio::test]
    async fn an_operator_default_of_low_makes_such_knocks_background_pushes() {
        let router = Router::start(&[("KNOCK_DEFAULT_PRIORITY", "low")]).await;
        let (apns, gcm) = pushes_of_a_knock_without_priority(&router.api, "low").await;
        for p in apns {
            assert_eq!(
                p["aps"],
                json!({"content-available": 1, "alert": {"message": p["message"].clone()}})
            );
        }
        assert_eq!(gcm["priority"], "normal");
    }

    #[tokio::test]
    async fn pubsub_answers_the_relay_jid_without_auth() {
        let router = Router::start(&[("PUBSUB_JID", "push.relay.example")]).await;
        for path in ["pubsub/", "pubsub"] {
            let r = router
                .api
                .send("GET", path, Some("stale"), Body::None)
                .await;
            assert_eq!(r.status, 200);
            assert_eq!(r.json, json!({"jid": "push.relay.example"}));
        }
    }

    #[tokio::test]
    async fn the_knock_limit_slides_and_its_retry_after_is_honest() {
        let router = Router::start(&[
            ("KNOCK_LIMIT_PER_WINDOW", "2"),
            ("KNOCK_LIMIT_WINDOW_SECONDS", "6"),
        ])
        .await;
        let api = &router.api;
        let o = owner(api).await;
        // Two knocks three seconds apart fill the limit...
        assert_eq!(api.knock(&o.token, json!({})).await.status, 202);
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        assert_eq!(api.knock(&o.token, json!({})).await.status, 202);
        let r = api.knock(&o.token, json!({})).await;
        assert_eq!(r.status, 429, "{}", r.text);
        // ...until the first leaves the window, about three seconds on.
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=4).contains(&retry), "{retry}");
        wait_out(&r).await;
        assert_eq!(api.knock(&o.token, json!({})).await.status, 202);
        // The second knock still counts: the window slid, it did not restart.
        let r = api.knock(&o.token, json!({})).await;
        assert_eq!(r.status, 429, "{}", r.text);
        wait_out(&r).await;
        assert_eq!(api.knock(&o.token, json!({})).await.status, 202);
        assert_eq!(only_endpoint(&o.fcm).await.messages.len(), 4);
    }
}
