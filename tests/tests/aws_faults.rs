//! What real AWS does that a kind emulator never shows (issue 25), each on an
//! emulator and a router of the test's own, with the emulator's fidelity
//! switches (infra/local/fidelity.py) turned at run time:
//!
//! - a transaction throttled by DynamoDB (cancelled with `ThrottlingError`)
//!   is `503` with `Retry-After`, never `500`;
//! - with every AWS call slow (just under and just over the SDK's 2 s
//!   attempt timeout), every route answers within its function's 10 s
//!   timeout: its normal answer or `503` with `Retry-After`;
//! - a transaction still in flight when the SDK's retries of it arrive
//!   (`TransactionInProgressException`) is answered as it lands;
//! - a write applied whose answer was lost, which the SDK then retries,
//!   counts once and never fails (or turns into another answer) because of
//!   its own first attempt.

// Black-box: needs the local stack (`make test` turns this feature on).
#![cfg(feature = "stack")]

use std::time::{Duration, Instant};

use api_tests::serde_json::{json, Value};
use api_tests::*;

/// The functions' timeout (template.yaml, `Globals.Function.Timeout`).
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Knocks until one is refused with `429` (at most `most`): how many were
/// admitted.
async fn knocks_until_limited(api: &Api, token: &str, most: usize) -> usize {
    for admitted in 0..most {
        let r = api.knock(token, json!({})).await;
        match r.status {
            202 => {}
            429 => return admitted,
            other => panic!("knock: {other} {}", r.text),
        }
    }
    most
}

/// Wrong passwords until one is refused with `429` (at most `most`): how
/// many were answered `401`.
async fn wrong_logins_until_locked(api: &Api, username: &str, most: usize) -> usize {
    for answered in 0..most {
        let r = api
            .post(
                "accounts/",
                None,
                Body::Json(json!({"username": username, "password": "wrong"})),
            )
            .await;
        match r.status {
            401 | 400 => {}
            429 => return answered,
            other => panic!("wrong login: {other} {}", r.text),
        }
    }
    most
}

/// Sign-ups of fresh usernames until one is refused with `429` (at most
/// `most`): how many were created.
async fn signups_until_limited(api: &Api, most: usize) -> usize {
    for created in 0..most {
        let r = api
            .post(
                "accounts/",
                None,
                Body::Json(json!({"username": random_username(), "password": "pw-pw-pw-pw"})),
            )
            .await;
        match r.status {
            201 => {}
            429 => return created,
            other => panic!("sign-up: {other} {}", r.text),
        }
    }
    most
}

/// A stack to send one request per route to, with every AWS call slowed.
struct Stack {
    api: Api,
    /// The emulator's URL (its fidelity switches, its state).
    emulator: String,
    /// The root of Lambda's Invoke API (the feedback function).
    lambda: String,
    /// Whether each function serves one request at a time (`sam local`):
    /// then the requests to one function go one after another.
    one_at_a_time: bool,
    /// What the stack itself may add to a function's time (`sam local`'s
    /// proxying), beyond its timeout.
    slack: Duration,
}

/// One request: which function serves it, what it is, and what it sends.
type RouteRequest = (
    &'static str,
    String,
    &'static str,
    String,
    Option<String>,
    Body,
);

