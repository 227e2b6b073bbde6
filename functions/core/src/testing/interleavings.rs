//! Targeted interleavings: a chosen concurrent change landed just before a
//! chosen port call, or a write's answer lost after it applied
//! ([`Script`]), through the operations, on any store and push gateway —
//! in push-core's unit tests on the memory ports, and through the emulator
//! on the real DynamoDB and SNS adapters (`infra/explore/tests/emulator.rs`).
//! Each judges what a client sees and what the ports hold afterwards,
//! through the ports alone.

use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use serde_json::{json, Value};

use super::{answer, request, Interposed, Script};
use crate::model::{AccountRecord, ApiKeyRecord, DeviceKind, DeviceRecord, Platform};
use crate::Deps;

/// A scenario's name, and what went wrong.
pub type Failure = (&'static str, String);

/// What disables an endpoint as the push service does when APNs rejects
/// its token (SNS sets `Enabled` to false).
pub type Disable = Arc<dyn Fn(String) -> BoxFuture<'static, ()> + Send + Sync>;

/// Deps whose store and push gateway play one script.
pub struct Rig {
    pub deps: Deps,
    pub script: Arc<Script>,
    disable: Disable,
}

impl Rig {
    /// `raw`'s ports, wrapped; its push gateway must serve APNs in both
    /// environments.
    pub fn around(raw: &Deps, disable: Disable) -> Rig {
        let script = Arc::new(Script::default());
        let deps = Deps {
            store: Arc::new(Interposed::new(raw.store.clone(), script.clone())),
            push: Arc::new(Interposed::new(raw.push.clone(), script.clone())),
            ..raw.clone()
        };
        Rig {
            deps,
            script,
            disable,
        }
    }
}

type Outcome = Result<(), String>;

fn fresh() -> String {
    crate::entropy::uuid_v4().simple().to_string()
}

/// A fresh APNs push token (64 hex digits).
fn push_token() -> String {
    format!("{}{}", fresh(), fresh())
}

/// An account made through the store; it and its API key.
async fn account(deps: &Deps) -> Result<(AccountRecord, String), String> {
    let id = crate::entropy::uuid_v4().to_string();
    let account = AccountRecord {
        id: id.clone(),
        username: format!("i{}", &fresh()[..12]),
        email: String::new(),
        password_hash: "x".into(),
        created_us: 1,
        failed_logins: vec![],
        deleting: false,
    };
    let key = crate::secrets::new_api_key();
    let record = ApiKeyRecord {
        key_hash: crate::secrets::sha256_hex(&key),
        account_id: id,
        username: account.username.clone(),
        email: String::new(),
    };
    deps.store
        .create_account(&account, &record)
        .await
        .map_err(|e| format!("create_account: {e}"))?;
    Ok((account, key))
}

async fn register(deps: &Deps, key: &str, body: Value) -> (u16, Value) {
    let req = request("POST", "device/apns/", Some(key), body);
    answer(crate::devices::register(deps, &req, DeviceKind::Apns).await)
}

async fn put(deps: &Deps, key: &str, id: &str, body: Value) -> (u16, Value) {
    let req = request("PUT", &format!("device/apns/{id}/"), Some(key), body);
    answer(crate::devices::update(deps, &req, DeviceKind::Apns, id, false).await)
}

fn status(what: &str, got: &(u16, Value), expected: u16) -> Outcome {
    if got.0 == expected {
        Ok(())
    } else {
        Err(format!(
            "{what}: {} (expected {expected}): {}",
            got.0, got.1
        ))
    }
}

fn id_of(reply: &(u16, Value)) -> String {
    reply.1["id"].as_str().unwrap_or_default().to_string()
}

async fn stored(deps: &Deps, owner: &str, id: &str) -> Result<DeviceRecord, String> {
    deps.store
        .get_device(owner, id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("device {id} is not stored"))
}

/// `Some(enabled)` of an endpoint, `None` when it does not exist.
async fn endpoint(deps: &Deps, arn: &str) -> Result<Option<bool>, String> {
    deps.push
        .endpoint_enabled(arn)
        .await
        .map_err(|e| e.to_string())
}

async fn expect_endpoint(deps: &Deps, arn: &str, expected: Option<bool>, what: &str) -> Outcome {
    let got = endpoint(deps, arn).await?;
    if got == expected {
        Ok(())
    } else {
        Err(format!(
            "{what}: endpoint {arn} is {got:?}, expected {expected:?}"
        ))
    }
}

/// Runs every scenario on a fresh rig each (from `rig`); the ones that failed.
pub async fn run(rig: impl Fn() -> Rig) -> Vec<Failure> {
    let mut failures = Vec::new();
    macro_rules! scenario {
        ($name:literal, $body:ident) => {
            if let Err(e) = $body(&rig()).await {
                failures.push(($name, e));
            }
        };
    }
    scenario!(
        "a registration deciding on its claim read answers with the device made meanwhile",
        claim_read_once
    );
    scenario!(
        "a registration whose save's answer was lost answers 201, once",
        lost_registration
    );
    scenario!(
        "a new push token whose save's answer was lost answers 200 and retires the old endpoint",
        lost_new_token
    );
    scenario!(
        "a refresh naming its environment whose save's answer was lost deletes the other",
        lost_refresh
    );
    scenario!(
        "a new push token whose device is deleted before the save releases its endpoints",
        deleted_before_the_save
    );
    scenario!(
        "a retry that needs fewer endpoints releases the one its lost attempt made",
        retry_needs_fewer
    );
    scenario!(
        "a registration deciding on one read of its own device never takes it over",
        holder_read_once
    );
    scenario!(
        "a registration whose own device gets the token back before its save answers with it",
        holder_back_before_the_save
    );
    scenario!(
        "a new push token's save, answer lost, its device deleted meanwhile, retires the old endpoint",
        new_token_lost_then_deleted
    );
    scenario!(
        "a new push token's save, answer lost, marked pushed by a knock meanwhile, landed",
        new_token_lost_then_marked
    );
    scenario!(
        "a take-over refused (account going) spares the endpoints its holder names",
        refused_take_over
    );
    scenario!(
        "settling spares a dead endpoint a registration re-enabled meanwhile",
        settling_spares_an_adopted_endpoint
    );
    scenario!(
        "feedback judges again a device renamed as it deactivates it",
        feedback_judges_a_renamed_device_again
    );
    failures
}

/// The same app registers one push token twice at once: the second lands
/// between the first's read of the claim (there was none) and its save.
/// The first's save conflicts; its retry must answer `200` with the
/// second's device, not take it over. (The code that read the claim a
/// second time to decide took over a device made between the two reads:
/// CI, twenty at once. That second read is gone, so no call is left to
/// land a change before; `tests/tests/devices.rs` keeps the twenty.)
async fn claim_read_once(rig: &Rig) -> Outcome {
    let (_, key) = account(&rig.deps).await?;
    let token = push_token();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (deps, k, t, s) = (rig.deps.clone(), key.clone(), token.clone(), seen.clone());
    rig.script.before("save_device", move || async move {
        let reply = register(&deps, &k, json!({ "registration_id": t })).await;
        s.lock().unwrap_or_else(|e| e.into_inner()).push(reply);
    });
    let first = register(&rig.deps, &key, json!({ "registration_id": token })).await;
    let mut replies = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    replies.push(first);
    let statuses: Vec<u16> = replies.iter().map(|r| r.0).collect();
    if statuses != [201, 200] {
        return Err(format!(
            "expected 201 (landed meanwhile), then 200: {replies:?}"
        ));
    }
    let ids: Vec<String> = replies.iter().map(id_of).collect();
    if ids[0] != ids[1] {
        return Err(format!("the answers name different devices: {ids:?}"));
    }
    Ok(())
}

/// Every answer of the save lost (the SDK gave up on a transaction that
/// applied): the registration reads the claim back and answers as saved;
/// the app's next registration finds the same device.
async fn lost_registration(rig: &Rig) -> Outcome {
    let (account, key) = account(&rig.deps).await?;
    let token = push_token();
    rig.script.lose_answer("save_device", 1);
    let first = register(&rig.deps, &key, json!({ "registration_id": token })).await;
    status("the registration", &first, 201)?;
    let again = register(&rig.deps, &key, json!({ "registration_id": token })).await;
    status("the next registration", &again, 200)?;
    if id_of(&again) != id_of(&first) {
        return Err(format!("two devices: {} then {}", first.1, again.1));
    }
    let devices = rig
        .deps
        .store
        .list_devices(&account.id)
        .await
        .map_err(|e| e.to_string())?;
    if devices.len() != 1 {
        return Err(format!("{} devices stored, expected one", devices.len()));
    }
    Ok(())
}

/// `PUT` with a new push token, every answer of its save lost: `200`, and
/// the endpoints of the old token (no device claims it) are deleted — on
/// the code that answered `503`, they stayed behind for good (the
/// explorer, seed 2 through the emulator).
async fn lost_new_token(rig: &Rig) -> Outcome {
    let (account, key) = account(&rig.deps).await?;
    let made = register(&rig.deps, &key, json!({ "registration_id": push_token() })).await;
    status("the registration", &made, 201)?;
    let id = id_of(&made);
    let before = stored(&rig.deps, &account.id, &id).await?;
    let new_token = push_token();
    rig.script.lose_answer("save_device", 1);
    let moved = put(
        &rig.deps,
        &key,
        &id,
        json!({ "registration_id": new_token }),
    )
    .await;
    status("the PUT", &moved, 200)?;
    let after = stored(&rig.deps, &account.id, &id).await?;
    if after.registration_id != new_token {
        return Err("the device does not carry the new push token".into());
    }
    for arn in before.endpoints() {
        expect_endpoint(&rig.deps, arn, None, "the old token's endpoint").await?;
    }
    for arn in after.endpoints() {
        expect_endpoint(&rig.deps, arn, Some(true), "the new token's endpoint").await?;
    }
    Ok(())
}

/// A device of unknown environment (an endpoint in each) registered again
/// naming production, every answer of its save lost: `200`, and its
/// sandbox endpoint is deleted rather than left behind.
async fn lost_refresh(rig: &Rig) -> Outcome {
    let (account, key) = account(&rig.deps).await?;
    let token = push_token();
    let made = register(&rig.deps, &key, json!({ "registration_id": token })).await;
    status("the registration", &made, 201)?;
    let id = id_of(&made);
    let before = stored(&rig.deps, &account.id, &id).await?;
    let sandbox = before
        .endpoints()
        .find(|arn| Platform::of_arn(arn) == Some(Platform::ApnsSandbox))
        .ok_or("the rig's app has no APNs sandbox")?
        .to_string();
    rig.script.lose_answer("save_device", 1);
    let body = json!({ "registration_id": token, "environment": "production" });
    let refreshed = register(&rig.deps, &key, body).await;
    status("the registration naming production", &refreshed, 200)?;
    let after = stored(&rig.deps, &account.id, &id).await?;
    if after.alternate_arn.is_some()
        || Platform::of_arn(&after.endpoint_arn) != Some(Platform::Apns)
    {
        return Err(format!("the device is not on production alone: {after:?}"));
    }
    expect_endpoint(&rig.deps, &sandbox, None, "the sandbox endpoint").await
}

/// `PUT` with a new push token; the device is deleted (`DELETE`) just
/// before the save. The save loses, its retry finds no device (`404`), and
/// the endpoints made for the new token — nobody claims it — are deleted:
/// on the code that released them only on an attempt's own failure, they
/// stayed behind for good (the explorer, through the emulator).
async fn deleted_before_the_save(rig: &Rig) -> Outcome {
    let (_, key) = account(&rig.deps).await?;
    let made = register(&rig.deps, &key, json!({ "registration_id": push_token() })).await;
    status("the registration", &made, 201)?;
    let id = id_of(&made);
    let already = rig.script.ensured().len();
    let (deps, k, i) = (rig.deps.clone(), key.clone(), id.clone());
    rig.script.before("save_device", move || async move {
        let req = request(
            "DELETE",
            &format!("device/apns/{i}/"),
            Some(&k),
            Value::Null,
        );
        let _ = crate::devices::delete(&deps, &req, DeviceKind::Apns, &i).await;
    });
    let moved = put(
        &rig.deps,
        &key,
        &id,
        json!({ "registration_id": push_token() }),
    )
    .await;
    status("the PUT of a device deleted meanwhile", &moved, 404)?;
    let made_for_it: Vec<String> = rig.script.ensured().split_off(already);
    if made_for_it.is_empty() {
        return Err("no endpoint was made for the new token".into());
    }
    for arn in &made_for_it {
        expect_endpoint(&rig.deps, arn, None, "an endpoint made for the new token").await?;
    }
    Ok(())
}

/// A device on both APNs environments; its app registers the token again
/// (environment unknown) while another registration naming the sandbox
/// lands just before the first's `ensure_endpoint`, deleting the
/// production endpoint. The first makes production anew, loses its save,
/// and its retry (the device now settled on the sandbox) needs the sandbox
/// alone: the endpoint made by the lost attempt is deleted — on the code
/// that released them only when the operation failed, it stayed behind,
/// serving no one (the explorer, emulator seed 1 at 10,000 operations).
async fn retry_needs_fewer(rig: &Rig) -> Outcome {
    let (account, key) = account(&rig.deps).await?;
    let token = push_token();
    let made = register(&rig.deps, &key, json!({ "registration_id": token })).await;
    status("the registration", &made, 201)?;
    let id = id_of(&made);
    let already = rig.script.ensured().len();
    let (deps, k, t) = (rig.deps.clone(), key.clone(), token.clone());
    let landed = Arc::new(Mutex::new(None));
    let l = landed.clone();
    rig.script.before("ensure_endpoint", move || async move {
        let body = json!({ "registration_id": t, "environment": "sandbox" });
        *l.lock().unwrap_or_else(|e| e.into_inner()) = Some(register(&deps, &k, body).await);
    });
    let again = register(&rig.deps, &key, json!({ "registration_id": token })).await;
    status("the registration again", &again, 200)?;
    let sandbox = landed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .ok_or("the sandbox registration did not run")?;
    status("the sandbox registration", &sandbox, 200)?;
    let after = stored(&rig.deps, &account.id, &id).await?;
    if after.alternate_arn.is_some()
        || Platform::of_arn(&after.endpoint_arn) != Some(Platform::ApnsSandbox)
    {
        return Err(format!("the device is not on the sandbox alone: {after:?}"));
    }
    let ensured: Vec<String> = rig.script.ensured().split_off(already);
    let others: Vec<&String> = ensured
        .iter()
        .filter(|arn| **arn != after.endpoint_arn)
        .collect();
    if others.is_empty() {
        return Err(format!(
            "no endpoint but the sandbox's was ensured: {ensured:?}"
        ));
    }
    for arn in others {
        expect_endpoint(&rig.deps, arn, None, "an endpoint the device does not name").await?;
    }
    Ok(())
}

/// An app registers its device's push token again while the device moves
/// to a new token and back: the registration reads the claim (its own
/// device), then the device (moved away), then — on the code that read the
/// device a second time to decide — the device again (moved back), and took
/// it over: a new device answered `201`, the app's device deleted and its
/// whitelist tokens revoked, an end no order of the three requests has
/// (review of the registration path). Deciding on the first read, its save
/// meets the device holding no claim it read, and the retry decides anew.
async fn holder_read_once(rig: &Rig) -> Outcome {
    let (account, key) = account(&rig.deps).await?;
    let token = push_token();
    let made = register(&rig.deps, &key, json!({ "registration_id": token })).await;
    status("the registration", &made, 201)?;
    let id = id_of(&made);
    let armed = Arc::new(Mutex::new(true));
    let moves = Arc::new(Mutex::new(Vec::new()));
    let (deps, k, t, i, a, m) = (
        rig.deps.clone(),
        key.clone(),
        token.clone(),
        id.clone(),
        armed.clone(),
        moves.clone(),
    );
    let script = rig.script.clone();
    // Before the registration's read of its device: the device moves away.
    rig.script.before("get_device", move || async move {
        let moved = put(&deps, &k, &i, json!({ "registration_id": push_token() })).await;
        m.lock().unwrap_or_else(|e| e.into_inner()).push(moved.0);
        // Before a second read, if any (it comes before the endpoints are
        // ensured): the device moves back.
        let back = a.clone();
        script.before("get_device", move || async move {
            if *back.lock().unwrap_or_else(|e| e.into_inner()) {
                let r = put(&deps, &k, &i, json!({ "registration_id": t })).await;
                m.lock().unwrap_or_else(|e| e.into_inner()).push(r.0);
            }
        });
        script.before("ensure_endpoint", move || async move {
            *a.lock().unwrap_or_else(|e| e.into_inner()) = false;
        });
    });
    let again = register(&rig.deps, &key, json!({ "registration_id": token })).await;
    *armed.lock().unwrap_or_else(|e| e.into_inner()) = false;
    let moves = moves.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if moves.is_empty() || moves.iter().any(|status| *status != 200) {
        return Err(format!("the device's moves answered {moves:?}"));
    }
    if !matches!(again.0, 200 | 201) {
        return Err(format!("the registration again: {again:?}"));
    }
    let device = stored(&rig.deps, &account.id, &id).await?;
    let answered = stored(&rig.deps, &account.id, &id_of(&again)).await?;
    if answered.registration_id != token {
        return Err(format!(
            "the answer's device does not hold the token: {answered:?}"
        ));
    }
    if again.0 == 200 && answered.id != device.id {
        return Err(format!("200 names another device: {again:?}"));
    }
    Ok(())
}

/// The window [`holder_read_once`] leaves: the device, read without the
/// push token, gets it back between that read and the save. The save's
/// condition that the device still lacks the token fails, and the retry
/// answers `200` with the device.
async fn holder_back_before_the_save(rig: &Rig) -> Outcome {
    let (account, key) = account(&rig.deps).await?;
    let token = push_token();
    let made = register(&rig.deps, &key, json!({ "registration_id": token })).await;
    status("the registration", &made, 201)?;
    let id = id_of(&made);
    let moves = Arc::new(Mutex::new(Vec::new()));
    let (deps, k, t, i, m) = (
        rig.deps.clone(),
        key.clone(),
        token.clone(),
        id.clone(),
        moves.clone(),
    );
    let script = rig.script.clone();
    rig.script.before("get_device", move || async move {
        let away = put(&deps, &k, &i, json!({ "registration_id": push_token() })).await;
        m.lock().unwrap_or_else(|e| e.into_inner()).push(away.0);
        script.before("save_device", move || async move {
            let back = put(&deps, &k, &i, json!({ "registration_id": t })).await;
            m.lock().unwrap_or_else(|e| e.into_inner()).push(back.0);
        });
    });
    let again = register(&rig.deps, &key, json!({ "registration_id": token })).await;
    let moves = moves.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if moves != [200, 200] {
        return Err(format!("the device's moves answered {moves:?}"));
    }
    status("the registration again", &again, 200)?;
    if id_of(&again) != id {
        return Err(format!("200 names another device: {again:?}"));
    }
    let device = stored(&rig.deps, &account.id, &id).await?;
    if device.registration_id != token {
        return Err(format!("the device does not hold the token: {device:?}"));
    }
    Ok(())
}

/// A PUT moves a device to a new push token; its save lands but every
/// answer is lost, and the app deletes the device before the PUT reads it
/// back. The deletion retires what the device names by then (the new
/// token's endpoint); the old token's endpoint serves no one, and only the
/// PUT knows of it: it goes (the explorer, emulator seed 8 with faults,
/// found it left behind).
async fn new_token_lost_then_deleted(rig: &Rig) -> Outcome {
    let (account, key) = account(&rig.deps).await?;
    let made = register(&rig.deps, &key, json!({ "registration_id": push_token() })).await;
    status("the registration", &made, 201)?;
    let id = id_of(&made);
    let account_id = account.id;
    let before = stored(&rig.deps, &account_id, &id).await?;
    let deleted = Arc::new(Mutex::new(None));
    let (deps, k, i, d) = (rig.deps.clone(), key.clone(), id.clone(), deleted.clone());
    rig.script.lose_answer("save_device", 1);
    // The PUT reads its device, then saves, then reads it back: the
    // deletion lands before that second read.
    rig.script.before("get_device", || async {});
    rig.script.before("get_device", move || async move {
        let req = request("DELETE", &format!("device/apns/{i}/"), Some(&k), json!({}));
        let reply = answer(crate::devices::delete(&deps, &req, DeviceKind::Apns, &i).await);
        *d.lock().unwrap_or_else(|e| e.into_inner()) = Some(reply.0);
    });
    let moved = put(
        &rig.deps,
        &key,
        &id,
        json!({ "registration_id": push_token() }),
    )
    .await;
    let deleted = deleted.lock().unwrap_or_else(|e| e.into_inner()).take();
    if deleted != Some(204) {
        return Err(format!(
            "the deletion answered {deleted:?} (the PUT: {moved:?})"
        ));
    }
    if rig
        .deps
        .store
        .get_device(&account_id, &id)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Err("the device is still stored".into());
    }
    for arn in before.endpoints() {
        expect_endpoint(&rig.deps, arn, None, "the old token's endpoint").await?;
    }
    Ok(())
}

