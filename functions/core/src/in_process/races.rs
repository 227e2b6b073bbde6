//! Concurrent changes landed just between an operation's reads and its
//! write (`MemoryStore::before`): the interleavings of the issue on
//! read-modify-writes, each deterministic. Every one of these failed on the
//! code that wrote devices back on `attribute_exists(pk)` alone.

use serde_json::{json, Value};

use super::environments::{both_environments, knock, platforms, pushes_on};
use super::{answer, apns_token, register, request, token_for};
use crate::model::{DeviceKind, Platform};
use crate::testing::{Fault, World};
use crate::Deps;

/// A request through its operation with `deps`, as another client's.
async fn put_token(deps: &Deps, key: &str, id: &str, registration_id: &str) -> (u16, Value) {
    let req = request(
        "PUT",
        &format!("device/apns/{id}/"),
        Some(key),
        json!({ "registration_id": registration_id }),
    );
    answer(crate::devices::update(deps, &req, DeviceKind::Apns, id, false).await)
}

/// `(account key, device id, whitelist token)` of a fresh account's device.
async fn one_device(w: &World, push_token: &str) -> (String, String, String) {
    let (_, key) = w.store.add_account("alice");
    let (status, device) = register(w, &key, "apns", push_token).await;
    assert_eq!(status, 201, "{device}");
    let id = device["id"].as_str().unwrap().to_string();
    let token = token_for(w, &key, "apns_device", &id).await;
    (key, id, token)
}

#[tokio::test]
async fn a_device_registered_again_while_a_knock_finds_it_dead_stays_active() {
    let w = World::new();
    let (key, _, token) = one_device(&w, &apns_token(1)).await;
    let arn = w.store.devices()[0].endpoint_arn.clone();
    w.push.disable(&arn);
    // The app registers again (as at every launch) after the knock's publish
    // was refused and before the knock deactivates the device.
    let deps = w.deps.clone();
    w.store.before("deactivate_device", move || async move {
        let req = request(
            "POST",
            "device/apns/",
            Some(&key),
            json!({ "registration_id": apns_token(1) }),
        );
        let (status, body) = answer(crate::devices::register(&deps, &req, DeviceKind::Apns).await);
        assert_eq!(status, 200, "{body}");
    });
    let delivery = knock(&w, &token).await;
    assert_eq!((delivery.disabled, delivery.deactivated), (1, 0));
    assert!(
        w.store.devices()[0].active,
        "the re-registered device is active"
    );
    assert!(w.push.endpoint(&arn).unwrap().enabled);
}

#[tokio::test]
async fn a_device_given_a_new_push_token_while_it_settles_keeps_its_new_endpoints() {
    let w = both_environments();
    let (_, key) = w.store.add_account("alice");
    let (_, device) = register(&w, &key, "apns", &apns_token(1)).await;
    let id = device["id"].as_str().unwrap().to_string();
    let token = token_for(&w, &key, "apns_device", &id).await;
    let production = w.store.devices()[0].endpoint_arn.clone();
    w.push.disable(&production);
    // A new push token (a restored backup, say) lands after the knock found
    // production dead and before it settles the device on the sandbox.
    let (deps, k, i) = (w.deps.clone(), key.clone(), id.clone());
    w.store.before("drop_endpoint", move || async move {
        let (status, body) = put_token(&deps, &k, &i, &apns_token(2)).await;
        assert_eq!(status, 200, "{body}");
    });
    knock(&w, &token).await;
    let device = &w.store.devices()[0];
    assert_eq!(device.registration_id, apns_token(2));
    assert_eq!(
        platforms(&w),
        [Platform::Apns, Platform::ApnsSandbox],
        "the new token's environment is unknown again: both endpoints"
    );
    for arn in device.endpoints() {
        let endpoint = w.push.endpoint(arn).unwrap();
        assert_eq!((endpoint.token, endpoint.enabled), (apns_token(2), true));
    }
}

