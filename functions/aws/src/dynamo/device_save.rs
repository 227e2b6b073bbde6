//! The one transaction that saves a device: the device item (new, or still
//! at the version it was read at), its owner's account, its push token's
//! claim, the device it takes the token from, the device counts, the
//! registration limit and the release of its previous token's claim. Each
//! slot is named where it is built; a cancellation is read by slot.

use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};
use push_core::ports::{ClaimChange, DeviceWrite, LimitKey, PortError, WriteConflict};

use super::device_items::{at_version, ClaimItem, DeviceItem};
use super::*;
use crate::keys;

impl DynamoStore {
    fn condition_check(
        &self,
        k: Item,
        condition: &str,
        values: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
    ) -> Result<TransactWriteItem, PortError> {
        let mut check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(k))
            .condition_expression(condition);
        for (name, value) in values {
            check = check.expression_attribute_values(name, value);
        }
        Ok(TransactWriteItem::builder()
            .condition_check(check.build().map_err(build_err)?)
            .build())
    }

    pub(super) async fn save_device_transaction(
        &self,
        write: &DeviceWrite,
    ) -> Result<(), WriteConflict> {
        let device = &write.device;
        let (device_condition, device_values) = if write.is_new {
            ("attribute_not_exists(pk)", vec![])
        } else {
            at_version(device.version)
        };
        // Slot 1 is the owner's account: refused there, the account is gone.
        const ACCOUNT_SLOT: usize = 1;
        let mut items = vec![
            self.put(
                to_item(&DeviceItem::next_of(device))?,
                Some(device_condition),
                device_values,
            )?,
            self.condition_check(
                key(keys::account(&self.ns, &write.owner_username)),
                "id = :owner AND attribute_not_exists(deleting)",
                vec![(":owner", s(&device.owner))],
            )?,
        ];
        let token = &device.registration_id;
        let claim_key = key(keys::claim(&self.ns, device.kind, token));
        let (pk, sk) = keys::claim(&self.ns, device.kind, token);
        let claim = to_item(&ClaimItem {
            pk,
            sk,
            owner: device.owner.clone(),
            device_id: device.id.clone(),
        })?;
        match &write.claim {
            ClaimChange::Keep => items.push(self.condition_check(
                claim_key,
                "device_id = :me",
                vec![(":me", s(&device.id))],
            )?),
            ClaimChange::Create => {
                items.push(self.put(claim, Some("attribute_not_exists(pk)"), vec![])?)
            }
            ClaimChange::TakeFrom(previous) | ClaimChange::TakeOrphan(previous) => {
                items.push(self.put(
                    claim,
                    Some("device_id = :previous"),
                    vec![(":previous", s(&previous.device_id))],
                )?);
                let previous_device = key(keys::device(&previous.owner, &previous.device_id));
                items.push(if matches!(write.claim, ClaimChange::TakeFrom(_)) {
                    self.delete(
                        previous_device,
                        Some("registration_id = :token"),
                        vec![(":token", s(token))],
                    )?
                } else {
                    self.condition_check(
                        previous_device,
                        "attribute_not_exists(pk) OR registration_id <> :token",
                        vec![(":token", s(token))],
                    )?
                });
            }
        }
        // The device counts: one more for a new device (within the cap), one
        // less for a device taken over. Within one account the two cancel.
        let taken_from = match &write.claim {
            ClaimChange::TakeFrom(previous) => Some(previous.owner.as_str()),
            _ => None,
        };
        let mut count_slot = None;
        match (write.is_new, taken_from) {
            (true, Some(previous)) if previous == device.owner => {}
            (is_new, previous) => {
                if is_new {
                    count_slot = Some(items.len());
                    items.push(self.count_devices(&device.owner, 1, Some(write.device_limit))?);
                }
                if let Some(previous) = previous {
                    items.push(self.count_devices(previous, -1, None)?);
                }
            }
        }
        // A new device is a registration, counted in this same write.
        let mut registration_slot = None;
        let counted = LimitKey::DeviceRegistrations {
            account_id: device.owner.clone(),
        };
        if write.is_new {
            if let Some(slot) =
                self.counter_slot(&counted, write.now_us, write.registration_limit)?
            {
                registration_slot = Some(items.len());
                items.push(slot);
            }
        }
        if let Some(old_token) = &write.release_claim_of {
            items.push(self.delete(
                key(keys::claim(&self.ns, device.kind, old_token)),
                Some("attribute_not_exists(pk) OR device_id = :me"),
                vec![(":me", s(&device.id))],
            )?);
        }
        let err = match self.transact(items).await {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        let Some(codes) = cancellation_codes(&err) else {
            return Err(cancelled_error(err).into());
        };
        let failed = |slot: Option<usize>| {
            slot.and_then(|i| codes.get(i))
                .is_some_and(|c| c == "ConditionalCheckFailed")
        };
        if failed(Some(ACCOUNT_SLOT)) {
            Err(WriteConflict::AccountGone)
        } else if failed(count_slot) {
            Err(WriteConflict::DeviceLimit)
        } else if failed(registration_slot) {
            let (_, retry_after_seconds) = write.registration_limit.window_at(write.now_us);
            Err(WriteConflict::Limited {
                limit: counted.name(),
                retry_after_seconds,
            })
        } else if codes
            .iter()
            .any(|c| c == "ConditionalCheckFailed" || c == "TransactionConflict")
        {
            Err(WriteConflict::Conflict)
        } else {
            Err(cancelled_error(err).into())
        }
    }
}
