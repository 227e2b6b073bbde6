//! A device's SNS endpoints: which platforms its push token goes through,
//! making them, and what becomes of the ones a device no longer uses.
//!
//! An endpoint carries one push token for its whole life: a device that
//! gets a new token gets the endpoint of that token (made, or the one SNS
//! already has: one per token and platform application), never its old
//! endpoint re-pointed. So an endpoint a record names always carries the
//! record's token, whichever of two racing writes lands; the SNS calls a
//! losing attempt made are harmless (see `docs/ARCHITECTURE.md`,
//! "Concurrency").

use crate::error::ApiError;
use crate::model::{DeviceKind, DeviceRecord, Platform};
use crate::ports::PortError;
use crate::Deps;

pub(super) fn kind_supported(deps: &Deps, kind: DeviceKind) -> Result<(), ApiError> {
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
pub(super) fn target_platforms(
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

/// The APNs environment a device has settled on: the one of its only
/// endpoint; or, while it has two, the one whose endpoint is still enabled
/// when SNS has disabled the other (APNs rejected the token there) — so a
/// re-registration does not re-enable the endpoint APNs just rejected.
pub(super) async fn settled_platform(
    deps: &Deps,
    device: &DeviceRecord,
) -> Result<Option<Platform>, PortError> {
    let Some(alternate) = &device.alternate_arn else {
        return Ok(Platform::of_arn(&device.endpoint_arn));
    };
    let (first, second) = futures_util::future::try_join(
        deps.push.endpoint_enabled(&device.endpoint_arn),
        deps.push.endpoint_enabled(alternate),
    )
    .await?;
    Ok(match (first, second) {
        (Some(true), Some(false)) => Platform::of_arn(&device.endpoint_arn),
        (Some(false), Some(true)) => Platform::of_arn(alternate),
        _ => None,
    })
}

/// Makes (or re-enables) one endpoint carrying `token` per platform in
/// `targets`, reusing the endpoint of `reusable` (endpoints that already
/// carry `token`) that is on the same platform; returns them in the order
/// of `targets`.
pub(super) async fn ensure_endpoints(
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

/// After a save of a new `device` that failed for good (not a conflict:
/// the account is going, or AWS failed): whether it landed after all, its
/// answer lost — the claim on its push token is then this device's own
/// (the save is one transaction), and the operation carries on as saved.
pub(super) async fn save_landed(deps: &Deps, device: &DeviceRecord) -> bool {
    matches!(
        deps.store.get_claim(device.kind, &device.registration_id).await,
        Ok(Some(claim)) if claim.device_id == device.id
    )
}

/// The endpoints an attempt ensured for `device` (all of its push token)
/// that the device now holding that token does not name serve no one:
/// they are deleted (all of them, if nobody claims the token). The
/// holder's are spared — it may be this very device, saved by a later
/// attempt, or another that adopted the same endpoints (one per token and
/// platform application). Best effort: a leftover is adopted by the next
/// registration of the token.
async fn release_unnamed(deps: &Deps, device: &DeviceRecord) {
    let kept: Vec<String> = match deps
        .store
        .get_claim(device.kind, &device.registration_id)
        .await
    {
        Ok(None) => Vec::new(),
        Ok(Some(claim)) => match deps.store.get_device(&claim.owner, &claim.device_id).await {
            Ok(Some(holder)) => holder.endpoints().map(str::to_string).collect(),
            _ => return,
        },
        Err(_) => return,
    };
    for arn in device
        .endpoints()
        .filter(|arn| !kept.iter().any(|k| k == arn))
    {
        if let Err(e) = deps.push.delete_endpoint(arn).await {
            tracing::warn!(error = %e, "left an unclaimed endpoint behind");
        }
    }
}

/// The devices an operation's attempts ensured endpoints for and did not
/// save. An attempt that loses on a conflict leaves its endpoints to its
/// retry, which reuses what it still needs (one endpoint per token); but a
/// retry decided on newer reads may need fewer, or others (the device
/// moved to one APNs environment meanwhile, say, or the endpoint it knew
/// was deleted and made anew). When the operation ends, what its last
/// attempt's device — or whichever device holds the token then — does not
/// name is released (`release_unnamed`), whether it succeeded or failed
/// otherwise. Not when it gave up on conflicts (`503`): a competing write
/// of the same token may be in flight, about to record them.
#[derive(Default)]
pub(super) struct Made {
    current: std::sync::Mutex<Option<DeviceRecord>>,
    left: std::sync::Mutex<Vec<DeviceRecord>>,
    conflicted: std::sync::atomic::AtomicBool,
}

fn locked<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Made {
    /// Runs one attempt: what it ensured endpoints for and did not save
    /// (it failed) is left for `release_left`.
    pub(super) async fn track<T>(
        &self,
        attempt: impl std::future::Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        *locked(&self.current) = None;
        let result = attempt.await;
        if let (Err(_), Some(device)) = (&result, locked(&self.current).take()) {
            locked(&self.left).push(device);
        }
        let conflicted = matches!(result, Err(ApiError::Conflict(_)));
        self.conflicted
            .store(conflicted, std::sync::atomic::Ordering::SeqCst);
        result
    }
    /// The attempt ensured `device`'s endpoints and is about to save it.
    pub(super) fn made(&self, device: &DeviceRecord) {
        *locked(&self.current) = Some(device.clone());
    }
    pub(super) async fn release_left<T>(
        &self,
        deps: &Deps,
        result: Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let left = std::mem::take(&mut *locked(&self.left));
        if self.conflicted.load(std::sync::atomic::Ordering::SeqCst) {
            return result;
        }
        for device in &left {
            release_unnamed(deps, device).await;
        }
        result
    }
}

/// After a save: deletes the endpoints `old` had that `new` no longer has —
/// when `old`'s push token changed, only if no device has claimed that
/// token since (its endpoint is then that device's).
pub(super) async fn delete_dropped_endpoints(
    deps: &Deps,
    old: &DeviceRecord,
    new: &DeviceRecord,
) -> Result<(), ApiError> {
    let dropped: Vec<String> = old
        .endpoints()
        .filter(|arn| !new.endpoints().any(|kept| kept == *arn))
        .map(str::to_string)
        .collect();
    if dropped.is_empty() {
        return Ok(());
    }
    if old.registration_id != new.registration_id
        && deps
            .store
            .get_claim(old.kind, &old.registration_id)
            .await?
            .is_some()
    {
        return Ok(());
    }
    for arn in &dropped {
        deps.push.delete_endpoint(arn).await?;
    }
    Ok(())
}

/// A device of unknown APNs environment whose endpoint `dead_arn` SNS
/// disabled settles on its other one: the record first, on condition that
/// it is still as read, then the dead endpoint goes — unless it is enabled
/// again by then: a registration of the same push token (by this device or
/// another, SNS keeps one endpoint per token and platform) re-enabled it
/// for a record it is about to save. Deleting in SNS cannot be conditional,
/// so a registration that adopts the endpoint between this check and the
/// delete names a deleted endpoint; its first knock re-creates it
/// (`knock::reattach`; docs/ARCHITECTURE.md, "Concurrency"). `false` when
/// the device changed meanwhile: the record is not this call's to settle,
/// but if the change settled it away from `dead_arn`, that endpoint goes as
/// above. `pushed_on`: a knock's push reached its other endpoint that day,
/// recorded in the same write.
pub(crate) async fn settle_environment(
    deps: &Deps,
    device: &DeviceRecord,
    dead_arn: &str,
    pushed_on: Option<i64>,
) -> Result<bool, PortError> {
    let dropped = match deps.store.drop_endpoint(device, dead_arn, pushed_on).await {
        Err(PortError::Unavailable(e)) => {
            // Its answer may be lost after it applied (the explorer found
            // the dead endpoint left behind so): read back.
            match deps.store.get_device(&device.owner, &device.id).await {
                Ok(Some(now))
                    if now.version == device.version + 1
                        && now.alternate_arn.is_none()
                        && now.endpoint_arn != dead_arn =>
                {
                    true
                }
                Ok(Some(now)) if settled_without(&now, device, dead_arn) => {
                    delete_if_dead(deps, device, dead_arn).await;
                    return Ok(false);
                }
                _ => return Err(PortError::Unavailable(e)),
            }
        }
        other => other?,
    };
    if !dropped {
        // Changed meanwhile. A drop whose answer was lost under a later
        // write (the version no longer tells whose it was: the explorer,
        // emulator seed 8 with faults), or another's, may have left the
        // dead endpoint to no one: it goes as below.
        if let Ok(Some(now)) = deps.store.get_device(&device.owner, &device.id).await {
            if settled_without(&now, device, dead_arn) {
                delete_if_dead(deps, device, dead_arn).await;
            }
        }
        return Ok(false);
    }
    tracing::info!(device = %device.id, "device settled on its APNs environment");
    delete_if_dead(deps, device, dead_arn).await;
    Ok(true)
}

/// The device, still on its push token, has settled: it names one endpoint,
/// not `dead_arn`.
fn settled_without(now: &DeviceRecord, device: &DeviceRecord, dead_arn: &str) -> bool {
    now.registration_id == device.registration_id
        && now.alternate_arn.is_none()
        && now.endpoint_arn != dead_arn
}

/// Deletes the dead endpoint a device settled away from, unless it is
/// enabled again by then (see [`settle_environment`]).
async fn delete_if_dead(deps: &Deps, device: &DeviceRecord, dead_arn: &str) {
    // Unknown (SNS failed to answer): deleted, as it most likely is dead.
    match deps.push.endpoint_enabled(dead_arn).await {
        Ok(Some(true)) => {
            tracing::info!(device = %device.id, "spared a dead endpoint re-enabled meanwhile");
        }
        Ok(None) => {}
        Ok(Some(false)) | Err(_) => {
            if let Err(e) = deps.push.delete_endpoint(dead_arn).await {
                tracing::warn!(device = %device.id, error = %e, "left a dead endpoint behind");
            }
        }
    }
}
