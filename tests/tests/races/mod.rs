//! The races, shared by `concurrency.rs` (the conflict model alone) and
//! `faults.rs` (with injected faults). Concurrent clients against DynamoDB's real concurrency rules, which the
//! local emulator models (infra/local/fidelity.py): transactions that meet
//! cancel each other (`TransactionConflict`), single writes meeting a
//! transaction are refused. With that model alone every outcome is exactly
//! what a serial run promises: retries absorb the conflicts. With faults
//! injected on top, `503` with `Retry-After` is allowed, `500` never; and
//! afterwards the table and SNS hold exactly what the successful answers
//! promised.

use std::collections::HashSet;

use api_tests::*;
use futures_util::future::join_all;
use serde_json::json;

/// How strictly a scenario judges statuses.
#[derive(Clone, Copy, PartialEq)]
pub enum Model {
    /// The conflict model alone: only the promised outcome.
    Conflicts,
    /// With injected faults: the promised outcome or `503` + `Retry-After`.
    Faults,
}

/// Asserts a knock reached an endpoint once: with faults injected, at least
/// once and at most once per SDK attempt (three) — a publish applied and its
/// answer lost is sent again, and SNS has no idempotency token.
fn once_at_least(pushes: usize, model: Model, what: &str) {
    if model == Model::Conflicts {
        assert_eq!(pushes, 1, "{what} once");
    } else {
        assert!((1..=3).contains(&pushes), "{what}: {pushes} times");
    }
}

/// Asserts `r` is one of `expected`, or (with faults) a proper `503`; never `5xx` else.
fn allowed(r: &Reply, expected: &[u16], model: Model, what: &str) -> bool {
    assert!(
        r.status != 500,
        "{what}: 500 is never an answer: {}",
        r.text
    );
    if model == Model::Faults && r.status == 503 {
        assert!(
            r.header("retry-after").is_some(),
            "{what}: 503 without Retry-After"
        );
        return false;
    }
    assert!(
        expected.contains(&r.status),
        "{what}: {} not in {expected:?}: {}",
        r.status,
        r.text
    );
    true
}

pub async fn signups_of_one_username(api: &Api, model: Model) {
    let username = random_username();
    let password = "pw-of-fifty";
    let replies = join_all((0..50).map(|_| {
        api.post(
            "accounts/",
            None,
            Body::Json(json!({"username": username, "password": password})),
        )
    }))
    .await;
    let mut created = 0;
    let mut ids = HashSet::new();
    for mut r in replies {
        // Fifty writers of one item on two cores may outlast a request's
        // retries: `503` with `Retry-After`, and the app signs up again.
        if model != Model::Faults && r.status == 503 {
            assert!(r.header("retry-after").is_some(), "503 without Retry-After");
            r = api
                .post(
                    "accounts/",
                    None,
                    Body::Json(json!({"username": username, "password": password})),
                )
                .await;
        }
        let r = &r;
        if allowed(r, &[200, 201], model, "sign-up") {
            created += usize::from(r.status == 201);
            ids.insert(r.json["id"].as_str().unwrap().to_string());
            let key = r.json["token"].as_str().unwrap();
            let me = api.get("accounts/", Some(key)).await;
            if allowed(&me, &[200], model, "the new key") {
                assert_eq!(me.json["username"], username.as_str());
            }
        }
    }
    assert!(created <= 1 && ids.len() <= 1, "one account: {ids:?}");
    if model == Model::Conflicts {
        assert_eq!(
            (created, ids.len()),
            (1, 1),
            "exactly one account, 49 logins"
        );
    }
}

