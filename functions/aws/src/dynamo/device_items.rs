//! The device and push-token claim items, and the condition that a device
//! item is still at the version a decision was made on.

use aws_sdk_dynamodb::types::AttributeValue;
use push_core::model::{DeviceKind, DeviceRecord, PushFailure, PushRecord};
use push_core::time::Micros;
use serde::{Deserialize, Serialize};

use crate::keys;

/// The device item's version attribute (`DeviceRecord::version`).
pub(crate) const VERSION: &str = "device_version";
/// Who made the latest in-place update of a device item (a random id per
/// write), read back when an update's answer was lost (`devices.rs`).
pub(crate) const WRITER: &str = "device_writer";

#[derive(Serialize, Deserialize)]
pub(super) struct DeviceItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) gsi1pk: String,
    pub(super) gsi1sk: String,
    pub(super) id: String,
    pub(super) owner: String,
    pub(super) kind: DeviceKind,
    pub(super) registration_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) device_id: Option<String>,
    pub(super) active: bool,
    pub(super) created_us: Micros,
    pub(super) endpoint_arn: String,
    /// While the APNs environment is unknown: the sandbox endpoint, indexed
    /// in `gsi2` (sparse: only such devices have `gsi2pk`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) alternate_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) gsi2sk: Option<String>,
    /// Bumped by every write; an item stored without one reads as 0.
    #[serde(default)]
    pub(super) device_version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) device_writer: Option<String>,
    /// `PushRecord`, flat; absent on items stored before devices had one
    /// (read as never pushed, nothing failed).
    #[serde(default, skip_serializing_if = "is_false")]
    pub(super) push_disabled: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub(super) push_confirmed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_push_day: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_error_us: Option<Micros>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_error_reason: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize, Deserialize)]
pub(super) struct ClaimItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) owner: String,
    pub(super) device_id: String,
}

impl From<DeviceItem> for DeviceRecord {
    fn from(i: DeviceItem) -> Self {
        DeviceRecord {
            id: i.id,
            owner: i.owner,
            kind: i.kind,
            registration_id: i.registration_id,
            name: i.name,
            device_id: i.device_id,
            active: i.active,
            created_us: i.created_us,
            endpoint_arn: i.endpoint_arn,
            alternate_arn: i.alternate_arn,
            version: i.device_version,
            push: PushRecord {
                disabled: i.push_disabled,
                confirmed: i.push_confirmed,
                last_push_day: i.last_push_day,
                last_error: i.last_error_us.map(|at_us| PushFailure {
                    at_us,
                    reason: i.last_error_reason.unwrap_or_default(),
                }),
            },
        }
    }
}

impl DeviceItem {
    /// The item of `d` as its next write stores it: at `d.version + 1`.
    pub(super) fn next_of(d: &DeviceRecord) -> Self {
        let (pk, sk) = keys::device(&d.owner, &d.id);
        DeviceItem {
            gsi1pk: keys::endpoint(&d.endpoint_arn),
            gsi1sk: sk.clone(),
            gsi2pk: d.alternate_arn.as_deref().map(keys::endpoint),
            gsi2sk: d.alternate_arn.as_ref().map(|_| sk.clone()),
            alternate_arn: d.alternate_arn.clone(),
            pk,
            sk,
            id: d.id.clone(),
            owner: d.owner.clone(),
            kind: d.kind,
            registration_id: d.registration_id.clone(),
            name: d.name.clone(),
            device_id: d.device_id.clone(),
            active: d.active,
            created_us: d.created_us,
            endpoint_arn: d.endpoint_arn.clone(),
            device_version: d.version + 1,
            device_writer: None,
            push_disabled: d.push.disabled,
            push_confirmed: d.push.confirmed,
            last_push_day: d.push.last_push_day,
            last_error_us: d.push.last_error.as_ref().map(|e| e.at_us),
            last_error_reason: d.push.last_error.as_ref().map(|e| e.reason.clone()),
        }
    }
}

/// The condition that a device item still is at `version` (an item stored
/// before devices had versions is at 0 and has no such attribute), and
/// its value.
pub(super) fn at_version(version: u64) -> (&'static str, Vec<(&'static str, AttributeValue)>) {
    if version == 0 {
        (
            "attribute_exists(pk) AND attribute_not_exists(device_version)",
            vec![],
        )
    } else {
        (
            "device_version = :version",
            vec![(":version", AttributeValue::N(version.to_string()))],
        )
    }
}

/// The `SET` clause's value of the next version after `version`.
pub(super) fn next_version(version: u64) -> AttributeValue {
    AttributeValue::N((version + 1).to_string())
}
