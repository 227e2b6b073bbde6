//! A device write as an attempt makes it, and whether one whose answers
//! were all lost landed after all.

use crate::model::{ApiKeyRecord, DeviceRecord};
use crate::ports::{ClaimChange, DeviceWrite};
use crate::Deps;

/// Whether a save of an existing device that failed for good (not a
/// conflict) landed after all, its every answer lost: the device is stored
/// exactly as written, at the version after the one it was read at (`old`).
/// When it is, the operation carries on as saved (its dropped endpoints
/// deleted) rather than answer `503` and leave them behind. When it is not,
/// the endpoints the attempt made (those `old` did not name: made anew
/// where `old`'s were gone, or for another environment) that the stored
/// device does not name serve no one, and are deleted, best effort.
pub(super) async fn saved_or_release_made(
    deps: &Deps,
    write: &DeviceWrite,
    old: &DeviceRecord,
) -> bool {
    let written = &write.device;
    let Ok(stored) = deps.store.get_device(&written.owner, &written.id).await else {
        return false;
    };
    if let Some(stored) = &stored {
        let as_written = DeviceRecord {
            version: written.version,
            ..stored.clone()
        };
        if stored.version == written.version + 1 && as_written == *written {
            return true;
        }
    }
    let named: Vec<&str> = stored.iter().flat_map(DeviceRecord::endpoints).collect();
    for arn in written
        .endpoints()
        .filter(|arn| !old.endpoints().any(|o| o == *arn) && !named.contains(arn))
    {
        if let Err(e) = deps.push.delete_endpoint(arn).await {
            tracing::warn!(error = %e, "left an endpoint made for a failed save behind");
        }
    }
    false
}

/// A device write by `caller`, under the account's device cap and
/// registration limit as configured.
pub(super) fn device_write(
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
