//! The `feedback` function: SNS application events (delivery failures,
//! endpoint updates and deletions) deactivate dead devices.

use aws_lambda_events::event::sns::SnsEvent;
use push_core::feedback::{handle_messages, Outcome};
use push_core::Deps;
use serde::Deserialize;
use serde_json::{json, Value};

/// [`handle`] within the invocation's budget: every AWS call is bounded by
/// what is left before `deadline_us` (Lambda's deadline; `None`: the
/// functions' timeout from now), so that a slow AWS fails the invocation in
/// time (and Lambda retries it) rather than timing it out.
pub async fn handle_within(
    deps: &Deps,
    event: &Value,
    deadline_us: Option<push_core::time::Micros>,
) -> Result<Value, lambda_runtime::Error> {
    push_core::budget::within(deadline_us, handle(deps, event)).await
}

/// Handles one invocation. An event that is not an SNS event, and records
/// whose message is not an endpoint event, are dropped (logged); a transient
/// failure is an error, so Lambda retries and then dead-letters the event.
pub async fn handle(deps: &Deps, event: &Value) -> Result<Value, lambda_runtime::Error> {
    let outcomes = match SnsEvent::deserialize(event) {
        Ok(sns) => {
            let messages: Vec<&str> = sns.records.iter().map(|r| r.sns.message.as_str()).collect();
            handle_messages(deps, &messages).await?
        }
        Err(e) => {
            tracing::warn!(error = %e, "dropping an event that is not an SNS event");
            vec![Outcome::Malformed(format!("not an SNS event: {e}"))]
        }
    };
    let summary: Vec<Value> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Dead {
                deactivated,
                settled,
            } => json!({"deactivated": deactivated, "settled": settled}),
            Outcome::Reenabled { reenabled } => json!({"reenabled": reenabled}),
            Outcome::Ignored => json!({"ignored": true}),
            Outcome::Malformed(reason) => json!({"dropped": reason}),
        })
        .collect();
    Ok(json!({ "records": summary }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use push_core::model::{DeviceKind, DeviceRecord, Platform};
    use push_core::ports::PushGateway;
    use push_core::testing::World;

    /// A sample event of infra/events/ about the endpoint `arn`.
    fn sample(name: &str, arn: &str) -> Value {
        let path = format!(
            "{}/../../infra/events/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).unwrap();
        serde_json::from_str(&text.replace("{{ENDPOINT_ARN}}", arn)).unwrap()
    }

    /// Hands the function sample event `name` about `arn`: the devices it
    /// deactivated and settled.
    async fn outcome(w: &World, name: &str, arn: &str) -> (u64, u64) {
        let answer = handle(&w.deps, &sample(name, arn)).await.unwrap();
        let record = &answer["records"][0];
        assert_eq!(answer["records"].as_array().map(Vec::len), Some(1));
        (
            record["deactivated"].as_u64().expect("deactivated"),
            record["settled"].as_u64().expect("settled"),
        )
    }

    /// A world with one active device on a fresh endpoint; its ARN.
    async fn one_device(w: &World) -> String {
        let arn = w
            .push
            .ensure_endpoint(Platform::Apns, "ab", None)
            .await
            .unwrap();
        w.store.insert_device(DeviceRecord {
            id: "d".into(),
            owner: "o".into(),
            kind: DeviceKind::Apns,
            registration_id: "ab".into(),
            name: None,
            device_id: None,
            active: true,
            created_us: 0,
            endpoint_arn: arn.clone(),
            alternate_arn: None,
            version: 1,
            push: Default::default(),
        });
        arn
    }

    #[tokio::test]
    async fn a_failure_for_a_disabled_endpoint_deactivates_its_device() {
        let w = World::new();
        let arn = one_device(&w).await;
        w.push.disable(&arn);
        assert_eq!(outcome(&w, "delivery-failure", &arn).await, (1, 0));
        assert!(!w.store.devices()[0].active);
    }

    #[tokio::test]
    async fn a_late_failure_or_a_deletion_of_ours_changes_nothing() {
        let w = World::new();
        let arn = one_device(&w).await;
        for name in ["delivery-failure", "endpoint-updated"] {
            let answer = handle(&w.deps, &sample(name, &arn)).await.unwrap();
            assert_eq!(answer, json!({"records": [{"ignored": true}]}), "{name}");
        }
        assert!(w.store.devices()[0].active);
        // SNS never deletes an endpoint itself: a deleted one was deleted
        // by us, racing a registration, and the device's next knock gives
        // it a new one. Not dead.
        w.push.remove(&arn);
        let answer = handle(&w.deps, &sample("endpoint-deleted", &arn))
            .await
            .unwrap();
        assert_eq!(answer, json!({"records": [{"ignored": true}]}));
        assert!(w.store.devices()[0].active);
    }

    #[tokio::test]
    async fn a_dead_endpoint_of_a_device_in_both_apns_environments_settles_it_on_the_other() {
        let w = World::new();
        let token = "ab";
        let mut arns = Vec::new();
        for platform in [Platform::Apns, Platform::ApnsSandbox] {
            arns.push(w.push.ensure_endpoint(platform, token, None).await.unwrap());
        }
        let (production, sandbox) = (arns[0].clone(), arns[1].clone());
        w.store.insert_device(DeviceRecord {
            id: "d".into(),
            owner: "o".into(),
            kind: DeviceKind::Apns,
            registration_id: token.into(),
            name: None,
            device_id: None,
            active: true,
            created_us: 0,
            endpoint_arn: production.clone(),
            alternate_arn: Some(sandbox.clone()),
            version: 1,
            push: Default::default(),
        });
        // APNs rejects the token in production: a development build.
        w.push.disable(&production);
        assert_eq!(outcome(&w, "delivery-failure", &production).await, (0, 1));
        let device = &w.store.devices()[0];
        assert!(device.active);
        assert_eq!(device.endpoint_arn, sandbox);
        assert_eq!(device.alternate_arn, None);
        assert!(
            w.push.endpoint(&production).is_none(),
            "the dead one is deleted"
        );
        // The same event again (SNS sends several) finds nothing to do.
        let again = handle(&w.deps, &sample("endpoint-updated", &production))
            .await
            .unwrap();
        assert_eq!(again, json!({"records": [{"ignored": true}]}));
        // Then dead in the sandbox too (the app is gone): deactivated.
        w.push.disable(&sandbox);
        assert_eq!(outcome(&w, "delivery-failure", &sandbox).await, (1, 0));
        assert!(!w.store.devices()[0].active);
    }

    #[tokio::test]
    async fn malformed_records_and_events_that_are_not_sns_events_are_dropped() {
        let w = World::new();
        let arn = one_device(&w).await;
        w.push.disable(&arn);
        let answer = handle(&w.deps, &sample("malformed", &arn)).await.unwrap();
        let records = answer["records"].as_array().unwrap();
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|r| r["dropped"].is_string()), "{answer}");
        let answer = handle(&w.deps, &json!({"Records": [{"Sns": {"Message": "{}"}}]}))
            .await
            .unwrap();
        assert!(answer["records"][0]["dropped"]
            .as_str()
            .unwrap()
            .starts_with("not an SNS event"));
        assert!(w.store.devices()[0].active, "nothing changed");
    }

    #[tokio::test]
    async fn a_store_that_fails_fails_the_invocation_so_lambda_retries_it() {
        let w = World::new();
        let arn = one_device(&w).await;
        w.push.disable(&arn);
        w.store.fail(
            "devices_by_endpoint",
            push_core::testing::Fault::Unavailable,
            1,
        );
        assert!(handle(&w.deps, &sample("delivery-failure", &arn))
            .await
            .is_err());
        assert!(w.store.devices()[0].active);
    }
}
