//! Devices and the claims on their push tokens. Every write of a device is
//! conditional on the version it was read at (`device_items::at_version`)
//! and bumps it; the save transaction is in `device_save.rs`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use push_core::model::{DeviceKind, DeviceRecord, PushFailure, PushTokenClaim};
use push_core::ports::{DeviceRemoval, DeviceStore, DeviceWrite, PortError, WriteConflict};

use super::device_items::{at_version, next_version, ClaimItem, DeviceItem, VERSION, WRITER};
use super::*;
use crate::keys;

impl DynamoStore {
    /// An `UpdateItem` of a device on condition that it is still at
    /// `device.version`, bumping it: `set` is the rest of the `SET` clause
    /// (after the version), `remove` a `REMOVE` clause if any. `false` when
    /// the device is gone or changed meanwhile.
    ///
    /// Each such write also records a random writer id. If AWS applied it and
    /// the answer was lost, the SDK's retry finds the condition failed; the
    /// item then at the next version with our writer id was our own write,
    /// not a change of someone else's (read back, strongly consistent).
    async fn update_device(
        &self,
        device: &DeviceRecord,
        set: &str,
        remove: Option<&str>,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, PortError> {
        let (condition, condition_values) = at_version(device.version);
        let writer = push_core::secrets::random_hex(16);
        let mut expression = format!("SET {VERSION} = :next, {WRITER} = :writer, {set}");
        if let Some(remove) = remove {
            expression.push_str(" REMOVE ");
            expression.push_str(remove);
        }
        let record = key(keys::device(&device.owner, &device.id));
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(record.clone()))
            .update_expression(expression)
            .condition_expression(condition)
            .expression_attribute_values(":next", next_version(device.version))
            .expression_attribute_values(":writer", s(&writer));
        for (name, value) in condition_values.into_iter().chain(values) {
            update = update.expression_attribute_values(name, value);
        }
        if set.contains("#active") {
            update = update.expression_attribute_names("#active", "active");
        }
        if conditional_update(update).await? {
            return Ok(true);
        }
        Ok(match self.get(record).await? {
            Some(item) => {
                let now: DeviceItem = from_item(item)?;
                now.device_version == device.version + 1
                    && now.device_writer.as_deref() == Some(writer.as_str())
            }
            None => false,
        })
    }
}

