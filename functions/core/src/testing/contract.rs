//! One store contract: scenarios — a store operation, and the concurrent
//! change that lands between its read and its write — run through the
//! [`Store`] trait alone, so the very same table runs against
//! [`super::MemoryStore`] (push-core's unit tests) and against the DynamoDB
//! store through the emulator (`tests/tests/store_contract.rs`). A store
//! that is kinder or stricter than the other fails here.
//!
//! What the memory store cannot model is named, not skipped silently: index
//! lag (`devices_by_endpoint` reads the table at once), TTL, and lost
//! answers (its writes never fail after applying).

use crate::model::{
    AccountRecord, ApiKeyRecord, DeviceKind, DeviceRecord, PushFailure, PushTokenClaim,
};
use crate::ports::{ClaimChange, DeviceRemoval, DeviceWrite, Store, WriteConflict};
use crate::Limit;

/// A scenario's name, and what went wrong.
pub type Failure = (&'static str, String);

fn fresh() -> String {
    crate::entropy::uuid_v4().to_string()
}

/// An account made through the store; its id and username.
async fn account(store: &dyn Store) -> Result<(String, String), String> {
    let id = fresh();
    let username = format!("u{}", &id[..8]);
    let record = AccountRecord {
        id: id.clone(),
        username: username.clone(),
        email: String::new(),
        password_hash: "x".into(),
        created_us: 1,
        failed_logins: vec![],
        deleting: false,
    };
    let key = ApiKeyRecord {
        key_hash: crate::secrets::sha256_hex(&fresh()),
        account_id: id.clone(),
        username: username.clone(),
        email: String::new(),
    };
    store
        .create_account(&record, &key)
        .await
        .map_err(|e| format!("create_account: {e}"))?;
    Ok((id, username))
}

fn device(owner: &str, token: &str) -> DeviceRecord {
    DeviceRecord {
        id: fresh(),
        owner: owner.into(),
        kind: DeviceKind::Apns,
        registration_id: token.into(),
        name: None,
        device_id: None,
        active: true,
        created_us: 1,
        endpoint_arn: format!("arn:aws:sns:us-east-1:1:endpoint/APNS/app/{}", fresh()),
        alternate_arn: None,
        version: 0,
        push: Default::default(),
    }
}

fn write(device: &DeviceRecord, username: &str, is_new: bool, claim: ClaimChange) -> DeviceWrite {
    DeviceWrite {
        device: device.clone(),
        device_limit: 3,
        registration_limit: Limit {
            max: 0,
            window: std::time::Duration::from_secs(60),
        },
        now_us: 1_000_000,
        owner_username: username.into(),
        is_new,
        claim,
        release_claim_of: None,
    }
}

/// A new device saved through the store, read back (at its version).
async fn saved(store: &dyn Store, owner: &str, username: &str) -> Result<DeviceRecord, String> {
    let d = device(owner, &fresh());
    store
        .save_device(&write(&d, username, true, ClaimChange::Create))
        .await
        .map_err(|e| format!("save_device: {e}"))?;
    read(store, &d).await
}

async fn read(store: &dyn Store, d: &DeviceRecord) -> Result<DeviceRecord, String> {
    store
        .get_device(&d.owner, &d.id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "device not found".to_string())
}

fn expect(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

fn conflict(r: Result<(), WriteConflict>, what: &str) -> Result<(), String> {
    match r {
        Err(WriteConflict::Conflict) => Ok(()),
        other => Err(format!("{what}: expected a conflict, got {other:?}")),
    }
}

/// Runs every scenario against `store`; the ones that failed.
pub async fn run(store: &dyn Store) -> Vec<Failure> {
    let mut failures = Vec::new();
    macro_rules! scenario {
        ($name:literal, $body:expr) => {
            if let Err(e) = $body.await {
                failures.push(($name, e));
            }
        };
    }
    scenario!(
        "a save of a device read before another write of it conflicts",
        stale_save(store)
    );
    scenario!(
        "keeping a claim that names another device conflicts",
        keep_checks_the_claim(store)
    );
    scenario!(
        "a claim whose device is gone is free to take, once",
        orphan_claims(store)
    );
    scenario!(
        "taking a token over needs its device to still hold it",
        take_over(store)
    );
    scenario!(
        "releasing the old claim of another device conflicts",
        release_checks_the_claim(store)
    );
    scenario!(
        "in-place updates of a changed device do nothing; of the current one, what the record says",
        stale_updates(store)
    );
    scenario!(
        "deleting a changed device does nothing",
        stale_delete(store)
    );
    scenario!(
        "the device cap counts devices, take-overs within the account included",
        device_cap(store)
    );
    scenario!(
        "a deletion cannot finish while a device remains",
        deletion_waits_for_devices(store)
    );
    failures
}

async fn stale_save(store: &dyn Store) -> Result<(), String> {
    let (owner, username) = account(store).await?;
    let first = saved(store, &owner, &username).await?;
    // Another request renames it meanwhile.
    let mut renamed = first.clone();
    renamed.name = Some("other".into());
    store
        .save_device(&write(&renamed, &username, false, ClaimChange::Keep))
        .await
        .map_err(|e| format!("the rename: {e}"))?;
    let mut stale = first.clone();
    stale.active = false;
    conflict(
        store
            .save_device(&write(&stale, &username, false, ClaimChange::Keep))
            .await,
        "a save at the old version",
    )?;
    let now = read(store, &first).await?;
    expect(
        now.name.as_deref() == Some("other") && now.active && now.version == first.version + 1,
        "the stale save changed the device",
    )
}

async fn keep_checks_the_claim(store: &dyn Store) -> Result<(), String> {
    let (owner, username) = account(store).await?;
    let mine = saved(store, &owner, &username).await?;
    // Another device (in another account) has taken the token over... as
    // a stale copy of ours would still believe it holds it.
    let (other_owner, other_name) = account(store).await?;
    let theirs = device(&other_owner, &mine.registration_id);
    let claim = store
        .get_claim(mine.kind, &mine.registration_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no claim")?;
    store
        .save_device(&write(
            &theirs,
            &other_name,
            true,
            ClaimChange::TakeFrom(claim),
        ))
        .await
        .map_err(|e| format!("the take-over: {e}"))?;
    expect(
        read(store, &mine).await.is_err(),
        "the taken-over device is gone",
    )?;
    conflict(
        store
            .save_device(&write(&mine, &username, false, ClaimChange::Keep))
            .await,
        "a save keeping a claim that is another's",
    )
}

async fn orphan_claims(store: &dyn Store) -> Result<(), String> {
    let (owner, username) = account(store).await?;
    let token = fresh();
    let mut gone = device(&owner, &token);
    // The claim names a device that has another token now (as data written
    // before versions could leave it).
    store
        .save_device(&write(&gone, &username, true, ClaimChange::Create))
        .await
        .map_err(|e| format!("save: {e}"))?;
    gone = read(store, &gone).await?;
    let claim = PushTokenClaim {
        owner: owner.clone(),
        device_id: gone.id.clone(),
    };
    let mut moved = gone.clone();
    moved.registration_id = fresh();
    let mut w = write(&moved, &username, false, ClaimChange::Create);
    // (Leaving the old claim behind on purpose: no release.)
    w.release_claim_of = None;
    store
        .save_device(&w)
        .await
        .map_err(|e| format!("move: {e}"))?;
    let newcomer = device(&owner, &token);
    conflict(
        store
            .save_device(&write(
                &newcomer,
                &username,
                true,
                ClaimChange::TakeFrom(claim.clone()),
            ))
            .await,
        "taking over from a device that no longer holds the token",
    )?;
    store
        .save_device(&write(
            &newcomer,
            &username,
            true,
            ClaimChange::TakeOrphan(claim.clone()),
        ))
        .await
        .map_err(|e| format!("taking the orphaned claim: {e}"))?;
    let again = device(&owner, &token);
    conflict(
        store
            .save_device(&write(
                &again,
                &username,
                true,
                ClaimChange::TakeOrphan(claim),
            ))
            .await,
        "taking an orphaned claim a second time",
    )
}

async fn take_over(store: &dyn Store) -> Result<(), String> {
    let (owner, username) = account(store).await?;
    let holder = saved(store, &owner, &username).await?;
    let claim = store
        .get_claim(holder.kind, &holder.registration_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no claim")?;
    let (other, other_name) = account(store).await?;
    let newcomer = device(&other, &holder.registration_id);
    conflict(
        store
            .save_device(&write(
                &newcomer,
                &other_name,
                true,
                ClaimChange::TakeOrphan(claim.clone()),
            ))
            .await,
        "taking as orphaned a claim whose device holds the token",
    )?;
    store
        .save_device(&write(
            &newcomer,
            &other_name,
            true,
            ClaimChange::TakeFrom(claim),
        ))
        .await
        .map_err(|e| format!("the take-over: {e}"))?;
    let now = store
        .get_claim(holder.kind, &holder.registration_id)
        .await
        .map_err(|e| e.to_string())?;
    expect(
        now.is_some_and(|c| c.device_id == newcomer.id),
        "the claim names the newcomer",
    )
}

async fn release_checks_the_claim(store: &dyn Store) -> Result<(), String> {
    let (owner, username) = account(store).await?;
    let a = saved(store, &owner, &username).await?;
    let b = saved(store, &owner, &username).await?;
    // `a` moves to a new token claiming to release `b`'s token's claim.
    let mut moved = a.clone();
    moved.registration_id = fresh();
    let mut w = write(&moved, &username, false, ClaimChange::Create);
    w.release_claim_of = Some(b.registration_id.clone());
    conflict(store.save_device(&w).await, "releasing another's claim")?;
    expect(
        read(store, &a).await?.registration_id == a.registration_id,
        "nothing changed",
    )
}

async fn stale_updates(store: &dyn Store) -> Result<(), String> {
    let (owner, username) = account(store).await?;
    let mut d = device(&owner, &fresh());
    d.alternate_arn = Some(format!(
        "arn:aws:sns:us-east-1:1:endpoint/APNS_SANDBOX/app/{}",
        fresh()
    ));
    store
        .save_device(&write(&d, &username, true, ClaimChange::Create))
        .await
        .map_err(|e| format!("save: {e}"))?;
    let first = read(store, &d).await?;
    let mut renamed = first.clone();
    renamed.name = Some("x".into());
    store
        .save_device(&write(&renamed, &username, false, ClaimChange::Keep))
        .await
        .map_err(|e| format!("rename: {e}"))?;
    let e = |r: Result<bool, crate::ports::PortError>| r.map_err(|e| e.to_string());
    let alternate = first.alternate_arn.clone().unwrap_or_default();
    let failure = PushFailure {
        at_us: 7,
        reason: "EndpointDisabled".into(),
    };
    expect(
        !e(store.deactivate_device(&first, &failure).await)?,
        "deactivated a changed device",
    )?;
    expect(
        !e(store.mark_pushed(&first, 3).await)?,
        "marked a changed device pushed",
    )?;
    expect(
        !e(store.reenable_device(&first).await)?,
        "re-enabled a changed device",
    )?;
    expect(
        !e(store.drop_endpoint(&first, &alternate, None).await)?,
        "settled a changed device",
    )?;
    expect(
        !e(store.replace_endpoint(&first, &alternate, "arn:new").await)?,
        "re-pointed a changed device",
    )?;
    let now = read(store, &first).await?;
    expect(
        now.active && now.alternate_arn == first.alternate_arn,
        "a stale update landed",
    )?;
    // At the current version each lands, and bumps it.
    expect(
        e(store.drop_endpoint(&now, &alternate, Some(5)).await)?,
        "settling at the current version",
    )?;
    let settled = read(store, &now).await?;
    // The sandbox endpoint dead: it keeps its production one.
    let mut expected = now.clone();
    expected.alternate_arn = None;
    expected.pushed_on(5);
    expect(
        settled
            == DeviceRecord {
                version: now.version + 1,
                ..expected
            },
        "settled, marked pushed and bumped",
    )?;
    // Each push change lands as `DeviceRecord` says, and bumps the version.
    let mut at = settled;
    for step in 0..3 {
        let mut expected = at.clone();
        let (what, landed) = match step {
            0 => {
                expected.disable(&failure);
                ("deactivating", store.deactivate_device(&at, &failure).await)
            }
            1 => {
                expected.reenable();
                ("re-enabling", store.reenable_device(&at).await)
            }
            _ => {
                expected.pushed_on(6);
                ("marking pushed", store.mark_pushed(&at, 6).await)
            }
        };
        expect(e(landed)?, &format!("{what} at the current version"))?;
        expected.version += 1;
        let stored = read(store, &at).await?;
        expect(
            stored == expected,
            &format!("{what}: stored {stored:?}, expected {expected:?}"),
        )?;
        at = stored;
    }
    Ok(())
}

async fn stale_delete(store: &dyn Store) -> Result<(), String> {
    let (owner, username) = account(store).await?;
    let first = saved(store, &owner, &username).await?;
    let mut renamed = first.clone();
    renamed.name = Some("x".into());
    store
        .save_device(&write(&renamed, &username, false, ClaimChange::Keep))
        .await
        .map_err(|e| format!("rename: {e}"))?;
    let removal = store
        .delete_device(&first)
        .await
        .map_err(|e| e.to_string())?;
    expect(
        removal == DeviceRemoval::Changed,
        "deleted a changed device",
    )?;
    let now = read(store, &first).await?;
    let removal = store.delete_device(&now).await.map_err(|e| e.to_string())?;
    expect(
        removal
            == DeviceRemoval::Removed {
                endpoint_is_ours: true,
            },
        "deleting at the current version",
    )?;
    let claim = store
        .get_claim(now.kind, &now.registration_id)
        .await
        .map_err(|e| e.to_string())?;
    expect(claim.is_none(), "its claim went with it")
}

async fn device_cap(store: &dyn Store) -> Result<(), String> {
    let (owner, username) = account(store).await?;
    let mut devices = Vec::new();
    for _ in 0..3 {
        devices.push(saved(store, &owner, &username).await?);
    }
    let over = device(&owner, &fresh());
    match store
        .save_device(&write(&over, &username, true, ClaimChange::Create))
        .await
    {
        Err(WriteConflict::DeviceLimit) => {}
        other => return Err(format!("a fourth device: {other:?}")),
    }
    // A new device of this account taking a token from another of its own:
    // the count does not change, so the cap does not refuse it.
    let claim = store
        .get_claim(devices[0].kind, &devices[0].registration_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no claim")?;
    let successor = device(&owner, &devices[0].registration_id);
    store
        .save_device(&write(
            &successor,
            &username,
            true,
            ClaimChange::TakeFrom(claim),
        ))
        .await
        .map_err(|e| format!("a take-over within the account at its cap: {e}"))?;
    // Deleting one frees a place.
    let removed = store
        .delete_device(&devices[1])
        .await
        .map_err(|e| e.to_string())?;
    expect(removed != DeviceRemoval::Changed, "deleting one")?;
    store
        .save_device(&write(&over, &username, true, ClaimChange::Create))
        .await
        .map_err(|e| format!("a device after a deletion: {e}"))
}

async fn deletion_waits_for_devices(store: &dyn Store) -> Result<(), String> {
    let (owner, username) = account(store).await?;
    let d = saved(store, &owner, &username).await?;
    expect(
        store
            .begin_account_deletion(&owner, &username)
            .await
            .map_err(|e| e.to_string())?,
        "the mark",
    )?;
    let finished = store.finish_account_deletion(&owner, &username, "").await;
    expect(finished.is_err(), "finished with a device left")?;
    expect(
        store
            .get_account(&username)
            .await
            .map_err(|e| e.to_string())?
            .is_some(),
        "the account is still there",
    )?;
    store.delete_device(&d).await.map_err(|e| e.to_string())?;
    store
        .finish_account_deletion(&owner, &username, "")
        .await
        .map_err(|e| format!("finishing: {e}"))?;
    expect(
        store
            .get_account(&username)
            .await
            .map_err(|e| e.to_string())?
            .is_none(),
        "the account is gone",
    )
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_memory_store_keeps_the_store_contract() {
        let store = super::super::MemoryStore::default();
        let failures = super::run(&store).await;
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
