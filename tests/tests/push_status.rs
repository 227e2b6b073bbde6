//! A device's `push` object: what became of its pushes, for its owner to see
//! why one did not arrive — `unconfirmed` until a knock reaches it, then
//! `ok` with the day; `disabled` with SNS's reason once the push service
//! rejected it; `inactive` when its owner turned it off; its APNs
//! environment, `unknown` until it settles.

// Black-box: needs the local stack (`make test` turns this feature on).
#![cfg(feature = "stack")]

use api_tests::*;
use serde_json::{json, Value};

/// The reason of the sample delivery-failure event (infra/events/).
const INVALID_TOKEN: &str =
    "InvalidPlatformToken: Platform token associated with the endpoint is not valid";

async fn device_of(api: &Api, account: &Account, kind: &str, id: &str) -> Value {
    let r = api
        .get(&format!("device/{kind}/{id}/"), Some(&account.key))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json
}

async fn push_of(api: &Api, account: &Account, kind: &str, id: &str) -> Value {
    device_of(api, account, kind, id).await["push"].clone()
}

fn id(device: &Value) -> &str {
    device["id"].as_str().expect("a device id")
}

/// Today's UTC date, as the server's clock (this machine's) tells it; read
/// around the request, so that a test running over midnight accepts either.
fn utc_date() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// An account with an iPhone (the default app: APNs sandbox) and an Android
/// phone, and a whitelist token of the Android phone's (so that knocks are
/// accepted whatever becomes of the iPhone).
struct Owner {
    api: Api,
    account: Account,
    iphone: Value,
    iphone_token: String,
    android: Value,
    whitelist: String,
}

async fn owner() -> Owner {
    let api = Api::new();
    let account = api.signup().await;
    let iphone_token = apns_token();
    let iphone = api.device(&account, "apns", &iphone_token).await;
    let android = api.device(&account, "gcm", &fcm_token()).await;
    let whitelist = api.token(&account, "gcm", id(&android)).await;
    Owner {
        api,
        account,
        iphone,
        iphone_token,
        android,
        whitelist,
    }
}

impl Owner {
    /// A PATCH of the iPhone with `body`.
    async fn patch_iphone(&self, body: Value) -> Reply {
        let path = format!("device/apns/{}/", id(&self.iphone));
        self.api
            .send("PATCH", &path, Some(&self.account.key), Body::Json(body))
            .await
    }

    async fn iphone_push(&self) -> Value {
        push_of(&self.api, &self.account, "apns", id(&self.iphone)).await
    }

