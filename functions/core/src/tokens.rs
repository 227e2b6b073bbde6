//! `tokens/`: whitelist tokens, issued for one of the caller's devices and
//! honoured for all of them until they expire or are revoked.

use http::StatusCode;
use serde_json::{json, Map, Value};

use crate::accounts::authenticate;
use crate::devices::clean_registration_id;
use crate::error::ApiError;
use crate::model::{DeviceKind, DeviceRecord, TokenRecord};
use crate::page::page;
use crate::ports::WriteConflict;
use crate::request::ApiRequest;
use crate::response::ApiResponse;
use crate::retry::{deadline_of, retry_conflicts};
use crate::time::{format_timestamp, Micros};
use crate::{secrets, Deps};

/// Longest whitelist token value any route accepts (PROTOCOL.md, messages/).
pub const MAX_TOKEN_CHARS: usize = 200;

/// The token object; null fields are omitted (the iOS SDK reads the device key).
pub fn token_json(token: &TokenRecord) -> Value {
    let mut map = Map::new();
    map.insert("token".into(), json!(token.token));
    if let Some(name) = &token.name {
        map.insert("name".into(), json!(name));
    }
    map.insert(token.kind.token_field().into(), json!(token.device_id));
    map.insert(
        "date_expires".into(),
        json!(format_timestamp(token.expires_us)),
    );
    Value::Object(map)
}

/// Newest first: the key grows as creation time falls.
fn sort_key(t: &TokenRecord) -> String {
    format!("{:020}/{}", Micros::MAX - t.created_us, t.token)
}

/// Finds the caller's device named by `value`: its id, or (as the iOS SDK's
/// documentation does) its push token.
async fn resolve_device(
    deps: &Deps,
    owner: &str,
    kind: DeviceKind,
    value: &str,
) -> Result<Option<DeviceRecord>, ApiError> {
    if uuid::Uuid::try_parse(value).is_ok() && value.len() == 36 {
        return Ok(deps
            .store
            .get_device(owner, &value.to_ascii_lowercase())
            .await?
            .filter(|d| d.kind == kind));
    }
    let Ok(registration_id) = clean_registration_id(kind, value) else {
        return Ok(None);
    };
    match deps.store.get_claim(kind, &registration_id).await? {
        Some(claim) if claim.owner == owner => Ok(deps
            .store
            .get_device(owner, &claim.device_id)
            .await?
            .filter(|d| d.kind == kind)),
        _ => Ok(None),
    }
}

/// `POST tokens/`.
pub async fn create(deps: &Deps, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(deps, req).await?;
    let mut fields = req.fields().await?;
    let name = fields.opt_string("name", 100);
    let mut named: Vec<(DeviceKind, String)> = Vec::new();
    for kind in [DeviceKind::Apns, DeviceKind::Gcm] {
        let field = kind.token_field();
        if let Some(value) = fields.opt_string(field, 4096) {
            if !value.trim().is_empty() {
                named.push((kind, value));
            }
        }
    }
    fields.finish()?;
    let (kind, value) = match named.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(ApiError::non_field(
                "Exactly one of apns_device or gcm_device is required.",
            ))
        }
        _ => {
            return Err(ApiError::non_field(
                "Give only one of apns_device or gcm_device, not both.",
            ))
        }
    };
    let owner = caller.account_id.clone();
    let Some(device) = resolve_device(deps, &owner, kind, value.trim()).await? else {
        return Err(ApiError::field(
            kind.token_field(),
            "Invalid device: no such device of yours.",
        ));
    };
    // The cap on live tokens keeps every read of them bounded. Counted before
    // the write: concurrent creations can pass it together, at most by the
    // creations in flight (which the creation limit bounds).
    let cap = deps.settings.live_token_limit;
    if deps
        .store
        .count_live_tokens(&owner, deps.clock.now_us())
        .await?
        >= cap as usize
    {
        return Err(ApiError::non_field(format!(
            "This account has {cap} live tokens, the most it may have: revoke one first."
        )));
    }
    retry_conflicts(&*deps.clock, deadline_of(deps, req), || {
        create_attempt(deps, &device, name.clone())
    })
    .await
}