/// A PUT moves a device to a new push token; its save applies but every
/// answer is lost, and a knock's daily mark (`mark_pushed`) lands before
/// the PUT reads the device back. The device as written landed, give or
/// take the mark: `200`, and the old token's endpoint goes (before, `503`
/// and the old endpoint left to no one: the review of the push state).
async fn new_token_lost_then_marked(rig: &Rig) -> Outcome {
    let (account, key) = account(&rig.deps).await?;
    let made = register(&rig.deps, &key, json!({ "registration_id": push_token() })).await;
    status("the registration", &made, 201)?;
    let id = id_of(&made);
    let before = stored(&rig.deps, &account.id, &id).await?;
    let (deps, owner, i) = (rig.deps.clone(), account.id.clone(), id.clone());
    rig.script.lose_answer("save_device", 1);
    // The PUT reads its device, then saves, then reads it back: the mark
    // lands before that second read.
    rig.script.before("get_device", || async {});
    rig.script.before("get_device", move || async move {
        if let Ok(Some(now)) = deps.store.get_device(&owner, &i).await {
            let _ = deps.store.mark_pushed(&now, 20_000).await;
        }
    });
    let token = push_token();
    let moved = put(&rig.deps, &key, &id, json!({ "registration_id": token })).await;
    status("the PUT", &moved, 200)?;
    let now = stored(&rig.deps, &account.id, &id).await?;
    if now.registration_id != token || now.push.last_push_day != Some(20_000) {
        return Err(format!("the device is not as written and marked: {now:?}"));
    }
    for arn in before.endpoints() {
        expect_endpoint(&rig.deps, arn, None, "the old token's endpoint").await?;
    }
    for arn in now.endpoints() {
        expect_endpoint(&rig.deps, arn, Some(true), "the new token's endpoint").await?;
    }
    Ok(())
}