pub async fn token_creations_on_one_device(api: &Api, model: Model) {
    let a = signup_retrying(api).await;
    let d = setup(
        api,
        "device/apns/",
        &a,
        json!({"registration_id": apns_token()}),
    )
    .await;
    let id = d["id"].as_str().unwrap();
    let replies = join_all((0..20).map(|_| {
        api.post(
            "tokens/",
            Some(&a.key),
            Body::Json(json!({"apns_device": id})),
        )
    }))
    .await;
    let mut made = HashSet::new();
    let mut unanswered = 0;
    for r in &replies {
        if allowed(r, &[201], model, "token creation") {
            made.insert(r.json["token"].as_str().unwrap().to_string());
        } else {
            unanswered += 1;
        }
    }
    if model == Model::Conflicts {
        assert_eq!(made.len(), 20, "every creation 201, all distinct");
    }
    let listed = api.get("tokens/?page_size=100", Some(&a.key)).await;
    if allowed(&listed, &[200], model, "token list") {
        let listed: HashSet<String> = listed.json["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["token"].as_str().unwrap().to_string())
            .collect();
        if model == Model::Conflicts {
            assert_eq!(listed, made, "listed right after: exactly the created ones");
        } else {
            // A creation applied with its answer lost was a `503` to the
            // client, and its token exists (docs/SECURITY.md: the app's
            // retry makes another): at most one such per `503`.
            assert!(made.is_subset(&listed), "every created one is listed");
            assert!(
                listed.len() - made.len() <= unanswered,
                "no token but the answered and the unanswered ones"
            );
        }
    }
}

pub async fn logins_right_and_wrong(api: &Api, model: Model) {
    let a = signup_retrying(api).await;
    let attempts = (0..20).map(|i| {
        let password = if i % 4 == 3 {
            "wrong"
        } else {
            a.password.as_str()
        };
        api.post(
            "accounts/",
            None,
            Body::Json(json!({"username": a.username, "password": password})),
        )
    });
    let replies = join_all(attempts).await;
    for (i, r) in replies.iter().enumerate() {
        let expected: &[u16] = if i % 4 == 3 { &[401] } else { &[200] };
        if allowed(r, expected, model, "login") && r.status == 200 {
            let key = r.json["token"].as_str().unwrap();
            let me = api.get("accounts/", Some(key)).await;
            allowed(&me, &[200], model, "a login's key");
        }
    }
}

pub async fn device_deletion_racing_token_creation(api: &Api, model: Model) {
    let a = signup_retrying(api).await;
    let push_token = apns_token();
    let d = setup(
        api,
        "device/apns/",
        &a,
        json!({"registration_id": push_token}),
    )
    .await;
    let id = d["id"].as_str().unwrap();
    let creations = (0..10).map(|_| {
        api.post(
            "tokens/",
            Some(&a.key),
            Body::Json(json!({"apns_device": id})),
        )
    });
    let path = format!("device/apns/{id}/");
    let deletion = api.delete(&path, Some(&a.key));
    let (created, deleted) = tokio::join!(join_all(creations), deletion);
    let gone = allowed(&deleted, &[204], model, "device deletion");
    let mut tokens = Vec::new();
    for r in &created {
        // Before the deletion: 201; after it: the device is no longer the caller's.
        if allowed(r, &[201, 400], model, "token creation") && r.status == 201 {
            tokens.push(r.json["token"].as_str().unwrap().to_string());
        }
    }
    if gone {
        let listed = api.get("tokens/", Some(&a.key)).await;
        if allowed(&listed, &[200], model, "token list") {
            assert_eq!(
                listed.json["count"], 0,
                "no token of the deleted device remains"
            );
        }
        for t in &tokens {
            let r = api.knock(t, json!({})).await;
            allowed(
                &r,
                &[404],
                model,
                "a knock with a token of a deleted device",
            );
        }
        // With faults, an endpoint whose deletion failed after its record's
        // is left behind (logged; the next registration adopts it).
        if model == Model::Conflicts {
            assert!(
                endpoints_for(&push_token).await.is_empty(),
                "no endpoint left"
            );
        }
    }
}

pub async fn account_deletion_racing_logins_and_registrations(api: &Api, model: Model) {
    let a = signup_retrying(api).await;
    let d = setup(
        api,
        "device/gcm/",
        &a,
        json!({"registration_id": fcm_token()}),
    )
    .await;
    let t = setup(api, "tokens/", &a, json!({"gcm_device": d["id"]})).await;
    let t = t["token"].as_str().unwrap();
    let login = || {
        api.post(
            "accounts/",
            None,
            Body::Json(json!({"username": a.username, "password": a.password})),
        )
    };
    let push_tokens: Vec<String> = (0..5).map(|_| apns_token()).collect();
    let logins = join_all((0..5).map(|_| login()));
    let registrations = join_all(push_tokens.iter().map(|p| {
        api.post(
            "device/apns/",
            Some(&a.key),
            Body::Json(json!({"registration_id": p})),
        )
    }));
    let path = format!("accounts/{}/", a.username);
    let deletion = api.delete(&path, Some(&a.key));
    let (logins, registrations, deleted) = tokio::join!(logins, registrations, deletion);
    let gone = allowed(&deleted, &[204], model, "account deletion");
    let mut old_keys = vec![a.key.clone()];
    let mut new_accounts = HashSet::new();
    for r in &logins {
        // A login before the deletion (200, the old account) or a sign-up after it (201).
        if allowed(r, &[200, 201], model, "login racing deletion") {
            if r.status == 200 && r.json["id"] == a.id.as_str() {
                old_keys.push(r.json["token"].as_str().unwrap().to_string());
            } else {
                new_accounts.insert(r.json["id"].as_str().unwrap().to_string());
            }
        }
    }
    for r in &registrations {
        allowed(r, &[201, 401], model, "registration racing deletion");
    }
    if !gone {
        return;
    }
    for key in &old_keys {
        let r = api.get("accounts/", Some(key)).await;
        allowed(&r, &[401], model, "a key of the deleted account");
    }
    allowed(&api.knock(t, json!({})).await, &[404], model, "its token");
    let dump = table_dump().await;
    assert!(
        !dump.iter().any(|item| item.contains(&a.id)),
        "no item of the deleted account remains"
    );
    // With faults injected, a registration that failed after SNS made its
    // endpoint may leave it behind (cleaned up on a best-effort basis; the
    // next registration of that push token adopts it): judged strictly on
    // the conflict model alone.
    if model == Model::Conflicts {
        for p in &push_tokens {
            assert!(
                endpoints_for(p).await.is_empty(),
                "no endpoint of it remains"
            );
        }
    }
    assert!(
        new_accounts.len() <= 1,
        "at most one new account: {new_accounts:?}"
    );
}

/// A push token moving to account B while A deletes the device that held it,
/// a few times over for different interleavings: B's device always ends up
/// reachable (a knock with B's token reaches the phone), A's is gone.
pub async fn push_token_moving_while_its_device_is_deleted(api: &Api, model: Model) {
    for _ in 0..5 {
        let a = signup_retrying(api).await;
        let b = signup_retrying(api).await;
        let push_token = apns_token();
        let body = json!({ "registration_id": push_token });
        let old = setup(api, "device/apns/", &a, body.clone()).await;
        let path = format!("device/apns/{}/", old["id"].as_str().unwrap());
        let deletion = api.delete(&path, Some(&a.key));
        let registration = api.post("device/apns/", Some(&b.key), Body::Json(body));
        let (deleted, registered) = tokio::join!(deletion, registration);
        // Before the move: 204; after it, A's device was already gone: 404.
        allowed(&deleted, &[204, 404], model, "deletion racing a move");
        if !allowed(&registered, &[201], model, "a move racing the deletion") {
            continue;
        }
        let id = registered.json["id"].as_str().unwrap();
        let token = setup(api, "tokens/", &b, json!({ "apns_device": id })).await;
        let knock = api.knock(token["token"].as_str().unwrap(), json!({})).await;
        if allowed(&knock, &[202], model, "a knock for the moved device") {
            let reached: usize = endpoints_for(&push_token)
                .await
                .iter()
                .map(|e| e.messages.len())
                .sum();
            once_at_least(reached, model, "the phone got the knock");
        }
        let left = api.get(&path, Some(&a.key)).await;
        allowed(&left, &[404], model, "A's device after the move");
    }
}

/// A setting-up `POST` that, with faults injected, tries again after a
/// `503`; its `201` body.
async fn setup(api: &Api, path: &str, a: &Account, body: serde_json::Value) -> serde_json::Value {
    for _ in 0..20 {
        let r = api.post(path, Some(&a.key), Body::Json(body.clone())).await;
        if r.status == 201 {
            return r.json;
        }
        assert_eq!(r.status, 503, "{path}: {}", r.text);
    }
    panic!("{path}: nothing got through");
}

/// A sign-up that, with faults injected, tries again after a `503`.
async fn signup_retrying(api: &Api) -> Account {
    for _ in 0..20 {
        let username = random_username();
        let password = format!("pw-{}", uuid::Uuid::new_v4());
        let r = api
            .post(
                "accounts/",
                None,
                Body::Json(json!({"username": username, "password": password})),
            )
            .await;
        if r.status == 201 {
            return Account {
                id: r.json["id"].as_str().unwrap().to_string(),
                username,
                password,
                key: r.json["token"].as_str().unwrap().to_string(),
            };
        }
        assert_eq!(r.status, 503, "{}", r.text);
    }
    panic!("no sign-up got through");
}

/// The scenario: an app renames its phone (`PATCH`) while it
/// re-registers it with fresh push tokens (`PUT`), eight of each at once, for
/// eight rounds; after each round a knock must reach the endpoint of the
/// token the device now names, and no other. Then the device is deleted
/// and every token ever sent must be free for another account.
pub async fn renames_racing_re_registrations(api: &Api, model: Model) {
    let a = signup_retrying(api).await;
    let b = signup_retrying(api).await;
    let first = apns_token();
    let device = setup(api, "device/apns/", &a, json!({ "registration_id": first })).await;
    let id = device["id"].as_str().unwrap().to_string();
    let path = format!("device/apns/{id}/");
    let mut sent = vec![first];
    for round in 0..8 {
        let fresh: Vec<String> = (0..8).map(|_| apns_token()).collect();
        sent.extend(fresh.iter().cloned());
        let renames = (0..8).map(|i| {
            api.send(
                "PATCH",
                &path,
                Some(&a.key),
                Body::Json(json!({ "name": format!("phone {round}.{i}") })),
            )
        });
        let moves = fresh.iter().map(|t| {
            api.send(
                "PUT",
                &path,
                Some(&a.key),
                Body::Json(json!({ "registration_id": t })),
            )
        });
        let (renamed, moved) = tokio::join!(join_all(renames), join_all(moves));
        for r in renamed.iter().chain(&moved) {
            allowed(r, &[200], model, "a rename or re-registration");
        }
        let now = api.get(&path, Some(&a.key)).await;
        assert_eq!(now.status, 200, "{}", now.text);
        let named = now.json["registration_id"].as_str().unwrap().to_string();
        let token = setup(api, "tokens/", &a, json!({ "apns_device": id })).await;
        let knock = api.knock(token["token"].as_str().unwrap(), json!({})).await;
        if !allowed(&knock, &[202], model, "a knock after the round") {
            continue;
        }
        let at_named = endpoints_for(&named).await;
        assert_eq!(
            at_named.len(),
            1,
            "round {round}: one endpoint carries the device's token: {at_named:?}"
        );
        assert!(at_named[0].enabled, "round {round}: it is enabled");
        once_at_least(
            at_named[0].messages.len(),
            model,
            &format!("round {round}: the knock went to the endpoint of the token the device names"),
        );
    }
    let deleted = api.delete(&path, Some(&a.key)).await;
    allowed(&deleted, &[204], model, "deleting the device");
    // Every token sent is free again: another account registers each.
    let mut locked = Vec::new();
    for t in &sent {
        let r = api
            .post(
                "device/apns/",
                Some(&b.key),
                Body::Json(json!({ "registration_id": t })),
            )
            .await;
        if model == Model::Faults && r.status == 503 {
            continue;
        }
        if r.status != 201 {
            locked.push(format!("{}: {}", r.status, r.text));
        }
    }
    assert!(
        locked.is_empty(),
        "{} of {} push tokens could not be registered again: {locked:?}",
        locked.len(),
        sent.len()
    );
}
