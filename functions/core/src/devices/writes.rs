//! A device write as an attempt makes it, and whether one whose answers
//! were all lost landed after all.

use crate::model::{ApiKeyRecord, DeviceRecord};
use crate::ports::{ClaimChange, DeviceWrite};
use crate::Deps;

/// Whether a save of an existing device that failed for good (not a
/// conflict) landed after all, its every answer lost: the device is stored
/// exactly as written, at the version after the one it was read at. When
/// it is, the operation carries on as saved (its dropped endpoints
/// deleted) rather than answer `503` and leave them behind. When it is
/// not, what the attempt ensured is released when the operation ends
/// (`endpoints::Made`: sparing what the token's holder names, which may be
/// this device as stored, or another that adopted the same endpoints).
///
/// A knock may have marked it pushed since (its daily write, at a later
/// version): the device as written, give or take that mark, landed.
pub(super) async fn saved_as_written(deps: &Deps, write: &DeviceWrite) -> bool {
    let written = &write.device;
    match deps.store.get_device(&written.owner, &written.id).await {
        Ok(Some(stored)) if stored.version == written.version + 1 => DeviceRecord {
            version: written.version,
            ..stored
        }
        .eq(written),
        Ok(Some(stored)) if stored.version > written.version + 1 => {
            let mut unmarked = stored;
            unmarked.version = written.version;
            unmarked.push.confirmed = written.push.confirmed;
            unmarked.push.last_push_day = written.push.last_push_day;
            unmarked == *written
        }
        _ => false,
    }
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