impl Stack {
    /// Every AWS call takes `latency_ms`; one request per route (and the
    /// feedback function) answers within the function's timeout, with its
    /// normal answer or `503` and `Retry-After`, never a gateway's error.
    async fn every_route_answers_in_time(&self, latency_ms: u64) {
        let api = &self.api;
        // What the requests act on, made while AWS is fast (and each
        // function warm).
        self.slow(0).await;
        let account = api.signup().await;
        let doomed = api.signup().await;
        let push_token = apns_token();
        let device = api.device(&account, "apns", &push_token).await;
        let device_id = device["id"].as_str().expect("device id").to_string();
        let token = api.token(&account, "apns", &device_id).await;
        let other_token = api.token(&account, "apns", &device_id).await;
        let arn = only_endpoint_at(&self.emulator, &push_token).await;
        assert_eq!(api.get("pubsub/", None).await.status, 200);
        invoke_feedback_at(&self.lambda, event("malformed", &arn)).await;

        let key = Some(account.key.clone());
        let name = |n: &str| Body::Json(json!({ "name": n }));
        let requests: Vec<RouteRequest> = vec![
            (
                "register",
                "sign-up".into(),
                "POST",
                "accounts/".into(),
                None,
                Body::Json(json!({"username": random_username(), "password": "pw-pw-pw-pw"})),
            ),
            (
                "register",
                "login".into(),
                "POST",
                "accounts/".into(),
                None,
                Body::Json(json!({"username": account.username, "password": account.password})),
            ),
            (
                "register",
                "own account".into(),
                "GET",
                "accounts/".into(),
                key.clone(),
                Body::None,
            ),
            (
                "register",
                "named account".into(),
                "GET",
                format!("accounts/{}/", account.username),
                key.clone(),
                Body::None,
            ),
            (
                "register",
                "account deletion".into(),
                "DELETE",
                format!("accounts/{}/", doomed.username),
                Some(doomed.key.clone()),
                Body::None,
            ),
            (
                "register",
                "device registration".into(),
                "POST",
                "device/apns/".into(),
                key.clone(),
                Body::Json(json!({"registration_id": apns_token()})),
            ),
            (
                "register",
                "device list".into(),
                "GET",
                "device/apns/".into(),
                key.clone(),
                Body::None,
            ),
            (
                "register",
                "device retrieval".into(),
                "GET",
                format!("device/apns/{device_id}/"),
                key.clone(),
                Body::None,
            ),
            (
                "register",
                "device update".into(),
                "PATCH",
                format!("device/apns/{device_id}/"),
                key.clone(),
                name("slow"),
            ),
            (
                "tokens",
                "token creation".into(),
                "POST",
                "tokens/".into(),
                key.clone(),
                Body::Json(json!({"apns_device": device_id})),
            ),
            (
                "tokens",
                "token list".into(),
                "GET",
                "tokens/".into(),
                key.clone(),
                Body::None,
            ),
            (
                "tokens",
                "token retrieval".into(),
                "GET",
                format!("tokens/{token}/"),
                key.clone(),
                Body::None,
            ),
            (
                "tokens",
                "token rename".into(),
                "PATCH",
                format!("tokens/{token}/"),
                key.clone(),
                name("slow"),
            ),
            (
                "tokens",
                "token revocation".into(),
                "DELETE",
                format!("tokens/{other_token}/"),
                key.clone(),
                Body::None,
            ),
            (
                "knock",
                "knock".into(),
                "POST",
                "messages/".into(),
                None,
                Body::Json(json!({ "token": token })),
            ),
            (
                "knock",
                "pubsub".into(),
                "GET",
                "pubsub/".into(),
                None,
                Body::None,
            ),
        ];

        self.slow(latency_ms).await;
        // One queue per function when each serves one request at a time,
        // else one queue per request; the queues run at once.
        let mut queues: Vec<Vec<RouteRequest>> = Vec::new();
        for request in requests {
            match queues
                .iter_mut()
                .find(|q| self.one_at_a_time && q[0].0 == request.0)
            {
                Some(queue) => queue.push(request),
                None => queues.push(vec![request]),
            }
        }
        let runs = queues.into_iter().map(|queue| {
            let api = api.clone();
            async move {
                let mut answers = Vec::new();
                for (_, what, method, path, key, body) in queue {
                    let started = Instant::now();
                    let r = api.send(method, &path, key.as_deref(), body).await;
                    answers.push((what, started.elapsed(), r));
                }
                answers
            }
        });
        let feedback = async {
            let started = Instant::now();
            let r = invoke_feedback_at(&self.lambda, event("delivery-failure", &arn)).await;
            ("feedback".to_string(), started.elapsed(), r)
        };
        let (answers, feedback) =
            futures_util::future::join(futures_util::future::join_all(runs), feedback).await;
        self.slow(0).await;
        let in_time = FUNCTION_TIMEOUT + self.slack;
        let (what, elapsed, r) = &feedback;
        // The feedback function's answer: its summary, or its error (which
        // Lambda retries), in time either way.
        assert!(
            *elapsed < in_time && (r.status == 200 || r.status == 502),
            "{what} at {latency_ms} ms a call: {} after {elapsed:?}: {}",
            r.status,
            r.text
        );
        let mut answers: Vec<_> = answers.into_iter().flatten().collect();
        answers.sort_by_key(|(_, elapsed, _)| *elapsed);
        let mut wrong = Vec::new();
        for (what, elapsed, r) in &answers {
            let normal = (200..300).contains(&r.status);
            if *elapsed >= in_time || !(normal || is_retry_later(r)) {
                wrong.push(format!(
                    "{what}: {} after {elapsed:?}: {}",
                    r.status, r.text
                ));
            }
        }
        assert!(
            wrong.is_empty(),
            "at {latency_ms} ms a call, answered late or wrongly:\n{}\n(all: {:?})",
            wrong.join("\n"),
            answers
                .iter()
                .map(|(w, e, r)| format!("{w} {} {e:?}", r.status))
                .collect::<Vec<_>>()
        );
    }