/// Alice's device is on production alone. Bob's registration of the same
/// push token makes (adopts) the production endpoint and makes a sandbox
/// one; his account's deletion begins before his save, which is refused.
/// The endpoints made for it go, except the one Alice's device names.
async fn refused_take_over(rig: &Rig) -> Outcome {
    let (alice, alice_key) = account(&rig.deps).await?;
    let (bob, bob_key) = account(&rig.deps).await?;
    let token = push_token();
    let body = json!({ "registration_id": token, "environment": "production" });
    let made = register(&rig.deps, &alice_key, body).await;
    status("Alice's registration", &made, 201)?;
    let hers = stored(&rig.deps, &alice.id, &id_of(&made)).await?;
    let already = rig.script.ensured().len();
    let deps = rig.deps.clone();
    rig.script.before("save_device", move || async move {
        let _ = deps
            .store
            .begin_account_deletion(&bob.id, &bob.username)
            .await;
    });
    let refused = register(&rig.deps, &bob_key, json!({ "registration_id": token })).await;
    status("Bob's registration, his account going", &refused, 401)?;
    let made_for_bob: Vec<String> = rig.script.ensured().split_off(already);
    if made_for_bob.len() != 2 {
        return Err(format!(
            "expected two endpoints made for Bob: {made_for_bob:?}"
        ));
    }
    for arn in &made_for_bob {
        let kept = *arn == hers.endpoint_arn;
        let expected = if kept { Some(true) } else { None };
        expect_endpoint(&rig.deps, arn, expected, "after the refused take-over").await?;
    }
    let still = stored(&rig.deps, &alice.id, &hers.id).await?;
    if still.endpoint_arn != hers.endpoint_arn || still.registration_id != token {
        return Err(format!("Alice's device changed: {still:?}"));
    }
    Ok(())
}