#[tokio::test]
async fn registering_again_settles_a_device_whose_endpoint_apns_rejected() {
    let w = both_environments();
    let (_, key) = w.store.add_account("alice");
    register(&w, &key, "apns", &apns_token(1)).await;
    let production = w.store.devices()[0].endpoint_arn.clone();
    // APNs rejected the token in production; before any knock settles the
    // device, the app registers again (every launch).
    w.push.disable(&production);
    let (status, body) = register(&w, &key, "apns", &apns_token(1)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        platforms(&w),
        [Platform::ApnsSandbox],
        "settled, not re-enabled"
    );
    assert!(w.push.endpoint(&production).is_none());
}

#[tokio::test]
async fn an_endpoint_deleted_by_our_own_races_is_re_created_not_taken_as_dead() {
    let w = both_environments();
    let (_, key) = w.store.add_account("alice");
    let (_, device) = register(&w, &key, "apns", &apns_token(1)).await;
    let token = token_for(&w, &key, "apns_device", device["id"].as_str().unwrap()).await;
    let sandbox = w.store.devices()[0].alternate_arn.clone().unwrap();
    // SNS never deletes an endpoint by itself: a deletion of ours did.
    w.push.remove(&sandbox);
    let delivery = knock(&w, &token).await;
    assert_eq!((delivery.settled, delivery.reattached), (0, 1));
    assert_eq!(platforms(&w), [Platform::Apns, Platform::ApnsSandbox]);
    assert_eq!(pushes_on(&w, Platform::ApnsSandbox), 1);
    assert!(w.store.devices()[0].active);
}

#[tokio::test]
async fn a_knock_whose_new_endpoint_loses_its_race_leaves_the_device_active() {
    let w = World::new();
    let (key, id, token) = one_device(&w, &apns_token(1)).await;
    let arn = w.store.devices()[0].endpoint_arn.clone();
    w.push.remove(&arn);
    // The app moves to a new push token while the knock re-creates the
    // old token's endpoint.
    let deps = w.deps.clone();
    w.store.before("replace_endpoint", move || async move {
        let (status, body) = put_token(&deps, &key, &id, &apns_token(2)).await;
        assert_eq!(status, 200, "{body}");
    });
    let delivery = knock(&w, &token).await;
    assert_eq!((delivery.changed, delivery.deactivated), (1, 0));
    let device = &w.store.devices()[0];
    assert!(device.active, "changed during the knock, not dead");
    assert_eq!(device.registration_id, apns_token(2));
    let endpoint = w.push.endpoint(&device.endpoint_arn).unwrap();
    assert_eq!((endpoint.token, endpoint.enabled), (apns_token(2), true));
}

#[tokio::test]
async fn a_sign_up_finishes_an_account_deletion_cut_short_among_its_devices() {
    let w = World::new();
    let signup = || {
        request(
            "POST",
            "accounts/",
            None,
            json!({"username": "carol", "password": "a long password"}),
        )
    };
    let (status, account) = answer(crate::accounts::create_or_login(&w.deps, &signup()).await);
    assert_eq!(status, 201, "{account}");
    let key = account["token"].as_str().unwrap().to_string();
    for n in 1..=2 {
        assert_eq!(register(&w, &key, "apns", &apns_token(n)).await.0, 201);
    }
    // AWS fails while the deletion deletes the devices.
    w.store.fail("delete_device", Fault::Unavailable, 1);
    let req = request("DELETE", "accounts/carol/", Some(&key), Value::Null);
    let (status, _) = answer(crate::accounts::delete_named(&w.deps, &req, "carol").await);
    assert_eq!(status, 503);
    // The next sign-up of the username finishes it first.
    let (status, again) = answer(crate::accounts::create_or_login(&w.deps, &signup()).await);
    assert_eq!(status, 201, "{again}");
    assert_ne!(again["id"], account["id"]);
    assert!(w.store.devices().is_empty(), "no device of the old account");
    assert_eq!(w.push.endpoint_count(), 0, "nor its endpoints");
}