    /// Every DynamoDB and SNS call of the emulator takes `ms` from now on.
    async fn slow(&self, ms: u64) {
        let latency = ms.to_string();
        set_fidelity(
            &self.emulator,
            json!({"dynamodb_latency_ms": latency, "sns_latency_ms": latency}),
        )
        .await;
    }
}

/// Through the shared stack: `make sam-local-test` runs this on its own,
/// after the suite (`--ignored`), with the functions in `sam local`'s
/// containers and their real 10 s timeouts; each function serves one request
/// at a time. Left out of `make test`: it slows the shared emulator for
/// every test running beside it.
mod slow_aws {
    use super::*;

    fn shared_stack() -> Stack {
        Stack {
            api: Api::new(),
            emulator: emulator_url(),
            lambda: std::env::var("LAMBDA_INVOKE_URL")
                .expect("LAMBDA_INVOKE_URL: run this through `make sam-local-test`"),
            one_at_a_time: true,
            // `sam local start-api` hands each request to its container and
            // back over HTTP.
            slack: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    #[ignore = "slows the shared emulator: `make sam-local-test` runs it alone"]
    async fn through_sam_local_every_route_answers_in_time_with_aws_at_the_attempt_timeout() {
        let stack = shared_stack();
        for latency_ms in [1_900, 2_100] {
            stack.every_route_answers_in_time(latency_ms).await;
        }
    }
}

/// An emulator of the test's own with no fault of its own (whatever
/// `make test-faults` exported): the test turns them on when it means to.
async fn quiet_emulator() -> Emulator {
    Emulator::start(&[
        ("EMULATOR_FAULT_RATE", "0"),
        ("EMULATOR_APPLIED_FAULT_RATE", "0"),
        ("EMULATOR_DYNAMODB_LATENCY_MS", "0"),
        ("EMULATOR_SNS_LATENCY_MS", "0"),
    ])
    .await
}

mod own_stack {
    use super::*;

    /// DynamoDB cancels a transaction it throttles (reasons `ThrottlingError`
    /// or `ProvisionedThroughputExceeded`), which the SDK does not retry.
    /// With a third of the calls faulted, token creations (whose write is a
    /// transaction) meet such cancellations: `201` or `503` with
    /// `Retry-After`, never `500`.
    #[tokio::test]
    async fn a_throttled_transaction_is_503_with_retry_after_never_500() {
        let emulator = quiet_emulator().await;
        let url = emulator.url();
        let router = Router::start(&[
            ("AWS_ENDPOINT_URL", url.as_str()),
            ("TOKEN_CREATE_LIMIT", "0"),
        ])
        .await;
        let api = &router.api;
        let account = api.signup().await;
        let device = api.device(&account, "apns", &apns_token()).await;
        let device_id = device["id"].as_str().expect("device id").to_string();
        emulator.set(json!({"fault_rate": 0.3})).await;
        let mut statuses = Vec::new();
        for _ in 0..60 {
            let r = api
                .post(
                    "tokens/",
                    Some(&account.key),
                    Body::Json(json!({"apns_device": device_id})),
                )
                .await;
            assert!(
                r.status == 201 || is_retry_later(&r),
                "a token creation under throttling answered {} {}",
                r.status,
                r.text
            );
            statuses.push(r.status);
        }
        emulator.set(json!({"fault_rate": 0.0})).await;
        assert!(statuses.contains(&201), "{statuses:?}");
    }

    /// A transaction slow inside DynamoDB, past the SDK's 2 s attempt
    /// timeout: the SDK's retries of it meet it in progress
    /// (`TransactionInProgressException`). The token creation still answers
    /// `201` with the token that landed, in time, and it is the only token
    /// made (none left behind by a `503`, none stored twice).
    #[tokio::test]
    async fn a_transaction_outlasting_its_attempts_is_answered_as_it_lands() {
        let emulator = quiet_emulator().await;
        let url = emulator.url();
        let router = Router::start(&[("AWS_ENDPOINT_URL", url.as_str())]).await;
        let api = &router.api;
        let account = api.signup().await;
        let device = api.device(&account, "apns", &apns_token()).await;
        let device_id = device["id"].as_str().expect("device id").to_string();
        emulator.set(json!({"transaction_time_ms": 5_500})).await;
        let started = Instant::now();
        let r = api
            .post(
                "tokens/",
                Some(&account.key),
                Body::Json(json!({"apns_device": device_id})),
            )
            .await;
        let elapsed = started.elapsed();
        emulator.set(json!({"transaction_time_ms": 0})).await;
        assert_eq!(r.status, 201, "after {elapsed:?}: {}", r.text);
        assert!(elapsed < FUNCTION_TIMEOUT, "answered after {elapsed:?}");
        let listed = api.get("tokens/", Some(&account.key)).await;
        assert_eq!(listed.json["count"], 1, "{}", listed.text);
        assert_eq!(listed.json["results"][0]["token"], r.json["token"]);
    }

    /// On a stack of its own: every request at once.
    async fn every_route_answers_in_time(latency_ms: u64) {
        let emulator = quiet_emulator().await;
        let url = emulator.url();
        let router = Router::start(&[
            ("AWS_ENDPOINT_URL", url.as_str()),
            ("SIGNUP_PER_IPV4_LIMIT", "1000"),
        ])
        .await;
        let root = router
            .api
            .base
            .trim_end_matches('/')
            .trim_end_matches("/api/v1");
        let stack = Stack {
            api: router.api.clone(),
            emulator: url.clone(),
            lambda: root.to_string(),
            one_at_a_time: false,
            slack: Duration::ZERO,
        };
        stack.every_route_answers_in_time(latency_ms).await;
    }

    /// AWS just slower than the SDK's attempt timeout would allow: every
    /// call's attempts time out.
    #[tokio::test]
    async fn with_aws_just_over_the_attempt_timeout_every_route_answers_in_time() {
        every_route_answers_in_time(2_100).await;
    }

    /// AWS just faster than the attempt timeout: every call succeeds, but an
    /// operation of many calls would outlast the function.
    #[tokio::test]
    async fn with_aws_just_under_the_attempt_timeout_every_route_answers_in_time() {
        every_route_answers_in_time(1_900).await;
    }

    /// Every write is applied and its answer lost (a `500`, or held past the
    /// SDK's attempt timeout), and the SDK retries it: the sign-up is still
    /// `201` (not "taken" by itself), a wrong password `401` — and each
    /// counts once: the sign-up limit, the failed-login log, the knock log.
    #[tokio::test]
    async fn a_write_applied_and_retried_by_the_sdk_counts_once() {
        let emulator = quiet_emulator().await;
        let url = emulator.url();
        let router = Router::start(&[
            ("AWS_ENDPOINT_URL", url.as_str()),
            ("SIGNUP_LIMIT", "4"),
            ("SIGNUP_WINDOW_SECONDS", "3600"),
            ("LOGIN_FAILURE_LIMIT", "4"),
            ("KNOCK_LIMIT_PER_WINDOW", "4"),
            ("KNOCK_LIMIT_WINDOW_SECONDS", "3600"),
        ])
        .await;
        let api = &router.api;
        away_from_window_edge().await;
        let account = api.signup().await;
        let device = api.device(&account, "apns", &apns_token()).await;
        let device_id = device["id"].as_str().expect("device id").to_string();
        let token = api.token(&account, "apns", &device_id).await;
        let lost = json!({"applied_fault_rate": 1.0, "applied_timeout_share": 0.0});
        let kept = json!({"applied_fault_rate": 0.0});

        // A sign-up: one counted (the limit's second of four).
        emulator.set(lost.clone()).await;
        let username = random_username();
        let r = api
            .post(
                "accounts/",
                None,
                Body::Json(json!({"username": username, "password": "pw-pw-pw-pw"})),
            )
            .await;
        emulator.set(kept.clone()).await;
        assert_eq!(
            r.status, 201,
            "a sign-up whose writes were retried: {}",
            r.text
        );
        assert_eq!(signups_until_limited(api, 5).await, 2, "sign-ups left of 4");

        // A wrong password: one failure logged (of four).
        emulator.set(lost.clone()).await;
        let r = api
            .post(
                "accounts/",
                None,
                Body::Json(json!({"username": account.username, "password": "wrong"})),
            )
            .await;
        emulator.set(kept.clone()).await;
        assert_eq!(
            r.status, 401,
            "a wrong login whose log write was retried: {}",
            r.text
        );
        assert_eq!(
            wrong_logins_until_locked(api, &account.username, 5).await,
            3,
            "failures left of 4"
        );

        // A knock, its answer lost once as a 500 and once by a timeout: two
        // logged (of four), whatever the publishes answered.
        for (share, ms) in [(0.0, 0), (1.0, 2_500)] {
            emulator
                .set(json!({
                    "applied_fault_rate": 1.0,
                    "applied_timeout_share": share,
                    "applied_timeout_ms": ms.max(1),
                }))
                .await;
            let r = api.knock(&token, json!({})).await;
            emulator.set(kept.clone()).await;
            assert!(
                r.status == 202 || is_retry_later(&r),
                "a knock whose writes were retried: {} {}",
                r.status,
                r.text
            );
        }
        assert_eq!(
            knocks_until_limited(api, &token, 5).await,
            2,
            "knocks left of 4"
        );
    }

    /// Device registrations and token creations are transactions: the SDK
    /// retries one that was applied under the same `ClientRequestToken`,
    /// which DynamoDB answers as the same transaction. Each counts once
    /// against the device cap and the token-creation limit.
    #[tokio::test]
    async fn a_transaction_applied_and_retried_by_the_sdk_counts_once() {
        let emulator = quiet_emulator().await;
        let url = emulator.url();
        let router = Router::start(&[
            ("AWS_ENDPOINT_URL", url.as_str()),
            ("DEVICE_LIMIT", "3"),
            ("TOKEN_CREATE_LIMIT", "3"),
            ("TOKEN_CREATE_WINDOW_SECONDS", "3600"),
        ])
        .await;
        let api = &router.api;
        away_from_window_edge().await;
        let account = api.signup().await;
        let lost = json!({"applied_fault_rate": 1.0, "applied_timeout_share": 0.0});
        let kept = json!({"applied_fault_rate": 0.0});

        emulator.set(lost.clone()).await;
        let r = api
            .post(
                "device/apns/",
                Some(&account.key),
                Body::Json(json!({"registration_id": apns_token()})),
            )
            .await;
        emulator.set(kept.clone()).await;
        assert!(
            r.status == 201 || is_retry_later(&r),
            "a registration whose writes were retried: {} {}",
            r.status,
            r.text
        );
        let listed = api.get("device/apns/", Some(&account.key)).await;
        let devices = listed.json["count"].as_u64().expect("count") as usize;
        // The cap counts what is there: as many more as it leaves room for.
        let mut more = 0;
        for _ in 0..4 {
            let r = api
                .post(
                    "device/apns/",
                    Some(&account.key),
                    Body::Json(json!({"registration_id": apns_token()})),
                )
                .await;
            if r.status != 201 {
                break;
            }
            more += 1;
        }
        assert_eq!(
            devices + more,
            3,
            "devices: {devices} then {more} more of 3"
        );

        let listed = api.get("device/apns/", Some(&account.key)).await;
        let device_id = listed.json["results"][0]["id"]
            .as_str()
            .expect("a device")
            .to_string();
        emulator.set(lost).await;
        let r = api
            .post(
                "tokens/",
                Some(&account.key),
                Body::Json(json!({"apns_device": device_id})),
            )
            .await;
        emulator.set(kept).await;
        assert_eq!(
            r.status, 201,
            "a token creation whose write was retried: {}",
            r.text
        );
        let mut more = 0;
        for _ in 0..4 {
            let r = api
                .post(
                    "tokens/",
                    Some(&account.key),
                    Body::Json(json!({"apns_device": device_id})),
                )
                .await;
            if r.status != 201 {
                assert_eq!(r.status, 429, "{}", r.text);
                break;
            }
            more += 1;
        }
        assert_eq!(more, 2, "token creations left of 3");
    }

    /// `make test-faults`' judge: with 5 % of the calls faulted before they
    /// are applied and 5 % of the writes applied and their answers lost (a
    /// tenth of those by a timeout), nothing is `500` and nothing counts
    /// twice: the knock log, the failed-login log, the sign-up counter and
    /// the device count hold, once the faults are off, what the answers
    /// allow.
    #[tokio::test]
    async fn under_random_faults_nothing_counts_twice() {
        let emulator = quiet_emulator().await;
        let url = emulator.url();
        let router = Router::start(&[
            ("AWS_ENDPOINT_URL", url.as_str()),
            ("SIGNUP_LIMIT", "60"),
            ("SIGNUP_WINDOW_SECONDS", "3600"),
            ("SIGNUP_PER_IPV4_LIMIT", "1000"),
            ("LOGIN_FAILURE_LIMIT", "40"),
            ("KNOCK_LIMIT_PER_WINDOW", "60"),
            ("KNOCK_LIMIT_WINDOW_SECONDS", "3600"),
            ("DEVICE_LIMIT", "14"),
        ])
        .await;
        let api = &router.api;
        away_from_window_edge().await;
        let account = api.signup().await;
        let device = api.device(&account, "apns", &apns_token()).await;
        let device_id = device["id"].as_str().expect("device id").to_string();
        let token = api.token(&account, "apns", &device_id).await;
        let faults =
            json!({"fault_rate": 0.05, "applied_fault_rate": 0.05, "applied_timeout_share": 0.1});
        let quiet = json!({"fault_rate": 0.0, "applied_fault_rate": 0.0});

        emulator.set(faults).await;
        let mut knocks = Tally::default();
        let mut signups = Tally::default();
        let mut failures = Tally::default();
        let mut devices = Tally::default();
        for _ in 0..30 {
            let r = api.knock(&token, json!({})).await;
            knocks.add("knock", &r, &[202]);
        }
        for _ in 0..20 {
            let r = api
                .post(
                    "accounts/",
                    None,
                    Body::Json(json!({"username": random_username(), "password": "pw-pw-pw-pw"})),
                )
                .await;
            signups.add("sign-up", &r, &[201]);
            let r = api
                .post(
                    "accounts/",
                    None,
                    Body::Json(json!({"username": account.username, "password": "wrong"})),
                )
                .await;
            failures.add("wrong login", &r, &[401]);
        }
        for _ in 0..8 {
            let r = api
                .post(
                    "device/apns/",
                    Some(&account.key),
                    Body::Json(json!({"registration_id": apns_token()})),
                )
                .await;
            devices.add("device registration", &r, &[201]);
        }
        emulator.set(quiet).await;

        let knocks_left = knocks_until_limited(api, &token, 61).await;
        knocks.assert_counted("knocks", 60 - knocks_left);
        let failures_left = wrong_logins_until_locked(api, &account.username, 41).await;
        failures.assert_counted("failed logins", 40 - failures_left);
        // One sign-up before the faults (the account).
        let signups_left = signups_until_limited(api, 61).await;
        signups.assert_counted("sign-ups", 60 - 1 - signups_left);
        // The devices there: one before the faults; the cap counts exactly
        // them (as many more fit as it leaves).
        let listed = api.get("device/apns/", Some(&account.key)).await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        let there = listed.json["count"].as_u64().expect("count") as usize;
        devices.assert_counted("devices registered", there - 1);
        let mut more = 0;
        for _ in 0..15 {
            let r = api
                .post(
                    "device/apns/",
                    Some(&account.key),
                    Body::Json(json!({"registration_id": apns_token()})),
                )
                .await;
            if r.status != 201 {
                assert_eq!(r.status, 400, "the cap refuses: {}", r.text);
                break;
            }
            more += 1;
        }
        assert_eq!(
            there + more,
            14,
            "devices: {there} there, {more} more fit, of 14"
        );
    }
}

/// Counts what a burst under random faults could have counted: at least the
/// requests answered as done, at most those plus the ones answered `503`.
#[derive(Debug, Default)]
struct Tally {
    done: usize,
    unknown: usize,
}

impl Tally {
    fn add(&mut self, what: &str, r: &Reply, done: &[u16]) {
        if done.contains(&r.status) {
            self.done += 1;
        } else if is_retry_later(r) {
            self.unknown += 1;
        } else {
            panic!("{what} under faults: {} {}", r.status, r.text);
        }
    }

    fn assert_counted(&self, what: &str, counted: usize) {
        assert!(
            self.done <= counted && counted <= self.done + self.unknown,
            "{what}: counted {counted}, but {} answered done and {} unknown (503)",
            self.done,
            self.unknown
        );
    }
}

/// The endpoint ARN the emulator at `emulator_url` holds for a push token.
async fn only_endpoint_at(emulator_url: &str, token: &str) -> String {
    let state: Value = reqwest_get_json(&format!("{emulator_url}/moto-api/data.json")).await;
    state["sns"]["PlatformEndpoint"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["token"].as_str() == Some(token))
        .and_then(|e| e["arn"].as_str())
        .expect("the device's endpoint")
        .to_string()
}

async fn reqwest_get_json(url: &str) -> Value {
    let api = Api::at(url);
    api.get(url, None).await.json
}

/// Invokes the feedback function through the Lambda Invoke API at `root`.
async fn invoke_feedback_at(root: &str, event: Value) -> Reply {
    let root = root.trim_end_matches('/');
    Api::at(root)
        .send(
            "POST",
            &format!("{root}/2015-03-31/functions/FeedbackFunction/invocations"),
            None,
            Body::Json(event),
        )
        .await
}
