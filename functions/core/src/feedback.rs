//! Delivery feedback from SNS: the platform applications publish
//! `EventDeliveryFailure`, `EventEndpointUpdated` and `EventEndpointDeleted`
//! to a topic, and the `feedback` function receives them. A device whose
//! endpoint is dead stops receiving knocks until its app registers again; a
//! device of unknown APNs environment whose endpoint in one environment is
//! dead settles on the other.

use serde::Deserialize;

use crate::metrics;
use crate::model::{DeviceRecord, Platform, PushFailure};
use crate::ports::PortError;
use crate::Deps;

/// The application events SNS publishes about a platform endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum EventType {
    EndpointCreated,
    EndpointDeleted,
    EndpointUpdated,
    DeliveryFailure,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::EndpointCreated => "EndpointCreated",
            EventType::EndpointDeleted => "EndpointDeleted",
            EventType::EndpointUpdated => "EndpointUpdated",
            EventType::DeliveryFailure => "DeliveryFailure",
        }
    }
}

/// One application event, as SNS documents it (the `Message` of a record;
/// other fields are ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointEvent {
    pub event_type: EventType,
    pub endpoint_arn: String,
    #[serde(default)]
    pub failure_type: Option<String>,
    #[serde(default)]
    pub failure_message: Option<String>,
}

impl EndpointEvent {
    /// What the device's owner is shown as its last error: SNS's failure
    /// type and message (`InvalidPlatformToken: Platform token associated
    /// with the endpoint is not valid`), or the event that reported the
    /// endpoint disabled.
    pub fn reason(&self) -> String {
        match (&self.failure_type, &self.failure_message) {
            (Some(t), Some(m)) if !m.is_empty() => format!("{t}: {m}"),
            (Some(t), _) => t.clone(),
            (None, _) => format!("{}: the endpoint is disabled", self.event_type.as_str()),
        }
    }

    /// Whether its reason is better than a disabled device's `last` error:
    /// the push service's own (a failure type) over a knock's
    /// `EndpointDisabled` or an `EndpointUpdated` report's, never the other
    /// way. SNS reports one rejection twice (`DeliveryFailure` and
    /// `EndpointUpdated`), in either order.
    pub fn improves_on(&self, last: Option<&PushFailure>) -> bool {
        let Some(last) = last else {
            return true;
        };
        let generic = last.reason == crate::knock::DISABLED_AT_PUBLISH
            || last.reason.starts_with(EventType::EndpointUpdated.as_str());
        generic && self.failure_type.is_some() && last.reason != self.reason()
    }

    /// Its `Reason` metric dimension (a fixed list, the rest `other`).
    pub fn reason_dimension(&self) -> &'static str {
        metrics::reason_dimension(
            self.failure_type
                .as_deref()
                .unwrap_or(self.event_type.as_str()),
        )
    }
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Devices marked inactive (0 when none uses that endpoint any more),
    /// and devices that settled on their other APNs environment.
    Dead { deactivated: usize, settled: usize },
    /// SNS enabled the endpoint again: devices it had disabled are active
    /// again (unconfirmed until pushed).
    Reenabled { reenabled: usize },
    /// The event needs no action (an endpoint created, or updated and still enabled).
    Ignored,
    /// Not an event we understand: logged and dropped, never retried.
    Malformed(String),
}

/// Reads the `Message` of an SNS record as an endpoint event.
pub fn parse_message(message: &str) -> Result<EndpointEvent, String> {
    let event: EndpointEvent =
        serde_json::from_str(message).map_err(|e| format!("not an endpoint event: {e}"))?;
    if !event.endpoint_arn.starts_with("arn:") || !event.endpoint_arn.contains(":endpoint/") {
        return Err("EndpointArn is not an endpoint ARN".into());
    }
    Ok(event)
}

