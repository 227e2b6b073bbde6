//! `messages/` (the knock) and `pubsub/`.

use http::StatusCode;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::metrics;
use crate::model::{DeviceKind, DeviceRecord, Platform};
use crate::payload::{push_for, Priority, APNS_MAX_PAYLOAD_BYTES};
use crate::ports::{KnockAdmission, LimitName, PortError, PublishError, Push};
use crate::request::ApiRequest;
use crate::response::ApiResponse;
use crate::retry::{deadline_of, retry_conflicts};
use crate::time::Micros;
use crate::tokens::MAX_TOKEN_CHARS;
use crate::Deps;

/// Largest `data`, as compact UTF-8 JSON (a string's quotes included).
pub const MAX_DATA_BYTES: usize = 1024;

/// What happened to one knock; logged and returned for tests and metrics.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Delivery {
    /// Endpoints SNS reported disabled, and ones it reported gone.
    pub disabled: usize,
    pub gone: usize,
    pub published: usize,
    pub published_apns: usize,
    pub published_fcm: usize,
    pub deactivated: usize,
    pub failed: usize,
    /// Devices whose endpoint was gone and got a new one (then the push).
    pub reattached: usize,
    /// Devices of unknown APNs environment that settled on one: the
    /// endpoint in the other was found dead.
    pub settled: usize,
}

/// What publishing to one device did.
#[derive(Debug)]
struct Sent {
    /// Its endpoint had to be re-created first (see [`reattach`]).
    reattached: bool,
    /// Pushes handed to SNS: one per live endpoint.
    pushes: usize,
    /// Of a device's two endpoints (environment unknown), the one SNS
    /// reported dead while the other took the push.
    dead: Option<String>,
}

/// A knock's body, validated.
struct KnockInput {
    token: String,
    data: Value,
    priority: Priority,
}

/// Reads and checks a knock's fields: every problem at once, as `400`.
async fn read_knock(deps: &Deps, req: &ApiRequest) -> Result<KnockInput, ApiError> {
    let mut fields = req.fields().await?;
    // A field with an error gets a stand-in value; `finish` then refuses
    // the body, so no stand-in is ever used.
    let token = fields
        .required_string("token", MAX_TOKEN_CHARS)
        .unwrap_or_default();
    let data = match fields.raw("data").cloned() {
        None | Some(Value::Null) => Value::Null,
        Some(v @ (Value::String(_) | Value::Object(_))) => {
            if v.to_string().len() > MAX_DATA_BYTES {
                fields.error(
                    "data",
                    format!("Ensure this field has no more than {MAX_DATA_BYTES} bytes."),
                );
            }
            v
        }
        Some(_) => {
            fields.error("data", "Must be null, a string or a JSON object.");
            Value::Null
        }
    };
    let priority = match fields.raw("priority").cloned() {
        None | Some(Value::Null) => deps.settings.default_priority,
        Some(value) => value.as_str().and_then(Priority::parse).unwrap_or_else(|| {
            fields.error("priority", "\"priority\" must be \"high\" or \"low\".");
            deps.settings.default_priority
        }),
    };
    fields.finish()?;
    Ok(KnockInput {
        token,
        data,
        priority,
    })
}

/// `POST messages/`: no authentication; the whitelist token is the authority.
pub async fn knock(deps: &Deps, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let KnockInput {
        token,
        data,
        priority,
    } = read_knock(deps, req).await?;

    let started = deps.clock.now_us();
    let delivery = deliver(deps, &token, &data, priority, deadline_of(deps, req)).await?;
    let latency_ms = (deps.clock.now_us() - started) as f64 / 1000.0;
    metrics::emit(
        "knock",
        &[
            ("KnocksAccepted", 1.0, "Count"),
            (
                "PushesPublishedApns",
                delivery.published_apns as f64,
                "Count",
            ),
            ("PushesPublishedFcm", delivery.published_fcm as f64, "Count"),
            ("PublishFailures", delivery.failed as f64, "Count"),
            ("EndpointsDisabled", delivery.disabled as f64, "Count"),
            ("EndpointsGone", delivery.gone as f64, "Count"),
            ("DevicesDeactivated", delivery.deactivated as f64, "Count"),
            ("DevicesSettled", delivery.settled as f64, "Count"),
            ("KnockLatency", latency_ms, "Milliseconds"),
        ],
        &[],
    );
    tracing::info!(
        published = delivery.published,
        deactivated = delivery.deactivated,
        failed = delivery.failed,
        priority = priority.as_str(),
        "knock delivered"
    );
    Ok(ApiResponse::json(
        StatusCode::ACCEPTED,
        json!({ "token": token, "data": data, "priority": priority.as_str() }),
    ))
}