#[async_trait]
impl DeviceStore for DynamoStore {
    async fn list_devices(&self, owner: &str) -> Result<Vec<DeviceRecord>, PortError> {
        let (pk, _) = keys::device(owner, "");
        self.query_partition(pk, keys::DEVICE_PREFIX)
            .await?
            .into_iter()
            .map(|item| from_item::<DeviceItem>(item).map(DeviceRecord::from))
            .collect()
    }
    async fn get_device(&self, owner: &str, id: &str) -> Result<Option<DeviceRecord>, PortError> {
        match self.get(key(keys::device(owner, id))).await? {
            Some(item) => Ok(Some(from_item::<DeviceItem>(item)?.into())),
            None => Ok(None),
        }
    }
    async fn get_claim(
        &self,
        kind: DeviceKind,
        registration_id: &str,
    ) -> Result<Option<PushTokenClaim>, PortError> {
        match self
            .get(key(keys::claim(&self.ns, kind, registration_id)))
            .await?
        {
            Some(item) => {
                let c: ClaimItem = from_item(item)?;
                Ok(Some(PushTokenClaim {
                    owner: c.owner,
                    device_id: c.device_id,
                }))
            }
            None => Ok(None),
        }
    }
    async fn save_device(&self, write: &DeviceWrite) -> Result<(), WriteConflict> {
        self.save_device_transaction(write).await
    }
    async fn delete_device(&self, device: &DeviceRecord) -> Result<DeviceRemoval, PortError> {
        let record = key(keys::device(&device.owner, &device.id));
        let (at, at_values) = at_version(device.version);
        let items = vec![
            self.delete(record.clone(), Some(at), at_values.clone())?,
            self.count_devices(&device.owner, -1, None)?,
            self.delete(
                key(keys::claim(&self.ns, device.kind, &device.registration_id)),
                Some("attribute_not_exists(pk) OR device_id = :me"),
                vec![(":me", s(&device.id))],
            )?,
        ];
        const RECORD: usize = 0;
        const CLAIM: usize = 2;
        let failed = |codes: &[String], slot: usize| {
            codes
                .get(slot)
                .is_some_and(|c| c == "ConditionalCheckFailed")
        };
        match self.transact(items).await {
            Ok(()) => Ok(DeviceRemoval::Removed {
                endpoint_is_ours: true,
            }),
            Err(err) => match cancellation_codes(&err) {
                // Gone or changed: the caller reads it again.
                Some(codes) if failed(&codes, RECORD) => Ok(DeviceRemoval::Changed),
                // The claim belongs to another device, and with it the
                // endpoint (one per push token): ours goes alone. Versioned
                // writes never leave a device so; an item written before
                // them may be.
                Some(codes) if failed(&codes, CLAIM) => {
                    let alone = vec![
                        self.delete(record, Some(at), at_values)?,
                        self.count_devices(&device.owner, -1, None)?,
                    ];
                    match self.transact(alone).await {
                        Ok(()) => Ok(DeviceRemoval::Removed {
                            endpoint_is_ours: false,
                        }),
                        Err(err)
                            if cancellation_codes(&err).is_some_and(|c| failed(&c, RECORD)) =>
                        {
                            Ok(DeviceRemoval::Changed)
                        }
                        Err(err) => Err(cancelled_error(err)),
                    }
                }
                _ => Err(cancelled_error(err)),
            },
        }
    }
    async fn replace_endpoint(
        &self,
        device: &DeviceRecord,
        old_arn: &str,
        new_arn: &str,
    ) -> Result<bool, PortError> {
        let set = if old_arn == device.endpoint_arn {
            "endpoint_arn = :new, gsi1pk = :index"
        } else if device.alternate_arn.as_deref() == Some(old_arn) {
            "alternate_arn = :new, gsi2pk = :index"
        } else {
            return Ok(false);
        };
        let values = vec![(":new", s(new_arn)), (":index", s(keys::endpoint(new_arn)))];
        self.update_device(device, set, None, values).await
    }
    async fn devices_by_endpoint(
        &self,
        endpoint_arn: &str,
    ) -> Result<Vec<DeviceRecord>, PortError> {
        // Its only (or production) endpoint in `gsi1`, its sandbox endpoint
        // while its environment is unknown in `gsi2`.
        let mut devices = Vec::new();
        for (index, attribute) in [(keys::GSI1, keys::GSI1PK), (keys::GSI2, keys::GSI2PK)] {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(format!("{attribute} = :pk"))
                .expression_attribute_values(":pk", s(keys::endpoint(endpoint_arn)));
            for item in self.collect(query).await? {
                devices.push(DeviceRecord::from(from_item::<DeviceItem>(item)?));
            }
        }
        Ok(devices)
    }
    async fn deactivate_device(
        &self,
        device: &DeviceRecord,
        failure: &PushFailure,
    ) -> Result<bool, PortError> {
        let values = vec![
            (":false", AttributeValue::Bool(false)),
            (":true", AttributeValue::Bool(true)),
            (":at", AttributeValue::N(failure.at_us.to_string())),
            (":reason", s(&failure.reason)),
        ];
        self.update_device(
            device,
            "#active = :false, push_disabled = :true, last_error_us = :at, \
             last_error_reason = :reason",
            Some("push_confirmed"),
            values,
        )
        .await
    }
    async fn mark_pushed(&self, device: &DeviceRecord, day: i64) -> Result<bool, PortError> {
        let (set, values) = pushed_on(day);
        self.update_device(device, set, None, values).await
    }
    async fn reenable_device(&self, device: &DeviceRecord) -> Result<bool, PortError> {
        let values = vec![(":true", AttributeValue::Bool(true))];
        self.update_device(
            device,
            "#active = :true",
            Some("push_disabled, push_confirmed"),
            values,
        )
        .await
    }
    async fn drop_endpoint(
        &self,
        device: &DeviceRecord,
        dead_arn: &str,
        pushed: Option<i64>,
    ) -> Result<bool, PortError> {
        let Some(keep) = device.survivor(dead_arn) else {
            return Ok(false);
        };
        let mut set = "endpoint_arn = :keep, gsi1pk = :index".to_string();
        let mut values = vec![(":keep", s(keep)), (":index", s(keys::endpoint(keep)))];
        if let Some(day) = pushed {
            let (more, more_values) = pushed_on(day);
            set.push_str(", ");
            set.push_str(more);
            values.extend(more_values);
        }
        self.update_device(device, &set, Some("alternate_arn, gsi2pk, gsi2sk"), values)
            .await
    }
}

/// The `SET` clause (and its values) of `DeviceRecord::pushed_on(day)`.
fn pushed_on(day: i64) -> (&'static str, Vec<(&'static str, AttributeValue)>) {
    (
        "push_confirmed = :pushed, last_push_day = :day",
        vec![
            (":pushed", AttributeValue::Bool(true)),
            (":day", AttributeValue::N(day.to_string())),
        ],
    )
}
