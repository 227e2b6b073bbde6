//! The only crate that imports `aws-sdk-*`: the DynamoDB store, the SNS push
//! gateway, and configuration read once from the environment.
//!
//! Endpoints, credentials and region come from the SDK's standard
//! configuration (`AWS_ENDPOINT_URL`, `AWS_REGION`, ...): the local emulator is
//! reached exactly as AWS is, with no special code path.

pub mod config;
pub mod deployment;
pub mod dynamo;
pub mod errors;
pub mod keys;
pub mod lambda;
pub mod lazy;
pub mod limits;
pub mod sns;
pub mod source_keys;
pub mod startup;

pub use config::{build_deployment, build_deps, load_sdk_config, App, AppConfig, Deployment};
pub use dynamo::DynamoStore;
pub use sns::SnsGateway;