/// Looks the token up while counting the knock against its limit (one
/// conditional update), lists the owner's devices (one query) and publishes to
/// every active one concurrently.
pub async fn deliver(
    deps: &Deps,
    token: &str,
    data: &Value,
    priority: Priority,
    deadline_us: Micros,
) -> Result<Delivery, ApiError> {
    let now = deps.clock.now_us();
    // The token item may be inside a token's creation or revocation right
    // now: then the knock's update is refused and tried again.
    let admission = retry_conflicts(&*deps.clock, deadline_us, || async {
        Ok(deps
            .store
            .admit_knock(token, now, deps.settings.knock_limit)
            .await?)
    })
    .await?;
    let record = match admission {
        KnockAdmission::Admitted(t) => t,
        KnockAdmission::Unknown => return Err(ApiError::NotFound),
        KnockAdmission::Limited {
            retry_after_seconds,
        } => {
            return Err(ApiError::rate_limited(
                LimitName::KnocksPerToken,
                retry_after_seconds,
            ))
        }
    };
    let devices = deps.store.list_devices(&record.owner).await?;
    // A token whose device is gone went with it (the deletion may still be
    // under way): it authorises nothing.
    if !devices.iter().any(|d| d.id == record.device_id) {
        return Err(ApiError::NotFound);
    }
    let active: Vec<&DeviceRecord> = devices.iter().filter(|d| d.active).collect();
    // In batches of at most `publish_concurrency` concurrent publishes (by
    // default the device cap: one batch).
    let mut results = Vec::with_capacity(active.len());
    for batch in active.chunks(deps.settings.publish_concurrency.max(1)) {
        let publishes = batch
            .iter()
            .map(|device| publish_to(deps, device, token, data, priority));
        results.extend(futures_util::future::join_all(publishes).await);
    }

    let mut delivery = Delivery::default();
    let mut dead = Vec::new();
    let mut settling = Vec::new();
    let mut last_error = None;
    for (device, result) in active.iter().zip(results) {
        match result {
            Ok(sent) => {
                delivery.reattached += usize::from(sent.reattached);
                delivery.published += 1;
                match device.kind {
                    DeviceKind::Apns => delivery.published_apns += sent.pushes,
                    DeviceKind::Gcm => delivery.published_fcm += sent.pushes,
                }
                if let Some(arn) = sent.dead {
                    settling.push((*device, arn));
                }
            }
            Err(PublishError::Disabled) => {
                delivery.disabled += 1;
                dead.push(*device);
            }
            Err(PublishError::Gone) => {
                delivery.gone += 1;
                dead.push(*device);
            }
            Err(PublishError::Port(e)) => {
                delivery.failed += 1;
                tracing::warn!(device = %device.id, error = %e, "publish failed");
                last_error = Some(e);
            }
        }
    }
    // Dead endpoints: stop pushing to them until the app registers again.
    let deactivations = dead.iter().map(|d| {
        retry_conflicts(&*deps.clock, deadline_us, move || async move {
            Ok(deps.store.set_device_active(&d.owner, &d.id, false).await?)
        })
    });
    // Devices of unknown environment with one dead endpoint: settled on the
    // other (a write only while a device's environment is unknown).
    let settlements = settling
        .iter()
        .map(|(device, arn)| crate::devices::settle_environment(deps, device, arn));
    let (deactivated, settled) = futures_util::future::join(
        futures_util::future::join_all(deactivations),
        futures_util::future::join_all(settlements),
    )
    .await;
    for (device, result) in dead.iter().zip(deactivated) {
        match result {
            Ok(()) => delivery.deactivated += 1,
            Err(e) => {
                tracing::warn!(device = %device.id, error = %e, "could not deactivate device")
            }
        }
    }
    for ((device, _), result) in settling.iter().zip(settled) {
        match result {
            Ok(done) => delivery.settled += usize::from(done),
            Err(e) => {
                tracing::warn!(device = %device.id, error = %e, "could not settle a device's environment")
            }
        }
    }
    if delivery.published == 0 {
        if let Some(e) = last_error {
            // Nothing reached any phone: tell the sender to knock again.
            return Err(e.into());
        }
    }
    Ok(delivery)
}

