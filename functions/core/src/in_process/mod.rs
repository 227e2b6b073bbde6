//! The rules tested in-process, against the in-memory ports of
//! [`crate::testing`]: every branch of knock delivery and device registration,
//! including the failures and interleavings the emulator cannot be made to
//! produce on demand. (The black-box tests in `tests/` drive the same
//! operations over HTTP against the AWS emulator.)

mod devices;
mod environments;
mod knock;
mod races;

use serde_json::Value;

use crate::testing::World;
pub(crate) use crate::testing::{answer, request};

/// An APNs push token (64 hex digits) made from `n`.
fn apns_token(n: u32) -> String {
    format!("{n:064x}")
}

/// Registers a device through the operation; returns its id.
async fn register(world: &World, key: &str, kind: &str, registration_id: &str) -> (u16, Value) {
    let kind_enum = crate::model::DeviceKind::from_path(kind).unwrap();
    let req = request(
        "POST",
        &format!("device/{kind}/"),
        Some(key),
        serde_json::json!({ "registration_id": registration_id }),
    );
    answer(crate::devices::register(&world.deps, &req, kind_enum).await)
}

/// Issues a whitelist token for a device through the operation.
async fn token_for(world: &World, key: &str, field: &str, device_id: &str) -> String {
    let req = request(
        "POST",
        "tokens/",
        Some(key),
        serde_json::json!({ field: device_id }),
    );
    let (status, body) = answer(crate::tokens::create(&world.deps, &req).await);
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}
