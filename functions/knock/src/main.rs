//! Lambda entry point: configuration and AWS clients once, then serve.

// Lambda hands an instance one request at a time: one thread serves it
// without cross-thread wake-ups (less CPU per request; docs/BENCHMARKS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    push_aws::lambda::run(knock::FUNCTION, knock::route).await
}
