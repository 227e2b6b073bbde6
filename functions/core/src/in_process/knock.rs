//! Knock delivery: `knock::knock` and `knock::deliver`, branch by branch.

use serde_json::{json, Value};

use super::{answer, apns_token, register, request, token_for};
use crate::knock::Delivery;
use crate::model::DeviceKind;
use crate::payload::Priority;
use crate::ports::Clock;
use crate::testing::{Fault, MemoryPush, World};
use crate::{Limit, Settings};

/// One account with `apns` iPhones and `gcm` Android phones, and a
/// whitelist token for its first device.
struct Setup {
    world: World,
    token: String,
    /// (device id, endpoint ARN), in registration order.
    devices: Vec<(String, String)>,
}

async fn setup_with(world: World, apns: u32, gcm: u32) -> Setup {
    let (_, key) = world.store.add_account("alice");
    let mut ids = Vec::new();
    for n in 0..apns {
        ids.push(register(&world, &key, "apns", &apns_token(n)).await);
    }
    for n in 0..gcm {
        ids.push(register(&world, &key, "gcm", &format!("fcm-token-{n}")).await);
    }
    let ids: Vec<String> = ids
        .into_iter()
        .map(|(status, body)| {
            assert_eq!(status, 201, "{body}");
            body["id"].as_str().unwrap().to_string()
        })
        .collect();
    let field = if apns > 0 {
        "apns_device"
    } else {
        "gcm_device"
    };
    let token = token_for(&world, &key, field, &ids[0]).await;
    let stored = world.store.devices();
    let devices = ids
        .iter()
        .map(|id| {
            let d = stored.iter().find(|d| &d.id == id).unwrap();
            (id.clone(), d.endpoint_arn.clone())
        })
        .collect();
    Setup {
        world,
        token,
        devices,
    }
}

async fn setup(apns: u32, gcm: u32) -> Setup {
    setup_with(World::new(), apns, gcm).await
}

/// `deliver` with no data and no deadline to speak of: what happened.
async fn deliver(s: &Setup, priority: Priority) -> Delivery {
    crate::knock::deliver(&s.world.deps, &s.token, &Value::Null, priority, i64::MAX)
        .await
        .unwrap()
}

async fn knock(world: &World, body: Value) -> (u16, Value) {
    let req = request("POST", "messages/", None, body);
    answer(crate::knock::knock(&world.deps, &req).await)
}

fn active(world: &World, id: &str) -> bool {
    world
        .store
        .devices()
        .iter()
        .find(|d| d.id == id)
        .unwrap()
        .active
}

#[tokio::test]
async fn a_knock_reaches_every_active_device_once_and_echoes_the_request() {
    let s = setup(2, 1).await;
    let (status, body) = knock(&s.world, json!({ "token": s.token, "data": "hi" })).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body,
        json!({"token": s.token, "data": "hi", "priority": "high"})
    );
    let mut reached: Vec<String> = s
        .world
        .push
        .published()
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    reached.sort();
    let mut expected: Vec<String> = s.devices.iter().map(|(_, a)| a.clone()).collect();
    expected.sort();
    assert_eq!(reached, expected);
}

#[tokio::test]
async fn inactive_devices_get_nothing() {
    let s = setup(2, 0).await;
    let (id, arn) = &s.devices[1];
    let owner = s.world.store.devices()[0].owner.clone();
    s.world.store.set_active(&owner, id, false);
    assert_eq!(knock(&s.world, json!({ "token": s.token })).await.0, 202);
    let reached: Vec<String> = s
        .world
        .push
        .published()
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(reached, vec![s.devices[0].1.clone()]);
    assert!(!reached.contains(arn));
}

#[tokio::test]
async fn an_unknown_or_expired_token_is_404_and_publishes_nothing() {
    let s = setup(1, 0).await;
    assert_eq!(
        knock(&s.world, json!({ "token": "0".repeat(40) })).await.0,
        404
    );
    let lifetime = s.world.deps.settings.token_lifetime.as_micros() as i64;
    s.world.clock.advance(lifetime + 1);
    assert_eq!(knock(&s.world, json!({ "token": s.token })).await.0, 404);
    assert!(s.world.push.published().is_empty());
}

#[tokio::test]
async fn a_token_whose_device_is_gone_authorises_nothing() {
    let s = setup(2, 0).await;
    let owner = s.world.store.devices()[0].owner.clone();
    s.world.store.remove_device(&owner, &s.devices[0].0);
    assert_eq!(knock(&s.world, json!({ "token": s.token })).await.0, 404);
    assert!(
        s.world.push.published().is_empty(),
        "not even the other device"
    );
}

