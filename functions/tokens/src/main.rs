//! Lambda entry point: configuration and AWS clients once, then serve.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    push_aws::lambda::run(tokens::route).await
}
