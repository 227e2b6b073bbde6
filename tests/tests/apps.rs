//! Several apps on one deployment, and both APNs environments.
//!
//! The local stack serves two apps (see `infra/local-api`): `chatsecure`, the
//! default app (`/api/v1/` and `/chatsecure/api/v1/`; APNs sandbox and FCM),
//! and `zom` (`/zom/api/v1/`; APNs production, APNs sandbox and FCM). What
//! one app holds is invisible and unusable through the other's base URL, and
//! a device of `zom` whose APNs environment nobody named is pushed through
//! both environments until APNs rejects its token in one (the emulator told
//! to disable that endpoint, and SNS's event fed to the feedback function),
//! then through the other alone.

// Black-box: needs the local stack (`make test` turns this feature on).
#![cfg(feature = "stack")]

use api_tests::*;
use serde_json::{json, Value};

/// The platform application names of the local stack's apps (their ARNs
/// end in `:app/<PLATFORM>/<name>`, their endpoints' in
/// `:endpoint/<PLATFORM>/<name>/<id>`).
const DEFAULT_APNS: &str = "APNS_SANDBOX/chatsecure-push-local.apns/";
const ZOM_PRODUCTION: &str = "APNS/chatsecure-push-local.zom-apns/";
const ZOM_SANDBOX: &str = "APNS_SANDBOX/chatsecure-push-local.zom-apns-sandbox/";
const ZOM_FCM: &str = "GCM/chatsecure-push-local.zom-fcm/";

fn zom() -> Api {
    Api::app("zom")
}

