//! tokens/ over HTTP.

// Black-box: needs the local stack (`make test` turns this feature on).
#![cfg(feature = "stack")]

use std::collections::HashSet;
use std::time::Duration;

use api_tests::*;
use serde_json::{json, Value};

async fn setup(api: &Api) -> (Account, String) {
    let a = api.signup().await;
    let d = api.device(&a, "apns", &apns_token()).await;
    (a, d["id"].as_str().unwrap().to_string())
}

fn is_token(t: &str) -> bool {
    t.len() == 40
        && t.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

#[tokio::test]
async fn create_returns_the_token_object_with_nulls_omitted() {
    let api = Api::new();
    let (a, device) = setup(&api).await;
    let r = api
        .post(
            "tokens/",
            Some(&a.key),
            Body::Json(json!({"apns_device": device})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let obj = r.json.as_object().unwrap();
    let keys: HashSet<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        HashSet::from(["token", "apns_device", "date_expires"])
    );
    assert!(is_token(r.json["token"].as_str().unwrap()));
    assert_eq!(r.json["apns_device"], device.as_str());
    // Default lifetime: 30 days from now.
    let expires = r.json["date_expires"].as_str().unwrap();
    assert_eq!(expires.len(), 27);
    let r = api
        .post(
            "tokens/",
            Some(&a.key),
            form(&[("apns_device", &device), ("name", "bob")]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["name"], "bob");
}

#[tokio::test]
async fn device_may_be_named_by_its_push_token() {
    let api = Api::new();
    let a = api.signup().await;
    let t = fcm_token();
    let d = api.device(&a, "gcm", &t).await;
    let r = api
        .post(
            "tokens/",
            Some(&a.key),
            Body::Json(json!({"gcm_device": t})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["gcm_device"], d["id"]);
    let apns = apns_token();
    let d2 = api.device(&a, "apns", &apns).await;
    let r = api
        .post(
            "tokens/",
            Some(&a.key),
            Body::Json(json!({"apns_device": apns.to_uppercase()})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["apns_device"], d2["id"]);
}

#[tokio::test]
async fn device_key_errors() {
    let api = Api::new();
    let (a, device) = setup(&api).await;
    let b = api.signup().await;
    let r = api
        .post("tokens/", Some(&a.key), Body::Json(json!({"name": "x"})))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json["non_field_errors"].is_array());
    let r = api
        .post(
            "tokens/",
            Some(&a.key),
            Body::Json(json!({"apns_device": device, "gcm_device": device})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json["non_field_errors"].is_array());
    let r = api
        .post(
            "tokens/",
            Some(&b.key),
            Body::Json(json!({"apns_device": device})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json["apns_device"].is_array());
    let r = api
        .post(
            "tokens/",
            Some(&a.key),
            Body::Json(json!({"gcm_device": device})),
        )
        .await;
    assert_eq!(r.status, 400, "an APNS device named as gcm_device");
    assert!(r.json["gcm_device"].is_array());
    let r = api
        .post(
            "tokens/",
            Some(&a.key),
            Body::Json(json!({"apns_device": uuid::Uuid::new_v4().to_string()})),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = api
        .post(
            "tokens/",
            Some(&a.key),
            Body::Json(json!({"apns_device": device, "name": "n".repeat(101)})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json["name"].is_array());
    assert_eq!(api.get("tokens/", Some(&a.key)).await.json["count"], 0);
    assert_eq!(
        api.post("tokens/", None, Body::Json(json!({"apns_device": device})))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn retrieve_with_and_without_slash_rename_and_revoke() {
    let api = Api::new();
    let (a, device) = setup(&api).await;
    let t = api.token(&a, "apns", &device).await;
    let r = api.get(&format!("tokens/{t}"), Some(&a.key)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["token"], t.as_str());
    assert!(
        r.json.get("results").is_none(),
        "a single object, not a page"
    );
    assert_eq!(
        api.get(&format!("tokens/{t}/"), Some(&a.key)).await.json,
        r.json
    );

    let r = api
        .send(
            "PATCH",
            &format!("tokens/{t}/"),
            Some(&a.key),
            form(&[("name", "carol"), ("gcm_device", "ignored")]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["name"], "carol");
    assert_eq!(r.json["apns_device"], device.as_str());
    assert!(r.json.get("gcm_device").is_none());
    let r = api
        .send(
            "PUT",
            &format!("tokens/{t}/"),
            Some(&a.key),
            Body::Json(json!({})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.json.get("name").is_none(),
        "PUT without name clears it: {}",
        r.text
    );

    let r = api.delete(&format!("tokens/{t}/"), Some(&a.key)).await;
    assert_eq!(r.status, 204);
    for method in ["GET", "PUT", "PATCH", "DELETE"] {
        assert_eq!(
            api.send(
                method,
                &format!("tokens/{t}/"),
                Some(&a.key),
                Body::Json(json!({"name": "x"}))
            )
            .await
            .status,
            404
        );
    }
    assert_eq!(api.knock(&t, json!({})).await.status, 404);
    assert_eq!(api.get("tokens/", Some(&a.key)).await.json["count"], 0);
}

// Another account's key on each token route: hardening.rs's authorisation
// matrix. Here: what it does not cover.
#[tokio::test]
async fn a_token_is_absent_from_other_lists_and_an_overlong_one_is_404() {
    let api = Api::new();
    let (a, device) = setup(&api).await;
    let b = api.signup().await;
    let t = api.token(&a, "apns", &device).await;
    assert_eq!(api.get("tokens/", Some(&b.key)).await.json["count"], 0);
    let r = api.get(&format!("tokens/{t}"), Some(&a.key)).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        api.get(&format!("tokens/{}", "z".repeat(300)), Some(&a.key))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn thirty_concurrent_creations_are_distinct_and_all_listed() {
    let api = Api::new();
    let (a, device) = setup(&api).await;
    let creations = (0..30).map(|_| {
        let api = api.clone();
        let key = a.key.clone();
        let device = device.clone();
        async move {
            api.post(
                "tokens/",
                Some(&key),
                Body::Json(json!({"apns_device": device})),
            )
            .await
        }
    });
    let replies = futures_util::future::join_all(creations).await;
    let created: HashSet<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", r.text);
            r.json["token"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(created.len(), 30);
    let r = api.get("tokens/?page_size=1000", Some(&a.key)).await;
    assert_eq!(r.json["count"], 30);
    let listed: HashSet<String> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, created);
}

#[tokio::test]
async fn paging_walks_every_token_once_newest_first() {
    let api = Api::new();
    let (a, device) = setup(&api).await;
    let mut made = Vec::new();
    for _ in 0..27 {
        made.push(api.token(&a, "apns", &device).await);
    }
    made.reverse();
    let mut seen: Vec<String> = Vec::new();
    let mut url = "tokens/?page_size=10".to_string();
    let mut previous_links = Vec::new();
    loop {
        let r = api.get(&url, Some(&a.key)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["count"], 27);
        seen.extend(
            r.json["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["token"].as_str().unwrap().to_string()),
        );
        previous_links.push(r.json["previous"].clone());
        match r.json["next"].as_str() {
            Some(next) => {
                assert!(next.starts_with("http://127.0.0.1:"), "{next}");
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(seen, made);
    assert_eq!(previous_links.len(), 3);
    assert!(previous_links[0].is_null());
    // Creating a token while walking does not shift later pages.
    let first = api.get("tokens/?page_size=10", Some(&a.key)).await;
    api.token(&a, "apns", &device).await;
    let second = api
        .get(first.json["next"].as_str().unwrap(), Some(&a.key))
        .await;
    let second_tokens: Vec<Value> = second.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token"].clone())
        .collect();
    let expected: Vec<Value> = made[10..20].iter().map(|t| json!(t)).collect();
    assert_eq!(second_tokens, expected);
}

/// Tests that start a router (and sometimes an emulator) of their own, with
/// settings or faults of their own: they exercise the handlers in-process, not
/// through the shared stack, so `make sam-local-test` leaves them out.
mod own_stack {
    use super::*;

    #[tokio::test]
    async fn expired_tokens_are_gone_everywhere() {
        let router = Router::start(&[("TOKEN_LIFETIME_SECONDS", "2")]).await;
        let api = &router.api;
        let (a, device) = setup(api).await;
        let t = api.token(&a, "apns", &device).await;
        let r = api.get(&format!("tokens/{t}"), Some(&a.key)).await;
        assert_eq!(r.status, 200);
        assert_eq!(api.knock(&t, json!({})).await.status, 202);
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(
            api.get(&format!("tokens/{t}"), Some(&a.key)).await.status,
            404
        );
        assert_eq!(api.get("tokens/", Some(&a.key)).await.json["count"], 0);
        assert_eq!(api.knock(&t, json!({})).await.status, 404);
        assert_eq!(
            api.send(
                "PATCH",
                &format!("tokens/{t}/"),
                Some(&a.key),
                Body::Json(json!({"name": "x"}))
            )
            .await
            .status,
            404
        );
        assert_eq!(
            api.delete(&format!("tokens/{t}/"), Some(&a.key))
                .await
                .status,
            404
        );
        // The item carries the TTL attribute DynamoDB expires it by.
        let dump = table_dump().await;
        let item = dump
            .iter()
            .find(|i| i.contains(&t))
            .expect("item until TTL removes it");
        assert!(item.contains("expires_at"));
    }
}
