//! Devices and the claims on their push tokens.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};
use push_core::model::{DeviceKind, DeviceRecord, PushTokenClaim};
use push_core::ports::{
    ClaimChange, DeviceRemoval, DeviceStore, DeviceWrite, LimitKey, PortError, WriteConflict,
};
use push_core::time::Micros;
use serde::{Deserialize, Serialize};

use super::*;
use crate::errors::port_error;
use crate::keys;

#[derive(Serialize, Deserialize)]
struct DeviceItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    id: String,
    owner: String,
    kind: DeviceKind,
    registration_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device_id: Option<String>,
    active: bool,
    created_us: Micros,
    endpoint_arn: String,
    /// While the APNs environment is unknown: the sandbox endpoint, indexed
    /// in `gsi2` (sparse: only such devices have `gsi2pk`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alternate_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2sk: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ClaimItem {
    pk: String,
    sk: String,
    owner: String,
    device_id: String,
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
        }
    }
}

impl From<&DeviceRecord> for DeviceItem {
    fn from(d: &DeviceRecord) -> Self {
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
        }
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
        let device = &write.device;
        let device_condition = if write.is_new {
            "attribute_not_exists(pk)"
        } else {
            "attribute_exists(pk)"
        };
        let account = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::account(&self.ns, &write.owner_username))))
            .condition_expression("id = :owner AND attribute_not_exists(deleting)")
            .expression_attribute_values(":owner", s(&device.owner))
            .build()
            .map_err(build_err)?;
        // Slot 1 is the owner's account: refused there, the account is gone.
        const ACCOUNT_SLOT: usize = 1;
        let mut items = vec![
            self.put(
                to_item(&DeviceItem::from(device))?,
                Some(device_condition),
                vec![],
            )?,
            TransactWriteItem::builder()
                .condition_check(account)
                .build(),
        ];
        let (pk, sk) = keys::claim(&self.ns, device.kind, &device.registration_id);
        let claim = to_item(&ClaimItem {
            pk,
            sk,
            owner: device.owner.clone(),
            device_id: device.id.clone(),
        })?;
        match &write.claim {
            ClaimChange::Keep => {}
            ClaimChange::Create => {
                items.push(self.put(claim, Some("attribute_not_exists(pk)"), vec![])?)
            }
            ClaimChange::TakeFrom(previous) => {
                items.push(self.put(
                    claim,
                    Some("device_id = :previous"),
                    vec![(":previous", s(&previous.device_id))],
                )?);
                items.push(self.delete(
                    key(keys::device(&previous.owner, &previous.device_id)),
                    Some("attribute_exists(pk)"),
                    vec![],
                )?);
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
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(err) => match cancellation_codes(&err) {
                Some(codes)
                    if codes
                        .get(ACCOUNT_SLOT)
                        .is_some_and(|c| c == "ConditionalCheckFailed") =>
                {
                    Err(WriteConflict::AccountGone)
                }
                Some(codes)
                    if count_slot
                        .and_then(|i| codes.get(i))
                        .is_some_and(|c| c == "ConditionalCheckFailed") =>
                {
                    Err(WriteConflict::DeviceLimit)
                }
                Some(codes)
                    if registration_slot
                        .and_then(|i| codes.get(i))
                        .is_some_and(|c| c == "ConditionalCheckFailed") =>
                {
                    let (_, retry_after_seconds) = write.registration_limit.window_at(write.now_us);
                    Err(WriteConflict::Limited {
                        limit: counted.name(),
                        retry_after_seconds,
                    })
                }
                Some(codes)
                    if codes
                        .iter()
                        .any(|c| c == "ConditionalCheckFailed" || c == "TransactionConflict") =>
                {
                    Err(WriteConflict::Conflict)
                }
                _ => Err(port_error("TransactWriteItems", err).into()),
            },
        }
    }
    async fn delete_device(&self, device: &DeviceRecord) -> Result<DeviceRemoval, PortError> {
        let record = key(keys::device(&device.owner, &device.id));
        let items = vec![
            self.delete(record.clone(), Some("attribute_exists(pk)"), vec![])?,
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
                Some(codes) if failed(&codes, RECORD) => Ok(DeviceRemoval::Gone),
                // The claim already belongs to another device, and with it the
                // endpoint (one per push token): ours goes alone.
                Some(codes) if failed(&codes, CLAIM) => {
                    let alone = vec![
                        self.delete(record, Some("attribute_exists(pk)"), vec![])?,
                        self.count_devices(&device.owner, -1, None)?,
                    ];
                    match self.transact(alone).await {
                        Ok(()) => Ok(DeviceRemoval::Removed {
                            endpoint_is_ours: false,
                        }),
                        Err(err)
                            if cancellation_codes(&err).is_some_and(|c| failed(&c, RECORD)) =>
                        {
                            Ok(DeviceRemoval::Gone)
                        }
                        Err(err) => Err(port_error("TransactWriteItems", err)),
                    }
                }
                _ => Err(port_error("TransactWriteItems", err)),
            },
        }
    }
    async fn replace_endpoint(
        &self,
        device: &DeviceRecord,
        new_arn: &str,
    ) -> Result<bool, PortError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::device(&device.owner, &device.id))))
            .update_expression("SET endpoint_arn = :new, gsi1pk = :index")
            .condition_expression("endpoint_arn = :old AND attribute_not_exists(alternate_arn)")
            .expression_attribute_values(":new", s(new_arn))
            .expression_attribute_values(":index", s(keys::endpoint(new_arn)))
            .expression_attribute_values(":old", s(&device.endpoint_arn));
        conditional_update(update).await
    }
    async fn set_device_active(
        &self,
        owner: &str,
        id: &str,
        active: bool,
    ) -> Result<(), PortError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::device(owner, id))))
            .update_expression("SET #active = :active")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#active", "active")
            .expression_attribute_values(":active", AttributeValue::Bool(active));
        // A device gone meanwhile needs no switching off.
        conditional_update(update).await.map(|_| ())
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
    async fn deactivate_device(&self, device: &DeviceRecord) -> Result<bool, PortError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::device(&device.owner, &device.id))))
            .update_expression("SET #active = :false")
            .condition_expression(
                "endpoint_arn = :arn AND #active = :true AND attribute_not_exists(alternate_arn)",
            )
            .expression_attribute_names("#active", "active")
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":arn", s(&device.endpoint_arn));
        conditional_update(update).await
    }
    async fn drop_endpoint(
        &self,
        device: &DeviceRecord,
        dead_arn: &str,
    ) -> Result<bool, PortError> {
        let (Some(keep), Some(alternate)) = (device.survivor(dead_arn), &device.alternate_arn)
        else {
            return Ok(false);
        };
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::device(&device.owner, &device.id))))
            .update_expression(
                "SET endpoint_arn = :keep, gsi1pk = :index REMOVE alternate_arn, gsi2pk, gsi2sk",
            )
            .condition_expression("endpoint_arn = :first AND alternate_arn = :second")
            .expression_attribute_values(":keep", s(keep))
            .expression_attribute_values(":index", s(keys::endpoint(keep)))
            .expression_attribute_values(":first", s(&device.endpoint_arn))
            .expression_attribute_values(":second", s(alternate));
        conditional_update(update).await
    }
}
