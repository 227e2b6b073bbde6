//! `device/apns/` and `device/gcm/`: one device per push token in the whole
//! service, each reachable through one SNS platform endpoint.

mod input;

use http::StatusCode;
use serde_json::{json, Value};

pub use input::clean_registration_id;
use input::{read_registration, read_update, DeviceInput};

use crate::accounts::authenticate;
use crate::error::ApiError;
use crate::model::ApiKeyRecord;
use crate::model::{DeviceKind, DeviceRecord};
use crate::page::page;
use crate::ports::{ClaimChange, DeviceRemoval, DeviceWrite};
use crate::request::ApiRequest;
use crate::response::ApiResponse;
use crate::retry::{deadline_of, retry_conflicts};
use crate::time::format_timestamp;
use crate::Deps;

pub fn device_json(device: &DeviceRecord) -> Value {
    json!({
        "id": device.id,
        "registration_id": device.registration_id,
        "name": device.name,
        "device_id": device.device_id,
        "active": device.active,
        "date_created": format_timestamp(device.created_us),
    })
}

fn kind_supported(deps: &Deps, kind: DeviceKind) -> Result<(), ApiError> {
    if deps.push.supports(kind) {
        Ok(())
    } else {
        Err(ApiError::field(
            "registration_id",
            format!(
                "This server is not configured for {} devices.",
                kind.as_str()
            ),
        ))
    }
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
    retry_conflicts(&*deps.clock, deadline_of(deps, req), || {
        register_attempt(deps, &caller, kind, &input, &registration_id)
    })
    .await
}

/// One attempt at a registration, decided on what it reads now.
async fn register_attempt(
    deps: &Deps,
    caller: &ApiKeyRecord,
    kind: DeviceKind,
    input: &DeviceInput,
    registration_id: &str,
) -> Result<ApiResponse, ApiError> {
    let owner = &caller.account_id;
    let claim = deps.store.get_claim(kind, registration_id).await?;
    let existing = match &claim {
        Some(c) if c.owner == *owner => deps.store.get_device(owner, &c.device_id).await?,
        _ => None,
    };
    if let Some(mut device) = existing {
        // Same account, same push token: the same device, refreshed.
        apply_optional(&mut device, input);
        device.active = input.active.unwrap_or(true);
        device.endpoint_arn = deps
            .push
            .ensure_endpoint(kind, registration_id, Some(&device.endpoint_arn))
            .await?;
        let write = device_write(deps, caller, device.clone(), false, ClaimChange::Keep);
        deps.store.save_device(&write).await?;
        return Ok(ApiResponse::json(StatusCode::OK, device_json(&device)));
    }
    let endpoint_arn = deps
        .push
        .ensure_endpoint(kind, registration_id, None)
        .await?;
    let device = DeviceRecord {
        id: uuid::Uuid::new_v4().to_string(),
        owner: owner.clone(),
        kind,
        registration_id: registration_id.to_string(),
        name: input.name.clone().flatten(),
        device_id: input.device_id.clone().flatten(),
        active: input.active.unwrap_or(true),
        created_us: deps.clock.now_us(),
        endpoint_arn,
    };
    let claim_change = match claim {
        None => ClaimChange::Create,
        Some(c) => ClaimChange::TakeFrom(c),
    };
    let write = device_write(deps, caller, device.clone(), true, claim_change.clone());
    if let Err(e) = deps.store.save_device(&write).await {
        let e = ApiError::from(e);
        if !matches!(e, ApiError::Conflict(_)) && claim_change == ClaimChange::Create {
            // Given up (the account is being deleted, or AWS failed): the
            // endpoint made for a push token nobody holds serves no one.
            // A conflict's retry reuses it (one endpoint per push token).
            release_unclaimed_endpoint(deps, kind, registration_id, &device.endpoint_arn).await;
        }
        return Err(e);
    }
    if let ClaimChange::TakeFrom(previous) = claim_change {
        // The push token moved here; the old record is gone, and so
        // must be the whitelist tokens issued for it.
        deps.store
            .delete_device_tokens(&previous.owner, &previous.device_id)
            .await?;
        tracing::info!(device = %device.id, "push token moved to this device");
    }
    Ok(ApiResponse::json(StatusCode::CREATED, device_json(&device)))
}

