//! device/apns/ and device/gcm/ over HTTP, with the emulator's SNS endpoints checked.

// Black-box: needs the local stack (`make test` turns this feature on).
#![cfg(feature = "stack")]

use api_tests::*;
use serde_json::json;

#[tokio::test]
async fn apns_registration_cleans_the_token_and_creates_one_enabled_endpoint() {
    let api = Api::new();
    let a = api.signup().await;
    let hex = apns_token();
    let spaced = format!("<{} {}>", hex[..32].to_uppercase(), &hex[32..]);
    let r = api
        .post(
            "device/apns/",
            Some(&a.key),
            Body::Json(json!({"registration_id": spaced, "name": "iPhone", "device_id": "abc"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["registration_id"], hex.as_str());
    assert_eq!(r.json["name"], "iPhone");
    assert_eq!(r.json["device_id"], "abc");
    assert_eq!(r.json["active"], true);
    assert!(uuid::Uuid::parse_str(r.json["id"].as_str().unwrap()).is_ok());
    let created = r.json["date_created"].as_str().unwrap();
    assert_eq!(created.len(), 27, "{created}");
    assert!(created.ends_with('Z') && created.as_bytes()[19] == b'.');
    assert!(!r.text.contains("arn:"), "endpoint ARNs are never shown");
    let e = only_endpoint(&hex).await;
    assert!(e.enabled);
    assert!(e.arn.contains(":endpoint/APNS"));
    assert!(
        e.custom_user_data.is_null(),
        "no account data in CustomUserData"
    );
}

#[tokio::test]
async fn fcm_registration_from_an_android_form() {
    let api = Api::new();
    let a = api.signup().await;
    let t = fcm_token();
    let padded = format!("  {t}\n");
    let r = api
        .post(
            "device/gcm/",
            Some(&a.key),
            form(&[
                ("registration_id", &padded),
                ("active", "true"),
                ("name", "Pixel"),
            ]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["registration_id"], t.as_str());
    assert_eq!(r.json["active"], true);
    let e = only_endpoint(&t).await;
    assert!(e.arn.contains(":endpoint/GCM/"));
    // Absent `active` means true for form bodies too.
    let t2 = fcm_token();
    let r = api
        .post(
            "device/gcm/",
            Some(&a.key),
            form(&[("registration_id", &t2)]),
        )
        .await;
    assert_eq!(r.json["active"], true);
}

#[tokio::test]
async fn reregistering_returns_the_same_device_updated_and_reactivated() {
    let api = Api::new();
    let a = api.signup().await;
    let t = apns_token();
    let d = api.device(&a, "apns", &t).await;
    let id = d["id"].as_str().unwrap();
    let r = api
        .send(
            "PATCH",
            &format!("device/apns/{id}/"),
            Some(&a.key),
            Body::Json(json!({"active": false})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["active"], false);
    // SNS disabled the endpoint meanwhile (APNs said the token was dead).
    let e = only_endpoint(&t).await;
    sns()
        .await
        .set_endpoint_attributes()
        .endpoint_arn(&e.arn)
        .attributes("Enabled", "false")
        .send()
        .await
        .unwrap();
    assert!(!only_endpoint(&t).await.enabled);

    let r = api
        .post(
            "device/apns/",
            Some(&a.key),
            Body::Json(json!({"registration_id": t.to_uppercase(), "name": "renamed"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["id"], id);
    assert_eq!(r.json["name"], "renamed");
    assert_eq!(r.json["active"], true);
    let e2 = only_endpoint(&t).await;
    assert_eq!(e2.arn, e.arn);
    assert!(e2.enabled, "re-registration re-enables the endpoint");
    let list = api.get("device/apns/", Some(&a.key)).await;
    assert_eq!(list.json["count"], 1);
}

#[tokio::test]
async fn registering_under_another_account_moves_the_device_and_its_tokens_go() {
    let api = Api::new();
    let a = api.signup().await;
    let b = api.signup().await;
    let t = apns_token();
    let old = api.device(&a, "apns", &t).await;
    let whitelist = api.token(&a, "apns", old["id"].as_str().unwrap()).await;
    let moved = api.device(&b, "apns", &t).await;
    assert_ne!(moved["id"], old["id"]);
    let list_a = api.get("device/apns/", Some(&a.key)).await;
    assert_eq!(list_a.json["count"], 0);
    let list_b = api.get("device/apns/", Some(&b.key)).await;
    assert_eq!(list_b.json["count"], 1);
    assert_eq!(
        api.get(&format!("tokens/{whitelist}"), Some(&a.key))
            .await
            .status,
        404
    );
    assert_eq!(api.knock(&whitelist, json!({})).await.status, 404);
    let e = only_endpoint(&t).await;
    assert!(e.enabled);
}

#[tokio::test]
async fn twenty_concurrent_registrations_of_one_token_leave_one_device_and_endpoint() {
    let api = Api::new();
    let a = api.signup().await;
    let t = apns_token();
    let attempts = (0..20).map(|_| {
        let api = api.clone();
        let key = a.key.clone();
        let t = t.clone();
        async move {
            api.post(
                "device/apns/",
                Some(&key),
                Body::Json(json!({"registration_id": t})),
            )
            .await
        }
    });
    let replies = futures_util::future::join_all(attempts).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 200),
        "{statuses:?}"
    );
    let ids: std::collections::HashSet<_> =
        replies.iter().map(|r| r.json["id"].to_string()).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(api.get("device/apns/", Some(&a.key)).await.json["count"], 1);
    only_endpoint(&t).await;
}

#[tokio::test]
async fn concurrent_registrations_across_accounts_leave_one_device() {
    let api = Api::new();
    let accounts: Vec<Account> = futures_util::future::join_all((0..5).map(|_| api.signup())).await;
    let t = fcm_token();
    let attempts = accounts.iter().map(|a| {
        let api = api.clone();
        let key = a.key.clone();
        let t = t.clone();
        async move {
            api.post(
                "device/gcm/",
                Some(&key),
                Body::Json(json!({"registration_id": t})),
            )
            .await
        }
    });
    for r in futures_util::future::join_all(attempts).await {
        assert!(r.status == 201 || r.status == 200, "{}", r.text);
    }
    let mut total = 0;
    for a in &accounts {
        total += api.get("device/gcm/", Some(&a.key)).await.json["count"]
            .as_u64()
            .unwrap();
    }
    assert_eq!(total, 1);
    only_endpoint(&t).await;
}

#[tokio::test]
async fn put_with_a_new_push_token_moves_the_device_to_that_tokens_endpoint() {
    let api = Api::new();
    let a = api.signup().await;
    let t1 = apns_token();
    let d = api.device(&a, "apns", &t1).await;
    let id = d["id"].as_str().unwrap();
    let arn = only_endpoint(&t1).await.arn;
    let t2 = apns_token();
    // The Android-style PUT body carries read-only fields, which are ignored.
    let r = api
        .send(
            "PUT",
            &format!("device/apns/{id}/"),
            Some(&a.key),
            Body::Json(json!({"registration_id": t2, "name": "n", "device_id": "d", "id": "ignored", "date_created": "x", "type": "APNS"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["id"], id);
    assert_eq!(r.json["registration_id"], t2.as_str());
    assert_eq!(r.json["date_created"], d["date_created"]);
    // An endpoint carries one token for its life (docs/ARCHITECTURE.md,
    // "Concurrency"): the new token's, and the old one is gone.
    let e = only_endpoint(&t2).await;
    assert_ne!(e.arn, arn);
    assert!(e.enabled);
    assert!(endpoints_for(&t1).await.is_empty());
    // The old token is free: registering it makes a new device.
    let r = api
        .post(
            "device/apns/",
            Some(&a.key),
            Body::Json(json!({"registration_id": t1})),
        )
        .await;
    assert_eq!(r.status, 201);
    // PUT without the optional fields clears them.
    let r = api
        .send(
            "PUT",
            &format!("device/apns/{id}"),
            Some(&a.key),
            form(&[("registration_id", &t2)]),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.json["name"].is_null() && r.json["device_id"].is_null());
}

#[tokio::test]
async fn patch_to_a_token_another_device_holds_merges_them() {
    let api = Api::new();
    let a = api.signup().await;
    let t1 = fcm_token();
    let t2 = fcm_token();
    let d1 = api.device(&a, "gcm", &t1).await;
    let d2 = api.device(&a, "gcm", &t2).await;
    let r = api
        .send(
            "PATCH",
            &format!("device/gcm/{}/", d1["id"].as_str().unwrap()),
            Some(&a.key),
            Body::Json(json!({"registration_id": t2})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let list = api.get("device/gcm/", Some(&a.key)).await;
    assert_eq!(list.json["count"], 1);
    assert_eq!(list.json["results"][0]["id"], d1["id"]);
    assert_eq!(
        api.get(
            &format!("device/gcm/{}/", d2["id"].as_str().unwrap()),
            Some(&a.key)
        )
        .await
        .status,
        404
    );
    only_endpoint(&t2).await;
    assert!(endpoints_for(&t1).await.is_empty());
}

#[tokio::test]
async fn an_existing_endpoint_with_other_attributes_is_adopted() {
    let api = Api::new();
    let a = api.signup().await;
    let t = apns_token();
    // Someone (an earlier deployment) left an endpoint for this token with
    // different attributes: CreatePlatformEndpoint now fails with "already exists".
    let sns = sns().await;
    let apps = sns.list_platform_applications().send().await.unwrap();
    let app = apps
        .platform_applications()
        .iter()
        .filter_map(|p| p.platform_application_arn())
        .find(|arn| arn.contains(":app/APNS_SANDBOX/chatsecure-push-local.apns"))
        .unwrap()
        .to_string();
    let stale = sns
        .create_platform_endpoint()
        .platform_application_arn(&app)
        .token(&t)
        .custom_user_data("left over")
        .attributes("Enabled", "false")
        .send()
        .await
        .unwrap()
        .endpoint_arn
        .unwrap();
    let r = api
        .post(
            "device/apns/",
            Some(&a.key),
            Body::Json(json!({"registration_id": t})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let e = only_endpoint(&t).await;
    assert_eq!(e.arn, stale);
    assert!(e.enabled);
}

#[tokio::test]
async fn validation_rules_name_the_field() {
    let api = Api::new();
    let a = api.signup().await;
    let cases = [
        ("apns", json!({}), "registration_id"),
        ("apns", json!({"registration_id": ""}), "registration_id"),
        (
            "apns",
            json!({"registration_id": "<  >"}),
            "registration_id",
        ),
        (
            "apns",
            json!({"registration_id": "xyz123"}),
            "registration_id",
        ),
        (
            "apns",
            json!({"registration_id": "a".repeat(401)}),
            "registration_id",
        ),
        ("apns", json!({"registration_id": 1234}), "registration_id"),
        (
            "apns",
            json!({"registration_id": apns_token(), "name": "n".repeat(256)}),
            "name",
        ),
        (
            "apns",
            json!({"registration_id": apns_token(), "device_id": "d".repeat(256)}),
            "device_id",
        ),
        (
            "apns",
            json!({"registration_id": apns_token(), "active": "maybe"}),
            "active",
        ),
        (
            "gcm",
            json!({"registration_id": "has inner space"}),
            "registration_id",
        ),
        ("gcm", json!({"registration_id": "   "}), "registration_id"),
        (
            "gcm",
            json!({"registration_id": "x".repeat(4097)}),
            "registration_id",
        ),
    ];
    for (kind, body, field) in cases {
        let r = api
            .post(
                &format!("device/{kind}/"),
                Some(&a.key),
                Body::Json(body.clone()),
            )
            .await;
        assert_eq!(r.status, 400, "{kind} {body} -> {}", r.text);
        assert!(r.json[field].is_array(), "{kind} {body} -> {}", r.text);
    }
    assert_eq!(api.get("device/apns/", Some(&a.key)).await.json["count"], 0);
    assert_eq!(api.get("device/gcm/", Some(&a.key)).await.json["count"], 0);
    // Limits are inclusive.
    let r = api
        .post(
            "device/apns/",
            Some(&a.key),
            Body::Json(json!({"registration_id": "b".repeat(400), "name": "n".repeat(255)})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = api
        .post(
            "device/wat/",
            Some(&a.key),
            Body::Json(json!({"registration_id": apns_token()})),
        )
        .await;
    assert_eq!(r.status, 404);
}

// Another account's key on each device route: hardening.rs's authorisation
// matrix. Here: what it does not cover.
#[tokio::test]
async fn a_device_is_404_by_the_wrong_kind_or_id_absent_from_other_lists_and_401_without_a_key() {
    let api = Api::new();
    let a = api.signup().await;
    let b = api.signup().await;
    let t = apns_token();
    let d = api.device(&a, "apns", &t).await;
    let id = d["id"].as_str().unwrap();
    let path = format!("device/apns/{id}/");
    assert_eq!(
        api.get(&format!("device/gcm/{id}/"), Some(&a.key))
            .await
            .status,
        404,
        "wrong kind"
    );
    assert_eq!(
        api.get("device/apns/not-a-uuid/", Some(&a.key))
            .await
            .status,
        404
    );
    assert_eq!(api.get("device/apns/", Some(&b.key)).await.json["count"], 0);
    for method in ["GET", "PUT", "PATCH", "DELETE"] {
        assert_eq!(api.send(method, &path, None, Body::None).await.status, 401);
    }
    // Still intact for its owner.
    let r = api.get(&path, Some(&a.key)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json, d);
}

#[tokio::test]
async fn delete_removes_device_endpoint_and_tokens() {
    let api = Api::new();
    let a = api.signup().await;
    let t = fcm_token();
    let d = api.device(&a, "gcm", &t).await;
    let id = d["id"].as_str().unwrap();
    let whitelist = api.token(&a, "gcm", id).await;
    let r = api.delete(&format!("device/gcm/{id}"), Some(&a.key)).await;
    assert_eq!(r.status, 204);
    assert!(r.text.is_empty());
    assert!(endpoints_for(&t).await.is_empty());
    assert_eq!(
        api.get(&format!("device/gcm/{id}/"), Some(&a.key))
            .await
            .status,
        404
    );
    assert_eq!(
        api.get(&format!("tokens/{whitelist}/"), Some(&a.key))
            .await
            .status,
        404
    );
    assert_eq!(
        api.delete(&format!("device/gcm/{id}/"), Some(&a.key))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn lists_are_pages_with_absolute_links() {
    let api = Api::new();
    let a = api.signup().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(api.device(&a, "apns", &apns_token()).await["id"].clone());
    }
    let mut seen = Vec::new();
    let mut url = "device/apns/?page_size=2".to_string();
    let mut pages = 0;
    loop {
        let r = api.get(&url, Some(&a.key)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["count"], 5);
        seen.extend(
            r.json["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].clone()),
        );
        pages += 1;
        match r.json["next"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&api.base),
                    "{next} is absolute on {}",
                    api.base
                );
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids, "oldest first, each once");
    let r = api.get("device/apns/?page_size=0", Some(&a.key)).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn deleting_an_account_deletes_its_endpoints_and_every_item() {
    let api = Api::new();
    let a = api.signup().await;
    let t1 = apns_token();
    let t2 = fcm_token();
    let d1 = api.device(&a, "apns", &t1).await;
    api.device(&a, "gcm", &t2).await;
    let whitelist = api.token(&a, "apns", d1["id"].as_str().unwrap()).await;
    let r = api
        .delete(&format!("accounts/{}", a.username), Some(&a.key))
        .await;
    assert_eq!(r.status, 204);
    assert!(endpoints_for(&t1).await.is_empty());
    assert!(endpoints_for(&t2).await.is_empty());
    let dump = table_dump().await.join("\n");
    for needle in [&a.id, &a.username, &t1, &t2, &whitelist] {
        assert!(
            !dump.contains(needle.as_str()),
            "{needle} remains in the table"
        );
    }
    assert_eq!(api.knock(&whitelist, json!({})).await.status, 404);
}
