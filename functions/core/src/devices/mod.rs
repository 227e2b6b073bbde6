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
use crate::model::{DeviceKind, DeviceRecord, Platform};
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
    if deps.push.platforms(kind).is_empty() {
        Err(ApiError::field(
            "registration_id",
            format!(
                "This server is not configured for {} devices.",
                kind.as_str()
            ),
        ))
    } else {
        Ok(())
    }
}

/// The platforms a device's push token is to be pushed through: the APNs
/// environment the client named; else the one its device already settled
/// on for this same push token (`settled`); else every one the app has
/// (both APNs environments until one is reported dead).
fn target_platforms(
    deps: &Deps,
    kind: DeviceKind,
    named: Option<Platform>,
    settled: Option<Platform>,
) -> Result<Vec<Platform>, ApiError> {
    let configured = deps.push.platforms(kind);
    if kind != DeviceKind::Apns {
        return Ok(configured);
    }
    match named {
        Some(platform) if configured.contains(&platform) => Ok(vec![platform]),
        Some(platform) => Err(ApiError::field(
            "environment",
            format!(
                "This app has no APNs {} application: use {}.",
                platform.environment(),
                configured
                    .iter()
                    .map(|p| format!("\"{}\"", p.environment()))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        )),
        None => match settled.filter(|p| configured.contains(p)) {
            Some(platform) => Ok(vec![platform]),
            None => Ok(configured),
        },
    }
}

/// The APNs environment a device with one endpoint has settled on.
fn settled_platform(device: &DeviceRecord) -> Option<Platform> {
    match device.alternate_arn {
        None => Platform::of_arn(&device.endpoint_arn),
        Some(_) => None,
    }
}

/// Makes (or updates) one enabled endpoint carrying `token` per platform in
/// `targets`, reusing the endpoint of `reusable` that is on the same
/// platform; returns them in the order of `targets`.
async fn ensure_endpoints(
    deps: &Deps,
    token: &str,
    targets: &[Platform],
    reusable: &[&str],
) -> Result<(String, Option<String>), ApiError> {
    let mut arns = Vec::with_capacity(targets.len());
    for platform in targets {
        let known = reusable
            .iter()
            .copied()
            .find(|arn| Platform::of_arn(arn) == Some(*platform));
        arns.push(deps.push.ensure_endpoint(*platform, token, known).await?);
    }
    let mut arns = arns.into_iter();
    let first = arns
        .next()
        .ok_or_else(|| ApiError::Internal("no platform to push through".into()))?;
    Ok((first, arns.next()))
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
        let old = device.clone();
        apply_optional(&mut device, input);
        device.active = input.active.unwrap_or(true);
        let targets = target_platforms(deps, kind, input.environment, settled_platform(&device))?;
        let reusable: Vec<&str> = old.endpoints().collect();
        (device.endpoint_arn, device.alternate_arn) =
            ensure_endpoints(deps, registration_id, &targets, &reusable).await?;
        let write = device_write(deps, caller, device.clone(), false, ClaimChange::Keep);
        deps.store.save_device(&write).await?;
        delete_dropped_endpoints(deps, &old, &device).await?;
        return Ok(ApiResponse::json(StatusCode::OK, device_json(&device)));
    }
    let targets = target_platforms(deps, kind, input.environment, None)?;
    let (endpoint_arn, alternate_arn) =
        ensure_endpoints(deps, registration_id, &targets, &[]).await?;
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
        alternate_arn,
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
            release_unclaimed_endpoints(deps, &device).await;
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

/// Deletes the endpoints made for a device that was not saved, if still no
/// device claims its push token; best effort (a leftover is adopted by the
/// next registration of the token).
async fn release_unclaimed_endpoints(deps: &Deps, device: &DeviceRecord) {
    if let Ok(None) = deps
        .store
        .get_claim(device.kind, &device.registration_id)
        .await
    {
        for arn in device.endpoints() {
            if let Err(e) = deps.push.delete_endpoint(arn).await {
                tracing::warn!(error = %e, "left an unclaimed endpoint behind");
            }
        }
    }
}

/// After a save: deletes the endpoints `old` had that `new` no longer has.
async fn delete_dropped_endpoints(
    deps: &Deps,
    old: &DeviceRecord,
    new: &DeviceRecord,
) -> Result<(), ApiError> {
    for arn in old.endpoints() {
        if !new.endpoints().any(|kept| kept == arn) {
            deps.push.delete_endpoint(arn).await?;
        }
    }
    Ok(())
}

/// A device of unknown APNs environment whose endpoint `dead_arn` is
/// reported dead (disabled by SNS, or gone) settles on its other one: the
/// record first, on condition, then the dead endpoint goes. `false` when the
/// device changed meanwhile (nothing done).
pub(crate) async fn settle_environment(
    deps: &Deps,
    device: &DeviceRecord,
    dead_arn: &str,
) -> Result<bool, crate::ports::PortError> {
    if !deps.store.drop_endpoint(device, dead_arn).await? {
        return Ok(false);
    }
    tracing::info!(device = %device.id, "device settled on its APNs environment");
    if let Err(e) = deps.push.delete_endpoint(dead_arn).await {
        tracing::warn!(device = %device.id, error = %e, "left a dead endpoint behind");
    }
    Ok(true)
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
    let old = device.clone();
    apply_optional(&mut device, input);
    if let Some(active) = input.active {
        device.active = active;
    }
    let mut write = device_write(deps, caller, device.clone(), false, ClaimChange::Keep);
    let new_token = input
        .registration_id
        .clone()
        .filter(|t| *t != device.registration_id);
    // A new push token (its environment unknown again, unless named), or the
    // same one with its APNs environment named: the endpoints are chosen anew.
    if new_token.is_some() || input.environment.is_some() {
        kind_supported(deps, kind)?;
        let targets = target_platforms(deps, kind, input.environment, None)?;
        if let Some(token) = &new_token {
            write.claim = match deps.store.get_claim(kind, token).await? {
                None => ClaimChange::Create,
                Some(c) if c.device_id == device.id => ClaimChange::Keep,
                Some(c) => ClaimChange::TakeFrom(c),
            };
            write.release_claim_of = Some(device.registration_id.clone());
            write.device.registration_id = token.clone();
        }
        // A token nobody holds: move our endpoints to it (AWS's practice).
        // A token another device holds: that device's endpoints already
        // carry it, so adopt those and retire ours.
        let reusable: Vec<&str> = match write.claim {
            ClaimChange::TakeFrom(_) => vec![],
            _ => old.endpoints().collect(),
        };
        (write.device.endpoint_arn, write.device.alternate_arn) =
            ensure_endpoints(deps, &write.device.registration_id, &targets, &reusable).await?;
    }
    deps.store.save_device(&write).await?;
    delete_dropped_endpoints(deps, &old, &write.device).await?;
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
                for arn in device.endpoints() {
                    if let Err(e) = deps.push.delete_endpoint(arn).await {
                        // The record is gone and no knock reaches the
                        // endpoint any more; an app registering the same
                        // push token adopts it again.
                        tracing::warn!(device = %device.id, error = %e, "left an endpoint behind");
                    }
                }
            }
        }
    }
    Ok(true)
}
