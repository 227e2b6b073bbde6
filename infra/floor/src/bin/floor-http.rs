//! The floor of an HTTP function: `lambda_http` answering a constant, on the
//! same runtime flavour as the real functions. Nothing else.

use lambda_http::{service_fn, Body, Error, Request, Response};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async {
        Ok::<_, Error>(Response::new(Body::from("{\"jid\":\"floor\"}")))
    }))
    .await
}
