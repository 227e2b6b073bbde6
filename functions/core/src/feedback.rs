//! Delivery feedback from SNS: the platform applications publish
//! `EventDeliveryFailure`, `EventEndpointUpdated` and `EventEndpointDeleted`
//! to a topic, and the `feedback` function receives them. A device whose
//! endpoint is dead stops receiving knocks until its app registers again.

use serde_json::Value;

use crate::metrics;
use crate::ports::PortError;
use crate::Deps;

/// One application event, as SNS documents it (the `Message` of a record).
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointEvent {
    pub event_type: String,
    pub endpoint_arn: String,
    pub failure_type: Option<String>,
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Devices marked inactive (0 when none uses that endpoint any more).
    Deactivated(usize),
    /// The event needs no action (an endpoint created, or updated and still enabled).
    Ignored,
    /// Not an event we understand: logged and dropped, never retried.
    Malformed(String),
}

/// Splits a Lambda SNS event into its application events.
pub fn parse_sns_event(event: &Value) -> Vec<Result<EndpointEvent, String>> {
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        return vec![Err("no Records array".into())];
    };
    records.iter().map(parse_record).collect()
}

fn parse_record(record: &Value) -> Result<EndpointEvent, String> {
    let message = record
        .get("Sns")
        .and_then(|s| s.get("Message"))
        .and_then(Value::as_str)
        .ok_or("record has no Sns.Message")?;
    let message: Value =
        serde_json::from_str(message).map_err(|e| format!("Message is not JSON: {e}"))?;
    let text = |name: &str| {
        message
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let endpoint_arn = text("EndpointArn").ok_or("Message has no EndpointArn")?;
    if !endpoint_arn.starts_with("arn:") || !endpoint_arn.contains(":endpoint/") {
        return Err("EndpointArn is not an endpoint ARN".into());
    }
    Ok(EndpointEvent {
        event_type: text("EventType").ok_or("Message has no EventType")?,
        endpoint_arn,
        failure_type: text("FailureType"),
    })
}

/// Acts on one event. `Err` only for transient failures (the invocation is
/// then retried, and after that goes to the dead-letter queue).
pub async fn handle(deps: &Deps, event: &EndpointEvent) -> Result<Outcome, PortError> {
    let dead = match event.event_type.as_str() {
        // The event may be late: SNS disables an endpoint before it reports
        // the failure, and a device that registered again since has it
        // enabled again (or has another endpoint). So the endpoint as it is
        // now decides, not the event: dead if disabled or gone.
        "DeliveryFailure" | "EndpointDeleted" | "EndpointUpdated" => {
            deps.push.endpoint_enabled(&event.endpoint_arn).await? != Some(true)
        }
        "EndpointCreated" => false,
        other => return Ok(Outcome::Malformed(format!("unknown EventType {other:?}"))),
    };
    if !dead {
        return Ok(Outcome::Ignored);
    }
    let n = deps.store.deactivate_endpoint(&event.endpoint_arn).await?;
    metrics::emit(
        "feedback",
        &[
            ("DevicesDeactivated", n as f64, "Count"),
            ("EndpointsDead", 1.0, "Count"),
        ],
        &[("Event", event.event_type.as_str())],
    );
    tracing::info!(event = %event.event_type, failure = ?event.failure_type, devices = n, "endpoint reported dead");
    Ok(Outcome::Deactivated(n))
}

/// Handles a whole Lambda event; malformed records are logged and dropped.
pub async fn handle_sns_event(deps: &Deps, event: &Value) -> Result<Vec<Outcome>, PortError> {
    let mut outcomes = Vec::new();
    for parsed in parse_sns_event(event) {
        let outcome = match parsed {
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

    fn record(message: Value) -> Value {
        json!({"EventSource": "aws:sns", "Sns": {"Type": "Notification", "Message": message.to_string()}})
    }

    #[test]
    fn parses_documented_shapes_and_rejects_garbage() {
        let arn = "arn:aws:sns:us-east-1:123456789012:endpoint/APNS/app/3f08fd15";
        let event = json!({"Records": [
            record(json!({"DeliveryAttempts": 1, "EndpointArn": arn, "EventType": "DeliveryFailure",
                          "FailureMessage": "Endpoint was not found", "FailureType": "EndpointNotFound",
                          "Resource": "arn:aws:sns:us-east-1:123456789012:app/APNS/app", "Service": "SNS"})),
            record(json!({"EndpointArn": "nope", "EventType": "DeliveryFailure"})),
            json!({"Sns": {"Message": "not json"}}),
            json!({}),
        ]});
        let parsed = parse_sns_event(&event);
        assert_eq!(
            parsed[0],
            Ok(EndpointEvent {
                event_type: "DeliveryFailure".into(),
                endpoint_arn: arn.into(),
                failure_type: Some("EndpointNotFound".into()),
            })
        );
        assert!(parsed[1..].iter().all(Result::is_err));
        assert!(parse_sns_event(&json!({"foo": 1}))[0].is_err());
    }
}