/// Publishes a knock to one device: to its endpoint, or to both while its
/// APNs environment is unknown (the push reaches the device if either
/// takes it).
async fn publish_to(
    deps: &Deps,
    device: &DeviceRecord,
    token: &str,
    data: &Value,
    priority: Priority,
) -> Result<Sent, PublishError> {
    let push = push_for(device.kind, token, data, priority);
    if push.apns_push_type.is_some() && push.payload.len() >= APNS_MAX_PAYLOAD_BYTES {
        return Err(PublishError::Port(PortError::Internal(
            "APNs payload too large".into(),
        )));
    }
    let Some(alternate) = &device.alternate_arn else {
        return match deps
            .push
            .publish(&device.endpoint_arn, device.kind, &push)
            .await
        {
            Err(PublishError::Gone) => reattach(deps, device, &push).await,
            other => other.map(|()| Sent {
                reattached: false,
                pushes: 1,
                dead: None,
            }),
        };
    };
    let (first, second) = futures_util::future::join(
        deps.push.publish(&device.endpoint_arn, device.kind, &push),
        deps.push.publish(alternate, device.kind, &push),
    )
    .await;
    let one = |other: Result<(), PublishError>, other_arn: &str| {
        let dead = match other {
            Err(PublishError::Disabled | PublishError::Gone) => Some(other_arn.to_string()),
            Err(PublishError::Port(e)) => {
                tracing::warn!(device = %device.id, error = %e, "publish to one environment failed");
                None
            }
            Ok(()) => None,
        };
        Ok(Sent {
            reattached: false,
            pushes: 1,
            dead,
        })
    };
    match (first, second) {
        (Ok(()), Ok(())) => Ok(Sent {
            reattached: false,
            pushes: 2,
            dead: None,
        }),
        (Ok(()), other) => one(other, alternate),
        (other, Ok(())) => one(other, &device.endpoint_arn),
        // Neither took it: a failure of AWS first, else dead in both.
        (Err(PublishError::Port(e)), _) | (_, Err(PublishError::Port(e))) => {
            Err(PublishError::Port(e))
        }
        (Err(e), Err(_)) => Err(e),
    }
}

/// A device whose endpoint is gone although its record still names it: a
/// deletion racing a registration of the same push token deleted the
/// endpoint the registration had just adopted (SNS keeps one per token). A
/// new endpoint for the device's push token, recorded on condition that the
/// device still names the old one, then the push: `Ok(true)`. If the device
/// is gone or changed meanwhile, the push is not sent (`Gone`), and nothing
/// is deleted — the new endpoint may be another device's by now.
async fn reattach(deps: &Deps, device: &DeviceRecord, push: &Push) -> Result<Sent, PublishError> {
    // On the platform the old endpoint was on (every endpoint ARN names it).
    let platform = Platform::of_arn(&device.endpoint_arn).ok_or(PublishError::Gone)?;
    let arn = deps
        .push
        .ensure_endpoint(platform, &device.registration_id, None)
        .await?;
    if !deps.store.replace_endpoint(device, &arn).await? {
        return Err(PublishError::Gone);
    }
    tracing::info!(device = %device.id, "gave a device a new endpoint in place of a deleted one");
    deps.push.publish(&arn, device.kind, push).await?;
    Ok(Sent {
        reattached: true,
        pushes: 1,
        dead: None,
    })
}

/// `GET pubsub/`: the XEP-0357 relay JID.
pub fn pubsub(deps: &Deps) -> ApiResponse {
    ApiResponse::json(StatusCode::OK, json!({ "jid": deps.settings.pubsub_jid }))
}
