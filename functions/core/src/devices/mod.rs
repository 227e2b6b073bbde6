//! `device/apns/` and `device/gcm/`: one device per push token in the whole
//! service, each reachable through one SNS platform endpoint.

mod claims;
mod endpoints;
mod input;
mod writes;

use http::StatusCode;
use serde_json::{json, Value};

use claims::{after_take_over, claim_change, claim_change_from, clean_up};
pub(crate) use endpoints::settle_environment;
use endpoints::{
    delete_dropped_endpoints, ensure_endpoints, kind_supported, save_landed, settled_platform,
    target_platforms, Made,
};
pub use input::clean_registration_id;
use input::{read_registration, read_update, DeviceInput};
use writes::{device_write, saved_as_written};

use crate::accounts::authenticate;
use crate::error::ApiError;
use crate::model::ApiKeyRecord;
use crate::model::{DeviceKind, DeviceRecord};
use crate::page::page;
use crate::ports::{ClaimChange, DeviceRemoval};
use crate::request::ApiRequest;
use crate::response::ApiResponse;
use crate::retry::{deadline_of, retry_conflicts};
use crate::time::{format_day, format_timestamp};
use crate::Deps;

pub fn device_json(device: &DeviceRecord) -> Value {
    json!({
        "id": device.id,
        "registration_id": device.registration_id,
        "name": device.name,
        "device_id": device.device_id,
        "active": device.active,
        "date_created": format_timestamp(device.created_us),
        "push": push_json(device),
    })
}

/// A device's `push` object: why a push did or did not arrive. Nested, so
/// that no client meets a new top-level key (Android's Gson would put a
/// `type` into its `Device.type`); `environment` for APNs devices only.
fn push_json(device: &DeviceRecord) -> Value {
    let mut push = json!({
        "state": device.push_state().as_str(),
        "last_error": device.push.last_error.as_ref().map(|e| json!({
            "at": format_timestamp(e.at_us),
            "reason": e.reason,
        })),
        "last_push_day": device.push.last_push_day.map(format_day),
    });
    if let Some(environment) = device.environment() {
        push["environment"] = json!(environment);
    }
    push
}

/// `GET device/<kind>/`: page object of the caller's devices of that kind.
pub async fn list(
    deps: &Deps,
    req: &ApiRequest,
    kind: DeviceKind,
) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(deps, req).await?;
    let mut devices: Vec<DeviceRecord> = deps
        .store
        .list_devices(&caller.account_id)
        .await?
        .into_iter()
        .filter(|d| d.kind == kind)
        .collect();
    devices.sort_by_key(sort_key);
    let body = page(
        req,
        deps.settings.public_base_url.as_deref(),
        &devices,
        sort_key,
        device_json,
    )?;
    Ok(ApiResponse::json(StatusCode::OK, body))
}

fn sort_key(d: &DeviceRecord) -> String {
    format!("{:020}/{}", d.created_us, d.id)
}

/// `POST device/<kind>/`: `201` with a new device, `200` with the caller's
/// existing device for that push token.
pub async fn register(
    deps: &Deps,
    req: &ApiRequest,
    kind: DeviceKind,
) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(deps, req).await?;
    let (registration_id, input) = read_registration(req, kind).await?;
    kind_supported(deps, kind)?;
    // Checked before anything is written.
    target_platforms(deps, kind, input.environment, None)?;
    let made = Made::default();
    let result = retry_conflicts(&*deps.clock, deadline_of(deps, req), || {
        made.track(register_attempt(
            deps,
            &caller,
            kind,
            &input,
            &registration_id,
            &made,
        ))
    })
    .await;
    made.release_left(deps, result).await
}

