//! `messages/` (the knock) and `pubsub/`.

use http::StatusCode;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::metrics;
use crate::model::{DeviceKind, DeviceRecord, Platform, PushFailure};
use crate::payload::{push_for, Priority, APNS_MAX_PAYLOAD_BYTES};
use crate::ports::{KnockAdmission, LimitName, PortError, PublishError, Push};
use crate::request::ApiRequest;
use crate::response::ApiResponse;
use crate::retry::{deadline_of, retry_conflicts};
use crate::time::Micros;
use crate::tokens::MAX_TOKEN_CHARS;
use crate::Deps;

/// The last error of a device whose endpoint a knock found disabled (SNS's
/// error code; the delivery-failure event, if the feedback function gets
/// it, carries the push service's own reason).
pub const DISABLED_AT_PUBLISH: &str = "EndpointDisabled";

/// Largest `data`, as compact UTF-8 JSON (a string's quotes included).
pub const MAX_DATA_BYTES: usize = 1024;

/// What happened to one knock; logged and returned for tests and metrics.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Devices SNS reported disabled (in every environment they have), and
    /// endpoints it reported gone (re-created, see [`reattach`]).
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
    /// Devices changed or deleted by another request during the knock
    /// (their endpoint re-created by someone else, say): not pushed, not
    /// judged.
    pub changed: usize,
    /// Devices newly marked pushed today (their `push` object).
    pub marked: usize,
    /// The same, by app, APNs environment and reason (the metrics).
    pub by_app: metrics::Tally,
}