/// APNs rejected Alice's sandbox endpoint; as her device settles on
/// production, Bob registers the same push token (both environments: SNS
/// gives him the same endpoints, the sandbox one re-enabled) just before
/// settling looks at the dead endpoint again. It is spared: Bob's device
/// names it.
async fn settling_spares_an_adopted_endpoint(rig: &Rig) -> Outcome {
    let (alice, alice_key) = account(&rig.deps).await?;
    let (bob, bob_key) = account(&rig.deps).await?;
    let token = push_token();
    let made = register(&rig.deps, &alice_key, json!({ "registration_id": token })).await;
    status("Alice's registration", &made, 201)?;
    let hers = stored(&rig.deps, &alice.id, &id_of(&made)).await?;
    let dead = hers
        .alternate_arn
        .clone()
        .ok_or("the rig's app has one APNs environment")?;
    (rig.disable)(dead.clone()).await;
    let (deps, t) = (rig.deps.clone(), token.clone());
    let bobs = Arc::new(Mutex::new(None));
    let b = bobs.clone();
    rig.script.before("endpoint_enabled", move || async move {
        let reply = register(&deps, &bob_key, json!({ "registration_id": t })).await;
        *b.lock().unwrap_or_else(|e| e.into_inner()) = Some(reply);
    });
    let settled = crate::devices::settle_environment(&rig.deps, &hers, &dead, None)
        .await
        .map_err(|e| e.to_string())?;
    if !settled {
        return Err("Alice's device did not settle".into());
    }
    let reply = bobs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .ok_or("Bob's registration did not run: settling did not look at the dead endpoint again before deleting it")?;
    status("Bob's registration", &reply, 201)?;
    let his = stored(&rig.deps, &bob.id, &id_of(&reply)).await?;
    if !his.endpoints().any(|arn| arn == dead) {
        return Err(format!("Bob's device does not name {dead}: {his:?}"));
    }
    expect_endpoint(
        &rig.deps,
        &dead,
        Some(true),
        "the endpoint Bob's device names",
    )
    .await
}