/// One attempt at a registration, decided on what it reads now.
async fn register_attempt(
    deps: &Deps,
    caller: &ApiKeyRecord,
    kind: DeviceKind,
    input: &DeviceInput,
    registration_id: &str,
    made: &Made,
) -> Result<ApiResponse, ApiError> {
    let owner = &caller.account_id;
    let claim = deps.store.get_claim(kind, registration_id).await?;
    // The claim's device, read once: the attempt decides on this read of
    // it, never on a second that may disagree (a device that, between two
    // reads, lost the token and got it back would be taken over, not
    // answered). Ours and not holding the token as read: an orphan claim,
    // and the save's condition that the device still lacks the token
    // sends the attempt back to its reads if it got the token back.
    let holder_read = match &claim {
        Some(c) if c.owner == *owner => Some(deps.store.get_device(owner, &c.device_id).await?),
        _ => None,
    };
    let existing = holder_read
        .clone()
        .flatten()
        .filter(|d| d.registration_id == registration_id);
    if let Some(mut device) = existing {
        // Same account, same push token: the same device, refreshed (its
        // endpoints re-enabled), on condition that it is still as read.
        let old = device.clone();
        apply_optional(&mut device, input);
        device.written_by_owner(&old, Some(input.active.unwrap_or(true)), false, true);
        let settled = match input.environment {
            Some(_) => None,
            None => settled_platform(deps, &device).await?,
        };
        let targets = target_platforms(deps, kind, input.environment, settled)?;
        let reusable: Vec<&str> = old.endpoints().collect();
        (device.endpoint_arn, device.alternate_arn) =
            ensure_endpoints(deps, registration_id, &targets, &reusable).await?;
        let write = device_write(deps, caller, device.clone(), false, ClaimChange::Keep);
        made.made(&write.device);
        if let Err(e) = deps.store.save_device(&write).await {
            let e = ApiError::from(e);
            // Given up: carried on if it landed after all (its answers
            // lost), else what it ensured is released (`Made`).
            if matches!(e, ApiError::Conflict(_)) || !saved_as_written(deps, &write).await {
                return Err(e);
            }
        }
        clean_up("a dropped endpoint", || {
            delete_dropped_endpoints(deps, &old, &device)
        })
        .await;
        return Ok(ApiResponse::json(StatusCode::OK, device_json(&device)));
    }
    let id = crate::entropy::uuid_v4().to_string();
    // On the claim as read above: were it read again, a device this
    // account registered meanwhile would be taken over, not answered.
    let (claim_change, holder) = match (claim, holder_read) {
        (Some(claim), Some(_)) => (ClaimChange::TakeOrphan(claim), None),
        (claim, _) => claim_change_from(deps, claim, registration_id, &id).await?,
    };
    let targets = target_platforms(deps, kind, input.environment, None)?;
    let (endpoint_arn, alternate_arn) =
        ensure_endpoints(deps, registration_id, &targets, &[]).await?;
    let device = DeviceRecord {
        id,
        owner: owner.clone(),
        kind,
        registration_id: registration_id.to_string(),
        name: input.name.clone().flatten(),
        device_id: input.device_id.clone().flatten(),
        active: input.active.unwrap_or(true),
        created_us: deps.clock.now_us(),
        endpoint_arn,
        alternate_arn,
        version: 0,
        push: Default::default(),
    };
    let write = device_write(deps, caller, device.clone(), true, claim_change);
    made.made(&device);
    if let Err(e) = deps.store.save_device(&write).await {
        let e = ApiError::from(e);
        // Given up (the account is being deleted, or AWS failed): carried
        // on if it landed after all (its answer lost), else its endpoints
        // released. A conflict's retry reuses them (one endpoint per push
        // token).
        if matches!(e, ApiError::Conflict(_)) || !save_landed(deps, &device).await {
            return Err(e);
        }
    }
    if let Some(holder) = &holder {
        // The push token moved here; the old record is gone, and so must
        // be what was issued for it.
        after_take_over(deps, holder, &device).await;
    }
    Ok(ApiResponse::json(StatusCode::CREATED, device_json(&device)))
}

fn apply_optional(device: &mut DeviceRecord, input: &DeviceInput) {
    if let Some(name) = &input.name {
        device.name = name.clone();
    }
    if let Some(device_id) = &input.device_id {
        device.device_id = device_id.clone();
    }
}

async fn own_device(
    deps: &Deps,
    owner: &str,
    kind: DeviceKind,
    id: &str,
) -> Result<DeviceRecord, ApiError> {
    if uuid::Uuid::try_parse(id).is_err() {
        return Err(ApiError::NotFound);
    }
    match deps.store.get_device(owner, id).await? {
        Some(device) if device.kind == kind => Ok(device),
        _ => Err(ApiError::NotFound),
    }
}

/// `GET device/<kind>/<id>/`.
pub async fn retrieve(
    deps: &Deps,
    req: &ApiRequest,
    kind: DeviceKind,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(deps, req).await?;
    let device = own_device(deps, &caller.account_id, kind, id).await?;
    Ok(ApiResponse::json(StatusCode::OK, device_json(&device)))
}

/// `PUT` (`partial == false`) and `PATCH` of `device/<kind>/<id>/`. PUT
/// replaces: optional fields it does not send are cleared, `active` defaults
/// to true. Read-only and unknown fields are ignored.
pub async fn update(
    deps: &Deps,
    req: &ApiRequest,
    kind: DeviceKind,
    id: &str,
    partial: bool,
) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(deps, req).await?;
    let input = read_update(req, kind, partial).await?;
    let made = Made::default();
    let result = retry_conflicts(&*deps.clock, deadline_of(deps, req), || {
        made.track(update_attempt(deps, &caller, kind, id, &input, &made))
    })
    .await;
    made.release_left(deps, result).await
}