/// Acts on one event. `Err` only for transient failures (the invocation is
/// then retried, and after that goes to the dead-letter queue).
pub async fn handle(deps: &Deps, event: &EndpointEvent) -> Result<Outcome, PortError> {
    // SNS never deletes an endpoint by itself: `EndpointDeleted` reports a
    // deletion of ours (a device deleted, or settled), and a device that
    // still names that endpoint gets a new one at its next knock.
    if matches!(
        event.event_type,
        EventType::EndpointCreated | EventType::EndpointDeleted
    ) {
        return Ok(Outcome::Ignored);
    }
    let arn = event.endpoint_arn.as_str();
    // The devices first, each read again consistently (the index may be a
    // moment late), then the endpoint as it is now: a device re-registered
    // after that read has a newer version, and the conditional writes below
    // leave it alone; one re-registered before it has its endpoint enabled
    // again. The event itself may be late, so it decides nothing.
    let mut devices = Vec::new();
    for found in deps.store.devices_by_endpoint(arn).await? {
        if let Some(device) = deps.store.get_device(&found.owner, &found.id).await? {
            if device.endpoints().any(|e| e == arn) {
                devices.push(device);
            }
        }
    }
    if devices.is_empty() {
        return Ok(Outcome::Ignored);
    }
    let app = deps.settings.app_of_endpoint(arn);
    let environment = Platform::environment_of_arn(arn);
    let mut tally = metrics::Tally::default();
    match deps.push.endpoint_enabled(arn).await? {
        Some(false) => {}
        // Enabled again (in the console, or by SNS): recovery shows on the
        // devices it had disabled. A late failure event decides nothing.
        Some(true) if event.event_type == EventType::EndpointUpdated => {
            let mut reenabled = 0;
            for device in devices.iter().filter(|d| d.push.disabled) {
                if reenable(deps, device.clone(), arn).await? {
                    reenabled += 1;
                    let at = [("App", app), ("Environment", device.metric_environment())];
                    tally.add("DevicesReenabled", &at, 1);
                }
            }
            tally.emit("feedback");
            if reenabled == 0 {
                return Ok(Outcome::Ignored);
            }
            tracing::info!(reenabled, "endpoint enabled again");
            return Ok(Outcome::Reenabled { reenabled });
        }
        _ => return Ok(Outcome::Ignored),
    }
    let failure = PushFailure {
        at_us: deps.clock.now_us(),
        reason: event.reason(),
    };
    let (mut deactivated, mut settled) = (0, 0);
    for device in devices {
        match judge(deps, device, arn, event, &failure).await? {
            Some(Judged::Settled(kept)) => {
                settled += 1;
                tally.add("DevicesSettled", &[("App", app), ("Environment", kept)], 1);
            }
            Some(Judged::Deactivated(environment)) => {
                deactivated += 1;
                let at = [("App", app), ("Environment", environment)];
                tally.add("DevicesDeactivated", &at, 1);
            }
            Some(Judged::Recorded) | None => {}
        }
    }
    // Counted by the event that acted on it: SNS reports one rejection
    // twice, and a knock that found it first counted it already.
    let at = [
        ("App", app),
        ("Environment", environment),
        ("Reason", event.reason_dimension()),
    ];
    tally.add(
        "EndpointsDisabled",
        &at,
        usize::from(deactivated + settled > 0),
    );
    metrics::emit(
        "feedback",
        &[
            ("DevicesDeactivated", deactivated as f64, "Count"),
            ("DevicesSettled", settled as f64, "Count"),
            ("EndpointsDead", 1.0, "Count"),
        ],
        &[("Event", event.event_type.as_str())],
    );
    tally.emit("feedback");
    tracing::info!(event = event.event_type.as_str(), failure = ?event.failure_type, deactivated, settled, "endpoint reported dead");
    Ok(Outcome::Dead {
        deactivated,
        settled,
    })
}

