//! The push-token claim a device save must change, and what a save that
//! took a token over leaves to clean up.

use crate::error::ApiError;
use crate::model::{DeviceKind, DeviceRecord, PushTokenClaim};
use crate::ports::ClaimChange;
use crate::Deps;

/// What a save must do to the claim on `token` for device `me`, as read
/// now, and the device it takes the token from: a claim of a device that
/// no longer holds the token is an orphan, free to take.
pub(super) async fn claim_change(
    deps: &Deps,
    kind: DeviceKind,
    token: &str,
    me: &str,
) -> Result<(ClaimChange, Option<DeviceRecord>), ApiError> {
    let claim = deps.store.get_claim(kind, token).await?;
    claim_change_from(deps, claim, token, me).await
}

/// [`claim_change`] on a claim the attempt has already read: an attempt
/// decides on one read of the claim, never on two that may disagree (a
/// registration that read no claim, then read the one a concurrent
/// registration of the same account just made, would take that device's
/// token over instead of answering with it).
pub(super) async fn claim_change_from(
    deps: &Deps,
    claim: Option<PushTokenClaim>,
    token: &str,
    me: &str,
) -> Result<(ClaimChange, Option<DeviceRecord>), ApiError> {
    let Some(claim) = claim else {
        return Ok((ClaimChange::Create, None));
    };
    if claim.device_id == me {
        return Ok((ClaimChange::Keep, None));
    }
    let holder = deps
        .store
        .get_device(&claim.owner, &claim.device_id)
        .await?;
    Ok(match holder {
        Some(d) if d.registration_id == token => (ClaimChange::TakeFrom(claim), Some(d)),
        _ => (ClaimChange::TakeOrphan(claim), None),
    })
}

/// After a save that took the push token from `holder`: the whitelist
/// tokens issued for it, and its endpoints the new device does not use
/// (its other APNs environment, say) — the token, and with it every
/// endpoint of the token, is the new device's now.
pub(super) async fn after_take_over(deps: &Deps, holder: &DeviceRecord, new: &DeviceRecord) {
    clean_up("the taken-over device's tokens", || async {
        Ok(deps
            .store
            .delete_device_tokens(&holder.owner, &holder.id)
            .await?)
    })
    .await;
    for arn in holder.endpoints() {
        if !new.endpoints().any(|kept| kept == arn) {
            clean_up("the taken-over device's unused endpoint", || async {
                Ok(deps.push.delete_endpoint(arn).await?)
            })
            .await;
        }
    }
    tracing::info!(device = %new.id, "push token moved to this device");
}

/// A clean-up after a save has landed. The operation has succeeded, so a
/// transient failure is tried again here (every clean-up is idempotent),
/// not by running the operation again from its reads — which would find
/// the save done and skip the clean-up. Left undone, it is logged.
pub(super) async fn clean_up<F, Fut>(what: &str, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), ApiError>>,
{
    for attempt in 1..=3u64 {
        match step().await {
            Ok(()) => return,
            Err(e) if attempt == 3 => {
                tracing::warn!(error = %e, "left undone after a save: {what}")
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await,
        }
    }
}
