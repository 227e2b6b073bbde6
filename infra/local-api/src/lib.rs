//! The local stack's router: serves the very handler functions the Lambdas
//! run, in-process, at `http://127.0.0.1:<port>/api/v1/`, with routes taken
//! from `template.yaml`, against the AWS emulator (reached through the SDK's
//! standard `AWS_ENDPOINT_URL`).

pub mod recording;
pub mod server;
pub mod setup;
pub mod template;

/// The functions of the template and the routes each one's code serves.
pub const FUNCTIONS: &[(&str, &[&str])] = &[
    ("RegisterFunction", register::ROUTES),
    ("TokensFunction", tokens::ROUTES),
    ("KnockFunction", knock::ROUTES),
];
