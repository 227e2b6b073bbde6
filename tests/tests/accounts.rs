//! accounts/ over HTTP, against the local stack.

// Black-box: needs the local stack (`make test` turns this feature on).
#![cfg(feature = "stack")]

use api_tests::*;
use serde_json::{json, Value};

fn all_strings(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.values().all(Value::is_string))
}

#[tokio::test]
async fn signup_creates_then_same_password_logs_in_with_a_new_working_key() {
    let api = Api::new();
    let username = random_username();
    // Mixed case, kept as given; unique, so that the test can run again
    // against the same emulator.
    let email = format!("A.{username}@example.com");
    let r = api
        .post(
            "accounts/",
            None,
            Body::Json(json!({"username": username, "password": "secret-1", "email": email})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(all_strings(&r.json), "{}", r.text);
    assert_eq!(r.json["username"], username.as_str());
    assert_eq!(r.json["email"], email.as_str());
    let first_key = r.json["token"].as_str().unwrap().to_string();
    let id = r.json["id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok());

    let login = api
        .post(
            "accounts/",
            None,
            form(&[("username", &username), ("password", "secret-1")]),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert!(all_strings(&login.json));
    assert_eq!(login.json["id"], id.as_str());
    let second_key = login.json["token"].as_str().unwrap();
    assert_ne!(second_key, first_key);

    for key in [first_key.as_str(), second_key] {
        let me = api.get("accounts/", Some(key)).await;
        assert_eq!(me.status, 200);
        assert_eq!(
            me.json,
            json!({"id": id, "username": username, "email": email})
        );
    }
}

#[tokio::test]
async fn no_email_is_an_empty_string() {
    let api = Api::new();
    for body in [
        json!({"username": random_username(), "password": "p"}),
        json!({"username": random_username(), "password": "p", "email": ""}),
        json!({"username": random_username(), "password": "p", "email": null}),
    ] {
        let r = api.post("accounts/", None, Body::Json(body)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.json["email"], "");
        assert!(all_strings(&r.json));
    }
}

#[tokio::test]
async fn wrong_password_is_401_and_leaks_nothing() {
    let api = Api::new();
    let a = api.signup().await;
    let r = api
        .post(
            "accounts/",
            None,
            Body::Json(json!({"username": a.username, "password": "wrong"})),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json, json!({"error": "Invalid credentials"}));
    assert!(!r.text.contains(&a.username) && !r.text.contains(&a.key));
}

#[tokio::test]
async fn email_used_by_another_account_is_400() {
    let api = Api::new();
    let email = format!("{}@example.org", random_username());
    let r = api
        .post(
            "accounts/",
            None,
            Body::Json(json!({"username": random_username(), "password": "p", "email": email})),
        )
        .await;
    assert_eq!(r.status, 201);
    let second = random_username();
    let r = api
        .post(
            "accounts/",
            None,
            Body::Json(json!({"username": second, "password": "p", "email": email.to_uppercase()})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json,
        json!({"error": "An account with that email address already exists."})
    );
    // Nothing was created: the username is still free.
    let r = api
        .post(
            "accounts/",
            None,
            Body::Json(json!({"username": second, "password": "other"})),
        )
        .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn three_encodings_work_and_stale_auth_is_ignored() {
    let api = Api::new();
    let u1 = random_username();
    let r = api
        .send(
            "POST",
            "accounts",
            Some("stale-key"),
            form(&[("username", &u1), ("password", "p"), ("email", "")]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let u2 = random_username();
    let r = api
        .send(
            "POST",
            "accounts/",
            Some("stale-key"),
            multipart(&[("username", &u2), ("password", "p"), ("unknown", "x")]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = api
        .post(
            "accounts/",
            None,
            multipart(&[("username", &u2), ("password", "p")]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn named_account_routes_only_show_the_callers_own() {
    let api = Api::new();
    let a = api.signup().await;
    let b = api.signup().await;
    for path in [
        format!("accounts/{}/", a.username),
        format!("accounts/{}", a.username),
    ] {
        let r = api.get(&path, Some(&a.key)).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json["username"], a.username.as_str());
        assert!(r.json.get("token").is_none());
    }
    for other in [b.username.clone(), random_username()] {
        let r = api.get(&format!("accounts/{other}/"), Some(&a.key)).await;
        assert_eq!(r.status, 404);
        assert!(r.json.is_object());
        let r = api
            .delete(&format!("accounts/{other}/"), Some(&a.key))
            .await;
        assert_eq!(r.status, 404);
    }
    // b is untouched.
    assert_eq!(api.get("accounts/", Some(&b.key)).await.status, 200);
}

#[tokio::test]
async fn authentication_is_required_where_the_protocol_says() {
    let api = Api::new();
    let a = api.signup().await;
    for path in [
        "accounts/".to_string(),
        format!("accounts/{}/", a.username),
        "device/apns/".into(),
        "tokens/".into(),
    ] {
        let r = api.get(&path, None).await;
        assert_eq!(r.status, 401, "{path}");
        assert!(r.json["detail"].is_string());
        assert_eq!(r.header("www-authenticate"), Some("Token"));
        let r = api
            .get(&path, Some("0123456789abcdef0123456789abcdef01234567"))
            .await;
        assert_eq!(r.status, 401, "{path}");
        let r = api
            .send("GET", &path, Some("not a key at all"), Body::None)
            .await;
        assert_eq!(r.status, 401);
    }
}

#[tokio::test]
async fn delete_removes_the_account_and_its_keys() {
    let api = Api::new();
    let a = api.signup().await;
    let r = api
        .delete(&format!("accounts/{}/", a.username), Some(&a.key))
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(api.get("accounts/", Some(&a.key)).await.status, 401);
    // The username is free again: signing up creates a new account.
    let r = api
        .post(
            "accounts/",
            None,
            Body::Json(json!({"username": a.username, "password": "new"})),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_ne!(r.json["id"], a.id.as_str());
    let dump = table_dump().await.join("\n");
    assert!(!dump.contains(&a.id), "items of the deleted account remain");
}

#[tokio::test]
async fn validation_errors_name_the_field_and_create_nothing() {
    let api = Api::new();
    let cases = [
        (json!({"password": "p"}), "username"),
        (json!({"username": "", "password": "p"}), "username"),
        (
            json!({"username": "x".repeat(31), "password": "p"}),
            "username",
        ),
        (
            json!({"username": "has space", "password": "p"}),
            "username",
        ),
        (json!({"username": 12, "password": "p"}), "username"),
        (json!({"username": random_username()}), "password"),
        (
            json!({"username": random_username(), "password": "p".repeat(101)}),
            "password",
        ),
        (
            json!({"username": random_username(), "password": "p", "email": "not-an-email"}),
            "email",
        ),
        (
            json!({"username": random_username(), "password": "p", "email": format!("{}@example.com", "e".repeat(100))}),
            "email",
        ),
    ];
    for (body, field) in cases {
        let username = body["username"].as_str().map(str::to_string);
        let r = api.post("accounts/", None, Body::Json(body.clone())).await;
        assert_eq!(r.status, 400, "{body} -> {}", r.text);
        assert!(r.json[field].is_array(), "{body} -> {}", r.text);
        if let Some(u) = username.filter(|u| !u.is_empty() && u.len() <= 30 && !u.contains(' ')) {
            // Nothing was stored: the name is still free.
            let r = api
                .post(
                    "accounts/",
                    None,
                    Body::Json(json!({"username": u, "password": "p"})),
                )
                .await;
            assert_eq!(r.status, 201, "{}", r.text);
        }
    }
}

#[tokio::test]
async fn malformed_bodies_are_4xx_json_never_5xx() {
    let api = Api::new();
    let big = format!(
        "{{\"username\": \"{}\", \"password\": \"p\"}}",
        "x".repeat(17 * 1024)
    );
    let bodies: Vec<(&'static str, Vec<u8>)> = vec![
        ("application/json", b"{\"username\": ".to_vec()),
        ("application/json", b"[1, 2, 3]".to_vec()),
        ("application/json", b"\"just a string\"".to_vec()),
        ("application/json", big.into_bytes()),
        (
            "application/json",
            b"{\"username\": {\"nested\": [[[[]]]]}, \"password\": \"p\"}".to_vec(),
        ),
        (
            "application/x-www-form-urlencoded",
            b"username=%ff%fe&password=p".to_vec(),
        ),
        ("multipart/form-data", b"--x\r\nbroken".to_vec()),
        (
            "multipart/form-data; boundary=x",
            b"--x\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nabc".to_vec(),
        ),
        ("text/plain", b"username=a&password=b".to_vec()),
        (
            "application/json",
            b"{\"username\": \"a\x00b\", \"password\": \"p\"}".to_vec(),
        ),
    ];
    for (content_type, body) in bodies {
        let r = api
            .post("accounts/", None, Body::Raw(content_type, body.clone()))
            .await;
        assert!(
            (400..500).contains(&r.status),
            "{content_type} {:?} -> {} {}",
            String::from_utf8_lossy(&body[..body.len().min(60)]),
            r.status,
            r.text
        );
        assert!(r.json.is_object());
    }
}

#[tokio::test]
async fn the_table_holds_no_password_or_api_key_in_clear() {
    let api = Api::new();
    let a = api.signup().await;
    let login = api
        .post(
            "accounts/",
            None,
            Body::Json(json!({"username": a.username, "password": a.password})),
        )
        .await;
    let second_key = login.json["token"].as_str().unwrap().to_string();
    let dump = table_dump().await.join("\n");
    assert!(
        dump.contains(&a.username),
        "the dump should contain the account"
    );
    assert!(!dump.contains(&a.password));
    assert!(!dump.contains(&a.key));
    assert!(!dump.contains(&second_key));
}

/// What API Gateway does before a function runs, which `sam local` does
/// differently: the in-process router models API Gateway's HTTP API (an
/// unknown route is `404`; `sam local` answers `403`), so `make
/// sam-local-test` leaves these out.
mod gateway {
    use super::*;

    #[tokio::test]
    async fn unknown_routes_and_methods_answer_json() {
        let api = Api::new();
        let r = api.get("nothing-here/", None).await;
        assert_eq!(r.status, 404);
        assert!(r.json.is_object());
        let r = api.send("PATCH", "accounts/", None, Body::None).await;
        assert_eq!(r.status, 405);
        assert!(r.json["detail"].is_string());
    }
}