/// One attempt at storing a fresh token for `device`.
async fn create_attempt(
    deps: &Deps,
    device: &DeviceRecord,
    name: Option<String>,
) -> Result<ApiResponse, ApiError> {
    let now = deps.clock.now_us();
    let lifetime = i64::try_from(deps.settings.token_lifetime.as_micros()).unwrap_or(i64::MAX);
    let record = TokenRecord {
        token: secrets::new_whitelist_token(),
        owner: device.owner.clone(),
        device_id: device.id.clone(),
        kind: device.kind,
        name,
        created_us: now,
        expires_us: now.saturating_add(lifetime),
    };
    match deps
        .store
        .create_token(&record, deps.settings.token_limit)
        .await
    {
        Ok(()) => Ok(ApiResponse::json(StatusCode::CREATED, token_json(&record))),
        // A collision of 160 random bits, or the device vanished meanwhile:
        // re-check the device and try again.
        Err(WriteConflict::Conflict) => {
            if deps
                .store
                .get_device(&device.owner, &device.id)
                .await?
                .is_none()
            {
                return Err(ApiError::field(
                    device.kind.token_field(),
                    "Invalid device: no such device of yours.",
                ));
            }
            Err(ApiError::Conflict("token creation met a conflict".into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET tokens/`: the caller's live tokens, newest first.
pub async fn list(deps: &Deps, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(deps, req).await?;
    let now = deps.clock.now_us();
    let mut tokens: Vec<TokenRecord> = deps
        .store
        .list_tokens(&caller.account_id)
        .await?
        .into_iter()
        .filter(|t| t.is_live(now))
        .collect();
    tokens.sort_by_key(sort_key);
    let body = page(
        req,
        deps.settings.public_base_url.as_deref(),
        &tokens,
        sort_key,
        token_json,
    )?;
    Ok(ApiResponse::json(StatusCode::OK, body))
}

fn plausible(token: &str) -> Result<(), ApiError> {
    if token.is_empty() || token.chars().count() > MAX_TOKEN_CHARS {
        Err(ApiError::NotFound)
    } else {
        Ok(())
    }
}

/// `GET tokens/<token>`: one object, not a page.
pub async fn retrieve(deps: &Deps, req: &ApiRequest, token: &str) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(deps, req).await?;
    plausible(token)?;
    own_token_response(deps, &caller.account_id, token).await
}

/// The caller's live token as a response; another's, expired or unknown: `404`.
async fn own_token_response(
    deps: &Deps,
    owner: &str,
    token: &str,
) -> Result<ApiResponse, ApiError> {
    match deps.store.get_own_token(owner, token).await? {
        Some(t) if t.is_live(deps.clock.now_us()) => {
            Ok(ApiResponse::json(StatusCode::OK, token_json(&t)))
        }
        _ => Err(ApiError::NotFound),
    }
}

/// `PUT`/`PATCH tokens/<token>/`: rename. PUT without `name` clears it; PATCH
/// without `name` changes nothing. Device keys are ignored.
pub async fn rename(
    deps: &Deps,
    req: &ApiRequest,
    token: &str,
    partial: bool,
) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(deps, req).await?;
    plausible(token)?;
    let mut fields = req.fields().await?;
    let name = fields.opt_string("name", 100);
    let sent = fields.has("name");
    fields.finish()?;
    let now = deps.clock.now_us();
    if partial && !sent {
        // Nothing to change: answer with the token as it is.
        return own_token_response(deps, &caller.account_id, token).await;
    }
    let renamed = retry_conflicts(&*deps.clock, deadline_of(deps, req), || async {
        Ok(deps
            .store
            .rename_token(&caller.account_id, token, name.as_deref(), now)
            .await?)
    })
    .await?;
    match renamed {
        Some(t) => Ok(ApiResponse::json(StatusCode::OK, token_json(&t))),
        None => Err(ApiError::NotFound),
    }
}

/// `DELETE tokens/<token>/`: revoke.
pub async fn revoke(deps: &Deps, req: &ApiRequest, token: &str) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(deps, req).await?;
    plausible(token)?;
    let now = deps.clock.now_us();
    let deleted = retry_conflicts(&*deps.clock, deadline_of(deps, req), || async {
        Ok(deps
            .store
            .delete_token(&caller.account_id, token, now)
            .await?)
    })
    .await?;
    if deleted {
        Ok(ApiResponse::no_content())
    } else {
        Err(ApiError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_json_omits_null_name_and_names_the_device_kind() {
        let t = TokenRecord {
            token: "ab".repeat(20),
            owner: "o".into(),
            device_id: "d".into(),
            kind: DeviceKind::Gcm,
            name: None,
            created_us: 0,
            expires_us: 1_526_154_499_888_451,
        };
        assert_eq!(
            token_json(&t),
            json!({"token": "ab".repeat(20), "gcm_device": "d", "date_expires": "2018-05-12T19:48:19.888451Z"})
        );
    }

    #[test]
    fn newer_tokens_sort_first() {
        let mk = |created_us| TokenRecord {
            token: "t".into(),
            owner: "o".into(),
            device_id: "d".into(),
            kind: DeviceKind::Apns,
            name: None,
            created_us,
            expires_us: 0,
        };
        assert!(sort_key(&mk(2_000)) < sort_key(&mk(1_000)));
    }
}