/// Deletes an endpoint made for `registration_id` if still no device claims
/// that push token; best effort (a leftover is adopted by the next
/// registration of the token).
async fn release_unclaimed_endpoint(
    deps: &Deps,
    kind: DeviceKind,
    registration_id: &str,
    arn: &str,
) {
    if let Ok(None) = deps.store.get_claim(kind, registration_id).await {
        if let Err(e) = deps.push.delete_endpoint(arn).await {
            tracing::warn!(error = %e, "left an unclaimed endpoint behind");
        }
    }
}

/// A device write by `caller`, under the account's device cap and
/// registration limit as configured.
fn device_write(
    deps: &Deps,
    caller: &ApiKeyRecord,
    device: DeviceRecord,
    is_new: bool,
    claim: ClaimChange,
) -> DeviceWrite {
    DeviceWrite {
        device,
        owner_username: caller.username.clone(),
        device_limit: deps.settings.device_limit,
        registration_limit: deps.settings.device_registration_limit,
        now_us: deps.clock.now_us(),
        is_new,
        claim,
        release_claim_of: None,
    }
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
    retry_conflicts(&*deps.clock, deadline_of(deps, req), || {
        update_attempt(deps, &caller, kind, id, &input)
    })
    .await
}

/// One attempt at an update, decided on what it reads now.
async fn update_attempt(
    deps: &Deps,
    caller: &ApiKeyRecord,
    kind: DeviceKind,
    id: &str,
    input: &DeviceInput,
) -> Result<ApiResponse, ApiError> {
    let mut device = own_device(deps, &caller.account_id, kind, id).await?;
    let old_arn = device.endpoint_arn.clone();
    apply_optional(&mut device, input);
    if let Some(active) = input.active {
        device.active = active;
    }
    let mut write = device_write(deps, caller, device.clone(), false, ClaimChange::Keep);
    let new_token = input
        .registration_id
        .clone()
        .filter(|t| *t != device.registration_id);
    if let Some(token) = &new_token {
        kind_supported(deps, kind)?;
        let claim = deps.store.get_claim(kind, token).await?;
        write.claim = match claim {
            None => ClaimChange::Create,
            Some(c) if c.device_id == device.id => ClaimChange::Keep,
            Some(c) => ClaimChange::TakeFrom(c),
        };
        // A token nobody holds: move our endpoint to it (AWS's practice).
        // A token another device holds: that device's endpoint already
        // carries it, so adopt that one and retire ours.
        let known = match write.claim {
            ClaimChange::TakeFrom(_) => None,
            _ => Some(old_arn.as_str()),
        };
        write.device.endpoint_arn = deps.push.ensure_endpoint(kind, token, known).await?;
        write.release_claim_of = Some(device.registration_id.clone());
        write.device.registration_id = token.clone();
    }
    deps.store.save_device(&write).await?;
    if write.device.endpoint_arn != old_arn {
        deps.push.delete_endpoint(&old_arn).await?;
    }
    if let ClaimChange::TakeFrom(previous) = &write.claim {
        deps.store
            .delete_device_tokens(&previous.owner, &previous.device_id)
            .await?;
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
    let removed = retry_conflicts(&*deps.clock, deadline_of(deps, req), || async {
        let device = own_device(deps, &caller.account_id, kind, id).await?;
        remove_device(deps, &device).await
    })
    .await?;
    if !removed {
        return Err(ApiError::NotFound);
    }
    Ok(ApiResponse::no_content())
}

/// Deletes a device record (and its claim), then its endpoint if no other
/// device took its push token meanwhile (the endpoint is then theirs), then
/// the tokens issued for it — none can be created once it is gone. `false`
/// when it was already gone.
pub(crate) async fn remove_device(deps: &Deps, device: &DeviceRecord) -> Result<bool, ApiError> {
    if !remove_device_record(deps, device).await? {
        return Ok(false);
    }
    deps.store
        .delete_device_tokens(&device.owner, &device.id)
        .await?;
    Ok(true)
}

/// [`remove_device`] but for the tokens (an account deletion removes them
/// all at once).
pub(crate) async fn remove_device_record(
    deps: &Deps,
    device: &DeviceRecord,
) -> Result<bool, ApiError> {
    match deps.store.delete_device(device).await? {
        DeviceRemoval::Gone => return Ok(false),
        DeviceRemoval::Removed { endpoint_is_ours } => {
            if endpoint_is_ours {
                if let Err(e) = deps.push.delete_endpoint(&device.endpoint_arn).await {
                    // The record is gone and no knock reaches the endpoint
                    // any more; an app registering the same push token adopts
                    // it again.
                    tracing::warn!(device = %device.id, error = %e, "left an endpoint behind");
                }
            }
        }
    }
    Ok(true)
}
