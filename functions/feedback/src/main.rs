//! Lambda entry point: configuration and AWS clients once, then serve.

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

// Lambda hands an instance one request at a time: one thread serves it
// without cross-thread wake-ups (less CPU per request; docs/BENCHMARKS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    push_aws::startup::begin();
    lambda_runtime::tracing::init_default_subscriber();
    push_aws::startup::mark("log_subscriber");
    // Devices are found by endpoint, whatever their app: the default app's
    // ports serve every app's events.
    let apps = push_aws::lambda::deployment_from_env().await?;
    let deps = apps.default_app();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline_us = i64::try_from(event.context.deadline)
            .ok()
            .map(|ms| ms.saturating_mul(1_000));
        feedback::handle_within(deps, &event.payload, deadline_us).await
    }))
    .await
}
