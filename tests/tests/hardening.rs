//! Abuse limits, faults, the authorisation matrix, hostile bodies on every
//! route, and what the table may hold.

// Black-box: needs the local stack (`make test` turns this feature on).
#![cfg(feature = "stack")]

use std::time::Duration;

use api_tests::*;
use serde_json::{json, Value};

/// A router of its own on a fresh table (so counters start at zero and the
/// table holds only this test's items), with the given settings; the
/// table's name for reading it.
async fn limited_router(limits: &[(&str, &str)]) -> (Router, String) {
    let table = format!("limits-{}", uuid::Uuid::new_v4().simple());
    let mut env = vec![("TABLE_NAME", table.as_str())];
    env.extend_from_slice(limits);
    (Router::start(&env).await, table)
}

async fn login(api: &Api, username: &str, password: &str) -> Reply {
    api.post(
        "accounts/",
        None,
        Body::Json(json!({"username": username, "password": password})),
    )
    .await
}

const THREE_FAILED_LOGINS_AN_HOUR: &[(&str, &str)] = &[
    ("LOGIN_FAILURE_LIMIT", "3"),
    ("LOGIN_FAILURE_WINDOW_SECONDS", "3600"),
];

/// The operations of the recorded calls, in order.
fn operations(calls: &[local_api::recording::RecordedCall]) -> Vec<&str> {
    calls.iter().map(|c| c.operation.as_str()).collect()
}

/// The recorded `UpdateItem`s, each checked to be conditional.
fn conditional_updates(calls: &[local_api::recording::RecordedCall]) -> usize {
    let updates: Vec<_> = calls
        .iter()
        .filter(|c| c.operation == "UpdateItem")
        .collect();
    for u in &updates {
        assert!(u.body.contains("ConditionExpression"), "{}", u.body);
    }
    updates.len()
}

#[tokio::test]
async fn another_accounts_objects_are_404_on_every_route_and_nothing_changes() {
    let api = Api::new();
    let a = api.signup().await;
    let b = api.signup().await;
    let apns = api.device(&a, "apns", &apns_token()).await;
    let gcm = api.device(&a, "gcm", &fcm_token()).await;
    let apns_id = apns["id"].as_str().unwrap().to_string();
    let gcm_id = gcm["id"].as_str().unwrap().to_string();
    let token = api.token(&a, "apns", &apns_id).await;
    let snapshot = || async {
        (
            api.get(&format!("device/apns/{apns_id}/"), Some(&a.key))
                .await
                .json,
            api.get(&format!("device/gcm/{gcm_id}/"), Some(&a.key))
                .await
                .json,
            api.get(&format!("tokens/{token}/"), Some(&a.key))
                .await
                .json,
            api.get("accounts/", Some(&a.key)).await.json,
        )
    };
    let before = snapshot().await;
    let device_body = json!({"registration_id": apns_token(), "name": "stolen", "active": false});
    let objects = [
        (format!("device/apns/{apns_id}"), &device_body),
        (format!("device/gcm/{gcm_id}"), &device_body),
        (format!("tokens/{token}"), &json!({"name": "stolen"})),
    ];
    let mut checked = 0;
    for (path, body) in &objects {
        for method in ["GET", "PUT", "PATCH", "DELETE"] {
            for slash in ["", "/"] {
                let path = format!("{path}{slash}");
                let r = api
                    .send(method, &path, Some(&b.key), Body::Json((*body).clone()))
                    .await;
                assert_eq!(r.status, 404, "{method} {path}");
                checked += 1;
            }
        }
    }
    for method in ["GET", "DELETE"] {
        let r = api
            .send(
                method,
                &format!("accounts/{}/", a.username),
                Some(&b.key),
                Body::None,
            )
            .await;
        assert_eq!(r.status, 404);
        checked += 1;
    }
    for (field, id) in [("apns_device", &apns_id), ("gcm_device", &gcm_id)] {
        let r = api
            .post("tokens/", Some(&b.key), Body::Json(json!({ field: id })))
            .await;
        assert_eq!(r.status, 400);
        checked += 1;
    }
    assert_eq!(checked, 28);
    assert_eq!(snapshot().await, before, "nothing of a's changed");
    assert_eq!(api.get("tokens/", Some(&b.key)).await.json["count"], 0);
    assert_eq!(api.get("device/apns/", Some(&b.key)).await.json["count"], 0);
}