/// A device the endpoint `arn`'s disabling had disabled, active again now
/// that the endpoint is enabled — on condition that it is still as read;
/// one that changed meanwhile is read again while it is still disabled and
/// names the endpoint.
async fn reenable(deps: &Deps, mut device: DeviceRecord, arn: &str) -> Result<bool, PortError> {
    let mut backoff = crate::retry::Backoff::new(
        &*deps.clock,
        deps.clock.now_us() + JUDGING_BUDGET.as_micros() as crate::time::Micros,
    );
    loop {
        match deps.store.reenable_device(&device).await {
            Ok(true) => return Ok(true),
            Ok(false) | Err(PortError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        backoff
            .after_conflict(format!("re-enabling device {}", device.id))
            .await
            .map_err(|e| PortError::Unavailable(e.to_string()))?;
        match deps.store.get_device(&device.owner, &device.id).await? {
            Some(now) if now.push.disabled && now.endpoints().any(|e| e == arn) => device = now,
            _ => return Ok(false),
        }
        // Disabled again meanwhile (APNs rejected it once more): not back.
        if deps.push.endpoint_enabled(arn).await? != Some(true) {
            return Ok(false);
        }
    }
}

enum Judged {
    /// On the APNs environment named.
    Settled(&'static str),
    /// In the environment named (its metrics' `Environment`).
    Deactivated(&'static str),
    /// Already disabled: its last error is now the push service's reason.
    Recorded,
}

/// A device naming the dead endpoint `arn`: settled on its other APNs
/// environment, or deactivated with `failure` as its last error — on
/// condition that it is still as read. One the knock already disabled gets
/// the event's reason (the push service's, better than a knock's
/// `EndpointDisabled`); one its owner turned off stays as it is (the
/// owner's `inactive` wins). One that changed meanwhile (or is being
/// changed: a transaction in flight) is read again and judged again as it
/// is now, while it still names the endpoint and the endpoint is still
/// disabled (a re-registration re-enables it): a change that left the
/// endpoint as it was (a rename) does not save the device from the
/// verdict. `None`: nothing to do any more. Out of time (conflicts all
/// along): `Unavailable`, and the invocation is retried.
async fn judge(
    deps: &Deps,
    mut device: DeviceRecord,
    arn: &str,
    event: &EndpointEvent,
    failure: &PushFailure,
) -> Result<Option<Judged>, PortError> {
    let mut backoff = crate::retry::Backoff::new(
        &*deps.clock,
        deps.clock.now_us() + JUDGING_BUDGET.as_micros() as crate::time::Micros,
    );
    loop {
        let verdict = if let Some(kept) = device.survivor(arn) {
            // One of its two environments is dead: it is in the other.
            let kept = Platform::environment_of_arn(kept);
            (
                crate::devices::settle_environment(deps, &device, arn, None).await,
                Judged::Settled(kept),
            )
        } else if device.active {
            let environment = device.metric_environment();
            (
                deps.store.deactivate_device(&device, failure).await,
                Judged::Deactivated(environment),
            )
        } else if device.push.disabled && event.improves_on(device.push.last_error.as_ref()) {
            (
                deps.store.deactivate_device(&device, failure).await,
                Judged::Recorded,
            )
        } else {
            return Ok(None);
        };
        match verdict {
            (Ok(true), judged) => return Ok(Some(judged)),
            (Ok(false) | Err(PortError::Conflict(_)), _) => {}
            (Err(e), _) => return Err(e),
        }
        backoff
            .after_conflict(format!("judging device {}", device.id))
            .await
            .map_err(|e| PortError::Unavailable(e.to_string()))?;
        match deps.store.get_device(&device.owner, &device.id).await? {
            Some(now) if now.endpoints().any(|e| e == arn) => device = now,
            _ => return Ok(None),
        }
        if deps.push.endpoint_enabled(arn).await? != Some(false) {
            return Ok(None);
        }
    }
}

/// How long one device's verdict may keep meeting concurrent changes
/// before the invocation is retried instead: two seconds of attempts, with
/// one attempt's reserve in hand (the function's timeout is far longer).
const JUDGING_BUDGET: std::time::Duration =
    crate::retry::RESERVE.saturating_add(std::time::Duration::from_secs(2));

/// Handles the messages of an SNS event's records, in order; a malformed
/// one is logged and dropped.
pub async fn handle_messages(deps: &Deps, messages: &[&str]) -> Result<Vec<Outcome>, PortError> {
    let mut outcomes = Vec::new();
    for message in messages {
        let outcome = match parse_message(message) {
            Ok(e) => handle(deps, &e).await?,
            Err(reason) => Outcome::Malformed(reason),
        };
        if let Outcome::Malformed(reason) = &outcome {
            tracing::warn!(reason = %reason, "dropping a malformed feedback event");
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_documented_messages_and_rejects_garbage() {
        let arn = "arn:aws:sns:us-east-1:123456789012:endpoint/APNS/app/3f08fd15";
        let documented = json!({"DeliveryAttempts": 1, "EndpointArn": arn, "EventType": "DeliveryFailure",
            "FailureMessage": "Endpoint was not found", "FailureType": "EndpointNotFound",
            "Resource": "arn:aws:sns:us-east-1:123456789012:app/APNS/app", "Service": "SNS"});
        assert_eq!(
            parse_message(&documented.to_string()),
            Ok(EndpointEvent {
                event_type: EventType::DeliveryFailure,
                endpoint_arn: arn.into(),
                failure_type: Some("EndpointNotFound".into()),
                failure_message: Some("Endpoint was not found".into()),
            })
        );
        for garbage in [
            json!({"EndpointArn": "nope", "EventType": "DeliveryFailure"}).to_string(),
            json!({"EndpointArn": arn, "EventType": "SomethingElse"}).to_string(),
            json!({"EventType": "DeliveryFailure"}).to_string(),
            "not json".to_string(),
        ] {
            assert!(parse_message(&garbage).is_err(), "{garbage}");
        }
    }
}