/// What publishing to one device did.
#[derive(Debug)]
struct Sent {
    /// Its endpoint had to be re-created first (see [`reattach`]).
    reattached: bool,
    /// The platforms of the endpoints SNS took the push at: one per live
    /// endpoint.
    pushed: Vec<Platform>,
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
    let mut by_app = delivery.by_app;
    by_app.add("KnocksAccepted", &[("App", &deps.settings.app)], 1);
    by_app.emit("knock");
    tracing::info!(
        published = delivery.published,
        marked = delivery.marked,
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
    let app = deps.settings.app.as_str();
    let today = crate::time::day_of(now);
    let mut dead = Vec::new();
    let mut settling = Vec::new();
    let mut marks = Vec::new();
    let mut last_error = None;
    for (device, result) in active.iter().zip(results) {
        match result {
            Reached::Delivered(sent) => {
                delivery.reattached += usize::from(sent.reattached);
                delivery.gone += usize::from(sent.reattached);
                delivery.published += 1;
                match device.kind {
                    DeviceKind::Apns => delivery.published_apns += sent.pushed.len(),
                    DeviceKind::Gcm => delivery.published_fcm += sent.pushed.len(),
                }
                for platform in &sent.pushed {
                    let at = [("App", app), ("Environment", platform.environment())];
                    delivery.by_app.add("Pushes", &at, 1);
                }
                // Its `push` object shows it: a write the first time each
                // day (or after it was re-enabled), none on the common path.
                let mark = device.needs_mark(today).then_some(today);
                // Not one whose endpoint was re-created: at a new version
                // already, it is marked by its next knock.
                match sent.dead {
                    Some(arn) => settling.push((*device, arn, mark)),
                    None if mark.is_some() && !sent.reattached => marks.push(*device),
                    None => {}
                }
            }
            Reached::Dead => {
                delivery.disabled += 1;
                dead.push(*device);
            }
            // Changed or deleted by another request while this knock ran:
            // not dead, and not this knock's to decide on.
            Reached::Changed => delivery.changed += 1,
            Reached::Failed(e) => {
                delivery.failed += 1;
                let at = [("App", app), ("Environment", device.metric_environment())];
                delivery.by_app.add("PublishFailures", &at, 1);
                tracing::warn!(device = %device.id, error = %e, "publish failed");
                last_error = Some(e);
            }
        }
    }
    // Dead endpoints: stop pushing to them until the app registers again —
    // on condition that the device is still as listed (one re-registered
    // meanwhile has its endpoint enabled again, and stays active).
    let failure = PushFailure {
        at_us: now,
        reason: DISABLED_AT_PUBLISH.into(),
    };
    let deactivations: Vec<_> = dead
        .iter()
        .map(|d| deps.store.deactivate_device(d, &failure))
        .collect();
    // Devices of unknown environment with one dead endpoint: settled on the
    // other (a write only while a device's environment is unknown).
    let settlements = settling
        .iter()
        .map(|(device, arn, mark)| crate::devices::settle_environment(deps, device, arn, *mark));
    let marked = marks.iter().map(|d| deps.store.mark_pushed(d, today));
    let (deactivated, settled, marked) = futures_util::future::join3(
        futures_util::future::join_all(deactivations),
        futures_util::future::join_all(settlements),
        futures_util::future::join_all(marked),
    )
    .await;
    for (device, result) in dead.iter().zip(deactivated) {
        for arn in device.endpoints() {
            count_disabled(&mut delivery.by_app, app, arn);
        }
        match result {
            Ok(done) => {
                delivery.deactivated += usize::from(done);
                let at = [("App", app), ("Environment", device.metric_environment())];
                delivery
                    .by_app
                    .add("DevicesDeactivated", &at, usize::from(done));
            }
            // Another request is writing the device right now: it is
            // changing, and the next knock decides on what it becomes.
            Err(PortError::Conflict(_)) => {}
            Err(e) => {
                tracing::warn!(device = %device.id, error = %e, "could not deactivate device")
            }
        }
    }
    for ((device, arn, mark), result) in settling.iter().zip(settled) {
        count_disabled(&mut delivery.by_app, app, arn);
        match result {
            Ok(done) => {
                delivery.settled += usize::from(done);
                delivery.marked += usize::from(done && mark.is_some());
                if let Some(kept) = device.survivor(arn).and_then(Platform::of_arn) {
                    let at = [("App", app), ("Environment", kept.environment())];
                    delivery
                        .by_app
                        .add("DevicesSettled", &at, usize::from(done));
                }
            }
            Err(e) => {
                tracing::warn!(device = %device.id, error = %e, "could not settle a device's environment")
            }
        }
    }
    for (device, result) in marks.iter().zip(marked) {
        match result {
            Ok(done) => delivery.marked += usize::from(done),
            // Changed meanwhile: the next knock marks it.
            Err(PortError::Conflict(_)) => {}
            Err(e) => {
                tracing::warn!(device = %device.id, error = %e, "could not mark a device pushed")
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

/// One endpoint a knock's publish found disabled, in the per-app metrics.
fn count_disabled(tally: &mut metrics::Tally, app: &str, arn: &str) {
    let at = [
        ("App", app),
        ("Environment", Platform::environment_of_arn(arn)),
        ("Reason", DISABLED_AT_PUBLISH),
    ];
    tally.add("EndpointsDisabled", &at, 1);
}

/// What a knock did for one device.
#[derive(Debug)]
enum Reached {
    Delivered(Sent),
    /// SNS disabled its endpoint(s): the push service rejected its token.
    Dead,
    /// Another request changed or deleted it meanwhile.
    Changed,
    Failed(PortError),
}

/// What publishing to one of a device's endpoints did.
#[derive(Debug)]
enum AtEndpoint {
    /// Handed to SNS (`true`: through an endpoint re-created first).
    Sent(bool),
    Dead,
    Changed,
    Failed(PortError),
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
) -> Reached {
    let push = push_for(device.kind, token, data, priority);
    if push.apns_push_type.is_some() && push.payload.len() >= APNS_MAX_PAYLOAD_BYTES {
        return Reached::Failed(PortError::Internal("APNs payload too large".into()));
    }
    let Some(alternate) = &device.alternate_arn else {
        return match publish_at(deps, device, &device.endpoint_arn, &push).await {
            AtEndpoint::Sent(reattached) => Reached::Delivered(Sent {
                reattached,
                pushed: Platform::of_arn(&device.endpoint_arn).into_iter().collect(),
                dead: None,
            }),
            AtEndpoint::Dead => Reached::Dead,
            AtEndpoint::Changed => Reached::Changed,
            AtEndpoint::Failed(e) => Reached::Failed(e),
        };
    };
    let (first, second) = futures_util::future::join(
        publish_at(deps, device, &device.endpoint_arn, &push),
        publish_at(deps, device, alternate, &push),
    )
    .await;
    let results = [(first, &device.endpoint_arn), (second, alternate)];
    let pushed: Vec<Platform> = results
        .iter()
        .filter(|(r, _)| matches!(r, AtEndpoint::Sent(_)))
        .filter_map(|(_, arn)| Platform::of_arn(arn))
        .collect();
    if !pushed.is_empty() {
        let reattached = results
            .iter()
            .any(|(r, _)| matches!(r, AtEndpoint::Sent(true)));
        let dead = results
            .iter()
            .find(|(r, _)| matches!(r, AtEndpoint::Dead))
            .map(|(_, arn)| arn.to_string());
        for (r, _) in &results {
            if let AtEndpoint::Failed(e) = r {
                tracing::warn!(device = %device.id, error = %e, "publish to one environment failed");
            }
        }
        return Reached::Delivered(Sent {
            reattached,
            pushed,
            dead,
        });
    }
    // Neither took it: a failure of AWS first, else dead in both.
    let [(first, _), (second, _)] = results;
    match (first, second) {
        (AtEndpoint::Failed(e), _) | (_, AtEndpoint::Failed(e)) => Reached::Failed(e),
        (AtEndpoint::Dead, AtEndpoint::Dead) => Reached::Dead,
        _ => Reached::Changed,
    }
}

/// Publishes to one endpoint of a device; one that is gone is re-created
/// first ([`reattach`]).
async fn publish_at(deps: &Deps, device: &DeviceRecord, arn: &str, push: &Push) -> AtEndpoint {
    match deps.push.publish(arn, device.kind, push).await {
        Ok(()) => AtEndpoint::Sent(false),
        Err(PublishError::Disabled) => AtEndpoint::Dead,
        Err(PublishError::Gone) => reattach(deps, device, arn, push).await,
        Err(PublishError::Port(e)) => AtEndpoint::Failed(e),
    }
}

/// A device whose endpoint is gone although its record still names it. SNS
/// never deletes an endpoint by itself: a request of ours did, racing a
/// registration of the same push token (SNS keeps one endpoint per token),
/// so the device is not dead. A new endpoint for the device's push token,
/// recorded on condition that the device is still as read, then the push.
/// If the device changed meanwhile, the push is not sent (`Changed`) and
/// nothing is deleted — the new endpoint may be another device's by now.
async fn reattach(deps: &Deps, device: &DeviceRecord, gone: &str, push: &Push) -> AtEndpoint {
    // On the platform the old endpoint was on (every endpoint ARN names it).
    let Some(platform) = Platform::of_arn(gone) else {
        return AtEndpoint::Changed;
    };
    let arn = match deps
        .push
        .ensure_endpoint(platform, &device.registration_id, None)
        .await
    {
        Ok(arn) => arn,
        Err(e) => return AtEndpoint::Failed(e),
    };
    match deps.store.replace_endpoint(device, gone, &arn).await {
        Ok(true) => {}
        Ok(false) | Err(PortError::Conflict(_)) => return AtEndpoint::Changed,
        Err(e) => return AtEndpoint::Failed(e),
    }
    tracing::info!(device = %device.id, "gave a device a new endpoint in place of a deleted one");
    match deps.push.publish(&arn, device.kind, push).await {
        Ok(()) => AtEndpoint::Sent(true),
        // Its record is at a newer version now: the next knock judges it.
        Err(PublishError::Disabled | PublishError::Gone) => AtEndpoint::Changed,
        Err(PublishError::Port(e)) => AtEndpoint::Failed(e),
    }
}

/// `GET pubsub/`: the XEP-0357 relay JID.
pub fn pubsub(deps: &Deps) -> ApiResponse {
    ApiResponse::json(StatusCode::OK, json!({ "jid": deps.settings.pubsub_jid }))
}