/// APNs rejected the token of Alice's device (one endpoint); as the
/// feedback function deactivates it, her app renames it (`PATCH`), which
/// leaves the endpoint disabled. The deactivation, refused as the device
/// changed, is judged again on the device as it is now: inactive — on the
/// code that left a changed device "to decide for itself", it stayed
/// active with a dead endpoint (the explorer, through the emulator).
async fn feedback_judges_a_renamed_device_again(rig: &Rig) -> Outcome {
    let (alice, key) = account(&rig.deps).await?;
    let body = json!({ "registration_id": push_token(), "environment": "production" });
    let made = register(&rig.deps, &key, body).await;
    status("the registration", &made, 201)?;
    let id = id_of(&made);
    let arn = stored(&rig.deps, &alice.id, &id).await?.endpoint_arn;
    (rig.disable)(arn.clone()).await;
    let (deps, k, i) = (rig.deps.clone(), key.clone(), id.clone());
    rig.script.before("deactivate_device", move || async move {
        let req = request(
            "PATCH",
            &format!("device/apns/{i}/"),
            Some(&k),
            json!({ "name": "renamed" }),
        );
        let _ = crate::devices::update(&deps, &req, DeviceKind::Apns, &i, true).await;
    });
    let event = crate::feedback::EndpointEvent {
        event_type: crate::feedback::EventType::DeliveryFailure,
        endpoint_arn: arn,
        failure_type: None,
        failure_message: None,
    };
    let outcome = crate::feedback::handle(&rig.deps, &event)
        .await
        .map_err(|e| format!("feedback: {e}"))?;
    let after = stored(&rig.deps, &alice.id, &id).await?;
    if after.active || after.name.as_deref() != Some("renamed") {
        return Err(format!("after feedback ({outcome:?}): {after:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{MemoryPush, World};

    #[tokio::test]
    async fn the_targeted_interleavings_hold_on_the_memory_ports() {
        let rig = || {
            let w = World::with(
                crate::Settings::default(),
                MemoryPush::with_platforms(&[Platform::Apns, Platform::ApnsSandbox]),
            );
            let push = w.push.clone();
            let disable: Disable = Arc::new(move |arn: String| {
                push.disable(&arn);
                Box::pin(async {})
            });
            Rig::around(&w.deps, disable)
        };
        let failures = run(rig).await;
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
