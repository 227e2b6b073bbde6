//! What an attacker can grow is capped, and inputs that used to break things
//! answer as documented: API keys, devices, registrations, live tokens,
//! sign-ups per source; Unicode and dot usernames, hostile FCM ids, a push
//! token the push service refuses.

// Black-box: needs the local stack (`make test` turns this feature on).
#![cfg(feature = "stack")]

use api_tests::*;
use futures_util::StreamExt;
use serde_json::json;

/// `POST device/<kind>/` with a push token, as the apps register.
async fn register(api: &Api, a: &Account, kind: &str, registration_id: serde_json::Value) -> Reply {
    let body = json!({ "registration_id": registration_id });
    api.post(&format!("device/{kind}/"), Some(&a.key), Body::Json(body))
        .await
}

async fn login(api: &Api, a: &Account) -> Reply {
    api.post(
        "accounts/",
        None,
        Body::Json(json!({"username": a.username, "password": a.password})),
    )
    .await
}

#[tokio::test]
async fn a_unicode_username_reads_and_deletes_its_own_account() {
    let api = Api::new();
    let username = format!("jörg-{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
    let r = api
        .post(
            "accounts/",
            None,
            Body::Json(json!({"username": username, "password": "pw"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let key = r.json["token"].as_str().unwrap().to_string();
    let encoded = username.replace('ö', "%C3%B6");
    let path = format!("accounts/{encoded}/");
    let r = api.get(&path, Some(&key)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["username"], username.as_str());
    assert_eq!(api.delete(&path, Some(&key)).await.status, 204);
    assert_eq!(api.get("accounts/", Some(&key)).await.status, 401);
}

#[tokio::test]
async fn dot_usernames_are_refused() {
    let api = Api::new();
    for username in [".", ".."] {
        let r = api
            .post(
                "accounts/",
                None,
                Body::Json(json!({"username": username, "password": "pw"})),
            )
            .await;
        assert_eq!(r.status, 400, "{username}: {}", r.text);
        assert!(r.json["username"].is_array());
    }
}

#[tokio::test]
async fn hostile_fcm_ids_and_tokens_the_push_service_refuses_are_400() {
    let api = Api::new();
    let a = api.signup().await;
    for id in ["fcm-\u{1}-x", "fcm-ä", "fcm-\u{7f}"] {
        let r = register(&api, &a, "gcm", json!(id)).await;
        assert_eq!(r.status, 400, "{id:?}: {}", r.text);
        assert!(r.json["registration_id"].is_array());
    }
    // SNS answers InvalidParameter (the emulator is told to refuse these).
    let refused = format!("refused:{}", uuid::Uuid::new_v4().simple());
    let r = register(&api, &a, "gcm", json!(refused)).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.json["registration_id"].is_array());
    let list = api.get("device/gcm/", Some(&a.key)).await;
    assert_eq!(list.json["count"], 0, "nothing was registered");
}

#[tokio::test]
async fn a_wrong_method_says_which_are_allowed() {
    let api = Api::new();
    for (method, path, allowed) in [
        ("PUT", "accounts/", "GET, POST"),
        ("GET", "messages/", "POST"),
        ("POST", "pubsub/", "GET"),
        ("POST", "tokens/abc/", "GET, PUT, PATCH, DELETE"),
    ] {
        let r = api.send(method, path, None, Body::None).await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some(allowed), "{method} {path}");
    }
}

/// Tests that start a router (and sometimes an emulator) of their own, with
/// settings or faults of their own: they exercise the handlers in-process, not
/// through the shared stack, so `make sam-local-test` leaves them out.
mod own_stack {
    use super::*;

    #[tokio::test]
    async fn a_login_beyond_the_key_cap_revokes_the_oldest_key() {
        let router = Router::start(&[("API_KEY_LIMIT", "3")]).await;
        let api = &router.api;
        let a = api.signup().await;
        let mut keys = vec![a.key.clone()];
        for _ in 0..3 {
            let r = login(api, &a).await;
            assert_eq!(r.status, 200, "{}", r.text);
            keys.push(r.json["token"].as_str().unwrap().to_string());
        }
        assert_eq!(
            api.get("accounts/", Some(&keys[0])).await.status,
            401,
            "the oldest is revoked"
        );
        for key in &keys[1..] {
            assert_eq!(
                api.get("accounts/", Some(key)).await.status,
                200,
                "the newest 3 work"
            );
        }
    }

    #[tokio::test]
    async fn devices_beyond_the_cap_are_refused_and_leave_no_endpoint() {
        let router = Router::start(&[("DEVICE_LIMIT", "2")]).await;
        let api = &router.api;
        let a = api.signup().await;
        let first = apns_token();
        let d1 = api.device(&a, "apns", &first).await;
        api.device(&a, "gcm", &fcm_token()).await;
        let third = apns_token();
        let r = register(api, &a, "apns", json!(third)).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.json["registration_id"].is_array(), "{}", r.text);
        assert!(
            endpoints_for(&third).await.is_empty(),
            "no endpoint for a refused device"
        );
        // Registering a device it has again is no new device.
        let again = register(api, &a, "apns", json!(first)).await;
        assert_eq!(again.status, 200, "{}", again.text);
        // Deleting one makes room.
        let path = format!("device/apns/{}/", d1["id"].as_str().unwrap());
        assert_eq!(api.delete(&path, Some(&a.key)).await.status, 204);
        api.device(&a, "apns", &third).await;
        // The cap follows a push token that moves away: the other account's
        // device count falls, so it has room again.
        let b = api.signup().await;
        api.device(&b, "apns", &third).await;
        api.device(&a, "apns", &apns_token()).await;
    }

    #[tokio::test]
    async fn new_devices_beyond_the_registration_limit_are_429() {
        let router = Router::start(&[("DEVICE_REGISTRATION_LIMIT", "2")]).await;
        let api = &router.api;
        let a = api.signup().await;
        let d = api.device(&a, "apns", &apns_token()).await;
        api.device(&a, "apns", &apns_token()).await;
        let r = register(api, &a, "gcm", json!(fcm_token())).await;
        assert_eq!(r.status, 429, "{}", r.text);
        assert!(r.header("retry-after").is_some());
        // Refreshing a device it has is not a registration.
        let r = register(api, &a, "apns", json!(d["registration_id"])).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }

    #[tokio::test]
    async fn live_tokens_beyond_the_cap_are_refused_until_one_is_revoked() {
        let router = Router::start(&[("LIVE_TOKEN_LIMIT", "3")]).await;
        let api = &router.api;
        let a = api.signup().await;
        let d = api.device(&a, "apns", &apns_token()).await;
        let id = d["id"].as_str().unwrap();
        let mut tokens = Vec::new();
        for _ in 0..3 {
            tokens.push(api.token(&a, "apns", id).await);
        }
        let r = api
            .post(
                "tokens/",
                Some(&a.key),
                Body::Json(json!({"apns_device": id})),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.json["non_field_errors"].is_array());
        let path = format!("tokens/{}/", tokens[0]);
        assert_eq!(api.delete(&path, Some(&a.key)).await.status, 204);
        api.token(&a, "apns", id).await;
    }

    #[tokio::test]
    async fn signups_from_one_source_are_limited_and_logins_are_not() {
        let table = format!("quota-{}", uuid::Uuid::new_v4().simple());
        let router = Router::start(&[
            ("TABLE_NAME", table.as_str()),
            ("SIGNUP_PER_IPV4_LIMIT", "3"),
            ("SIGNUP_PER_SOURCE_WINDOW_SECONDS", "3600"),
        ])
        .await;
        let api = &router.api;
        away_from_window_edge().await;
        let mut accounts = Vec::new();
        for _ in 0..3 {
            accounts.push(api.signup().await);
        }
        let r = api
            .post(
                "accounts/",
                None,
                Body::Json(json!({"username": random_username(), "password": "p"})),
            )
            .await;
        assert_eq!(r.status, 429, "{}", r.text);
        assert!(r.header("retry-after").is_some());
        assert_eq!(
            login(api, &accounts[0]).await.status,
            200,
            "a login is no sign-up"
        );
        // What the table keeps of the source: a keyed hash, never the address.
        let dump = table_dump().await.join("\n");
        assert!(dump.contains("LIMIT#SIGNUPS#"));
        assert!(!dump.contains("127.0.0.1"), "no address is stored");
    }

    async fn signup_from(api: &Api, ip: &str) -> Reply {
        let body = json!({"username": random_username(), "password": "p"});
        api.from_source(ip)
            .post("accounts/", None, Body::Json(body))
            .await
    }

    /// A router with the test-only source hook, the given limits, and the
    /// service-wide ceiling at `ceiling` an hour.
    async fn source_router(ceiling: &str, limits: &[(&str, &str)]) -> Router {
        let table = format!("sources-{}", uuid::Uuid::new_v4().simple());
        let mut env = vec![
            ("TABLE_NAME", table.as_str()),
            ("LOCAL_API_TRUST_SOURCE_HEADER", "1"),
            ("SIGNUP_LIMIT", ceiling),
            ("SIGNUP_WINDOW_SECONDS", "3600"),
            ("SIGNUP_PER_SOURCE_WINDOW_SECONDS", "3600"),
        ];
        env.extend_from_slice(limits);
        Router::start(&env).await
    }

    /// Whoever holds a /48 has 65,536 /64s. Counted per /64 alone, 3,000 of
    /// them filled the service-wide ceiling (here 300 an hour) and everyone
    /// else's sign-up was `429`; counted at the /56 and the /48 as well,
    /// the /48 gets its 200 and an unrelated address still signs up.
    #[tokio::test]
    async fn three_thousand_64s_of_one_48_leave_the_ceiling_to_everyone_else() {
        let router = source_router(
            "300",
            &[
                ("SIGNUP_PER_IPV6_64_LIMIT", "20"),
                ("SIGNUP_PER_IPV6_56_LIMIT", "60"),
                ("SIGNUP_PER_IPV6_48_LIMIT", "200"),
                ("SIGNUP_PER_IPV4_LIMIT", "60"),
            ],
        )
        .await;
        let api = &router.api;
        away_from_window_edge_by(std::time::Duration::from_secs(240)).await;
        // Spread over the /48's 256 /56s (about 12 each, under their 60),
        // so that the /48's own limit is the one that holds.
        let sources: Vec<String> = (0..3000u32)
            .map(|i| format!("2001:db8:4800:{:x}::1", ((i % 256) << 8) | (i / 256)))
            .collect();
        let statuses: Vec<u16> = futures_util::stream::iter(&sources)
            .map(|ip| async move { signup_from(api, ip).await.status })
            .buffer_unordered(16)
            .collect()
            .await;
        let created = statuses.iter().filter(|s| **s == 201).count();
        let limited = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!(
            (created, limited),
            (200, 2800),
            "the /48 signs up its 200 and no more"
        );
        let r = signup_from(api, "198.51.100.7").await;
        assert_eq!(r.status, 201, "an unrelated IPv4 address: {}", r.text);
        let r = signup_from(api, "2001:db8:4801::1").await;
        assert_eq!(r.status, 201, "the next /48: {}", r.text);
        // And the /64 and /56 levels hold on their own.
        let mut statuses = Vec::new();
        for i in 0..21 {
            statuses.push(
                signup_from(api, &format!("2001:db8:5600:100::{i:x}"))
                    .await
                    .status,
            );
        }
        assert_eq!(statuses[..20], [201; 20], "a /64 signs up 20");
        assert_eq!(statuses[20], 429, "and no more");
        let mut statuses = Vec::new();
        for i in 0..61 {
            let ip = format!("2001:db8:5601:{:x}::1", 0x200 + i / 10);
            statuses.push(signup_from(api, &ip).await.status);
        }
        assert!(
            statuses[..60].iter().all(|s| *s == 201),
            "a /56 signs up 60: {statuses:?}"
        );
        assert_eq!(statuses[60], 429, "and no more");
    }

    /// Every IPv4-mapped address (`::ffff:a.b.c.d`) used to fall into one
    /// /64: now each is its IPv4 address, counted with it.
    #[tokio::test]
    async fn an_ipv4_mapped_address_counts_as_its_ipv4_address() {
        let router = source_router("1000", &[("SIGNUP_PER_IPV4_LIMIT", "2")]).await;
        let api = &router.api;
        away_from_window_edge().await;
        assert_eq!(signup_from(api, "198.51.100.9").await.status, 201);
        assert_eq!(signup_from(api, "::ffff:198.51.100.9").await.status, 201);
        let r = signup_from(api, "::ffff:198.51.100.9").await;
        assert_eq!(r.status, 429, "the address's third: {}", r.text);
        assert_eq!(signup_from(api, "198.51.100.9").await.status, 429);
        let r = signup_from(api, "::ffff:198.51.100.10").await;
        assert_eq!(r.status, 201, "another mapped address: {}", r.text);
        let dump = table_dump().await.join("\n");
        assert!(!dump.contains("198.51.100"), "no address is stored");
    }

    /// The key that hides sources is outside the table: after sign-ups, no
    /// table holds the secret, the day's key or a salt item. And yet two
    /// routers (two instances) and a restarted one count one source
    /// together: they read the same secret, and the counter is the source's
    /// HMAC under the day's key derived from it.
    #[tokio::test]
    async fn sources_count_across_instances_and_restarts_with_no_key_in_the_table() {
        let table = format!("sources-{}", uuid::Uuid::new_v4().simple());
        let env = [
            ("TABLE_NAME", table.as_str()),
            ("LOCAL_API_TRUST_SOURCE_HEADER", "1"),
            ("SIGNUP_PER_IPV4_LIMIT", "3"),
            ("SIGNUP_PER_SOURCE_WINDOW_SECONDS", "3600"),
        ];
        away_from_window_edge().await;
        let ip = "203.0.113.44";
        let first = Router::start(&env).await;
        let second = Router::start(&env).await;
        for api in [&first.api, &first.api, &second.api] {
            let r = signup_from(api, ip).await;
            assert_eq!(r.status, 201, "{}", r.text);
        }
        let r = signup_from(&first.api, ip).await;
        assert_eq!(
            r.status, 429,
            "the other instance's count holds: {}",
            r.text
        );
        drop((first, second));
        let restarted = Router::start(&env).await;
        let r = signup_from(&restarted.api, ip).await;
        assert_eq!(r.status, 429, "after a restart too: {}", r.text);
        let r = signup_from(&restarted.api, "203.0.113.45").await;
        assert_eq!(r.status, 201, "another address: {}", r.text);

        // The secret the local set-up made, as the stack makes its
        // SourceKeySecret (infra/local-api).
        let sdk = push_aws::load_sdk_config().await;
        let secret = aws_sdk_secretsmanager::Client::new(&sdk)
            .get_secret_value()
            .secret_id("chatsecure-push-local-source-key")
            .send()
            .await
            .expect("the local source key secret")
            .secret_string
            .expect("a string");
        let day = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64 / 86_400)
            .unwrap_or(0);
        let day_key = push_aws::source_keys::day_key(&secret, day);
        let dump = table_dump().await.join("\n");
        assert!(!dump.contains(&secret), "the secret is in no table");
        assert!(!dump.contains(&day_key), "nor the day's key");
        assert!(!dump.contains("SALT#"), "nor a salt item");
        assert!(!dump.contains("203.0.113"), "nor the address");
        let counter = push_core::secrets::keyed_hash(&day_key, ip);
        assert!(
            dump.contains(&format!("LIMIT#SIGNUPS#{counter}")),
            "the source's counter is its HMAC under the day's key"
        );
    }

    /// `put-secret-value` rotates the source key: a fresh instance goes on
    /// with the old key for the rest of the day (where every other instance
    /// has it: nothing is counted under two keys in one window) and takes
    /// the new one from the next UTC midnight.
    #[tokio::test]
    async fn a_rotated_source_key_takes_effect_at_the_next_utc_midnight() {
        use push_aws::source_keys::{day_key, SecretSourceKeys};
        use push_core::ports::SourceKeys;
        // A version made in the last five minutes of a day waits a day more.
        let to_midnight = 86_400
            - std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() % 86_400)
                .unwrap_or(0);
        if to_midnight < 330 {
            tokio::time::sleep(std::time::Duration::from_secs(to_midnight + 1)).await;
        }
        let sdk = push_aws::load_sdk_config().await;
        let client = push_aws::config::secrets_client(&sdk);
        let name = format!("rotation-{}", uuid::Uuid::new_v4().simple());
        let arn = local_api::setup::ensure_source_key_secret(&client, &name)
            .await
            .expect("a secret");
        let first = client
            .get_secret_value()
            .secret_id(&arn)
            .send()
            .await
            .expect("its value")
            .secret_string
            .expect("a string");
        let today = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64 / 86_400)
            .unwrap_or(0);
        let keys = SecretSourceKeys::new(
            {
                let c = client.clone();
                move || c
            },
            arn.clone(),
        );
        assert_eq!(
            keys.key_of_day(today).await.expect("a key"),
            day_key(&first, today),
            "made today, never rotated: in force today"
        );
        client
            .put_secret_value()
            .secret_id(&arn)
            .secret_string("rotated-source-key")
            .send()
            .await
            .expect("rotated");
        let fresh = SecretSourceKeys::new(
            {
                let c = client.clone();
                move || c
            },
            arn.clone(),
        );
        assert_eq!(
            fresh.key_of_day(today).await.expect("a key"),
            day_key(&first, today),
            "rotated today: the old key until midnight"
        );
        assert_eq!(
            fresh.key_of_day(today + 1).await.expect("a key"),
            day_key("rotated-source-key", today + 1),
            "the new one from the next day"
        );
        assert_ne!(day_key(&first, today), day_key(&first, today + 1));
    }
}