    /// APNs rejects the iPhone's token: SNS disables its endpoint and the
    /// delivery-failure event reaches the feedback function. Its answer.
    async fn apns_rejects(&self) -> Value {
        let arn = only_endpoint(&self.iphone_token).await.arn;
        disable(&arn).await;
        settle_index().await;
        let r = invoke_feedback(&self.api, event("delivery-failure", &arn)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json
    }
}

#[tokio::test]
async fn a_device_is_unconfirmed_until_a_knock_reaches_it_then_ok_on_that_day() {
    let o = owner().await;
    // The registration's answer carries it, as every device answer does.
    assert_eq!(
        o.iphone["push"],
        json!({"state": "unconfirmed", "environment": "sandbox", "last_error": null, "last_push_day": null})
    );
    // FCM devices have no APNs environment.
    assert_eq!(
        o.android["push"],
        json!({"state": "unconfirmed", "last_error": null, "last_push_day": null})
    );
    assert_eq!(o.iphone_push().await["state"], "unconfirmed");

    let before = utc_date();
    assert_eq!(o.api.knock(&o.whitelist, json!({})).await.status, 202);
    let after = utc_date();
    for (kind, device) in [("apns", &o.iphone), ("gcm", &o.android)] {
        let push = push_of(&o.api, &o.account, kind, id(device)).await;
        assert_eq!(push["state"], "ok", "{kind}: {push}");
        let day = push["last_push_day"].as_str().expect("a day");
        assert!(day == before || day == after, "{day} is not today");
        assert_eq!(push["last_error"], Value::Null);
    }
    // The lists show the same objects.
    let list = o.api.get("device/apns/", Some(&o.account.key)).await;
    assert_eq!(list.json["results"][0]["push"], o.iphone_push().await);
    // The Android SDK's PUT echoes the device back, `push` object and all:
    // a read-only key, ignored.
    let mut echo = o.android.clone();
    echo["push"] = json!({"state": "disabled", "last_error": {"at": "x", "reason": "y"}});
    let r = o
        .api
        .send(
            "PUT",
            &format!("device/gcm/{}/", id(&o.android)),
            Some(&o.account.key),
            Body::Json(echo),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["push"]["state"], "ok");
    assert_eq!(r.json["push"]["last_error"], Value::Null);
    // A second knock the same day changes nothing the owner sees.
    let seen = o.iphone_push().await;
    assert_eq!(o.api.knock(&o.whitelist, json!({})).await.status, 202);
    if utc_date() == after {
        assert_eq!(o.iphone_push().await, seen);
    }
}

#[tokio::test]
async fn a_rejected_token_shows_disabled_with_the_reason_until_the_app_registers_again() {
    let o = owner().await;
    assert_eq!(o.api.knock(&o.whitelist, json!({})).await.status, 202);
    let pushed_on = o.iphone_push().await["last_push_day"].clone();
    assert_eq!(
        o.apns_rejects().await,
        json!({"records": [{"deactivated": 1, "settled": 0}]})
    );
    let device = device_of(&o.api, &o.account, "apns", id(&o.iphone)).await;
    assert_eq!(device["active"], false);
    let push = &device["push"];
    assert_eq!(push["state"], "disabled", "{push}");
    assert_eq!(push["last_error"]["reason"], INVALID_TOKEN);
    let at = push["last_error"]["at"].as_str().expect("a date-time");
    assert!(at.ends_with('Z') && at.len() == 27, "{at}");
    assert_eq!(
        push["last_push_day"], pushed_on,
        "the day of the last push stays"
    );
    // SNS reports the same rejection a second time, as the endpoint's update:
    // the push service's reason stays.
    let arn = only_endpoint(&o.iphone_token).await.arn;
    settle_index().await;
    let r = invoke_feedback(&o.api, event("endpoint-updated", &arn)).await;
    assert_eq!(
        r.json,
        json!({"records": [{"deactivated": 0, "settled": 0}]})
    );
    assert_eq!(o.iphone_push().await["last_error"]["reason"], INVALID_TOKEN);
    // The owner's `inactive` wins over the push service's verdict.
    let r = o.patch_iphone(json!({"active": false})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["push"]["state"], "inactive");
    assert_eq!(r.json["push"]["last_error"]["reason"], INVALID_TOKEN);

    // The app's registration on its next launch, same token: the endpoint
    // is enabled again and the device unconfirmed, its last error kept.
    let r = o
        .api
        .post(
            "device/apns/",
            Some(&o.account.key),
            Body::Json(json!({"registration_id": o.iphone_token})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["active"], true);
    assert_eq!(r.json["push"]["state"], "unconfirmed");
    assert_eq!(r.json["push"]["last_error"]["reason"], INVALID_TOKEN);
    assert_eq!(o.api.knock(&o.whitelist, json!({})).await.status, 202);
    assert_eq!(o.iphone_push().await["state"], "ok");

    // Rejected again; then the app comes back with a new token: a fresh
    // start, the old token's error gone.
    assert_eq!(
        o.apns_rejects().await,
        json!({"records": [{"deactivated": 1, "settled": 0}]})
    );
    assert_eq!(o.iphone_push().await["state"], "disabled");
    let fresh = apns_token();
    let r = o.patch_iphone(json!({"registration_id": fresh})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["active"], true);
    assert_eq!(r.json["push"]["state"], "unconfirmed");
    assert_eq!(r.json["push"]["last_error"], Value::Null);
    assert_eq!(o.api.knock(&o.whitelist, json!({})).await.status, 202);
    assert_eq!(only_endpoint(&fresh).await.messages.len(), 1);
    assert_eq!(o.iphone_push().await["state"], "ok");
}

#[tokio::test]
async fn a_knock_that_finds_the_endpoint_disabled_records_it_and_the_event_then_gives_the_reason() {
    let o = owner().await;
    let arn = only_endpoint(&o.iphone_token).await.arn;
    // SNS disabled the endpoint; its event has not arrived yet.
    disable(&arn).await;
    assert_eq!(o.api.knock(&o.whitelist, json!({})).await.status, 202);
    let push = o.iphone_push().await;
    assert_eq!(push["state"], "disabled", "{push}");
    assert_eq!(push["last_error"]["reason"], "EndpointDisabled");
    assert_eq!(
        push["last_push_day"],
        Value::Null,
        "nothing was handed to SNS"
    );
    // The event, late: the device was disabled already; the push service's
    // reason replaces SNS's error code.
    settle_index().await;
    let r = invoke_feedback(&o.api, event("delivery-failure", &arn)).await;
    assert_eq!(
        r.json,
        json!({"records": [{"deactivated": 0, "settled": 0}]})
    );
    let push = o.iphone_push().await;
    assert_eq!(push["state"], "disabled");
    assert_eq!(push["last_error"]["reason"], INVALID_TOKEN);
    // The Android phone got its push all along.
    let android = push_of(&o.api, &o.account, "gcm", id(&o.android)).await;
    assert_eq!(android["state"], "ok");
}

#[tokio::test]
async fn sns_enabling_the_endpoint_again_brings_the_device_back_unconfirmed() {
    let o = owner().await;
    o.apns_rejects().await;
    assert_eq!(o.iphone_push().await["state"], "disabled");
    // Enabled again (by the operator in the console, say): SNS reports it.
    let arn = only_endpoint(&o.iphone_token).await.arn;
    sns()
        .await
        .set_endpoint_attributes()
        .endpoint_arn(&arn)
        .attributes("Enabled", "true")
        .send()
        .await
        .expect("SetEndpointAttributes");
    settle_index().await;
    let r = invoke_feedback(&o.api, event("endpoint-updated", &arn)).await;
    assert_eq!(r.json, json!({"records": [{"reenabled": 1}]}), "{}", r.text);
    let device = device_of(&o.api, &o.account, "apns", id(&o.iphone)).await;
    assert_eq!(device["active"], true);
    assert_eq!(device["push"]["state"], "unconfirmed");
    assert_eq!(device["push"]["last_error"]["reason"], INVALID_TOKEN);
    // The same report again finds nothing to bring back.
    let r = invoke_feedback(&o.api, event("endpoint-updated", &arn)).await;
    assert_eq!(r.json, json!({"records": [{"ignored": true}]}));
    assert_eq!(o.api.knock(&o.whitelist, json!({})).await.status, 202);
    assert_eq!(only_endpoint(&o.iphone_token).await.messages.len(), 1);
    assert_eq!(o.iphone_push().await["state"], "ok");
}

#[tokio::test]
async fn an_owner_turning_a_disabled_device_on_again_enables_its_endpoint() {
    let o = owner().await;
    o.apns_rejects().await;
    assert!(!only_endpoint(&o.iphone_token).await.enabled);
    let r = o.patch_iphone(json!({"active": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["push"]["state"], "unconfirmed");
    assert_eq!(r.json["push"]["last_error"]["reason"], INVALID_TOKEN);
    // Not a device that shows on but whose endpoint SNS still refuses.
    assert!(only_endpoint(&o.iphone_token).await.enabled);
    assert_eq!(o.api.knock(&o.whitelist, json!({})).await.status, 202);
    assert_eq!(only_endpoint(&o.iphone_token).await.messages.len(), 1);
    assert_eq!(o.iphone_push().await["state"], "ok");
}

/// Zom has both APNs environments: an iPhone whose environment nobody named
/// is `unknown` until one of its two endpoints is found dead.
mod environments {
    use super::*;

    fn zom() -> Api {
        Api::app("zom")
    }

    /// The endpoint of `token` on the platform application `application`
    /// (`APNS/` or `APNS_SANDBOX/` and the application's name).
    async fn endpoint_on(token: &str, platform: &str) -> String {
        endpoints_for(token)
            .await
            .into_iter()
            .find(|e| e.arn.contains(&format!(":endpoint/{platform}/")))
            .unwrap_or_else(|| panic!("no {platform} endpoint"))
            .arn
    }

    #[tokio::test]
    async fn reported_by_the_feedback_function() {
        let api = zom();
        let a = api.signup().await;
        let token = apns_token();
        let device = api.device(&a, "apns", &token).await;
        assert_eq!(device["push"]["environment"], "unknown");
        // A store build's token: APNs's sandbox rejects it.
        let dead = endpoint_on(&token, "APNS_SANDBOX").await;
        disable(&dead).await;
        settle_index().await;
        let r = invoke_feedback(&api, event("delivery-failure", &dead)).await;
        assert_eq!(
            r.json,
            json!({"records": [{"deactivated": 0, "settled": 1}]})
        );
        let push = push_of(&api, &a, "apns", id(&device)).await;
        assert_eq!(push["environment"], "production");
        // Settling is no failure of the device: nothing to show the owner.
        assert_eq!(push["state"], "unconfirmed");
        assert_eq!(push["last_error"], Value::Null);
    }

    #[tokio::test]
    async fn found_by_a_knock_that_reached_the_other() {
        let api = zom();
        let a = api.signup().await;
        let token = apns_token();
        let device = api.device(&a, "apns", &token).await;
        let whitelist = api.token(&a, "apns", id(&device)).await;
        disable(&endpoint_on(&token, "APNS").await).await;
        let before = utc_date();
        assert_eq!(api.knock(&whitelist, json!({})).await.status, 202);
        let after = utc_date();
        // Settled and marked pushed in one write.
        let push = push_of(&api, &a, "apns", id(&device)).await;
        assert_eq!(push["environment"], "sandbox");
        assert_eq!(push["state"], "ok");
        let day = push["last_push_day"].as_str().expect("a day");
        assert!(day == before || day == after, "{day} is not today");
    }
}