#[tokio::test]
async fn beyond_its_limit_a_token_gets_429_with_retry_after_and_publishes_nothing() {
    let settings = Settings {
        knock_limit: Limit {
            max: 2,
            window: std::time::Duration::from_secs(60),
        },
        ..Settings::default()
    };
    let s = setup_with(World::with(settings, MemoryPush::default()), 1, 0).await;
    for _ in 0..2 {
        assert_eq!(knock(&s.world, json!({ "token": s.token })).await.0, 202);
    }
    s.world.clock.advance(10_000_000);
    let req = request("POST", "messages/", None, json!({ "token": s.token }));
    let err = crate::knock::knock(&s.world.deps, &req).await.unwrap_err();
    let response = err.into_response();
    assert_eq!(response.status, 429);
    let retry_after = response
        .headers
        .iter()
        .find(|(h, _)| h == "Retry-After")
        .unwrap();
    assert_eq!(retry_after.1, "50");
    assert_eq!(s.world.push.published().len(), 2);
    s.world.clock.advance(50_000_000);
    assert_eq!(knock(&s.world, json!({ "token": s.token })).await.0, 202);
}

#[tokio::test]
async fn a_disabled_endpoint_deactivates_its_device_and_the_others_still_get_theirs() {
    let s = setup(2, 1).await;
    s.world.push.disable(&s.devices[1].1);
    let req = request("POST", "messages/", None, json!({ "token": s.token }));
    let (status, _) = answer(crate::knock::knock(&s.world.deps, &req).await);
    assert_eq!(status, 202);
    assert_eq!(s.world.push.published().len(), 2);
    assert!(!active(&s.world, &s.devices[1].0));
    assert!(active(&s.world, &s.devices[0].0) && active(&s.world, &s.devices[2].0));
    // Deactivated: the next knock does not try it.
    assert_eq!(knock(&s.world, json!({ "token": s.token })).await.0, 202);
    assert_eq!(s.world.push.published().len(), 4);
}

#[tokio::test]
async fn a_deleted_endpoint_of_a_live_device_is_recreated_and_the_push_delivered() {
    let s = setup(1, 0).await;
    let (id, old_arn) = &s.devices[0];
    s.world.push.remove(old_arn);
    let delivery = deliver(&s, Priority::High).await;
    assert_eq!((delivery.published, delivery.reattached), (1, 1));
    let device = s
        .world
        .store
        .devices()
        .into_iter()
        .find(|d| &d.id == id)
        .unwrap();
    assert_ne!(&device.endpoint_arn, old_arn);
    assert!(device.active);
    assert_eq!(s.world.push.published()[0].0, device.endpoint_arn);
}

#[tokio::test]
async fn a_deleted_endpoint_of_a_device_deleted_meanwhile_is_not_pushed_to() {
    let s = setup(2, 0).await;
    let (gone_id, gone_arn) = s.devices[1].clone();
    let owner = s.world.store.devices()[0].owner.clone();
    s.world.push.remove(&gone_arn);
    // The device is deleted while the knock makes it a new endpoint.
    let store = s.world.store.clone();
    s.world
        .push
        .before_ensure_endpoint(move || store.remove_device(&owner, &gone_id));
    let delivery = deliver(&s, Priority::High).await;
    // Not pushed, and not judged dead either: it changed during the knock.
    assert_eq!(
        (delivery.published, delivery.changed, delivery.reattached),
        (1, 1, 0)
    );
    assert_eq!(delivery.deactivated, 0);
    let reached: Vec<String> = s
        .world
        .push
        .published()
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(reached, vec![s.devices[0].1.clone()]);
}

#[tokio::test]
async fn when_every_publish_fails_the_sender_is_told_to_knock_again() {
    let s = setup(2, 0).await;
    for (_, arn) in &s.devices {
        s.world.push.fail_publish(arn, 1);
    }
    let req = request("POST", "messages/", None, json!({ "token": s.token }));
    let response = crate::knock::knock(&s.world.deps, &req)
        .await
        .unwrap_err()
        .into_response();
    assert_eq!(response.status, 503);
    assert!(response.headers.iter().any(|(h, _)| h == "Retry-After"));
    assert!(
        active(&s.world, &s.devices[0].0),
        "a transient failure deactivates nothing"
    );
    // Knocking again delivers.
    assert_eq!(knock(&s.world, json!({ "token": s.token })).await.0, 202);
    assert_eq!(s.world.push.published().len(), 2);
}

#[tokio::test]
async fn when_some_publishes_fail_the_knock_is_accepted_and_the_failures_counted() {
    let s = setup(3, 0).await;
    s.world.push.fail_publish(&s.devices[2].1, 1);
    let delivery = deliver(&s, Priority::Low).await;
    assert_eq!(
        (delivery.published, delivery.failed, delivery.deactivated),
        (2, 1, 0)
    );
}

#[tokio::test]
async fn the_token_lookup_is_retried_after_a_transaction_conflict_and_publishes_once() {
    let s = setup(1, 0).await;
    s.world.store.fail("admit_knock", Fault::Conflict, 2);
    assert_eq!(knock(&s.world, json!({ "token": s.token })).await.0, 202);
    assert_eq!(s.world.push.published().len(), 1);
}