fn hostile_bodies() -> Vec<(&'static str, Vec<u8>, bool)> {
    // (content type, body, must be refused with 4xx)
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let deep_object = format!(
        "{{\"name\": {}1{}}}",
        "{\"a\":".repeat(3000),
        "}".repeat(3000)
    );
    vec![
        ("application/json", b"{\"token\": \"abc".to_vec(), true),
        ("application/json", b"{".to_vec(), true),
        ("application/json", deep.into_bytes(), true),
        ("application/json", deep_object.into_bytes(), true),
        (
            "application/json",
            format!("{{\"name\": \"{}\"}}", "x".repeat(20_000)).into_bytes(),
            true,
        ),
        ("application/json", b"{\"name\": \"a\x00b\"}".to_vec(), true),
        ("application/json", b"\x00\x00\x00\x00".to_vec(), true),
        ("application/json", b"null".to_vec(), true),
        ("application/json", b"12345".to_vec(), true),
        (
            "application/json",
            b"{\"name\": 1, \"name\": 2}".to_vec(),
            false,
        ),
        (
            "application/json",
            b"{\"registration_id\": [\"a\"], \"token\": {\"x\": 1}, \"name\": true}".to_vec(),
            true,
        ),
        (
            "application/x-www-form-urlencoded",
            b"name=%zz&token=%".to_vec(),
            false,
        ),
        (
            "application/x-www-form-urlencoded",
            b"name=%c3%28".to_vec(),
            true,
        ),
        ("multipart/form-data", b"--b\r\n".to_vec(), true),
        (
            "multipart/form-data; boundary=b",
            b"--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nunterminated".to_vec(),
            true,
        ),
        ("text/xml", b"<token>abc</token>".to_vec(), true),
    ]
}

/// Bodies that are not UTF-8: API Gateway hands them to the function
/// base64-encoded; `sam local` cannot pass them on at all.
fn non_utf8_bodies() -> Vec<(&'static str, Vec<u8>, bool)> {
    vec![
        ("application/octet-stream", vec![0xff; 64], true),
        (
            "application/json",
            b"{\"name\": \"\xff\xfe\", \"registration_id\": \"\xc3\x28\"}".to_vec(),
            true,
        ),
        (
            "application/x-www-form-urlencoded",
            b"name=\xff".to_vec(),
            false,
        ),
    ]
}

#[tokio::test]
async fn hostile_bodies_on_every_body_route_are_4xx_json_and_never_5xx() {
    bodies_on_every_body_route(hostile_bodies()).await;
}

