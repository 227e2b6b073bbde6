//! The APNs environment of a device, worked out without the client's help:
//! both endpoints until one is found dead, then only the other.

use serde_json::{json, Value};

use super::{answer, apns_token, request, token_for};
use crate::knock::{deliver, Delivery};
use crate::model::{DeviceKind, Platform};
use crate::payload::Priority;
use crate::testing::{MemoryPush, World};
use crate::Settings;

/// An app with both APNs environments (and FCM).
pub(super) fn both_environments() -> World {
    World::with(
        Settings::default(),
        MemoryPush::with_platforms(&[Platform::Apns, Platform::ApnsSandbox, Platform::Gcm]),
    )
}

async fn register_with(world: &World, key: &str, body: Value) -> (u16, Value) {
    let req = request("POST", "device/apns/", Some(key), body);
    answer(crate::devices::register(&world.deps, &req, DeviceKind::Apns).await)
}

/// The platforms of a device's endpoints, in its record's order.
pub(super) fn platforms(world: &World) -> Vec<Platform> {
    let devices = world.store.devices();
    assert_eq!(devices.len(), 1);
    devices[0]
        .endpoints()
        .map(|arn| world.push.endpoint(arn).expect("a live endpoint").platform)
        .collect()
}

/// A knock through the delivery operation: what happened.
pub(super) async fn knock(world: &World, token: &str) -> Delivery {
    let deadline = world.deps.clock.now_us() + 10_000_000;
    deliver(&world.deps, token, &Value::Null, Priority::High, deadline)
        .await
        .expect("delivered")
}

/// Pushes published to endpoints of `platform`.
pub(super) fn pushes_on(world: &World, platform: Platform) -> usize {
    world
        .push
        .published()
        .iter()
        .filter(|(arn, _)| Platform::of_arn(arn) == Some(platform))
        .count()
}

#[tokio::test]
async fn an_unknown_environment_gets_both_endpoints_until_one_is_dead() {
    let w = both_environments();
    let (_, key) = w.store.add_account("alice");
    let (status, body) = register_with(&w, &key, json!({ "registration_id": apns_token(1) })).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(platforms(&w), [Platform::Apns, Platform::ApnsSandbox]);
    let token = token_for(&w, &key, "apns_device", body["id"].as_str().unwrap()).await;

    // The first knock goes to both: whichever is right delivers it.
    let first = knock(&w, &token).await;
    assert_eq!((first.published, first.published_apns), (1, 2));
    assert_eq!(pushes_on(&w, Platform::Apns), 1);
    assert_eq!(pushes_on(&w, Platform::ApnsSandbox), 1);

    // APNs rejected it in production (a development build): SNS disables
    // that endpoint. The next knock still arrives, through the sandbox, and
    // settles the device there.
    let production = w.store.devices()[0].endpoint_arn.clone();
    w.push.disable(&production);
    let second = knock(&w, &token).await;
    assert_eq!((second.published, second.published_apns), (1, 1));
    assert_eq!(second.settled, 1);
    assert_eq!(platforms(&w), [Platform::ApnsSandbox]);
    assert!(
        w.push.endpoint(&production).is_none(),
        "dead endpoint deleted"
    );

    // From then on: exactly one push per knock, in the sandbox.
    let before = w.push.published().len();
    let third = knock(&w, &token).await;
    assert_eq!((third.published_apns, third.settled), (1, 0));
    assert_eq!(w.push.published().len(), before + 1);
    assert_eq!(pushes_on(&w, Platform::ApnsSandbox), 3);
}

#[tokio::test]
async fn a_settled_device_keeps_its_environment_until_its_push_token_changes() {
    let w = both_environments();
    let (_, key) = w.store.add_account("alice");
    let registration = json!({ "registration_id": apns_token(1) });
    let (_, body) = register_with(&w, &key, registration.clone()).await;
    let token = token_for(&w, &key, "apns_device", body["id"].as_str().unwrap()).await;
    let sandbox = w.store.devices()[0].alternate_arn.clone().unwrap();
    w.push.disable(&sandbox);
    assert_eq!(knock(&w, &token).await.settled, 1);
    assert_eq!(platforms(&w), [Platform::Apns]);

    // The app registers again (every launch): still production only.
    let (status, _) = register_with(&w, &key, registration).await;
    assert_eq!(status, 200);
    assert_eq!(platforms(&w), [Platform::Apns]);

    // A new push token (a reinstall, maybe another build): unknown again.
    let id = body["id"].as_str().unwrap();
    let req = request(
        "PATCH",
        &format!("device/apns/{id}/"),
        Some(&key),
        json!({ "registration_id": apns_token(2) }),
    );
    let (status, body) =
        answer(crate::devices::update(&w.deps, &req, DeviceKind::Apns, id, true).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(platforms(&w), [Platform::Apns, Platform::ApnsSandbox]);
    assert_eq!(w.push.endpoint_count(), 2, "nothing left behind");
}

#[tokio::test]
async fn a_client_that_knows_its_environment_gets_one_endpoint() {
    for (named, platform) in [
        ("sandbox", Platform::ApnsSandbox),
        ("production", Platform::Apns),
    ] {
        let w = both_environments();
        let (_, key) = w.store.add_account("alice");
        let (status, body) = register_with(
            &w,
            &key,
            json!({ "registration_id": apns_token(1), "environment": named }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(platforms(&w), [platform]);
        let token = token_for(&w, &key, "apns_device", body["id"].as_str().unwrap()).await;
        assert_eq!(knock(&w, &token).await.published_apns, 1);
        assert_eq!(w.push.endpoint_count(), 1);
    }
}

#[tokio::test]
async fn an_environment_the_app_lacks_or_garbage_is_refused_and_changes_nothing() {
    // An app with the APNs sandbox only.
    let w = World::with(
        Settings::default(),
        MemoryPush::with_platforms(&[Platform::ApnsSandbox]),
    );
    let (_, key) = w.store.add_account("alice");
    for (value, message) in [
        (
            "production",
            "This app has no APNs production application: use \"sandbox\".",
        ),
        (
            "staging",
            "\"staging\" is not a valid choice: \"production\" or \"sandbox\".",
        ),
    ] {
        let (status, body) = register_with(
            &w,
            &key,
            json!({ "registration_id": apns_token(1), "environment": value }),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body, json!({ "environment": [message] }));
    }
    assert!(w.store.devices().is_empty());
    assert_eq!(w.push.endpoint_count(), 0);
    // Absent or null: worked out (here: the only environment there is).
    let (status, _) = register_with(
        &w,
        &key,
        json!({ "registration_id": apns_token(1), "environment": null }),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(platforms(&w), [Platform::ApnsSandbox]);
}
