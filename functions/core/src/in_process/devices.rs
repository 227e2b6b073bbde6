//! Device registration: `devices::register`, branch by branch.

use serde_json::json;

use super::{answer, apns_token, register, request, token_for};
use crate::model::{DeviceKind, DeviceRecord};
use crate::testing::{Fault, MemoryPush, World};
use crate::{Limit, Settings};

#[tokio::test]
async fn a_new_push_token_makes_a_device_with_its_own_endpoint_and_claim() {
    let w = World::new();
    let (account, key) = w.store.add_account("alice");
    let (status, body) = register(&w, &key, "apns", &format!("<{}>", apns_token(1))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["registration_id"], apns_token(1), "cleaned");
    assert_eq!(body["active"], true);
    let devices = w.store.devices();
    assert_eq!(devices.len(), 1);
    let claim = w.store.claim(DeviceKind::Apns, &apns_token(1)).unwrap();
    assert_eq!(
        (claim.owner, claim.device_id),
        (account.id, devices[0].id.clone())
    );
    let endpoint = w.push.endpoint(&devices[0].endpoint_arn).unwrap();
    assert_eq!((endpoint.token, endpoint.enabled), (apns_token(1), true));
}

#[tokio::test]
async fn the_same_push_token_again_is_the_same_device_refreshed_and_reenabled() {
    let w = World::new();
    let (_, key) = w.store.add_account("alice");
    let (_, first) = register(&w, &key, "apns", &apns_token(1)).await;
    let arn = w.store.devices()[0].endpoint_arn.clone();
    w.push.disable(&arn);
    let owner = w.store.devices()[0].owner.clone();
    w.store
        .set_active(&owner, first["id"].as_str().unwrap(), false);
    let req = request(
        "POST",
        "device/apns/",
        Some(&key),
        json!({ "registration_id": apns_token(1), "name": "phone" }),
    );
    let (status, again) = answer(crate::devices::register(&w.deps, &req, DeviceKind::Apns).await);
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(
        (again["name"].as_str(), again["active"].as_bool()),
        (Some("phone"), Some(true))
    );
    assert_eq!(w.store.devices().len(), 1);
    assert_eq!(w.push.endpoint_count(), 1);
    assert!(w.push.endpoint(&arn).unwrap().enabled);
}

#[tokio::test]
async fn a_push_token_held_by_another_account_moves_with_its_endpoint_and_its_tokens_go() {
    let w = World::new();
    let (_, old_key) = w.store.add_account("old-owner");
    let (new_account, new_key) = w.store.add_account("new-owner");
    let (_, old) = register(&w, &old_key, "gcm", "fcm-token").await;
    let old_id = old["id"].as_str().unwrap();
    token_for(&w, &old_key, "gcm_device", old_id).await;
    let arn = w.store.devices()[0].endpoint_arn.clone();
    let (status, new) = register(&w, &new_key, "gcm", "fcm-token").await;
    assert_eq!(status, 201, "{new}");
    let devices = w.store.devices();
    assert_eq!(devices.len(), 1, "the old device record is gone");
    assert_eq!(devices[0].owner, new_account.id);
    assert_eq!(devices[0].endpoint_arn, arn, "one endpoint per push token");
    assert_eq!(
        w.store
            .claim(DeviceKind::Gcm, "fcm-token")
            .unwrap()
            .device_id,
        new["id"]
    );
    assert!(
        w.store.tokens().is_empty(),
        "the old device's whitelist tokens went with it"
    );
}

#[tokio::test]
async fn a_kind_the_server_has_no_platform_application_for_is_400() {
    let w = World::with(
        Settings::default(),
        MemoryPush::with_kinds(&[DeviceKind::Apns]),
    );
    let (_, key) = w.store.add_account("alice");
    let (status, body) = register(&w, &key, "gcm", "fcm-token").await;
    assert_eq!(status, 400);
    assert!(body["registration_id"].is_array(), "{body}");
    assert_eq!((w.store.devices().len(), w.push.endpoint_count()), (0, 0));
}

#[tokio::test]
async fn invalid_push_tokens_and_missing_keys_change_nothing() {
    let w = World::new();
    let (_, key) = w.store.add_account("alice");
    for bad in ["", "not-hex", &"a".repeat(401)] {
        let (status, body) = register(&w, &key, "apns", bad).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
    }
    assert_eq!(
        register(&w, &"0".repeat(40), "apns", &apns_token(1))
            .await
            .0,
        401
    );
    let req = request(
        "POST",
        "device/apns/",
        None,
        json!({ "registration_id": apns_token(1) }),
    );
    assert_eq!(
        answer(crate::devices::register(&w.deps, &req, DeviceKind::Apns).await).0,
        401
    );
    assert_eq!((w.store.devices().len(), w.push.endpoint_count()), (0, 0));
}