/// Sends each body to every route that takes one: never a 5xx, a 4xx where
/// the body must be refused, and the account's device and token unchanged.
async fn bodies_on_every_body_route(bodies: Vec<(&'static str, Vec<u8>, bool)>) {
    let api = Api::new();
    let a = api.signup().await;
    let d = api.device(&a, "apns", &apns_token()).await;
    let id = d["id"].as_str().unwrap().to_string();
    let t = api.token(&a, "apns", &id).await;
    let routes = [
        ("POST", "accounts/".to_string(), false),
        ("POST", "device/apns/".to_string(), true),
        ("POST", "device/gcm/".to_string(), true),
        ("PUT", format!("device/apns/{id}/"), true),
        ("PATCH", format!("device/apns/{id}/"), true),
        ("POST", "tokens/".to_string(), true),
        ("PUT", format!("tokens/{t}/"), true),
        ("PATCH", format!("tokens/{t}/"), true),
        ("POST", "messages/".to_string(), false),
    ];
    for (method, path, auth) in &routes {
        for (content_type, body, refused) in bodies.iter().cloned() {
            let key = if *auth { Some(a.key.as_str()) } else { None };
            let r = api
                .send(method, path, key, Body::Raw(content_type, body.clone()))
                .await;
            assert!(
                r.status < 500,
                "{method} {path} {content_type}: {} {}",
                r.status,
                r.text
            );
            if refused {
                assert!(
                    (400..500).contains(&r.status),
                    "{method} {path} {content_type} {:?}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(40)]),
                    r.status
                );
            }
        }
    }
    // The device and token are still there, with the same push token (a
    // lenient form like `name=%zz` may legitimately rename it).
    let r = api.get(&format!("device/apns/{id}/"), Some(&a.key)).await;
    assert_eq!(r.json["registration_id"], d["registration_id"]);
    assert_eq!(
        api.get(&format!("tokens/{t}"), Some(&a.key)).await.status,
        200
    );
}

/// Tests that start a router (and sometimes an emulator) of their own, with
/// settings or faults of their own: they exercise the handlers in-process, not
/// through the shared stack, so `make sam-local-test` leaves them out.
mod own_stack {
    use super::*;

    /// The race no client can stage on cue: a right password whose login read an
    /// open log, committing after wrong guesses filled it. Driven through the
    /// production store against the emulator, with the times chosen.
    #[tokio::test]
    async fn a_right_password_is_refused_once_wrong_guesses_filled_the_log() {
        use push_aws::DynamoStore;
        use push_core::model::ApiKeyRecord;
        use push_core::ports::{AccountStore, Admission, Clock, SystemClock};
        use push_core::{secrets, Limit};

        let (router, table) = limited_router(&[]).await;
        let api = &router.api;
        let a = api.signup().await;
        let store = DynamoStore::new(dynamodb().await, table);
        let limit = Limit {
            max: 2,
            window: Duration::from_secs(60),
        };
        let now = SystemClock.now_us();
        for _ in 0..2 {
            let logged = store.log_failed_login(&a.username, now, limit).await;
            assert_eq!(logged.unwrap(), Admission::Admitted);
        }
        let full = Admission::Limited {
            retry_after_seconds: 60,
        };
        let logged = store.log_failed_login(&a.username, now, limit).await;
        assert_eq!(logged.unwrap(), full);
        let key = secrets::new_api_key();
        let record = ApiKeyRecord {
            key_hash: secrets::sha256_hex(&key),
            account_id: a.id.clone(),
            username: a.username.clone(),
            email: String::new(),
        };
        let added = store.add_login_key(&record, now, limit).await;
        assert_eq!(added.unwrap(), full);
        // Nothing of the refused login was written: its key logs no one in.
        assert_eq!(api.get("accounts/", Some(&key)).await.status, 401);

        // A window later the same login goes through and forgives the failures.
        let later = now + 60_000_000;
        let added = store.add_login_key(&record, later, limit).await;
        assert_eq!(added.unwrap(), Admission::Admitted);
        assert_eq!(api.get("accounts/", Some(&key)).await.status, 200);
        let account = store.get_account(&a.username).await.unwrap().unwrap();
        assert!(account.failed_logins.is_empty());

        // An account deleted meanwhile gets no key.
        let r = api
            .delete(&format!("accounts/{}/", a.username), Some(&a.key))
            .await;
        assert_eq!(r.status, 204);
        let added = store.add_login_key(&record, later, limit).await;
        assert_eq!(added.unwrap(), Admission::Missing);
    }

    #[tokio::test]
    async fn account_creation_is_limited_service_wide() {
        away_from_window_edge().await;
        let (router, _) =
            limited_router(&[("SIGNUP_LIMIT", "4"), ("SIGNUP_WINDOW_SECONDS", "3600")]).await;
        let api = &router.api;
        let mut accounts = Vec::new();
        for _ in 0..4 {
            accounts.push(api.signup().await);
        }
        let r = login(api, &random_username(), "p").await;
        assert_eq!(r.status, 429, "{}", r.text);
        assert!(r.header("retry-after").is_some());
        // Logging in is not a sign-up.
        let a = &accounts[0];
        assert_eq!(login(api, &a.username, &a.password).await.status, 200);
    }

    #[tokio::test]
    async fn concurrent_guesses_get_no_more_than_the_limit_checked() {
        let (router, _) = limited_router(THREE_FAILED_LOGINS_AN_HOUR).await;
        let api = &router.api;
        let a = api.signup().await;
        // Twenty guesses at once, all reading an open log: a failure is logged
        // only while the log has room, so three are 401 and the rest 429.
        let guesses = (0..20).map(|i| {
            let username = a.username.clone();
            async move { login(api, &username, &format!("guess-{i}")).await }
        });
        let replies = futures_util::future::join_all(guesses).await;
        let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 401).count(),
            3,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 429).count(),
            17,
            "{statuses:?}"
        );
        assert_eq!(login(api, &a.username, &a.password).await.status, 429);
    }

    #[tokio::test]
    async fn each_limit_costs_one_conditional_update() {
        away_from_window_edge().await;
        let (router, table) = limited_router(&[
            ("SIGNUP_LIMIT", "2"),
            ("SIGNUP_WINDOW_SECONDS", "3600"),
            // The per-source sign-up limit is a second one (quotas.rs).
            ("SIGNUP_PER_IPV4_LIMIT", "0"),
            ("TOKEN_CREATE_LIMIT", "2"),
            ("TOKEN_CREATE_WINDOW_SECONDS", "3600"),
            ("KNOCK_LIMIT_PER_WINDOW", "3"),
            ("KNOCK_LIMIT_WINDOW_SECONDS", "3600"),
            ("LOGIN_FAILURE_LIMIT", "2"),
            ("LOGIN_FAILURE_WINDOW_SECONDS", "3600"),
        ])
        .await;
        let api = &router.api;

        // Sign-ups: the first, the second and the refused third alike.
        let mut accounts = Vec::new();
        for _ in 0..2 {
            let (a, calls) = calls_on_table(&table, api.signup()).await;
            assert_eq!(conditional_updates(&calls), 1, "{:?}", operations(&calls));
            accounts.push(a);
        }
        let (r, calls) = calls_on_table(&table, login(api, &random_username(), "p")).await;
        assert_eq!(r.status, 429);
        assert_eq!(operations(&calls), ["GetItem", "UpdateItem"]);
        conditional_updates(&calls);

        // Token creations: counted inside the transaction that creates the
        // token (no call of its own), the refused third in that same call.
        let a = &accounts[0];
        let d = api.device(a, "gcm", &fcm_token()).await;
        let device = d["id"].as_str().unwrap();
        let mut token = String::new();
        let counted_in_the_transaction = |calls: &[local_api::recording::RecordedCall]| {
            let transactions: Vec<_> = calls
                .iter()
                .filter(|c| c.operation == "TransactWriteItems")
                .collect();
            assert_eq!(transactions.len(), 1, "{:?}", operations(calls));
            assert!(transactions[0].body.contains("LIMIT#TOKENS#"));
            assert_eq!(conditional_updates(calls), 0, "{:?}", operations(calls));
        };
        for _ in 0..2 {
            let (t, calls) = calls_on_table(&table, api.token(a, "gcm", device)).await;
            counted_in_the_transaction(&calls);
            token = t;
        }
        let (r, calls) = calls_on_table(
            &table,
            api.post(
                "tokens/",
                Some(&a.key),
                Body::Json(json!({"gcm_device": device})),
            ),
        )
        .await;
        assert_eq!(r.status, 429);
        counted_in_the_transaction(&calls);

        // Knocks: every one is the token lookup (which counts it) and the
        // devices query; the first also marks the device pushed today (its
        // `push` object: once a day, conditional like every device write),
        // the second and third not; the refused fourth is the lookup alone.
        for n in 0..3 {
            let day = utc_day();
            let (r, calls) = calls_on_table(&table, api.knock(&token, json!({}))).await;
            assert_eq!(r.status, 202);
            if n == 0 {
                assert_eq!(operations(&calls), ["UpdateItem", "Query", "UpdateItem"]);
            } else if utc_day() == day {
                assert_eq!(operations(&calls), ["UpdateItem", "Query"]);
            }
            conditional_updates(&calls);
        }
        let (r, calls) = calls_on_table(&table, api.knock(&token, json!({}))).await;
        assert_eq!(r.status, 429);
        assert_eq!(operations(&calls), ["UpdateItem"]);
        conditional_updates(&calls);

        // Failed logins: the account read, then one conditional write each; once
        // locked, the read alone refuses.
        let b = &accounts[1];
        for _ in 0..2 {
            let (r, calls) = calls_on_table(&table, login(api, &b.username, "wrong")).await;
            assert_eq!(r.status, 401);
            assert_eq!(operations(&calls), ["GetItem", "UpdateItem"]);
            conditional_updates(&calls);
        }
        let (r, calls) = calls_on_table(&table, login(api, &b.username, &b.password)).await;
        assert_eq!(r.status, 429);
        assert_eq!(operations(&calls), ["GetItem"]);
    }

    #[tokio::test]
    async fn failed_logins_lock_the_username_for_the_window() {
        let (router, _) = limited_router(THREE_FAILED_LOGINS_AN_HOUR).await;
        let api = &router.api;
        let a = api.signup().await;
        let other = api.signup().await;
        // A successful login forgives the failures before it.
        for _ in 0..2 {
            assert_eq!(login(api, &a.username, "wrong").await.status, 401);
        }
        assert_eq!(login(api, &a.username, &a.password).await.status, 200);
        for _ in 0..3 {
            assert_eq!(login(api, &a.username, "wrong").await.status, 401);
        }
        let r = login(api, &a.username, "wrong").await;
        assert_eq!(r.status, 429, "{}", r.text);
        assert!(r.json["detail"].is_string());
        // The oldest of the three failures leaves the hour-long window in about
        // an hour.
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((3500..=3600).contains(&retry), "{retry}");
        // Locked whatever the password: guessing gains nothing.
        let r = login(api, &a.username, &a.password).await;
        assert_eq!(r.status, 429);
        // Existing keys keep working, and other usernames are not affected.
        assert_eq!(api.get("accounts/", Some(&a.key)).await.status, 200);
        assert_eq!(
            login(api, &other.username, &other.password).await.status,
            200
        );
    }

    #[tokio::test]
    async fn the_table_holds_only_what_the_service_needs() {
        let (router, table) = limited_router(&[]).await;
        let api = &router.api;
        let a = api.signup().await;
        let email = format!("{}@example.org", random_username());
        let r = api
            .post(
                "accounts/",
                None,
                Body::Json(
                    json!({"username": random_username(), "password": "secret-pw", "email": email}),
                ),
            )
            .await;
        assert_eq!(r.status, 201);
        let b_key = r.json["token"].as_str().unwrap().to_string();
        let apns = apns_token();
        let d = api.device(&a, "apns", &apns).await;
        let t = api.token(&a, "apns", d["id"].as_str().unwrap()).await;
        api.knock(&t, json!({"data": {"secret": "message text"}}))
            .await;
        let _ = api
            .post(
                "accounts/",
                None,
                Body::Json(json!({"username": a.username, "password": "wrong-guess"})),
            )
            .await;

        let db = dynamodb().await;
        let items = db
            .scan()
            .table_name(&table)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default();
        let allowed = [
            "pk",
            "sk",
            "gsi1pk",
            "gsi1sk",
            "id",
            "username",
            "email",
            "password_hash",
            "created_us",
            "account_id",
            "key_hash",
            "deleting",
            "n",
            "owner",
            "kind",
            "registration_id",
            "name",
            "device_id",
            "active",
            "endpoint_arn",
            "token",
            "expires_us",
            "expires_at",
            "hits",
            // A device's version and its latest in-place writer (random ids).
            "device_version",
            "device_writer",
            // Its push state: flags, a UTC day, the last failure's time and
            // SNS's reason (docs/SECURITY.md).
            "push_disabled",
            "push_confirmed",
            "last_push_day",
            "last_error_us",
            "last_error_reason",
            // A counter's recent request ids (random; idempotent retries).
            "rids",
        ];
        let dump = format!("{items:?}");
        for item in &items {
            for attribute in item.keys() {
                // `h0`, `h1`, ...: a sliding log of knock or failed-login times.
                let log_slot = attribute
                    .strip_prefix('h')
                    .is_some_and(|n| n.parse::<u32>().is_ok());
                assert!(
                    allowed.contains(&attribute.as_str()) || log_slot,
                    "unexpected attribute {attribute}"
                );
            }
        }
        for secret in [
            a.password.as_str(),
            a.key.as_str(),
            b_key.as_str(),
            "secret-pw",
            "wrong-guess",
            "message text",
            "127.0.0.1",
        ] {
            assert!(!dump.contains(secret), "the table holds {secret}");
        }
        assert!(dump.contains("$argon2id$"), "passwords are argon2id hashes");
        assert!(
            dump.contains(&apns),
            "the push token is kept: it is needed to push"
        );
    }

    #[tokio::test]
    async fn token_creation_is_limited_per_account() {
        away_from_window_edge().await;
        let (router, _) = limited_router(&[
            ("TOKEN_CREATE_LIMIT", "5"),
            ("TOKEN_CREATE_WINDOW_SECONDS", "3600"),
        ])
        .await;
        let api = &router.api;
        let a = api.signup().await;
        let d = api.device(&a, "apns", &apns_token()).await;
        let device = d["id"].as_str().unwrap();
        for _ in 0..5 {
            api.token(&a, "apns", device).await;
        }
        let create = |key: String| async move {
            api.post(
                "tokens/",
                Some(&key),
                Body::Json(json!({"apns_device": device})),
            )
            .await
        };
        let r = create(a.key.clone()).await;
        assert_eq!(r.status, 429, "{}", r.text);
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=3600).contains(&retry), "{retry}");
        // A fresh API key of the same account (a second login) shares the budget.
        let second_key = login(api, &a.username, &a.password).await.json["token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(create(second_key).await.status, 429);
        assert_eq!(api.get("tokens/", Some(&a.key)).await.json["count"], 5);
        // Another account has its own.
        let b = api.signup().await;
        let d = api.device(&b, "apns", &apns_token()).await;
        api.token(&b, "apns", d["id"].as_str().unwrap()).await;
    }

    #[tokio::test]
    async fn an_unreachable_aws_is_503_with_retry_after_everywhere() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let endpoint = format!("http://127.0.0.1:{port}");
        let router = Router::start(&[
            ("AWS_ENDPOINT_URL", &endpoint),
            ("LOCAL_API_SKIP_SETUP", "1"),
        ])
        .await;
        let api = &router.api;
        let key = "0123456789abcdef0123456789abcdef01234567";
        let requests: Vec<(&str, &str, Option<&str>, Value)> = vec![
            (
                "POST",
                "accounts/",
                None,
                json!({"username": random_username(), "password": "p"}),
            ),
            ("GET", "accounts/", Some(key), Value::Null),
            ("GET", "device/apns/", Some(key), Value::Null),
            (
                "POST",
                "device/gcm/",
                Some(key),
                json!({"registration_id": fcm_token()}),
            ),
            ("GET", "tokens/", Some(key), Value::Null),
            ("POST", "messages/", None, json!({"token": "f".repeat(40)})),
        ];
        for (method, path, key, body) in requests {
            let body = if body.is_null() {
                Body::None
            } else {
                Body::Json(body)
            };
            let started = std::time::Instant::now();
            let r = api.send(method, path, key, body).await;
            assert_eq!(r.status, 503, "{method} {path}: {}", r.text);
            assert!(r.header("retry-after").is_some());
            assert!(r.json["detail"].is_string());
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "bounded retries"
            );
        }
        // What needs no AWS still works.
        assert_eq!(api.get("pubsub/", None).await.status, 200);
    }

    #[tokio::test]
    async fn the_emulator_dying_mid_run_is_503_and_recovery_is_clean() {
        let mut emulator = Emulator::start(&[]).await;
        let endpoint = emulator.url();
        let router = Router::start(&[("AWS_ENDPOINT_URL", &endpoint)]).await;
        let api = &router.api;
        let a = api.signup().await;
        let d = api.device(&a, "apns", &apns_token()).await;
        let t = api.token(&a, "apns", d["id"].as_str().unwrap()).await;
        assert_eq!(api.knock(&t, json!({})).await.status, 202);

        emulator.stop();
        assert_eq!(api.knock(&t, json!({})).await.status, 503);
        assert_eq!(api.get("tokens/", Some(&a.key)).await.status, 503);
        let r = api
            .post(
                "device/gcm/",
                Some(&a.key),
                Body::Json(json!({"registration_id": fcm_token()})),
            )
            .await;
        assert_eq!(r.status, 503, "{}", r.text);

        // A new, empty emulator on the same port (no table): still 503, never 500.
        emulator.restart().await;
        let r = api.knock(&t, json!({})).await;
        assert_eq!(r.status, 503, "{}", r.text);
        assert_eq!(
            api.get("accounts/", Some(&a.key)).await.status,
            503,
            "no table yet: still unavailable, never 500"
        );
        emulator.stop();
    }
}

/// What API Gateway does before a function runs, which `sam local` does
/// differently (it answers unknown routes `403` and cannot pass on a body that
/// is not UTF-8): the in-process router models API Gateway's HTTP API, so
/// `make sam-local-test` leaves these out.
mod gateway {
    use super::*;

    #[tokio::test]
    async fn bodies_that_are_not_utf8_are_4xx_json_and_never_5xx() {
        bodies_on_every_body_route(non_utf8_bodies()).await;
    }
}

/// Days since the epoch, UTC, now.
fn utc_day() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}