/// The live endpoints of a push token, each named by its platform
/// application (one of the constants above).
async fn endpoints_by_application(token: &str) -> Vec<(String, Endpoint)> {
    let mut out: Vec<(String, Endpoint)> = endpoints_for(token)
        .await
        .into_iter()
        .map(|e| {
            let application = e.arn.split(":endpoint/").nth(1).unwrap_or_default();
            let application = application[..=application.rfind('/').unwrap_or(0)].to_string();
            (application, e)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

async fn applications_of(token: &str) -> Vec<String> {
    endpoints_by_application(token)
        .await
        .into_iter()
        .map(|(application, _)| application)
        .collect()
}

/// The one live endpoint of `token` on this platform application.
async fn endpoint_on(token: &str, application: &str) -> Endpoint {
    endpoints_by_application(token)
        .await
        .into_iter()
        .find(|(a, _)| a == application)
        .map(|(_, e)| e)
        .unwrap_or_else(|| panic!("no endpoint of the token on {application}"))
}

async fn register(api: &Api, account: &Account, kind: &str, body: Value) -> Reply {
    api.post(
        &format!("device/{kind}/"),
        Some(&account.key),
        Body::Json(body),
    )
    .await
}

#[tokio::test]
async fn every_app_is_served_under_its_own_base_url_and_the_default_app_also_at_api_v1() {
    for api in [Api::new(), Api::app("chatsecure"), zom()] {
        let r = api.get("pubsub/", None).await;
        assert_eq!(r.status, 200, "{}: {}", api.base, r.text);
    }
    // The default app by either URL is one app.
    let a = Api::new().signup().await;
    let r = Api::app("chatsecure")
        .get(&format!("accounts/{}/", a.username), Some(&a.key))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // An app that is not configured does not exist.
    for path in ["pubsub/", "accounts/", "messages/"] {
        let r = Api::app("nope").get(path, None).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert_eq!(r.json, json!({"detail": "Not found."}));
    }
}

#[tokio::test]
async fn accounts_of_one_app_are_unknown_to_another() {
    let (default, zom) = (Api::new(), zom());
    let a = zom.signup().await;
    // Its API key authenticates nothing at the other app.
    let r = default
        .get(&format!("accounts/{}/", a.username), Some(&a.key))
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    for path in ["device/apns/", "tokens/"] {
        assert_eq!(default.get(path, Some(&a.key)).await.status, 401, "{path}");
    }
    // Its username is free there: the same credentials make another account.
    let r = default
        .post(
            "accounts/",
            None,
            Body::Json(json!({"username": a.username, "password": a.password})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_ne!(r.json["id"], json!(a.id));
    let other_key = r.json["token"].as_str().unwrap().to_string();
    // ... whose key in turn is nothing at zom, where the account still works.
    let r = zom
        .get(&format!("accounts/{}/", a.username), Some(&other_key))
        .await;
    assert_eq!(r.status, 401);
    let r = zom
        .get(&format!("accounts/{}/", a.username), Some(&a.key))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["id"], json!(a.id));
    // Deleting it at zom deletes the zom account alone.
    let r = zom
        .delete(&format!("accounts/{}/", a.username), Some(&a.key))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(zom.get("device/apns/", Some(&a.key)).await.status, 401);
    let r = default
        .get(&format!("accounts/{}/", a.username), Some(&other_key))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn devices_tokens_knocks_and_pushes_stay_in_their_app() {
    let (default, zom) = (Api::new(), zom());
    // One phone with both apps installed: the same push token, and the
    // same username, in each.
    let push_token = apns_token();
    let fcm = fcm_token();
    let z = zom.signup().await;
    let d = default
        .post(
            "accounts/",
            None,
            Body::Json(json!({"username": z.username, "password": z.password})),
        )
        .await;
    let d = Account {
        id: d.json["id"].as_str().unwrap().into(),
        key: d.json["token"].as_str().unwrap().into(),
        ..z.clone()
    };
    let z_device = zom.device(&z, "apns", &push_token).await;
    zom.device(&z, "gcm", &fcm).await;
    let d_device = default.device(&d, "apns", &push_token).await;
    // Two devices, one per app: neither took the push token from the other.
    for (api, account, device) in [(&zom, &z, &z_device), (&default, &d, &d_device)] {
        let r = api
            .get(
                &format!("device/apns/{}/", device["id"].as_str().unwrap()),
                Some(&account.key),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    // Each app's endpoints are on its own platform applications.
    assert_eq!(
        applications_of(&push_token).await,
        [ZOM_PRODUCTION, DEFAULT_APNS, ZOM_SANDBOX]
    );
    assert_eq!(applications_of(&fcm).await, [ZOM_FCM]);

    let z_token = zom
        .token(&z, "apns", z_device["id"].as_str().unwrap())
        .await;
    let d_token = default
        .token(&d, "apns", d_device["id"].as_str().unwrap())
        .await;
    // A whitelist token knocks only at its own app.
    assert_eq!(default.knock(&z_token, json!({})).await.status, 404);
    assert_eq!(zom.knock(&d_token, json!({})).await.status, 404);
    // ... and is not listed, shown or deletable at the other.
    let r = default
        .get(&format!("tokens/{z_token}/"), Some(&d.key))
        .await;
    assert_eq!(r.status, 404);
    let listed = default.get("tokens/", Some(&d.key)).await;
    assert_eq!(listed.json["count"], json!(1), "{}", listed.text);
    assert_eq!(listed.json["results"][0]["token"], json!(d_token));
    assert_eq!(
        default
            .delete(&format!("tokens/{z_token}/"), Some(&d.key))
            .await
            .status,
        404
    );
    // Neither does the other app's device id mean anything.
    let z_id = z_device["id"].as_str().unwrap();
    let r = default
        .get(&format!("device/apns/{z_id}/"), Some(&d.key))
        .await;
    assert_eq!(r.status, 404);
    let r = default
        .post(
            "tokens/",
            Some(&d.key),
            Body::Json(json!({"apns_device": z_id})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);

    // A knock at zom: pushes through zom's platform applications only (its
    // APNs device, environment unknown, through both; its FCM phone).
    let before = endpoint_on(&push_token, DEFAULT_APNS).await.messages.len();
    assert_eq!(zom.knock(&z_token, json!({})).await.status, 202);
    for application in [ZOM_PRODUCTION, ZOM_SANDBOX] {
        assert_eq!(
            endpoint_on(&push_token, application).await.messages.len(),
            1
        );
    }
    assert_eq!(endpoint_on(&fcm, ZOM_FCM).await.messages.len(), 1);
    assert_eq!(
        endpoint_on(&push_token, DEFAULT_APNS).await.messages.len(),
        before
    );
    // A knock at the default app: its own endpoint only.
    assert_eq!(default.knock(&d_token, json!({})).await.status, 202);
    assert_eq!(
        endpoint_on(&push_token, DEFAULT_APNS).await.messages.len(),
        before + 1
    );
    for application in [ZOM_PRODUCTION, ZOM_SANDBOX] {
        assert_eq!(
            endpoint_on(&push_token, application).await.messages.len(),
            1
        );
    }
}

/// Registers an iPhone at zom without naming its environment; returns the
/// whitelist token and the push token.
async fn iphone_at_zom(account: &Account) -> (String, String) {
    let push_token = apns_token();
    let device = zom().device(account, "apns", &push_token).await;
    let token = zom()
        .token(account, "apns", device["id"].as_str().unwrap())
        .await;
    (token, push_token)
}

/// APNs rejecting the token on `application`: SNS disables the endpoint and
/// reports it; the report reaches the feedback function. Its answer, and
/// the endpoint's ARN.
async fn apns_rejects(push_token: &str, application: &str) -> (Value, String) {
    let dead = endpoint_on(push_token, application).await;
    disable(&dead.arn).await;
    // APNs answers a push, and SNS reports it, well after the registration:
    // by then DynamoDB's index shows the device.
    settle_index().await;
    let r = invoke_feedback(&zom(), event("delivery-failure", &dead.arn)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    (r.json, dead.arn)
}

#[tokio::test]
async fn a_sandbox_token_and_a_production_token_each_converge_to_their_environment() {
    let a = zom().signup().await;
    // A development build's token (only the sandbox accepts it), and a store
    // build's (only production accepts it).
    for (right, wrong) in [(ZOM_SANDBOX, ZOM_PRODUCTION), (ZOM_PRODUCTION, ZOM_SANDBOX)] {
        let (token, push_token) = iphone_at_zom(&a).await;
        assert_eq!(
            applications_of(&push_token).await,
            [ZOM_PRODUCTION, ZOM_SANDBOX]
        );
        // The first knock is delivered: it goes to both.
        assert_eq!(zom().knock(&token, json!({})).await.status, 202);
        assert_eq!(endpoint_on(&push_token, right).await.messages.len(), 1);
        assert_eq!(endpoint_on(&push_token, wrong).await.messages.len(), 1);

        let (answer, dead_arn) = apns_rejects(&push_token, wrong).await;
        assert_eq!(
            answer,
            json!({"records": [{"deactivated": 0, "settled": 1}]})
        );
        // Converged: the wrong environment's endpoint is gone ...
        assert_eq!(applications_of(&push_token).await, [right]);
        // ... and every knock is exactly one push, in the right one.
        let pushed_before = all_messages_for(&push_token).await;
        for n in 1..=2 {
            assert_eq!(zom().knock(&token, json!({})).await.status, 202);
            assert_eq!(endpoint_on(&push_token, right).await.messages.len(), 1 + n);
            assert_eq!(all_messages_for(&push_token).await, pushed_before + n);
        }
        // SNS's other report of the same rejection changes nothing more: no
        // device uses that endpoint now.
        let r = invoke_feedback(&zom(), event("endpoint-updated", &dead_arn)).await;
        assert_eq!(r.json, json!({"records": [{"ignored": true}]}));
        assert_eq!(applications_of(&push_token).await, [right]);
    }
}

#[tokio::test]
async fn a_knock_that_finds_one_environment_dead_delivers_through_the_other_and_settles() {
    // Without the feedback event (late, or no events topic configured): the
    // knock itself sees SNS refuse the disabled endpoint.
    let a = zom().signup().await;
    let (token, push_token) = iphone_at_zom(&a).await;
    disable(&endpoint_on(&push_token, ZOM_PRODUCTION).await.arn).await;
    assert_eq!(zom().knock(&token, json!({})).await.status, 202);
    assert_eq!(applications_of(&push_token).await, [ZOM_SANDBOX]);
    assert_eq!(
        endpoint_on(&push_token, ZOM_SANDBOX).await.messages.len(),
        1
    );
    assert_eq!(zom().knock(&token, json!({})).await.status, 202);
    assert_eq!(
        endpoint_on(&push_token, ZOM_SANDBOX).await.messages.len(),
        2
    );
    assert_eq!(all_messages_for(&push_token).await, 2);
}

#[tokio::test]
async fn a_settled_device_stays_settled_when_its_app_registers_again() {
    let a = zom().signup().await;
    let (token, push_token) = iphone_at_zom(&a).await;
    let (answer, _) = apns_rejects(&push_token, ZOM_SANDBOX).await;
    assert_eq!(
        answer,
        json!({"records": [{"deactivated": 0, "settled": 1}]})
    );
    // Apps register on every launch: same push token, same device.
    let r = register(&zom(), &a, "apns", json!({"registration_id": push_token})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(applications_of(&push_token).await, [ZOM_PRODUCTION]);
    assert_eq!(zom().knock(&token, json!({})).await.status, 202);
    assert_eq!(all_messages_for(&push_token).await, 1);
}

#[tokio::test]
async fn a_client_may_name_its_environment_and_gets_one_endpoint() {
    let a = zom().signup().await;
    for (named, application) in [("sandbox", ZOM_SANDBOX), ("production", ZOM_PRODUCTION)] {
        let push_token = apns_token();
        let r = register(
            &zom(),
            &a,
            "apns",
            json!({"registration_id": push_token, "environment": named}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(applications_of(&push_token).await, [application]);
        let token = zom()
            .token(&a, "apns", r.json["id"].as_str().unwrap())
            .await;
        assert_eq!(zom().knock(&token, json!({})).await.status, 202);
        assert_eq!(all_messages_for(&push_token).await, 1);
    }
    // An unknown value, or one the app has no platform application for
    // (the default app has the sandbox only), is refused and creates nothing.
    let d = Api::new().signup().await;
    for (api, account, value, message) in [
        (
            zom(),
            &a,
            json!("staging"),
            "\"staging\" is not a valid choice: \"production\" or \"sandbox\".",
        ),
        (
            Api::new(),
            &d,
            json!("production"),
            "This app has no APNs production application: use \"sandbox\".",
        ),
    ] {
        let push_token = apns_token();
        let r = register(
            &api,
            account,
            "apns",
            json!({"registration_id": push_token, "environment": value}),
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.json, json!({"environment": [message]}));
        assert!(endpoints_for(&push_token).await.is_empty());
    }
    let listed = Api::new().get("device/apns/", Some(&d.key)).await;
    assert_eq!(listed.json["count"], json!(0));
}