/// One attempt at an update, decided on what it reads now.
async fn update_attempt(
    deps: &Deps,
    caller: &ApiKeyRecord,
    kind: DeviceKind,
    id: &str,
    input: &DeviceInput,
    made: &Made,
) -> Result<ApiResponse, ApiError> {
    let mut device = own_device(deps, &caller.account_id, kind, id).await?;
    let old = device.clone();
    let new_token = input
        .registration_id
        .clone()
        .filter(|t| *t != old.registration_id);
    // A new push token (its environment unknown again, unless named), the
    // same one with its APNs environment named, or a device the push
    // service had disabled turned on again: the endpoints are chosen anew.
    let revived = old.revived_by(input.active);
    let renewed = new_token.is_some() || input.environment.is_some() || revived;
    apply_optional(&mut device, input);
    device.written_by_owner(&old, input.active, new_token.is_some(), renewed);
    let mut write = device_write(deps, caller, device, false, ClaimChange::Keep);
    let mut holder = None;
    if renewed {
        kind_supported(deps, kind)?;
        // Turned on again, same token: the environment it settled on.
        let settled = match (revived && new_token.is_none(), input.environment) {
            (true, None) => settled_platform(deps, &old).await?,
            _ => None,
        };
        let targets = target_platforms(deps, kind, input.environment, settled)?;
        // The same token: its own endpoints, re-enabled. A new one: the
        // endpoints of that token (made, or adopted from the device that
        // holds it); ours are retired after the save.
        let mut reusable: Vec<&str> = old.endpoints().collect();
        if let Some(token) = &new_token {
            (write.claim, holder) = claim_change(deps, kind, token, &old.id).await?;
            write.release_claim_of = Some(old.registration_id.clone());
            write.device.registration_id = token.clone();
            reusable.clear();
        }
        (write.device.endpoint_arn, write.device.alternate_arn) =
            ensure_endpoints(deps, &write.device.registration_id, &targets, &reusable).await?;
        made.made(&write.device);
    }
    if let Err(e) = deps.store.save_device(&write).await {
        let e = ApiError::from(e);
        // Given up: carried on if the save landed after all (its answers
        // lost; the device read back as written tells — not the new
        // token's claim, which a concurrent update of this same device to
        // the same token also makes ours), else the endpoints it made
        // released. Not on a conflict: the write that won may be about to
        // record the same endpoint (one per token), and the retry reuses it.
        if matches!(e, ApiError::Conflict(_)) {
            return Err(e);
        }
        if !saved_as_written(deps, &write).await {
            // Gone meanwhile: whether this save landed before the deletion
            // or not, the old token's endpoints serve no device of ours now,
            // and landed, nothing else would retire them (the explorer,
            // emulator seed 8 with faults) — unless another device holds
            // that token (`delete_dropped_endpoints` reads its claim).
            let gone = matches!(deps.store.get_device(&old.owner, &old.id).await, Ok(None));
            if gone && new_token.is_some() {
                clean_up("the old token's endpoints", || {
                    delete_dropped_endpoints(deps, &old, &write.device)
                })
                .await;
            }
            return Err(e);
        }
    }
    clean_up("a dropped endpoint", || {
        delete_dropped_endpoints(deps, &old, &write.device)
    })
    .await;
    if let Some(holder) = &holder {
        after_take_over(deps, holder, &write.device).await;
    }
    Ok(ApiResponse::json(
        StatusCode::OK,
        device_json(&write.device),
    ))
}

/// `DELETE device/<kind>/<id>/`: the device, its endpoint and its tokens.
pub async fn delete(
    deps: &Deps,
    req: &ApiRequest,
    kind: DeviceKind,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(deps, req).await?;
    // A device gone meanwhile is read again as gone: `404`.
    retry_conflicts(&*deps.clock, deadline_of(deps, req), || async {
        let device = own_device(deps, &caller.account_id, kind, id).await?;
        remove_device(deps, &device).await
    })
    .await?;
    Ok(ApiResponse::no_content())
}

/// Deletes a device record (and its claim) on condition that it is still
/// as read, then its endpoint if no other device took its push token
/// meanwhile (the endpoint is then theirs), then the tokens issued for it —
/// none can be created once it is gone. `Conflict` when it changed or went
/// meanwhile: the caller reads it again.
pub(crate) async fn remove_device(deps: &Deps, device: &DeviceRecord) -> Result<(), ApiError> {
    remove_device_record(deps, device).await?;
    deps.store
        .delete_device_tokens(&device.owner, &device.id)
        .await?;
    Ok(())
}

/// [`remove_device`] but for the tokens (an account deletion removes them
/// all at once).
pub(crate) async fn remove_device_record(
    deps: &Deps,
    device: &DeviceRecord,
) -> Result<(), ApiError> {
    match deps.store.delete_device(device).await? {
        DeviceRemoval::Changed => Err(ApiError::Conflict("device changed meanwhile".into())),
        DeviceRemoval::Removed { endpoint_is_ours } => {
            if endpoint_is_ours {
                for arn in device.endpoints() {
                    if let Err(e) = deps.push.delete_endpoint(arn).await {
                        // The record is gone and no knock reaches the
                        // endpoint any more; an app registering the same
                        // push token adopts it again.
                        tracing::warn!(device = %device.id, error = %e, "left an endpoint behind");
                    }
                }
            }
            Ok(())
        }
    }
}