#[tokio::test]
async fn beyond_the_device_cap_a_new_device_is_400_and_leaves_no_endpoint() {
    let settings = Settings {
        device_limit: 2,
        ..Settings::default()
    };
    let w = World::with(settings, MemoryPush::default());
    let (_, key) = w.store.add_account("alice");
    for n in 0..2 {
        assert_eq!(register(&w, &key, "apns", &apns_token(n)).await.0, 201);
    }
    let (status, body) = register(&w, &key, "apns", &apns_token(9)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!((w.store.devices().len(), w.push.endpoint_count()), (2, 2));
    // An existing device still registers again.
    assert_eq!(register(&w, &key, "apns", &apns_token(1)).await.0, 200);
}

#[tokio::test]
async fn beyond_the_registration_limit_a_new_device_is_429() {
    let settings = Settings {
        device_registration_limit: Limit {
            max: 1,
            window: std::time::Duration::from_secs(3600),
        },
        ..Settings::default()
    };
    let w = World::with(settings, MemoryPush::default());
    let (_, key) = w.store.add_account("alice");
    assert_eq!(register(&w, &key, "apns", &apns_token(1)).await.0, 201);
    let req = request(
        "POST",
        "device/apns/",
        Some(&key),
        json!({ "registration_id": apns_token(2) }),
    );
    let response = crate::devices::register(&w.deps, &req, DeviceKind::Apns)
        .await
        .unwrap_err()
        .into_response();
    assert_eq!(response.status, 429);
    assert!(response
        .headers
        .iter()
        .any(|(h, v)| h == "Retry-After" && v == "3600"));
    assert_eq!((w.store.devices().len(), w.push.endpoint_count()), (1, 1));
}

#[tokio::test]
async fn an_account_being_deleted_gets_no_device_and_its_endpoint_is_released() {
    let w = World::new();
    let (_, key) = w.store.add_account("alice");
    w.store.mark_deleting("alice");
    assert_eq!(register(&w, &key, "apns", &apns_token(1)).await.0, 401);
    assert_eq!((w.store.devices().len(), w.push.endpoint_count()), (0, 0));
    assert!(w.store.claim(DeviceKind::Apns, &apns_token(1)).is_none());
}

#[tokio::test]
async fn a_conflicting_save_is_retried_with_the_same_endpoint() {
    let w = World::new();
    let (_, key) = w.store.add_account("alice");
    w.store.fail("save_device", Fault::Conflict, 3);
    assert_eq!(register(&w, &key, "apns", &apns_token(1)).await.0, 201);
    assert_eq!((w.store.devices().len(), w.push.endpoint_count()), (1, 1));
}

#[tokio::test]
async fn a_save_that_fails_is_503_and_releases_the_endpoint_nobody_claims() {
    let w = World::new();
    let (_, key) = w.store.add_account("alice");
    w.store.fail("save_device", Fault::Unavailable, 1);
    assert_eq!(register(&w, &key, "apns", &apns_token(1)).await.0, 503);
    assert_eq!((w.store.devices().len(), w.push.endpoint_count()), (0, 0));
    // The client's retry succeeds.
    assert_eq!(register(&w, &key, "apns", &apns_token(1)).await.0, 201);
}

#[tokio::test]
async fn a_push_service_that_fails_is_503_and_stores_nothing() {
    let w = World::new();
    let (_, key) = w.store.add_account("alice");
    w.push.fail("ensure_endpoint", Fault::Unavailable, 1);
    assert_eq!(register(&w, &key, "apns", &apns_token(1)).await.0, 503);
    w.store.fail("get_claim", Fault::Unavailable, 1);
    assert_eq!(register(&w, &key, "apns", &apns_token(1)).await.0, 503);
    assert!(w.store.devices().is_empty());
    assert!(w.store.claim(DeviceKind::Apns, &apns_token(1)).is_none());
}

#[tokio::test]
async fn a_claim_taken_meanwhile_makes_the_registration_read_again_and_take_it_over() {
    let w = World::new();
    let (other, _) = w.store.add_account("other");
    let (me, key) = w.store.add_account("alice");
    // Another account's device claims the same push token while this
    // registration makes its endpoint: the save's condition fails, and the
    // retry reads the claim and takes the token over.
    let store = w.store.clone();
    let once = std::sync::Once::new();
    w.push.before_ensure_endpoint(move || {
        once.call_once(|| {
            store.insert_device(DeviceRecord {
                id: uuid::Uuid::new_v4().to_string(),
                owner: other.id.clone(),
                kind: DeviceKind::Apns,
                registration_id: apns_token(7),
                name: None,
                device_id: None,
                active: true,
                created_us: 0,
                endpoint_arn: "arn:memory:sns:endpoint/elsewhere".into(),
                alternate_arn: None,
                version: 1,
                push: Default::default(),
            })
        })
    });
    let (status, body) = register(&w, &key, "apns", &apns_token(7)).await;
    assert_eq!(status, 201, "{body}");
    let devices = w.store.devices();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].owner, me.id);
    assert_eq!(
        w.store
            .claim(DeviceKind::Apns, &apns_token(7))
            .unwrap()
            .owner,
        me.id
    );
    assert_eq!(w.push.endpoint_count(), 1, "the retry reused its endpoint");
}

#[tokio::test]
async fn a_failed_take_over_leaves_the_other_devices_endpoint_alone() {
    let w = World::new();
    let (_, old_key) = w.store.add_account("old-owner");
    let (_, new_key) = w.store.add_account("new-owner");
    assert_eq!(register(&w, &old_key, "gcm", "fcm-token").await.0, 201);
    let arn = w.store.devices()[0].endpoint_arn.clone();
    w.store.fail("save_device", Fault::Unavailable, 1);
    assert_eq!(register(&w, &new_key, "gcm", "fcm-token").await.0, 503);
    assert!(w.push.endpoint(&arn).is_some(), "still the old device's");
    assert_eq!(w.store.devices().len(), 1);
}
