//! The `feedback` function: SNS application events (delivery failures,
//! endpoint updates and deletions) deactivate dead devices.

use push_core::feedback::{handle_sns_event, Outcome};
use push_core::Deps;
use serde_json::{json, Value};

/// Handles one SNS event. Malformed records are dropped (logged); a transient
/// failure is an error, so Lambda retries and then dead-letters the event.
pub async fn handle(deps: &Deps, event: &Value) -> Result<Value, lambda_runtime::Error> {
    let outcomes = handle_sns_event(deps, event).await?;
    let summary: Vec<Value> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Deactivated(n) => json!({"deactivated": n}),
            Outcome::Ignored => json!({"ignored": true}),
            Outcome::Malformed(reason) => json!({"dropped": reason}),
        })
        .collect();
    Ok(json!({ "records": summary }))
}