#[tokio::test]
async fn an_unavailable_store_is_503_and_publishes_nothing() {
    let s = setup(1, 0).await;
    s.world.store.fail("admit_knock", Fault::Unavailable, 1);
    assert_eq!(knock(&s.world, json!({ "token": s.token })).await.0, 503);
    s.world.store.fail("list_devices", Fault::Unavailable, 1);
    assert_eq!(knock(&s.world, json!({ "token": s.token })).await.0, 503);
    assert!(s.world.push.published().is_empty());
}

#[tokio::test]
async fn a_device_that_cannot_be_deactivated_does_not_fail_the_knock() {
    let s = setup(2, 0).await;
    s.world.push.disable(&s.devices[1].1);
    s.world
        .store
        .fail("deactivate_device", Fault::Unavailable, 1);
    let delivery = deliver(&s, Priority::High).await;
    assert_eq!(
        (delivery.published, delivery.disabled, delivery.deactivated),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn publishes_go_out_in_batches_and_all_arrive() {
    let settings = Settings {
        publish_concurrency: 2,
        ..Settings::default()
    };
    let s = setup_with(World::with(settings, MemoryPush::default()), 5, 0).await;
    assert_eq!(knock(&s.world, json!({ "token": s.token })).await.0, 202);
    assert_eq!(s.world.push.published().len(), 5);
}

#[tokio::test]
async fn priority_shapes_the_push_and_bad_fields_are_400_and_publish_nothing() {
    let s = setup(1, 0).await;
    assert_eq!(
        knock(&s.world, json!({ "token": s.token, "priority": "low" }))
            .await
            .0,
        202
    );
    let (_, push) = &s.world.push.published()[0];
    assert_eq!(push.apns_push_type, Some("background"));
    assert_eq!(push.apns_priority, Some("5"));
    for body in [
        json!({}),
        json!({ "token": s.token, "priority": "urgent" }),
        json!({ "token": s.token, "data": [1] }),
        json!({ "token": s.token, "data": "x".repeat(2000) }),
    ] {
        let (status, answer) = knock(&s.world, body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
    }
    assert_eq!(s.world.push.published().len(), 1);
}

#[tokio::test]
async fn a_knock_on_an_fcm_device_is_an_fcm_push() {
    let s = setup(0, 1).await;
    assert_eq!(knock(&s.world, json!({ "token": s.token })).await.0, 202);
    let (arn, push) = &s.world.push.published()[0];
    assert_eq!(
        s.world.push.endpoint(arn).unwrap().platform.kind(),
        DeviceKind::Gcm
    );
    assert_eq!(push.apns_push_type, None);
}

#[tokio::test]
async fn a_push_larger_than_apns_takes_is_never_sent() {
    // Validation keeps `data` far below this; `deliver` checks again.
    let s = setup(1, 0).await;
    let data = Value::String("x".repeat(crate::payload::APNS_MAX_PAYLOAD_BYTES));
    let result =
        crate::knock::deliver(&s.world.deps, &s.token, &data, Priority::High, i64::MAX).await;
    assert_eq!(result.unwrap_err().status(), 500);
    assert!(s.world.push.published().is_empty());
}

#[tokio::test]
async fn a_device_is_marked_pushed_once_a_day_and_the_common_path_writes_nothing() {
    let s = setup(1, 1).await;
    let versions = |w: &World| -> Vec<u64> {
        let mut v: Vec<(String, u64)> = w
            .store
            .devices()
            .into_iter()
            .map(|d| (d.id, d.version))
            .collect();
        v.sort();
        v.into_iter().map(|(_, v)| v).collect()
    };
    let registered = versions(&s.world);
    let today = crate::time::day_of(s.world.clock.now_us());
    assert_eq!(deliver(&s, Priority::High).await.marked, 2);
    assert!(s
        .world
        .store
        .devices()
        .iter()
        .all(|d| d.push.confirmed && d.push.last_push_day == Some(today)));
    let marked = versions(&s.world);
    assert_eq!(marked, registered.iter().map(|v| v + 1).collect::<Vec<_>>());
    // The same day again: not one device write.
    for _ in 0..3 {
        s.world.clock.advance(61_000_000);
        assert_eq!(deliver(&s, Priority::High).await.marked, 0);
    }
    assert_eq!(versions(&s.world), marked);
    // The next day: once more.
    s.world.clock.advance(86_400_000_000);
    assert_eq!(deliver(&s, Priority::High).await.marked, 2);
    assert!(s
        .world
        .store
        .devices()
        .iter()
        .all(|d| d.push.last_push_day == Some(today + 1)));
}

#[tokio::test]
async fn a_failed_mark_loses_nothing_but_the_mark() {
    let s = setup(1, 0).await;
    s.world.store.fail("mark_pushed", Fault::Unavailable, 1);
    let delivery = deliver(&s, Priority::High).await;
    assert_eq!((delivery.published, delivery.marked), (1, 0));
    assert!(!s.world.store.devices()[0].push.confirmed);
    // The next knock marks it.
    s.world.clock.advance(61_000_000);
    assert_eq!(deliver(&s, Priority::High).await.marked, 1);
}
