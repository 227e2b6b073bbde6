//! The operator's deploy helpers, run for real against the emulator.

// Black-box: needs the local stack (`make test` turns this feature on).
#![cfg(feature = "stack")]

use std::process::Command;

use api_tests::*;

/// Runs the script as an operator would, for app `chat` under the prefix
/// `prefix`, with `extra` options; `env` sets (`Some`) or removes (`None`)
/// variables of the test's own environment.
fn run_platform_apps(
    prefix: &str,
    extra: &[&str],
    dir: &std::path::Path,
    env: &[(&str, Option<&str>)],
) -> std::process::Output {
    let tools = std::env::var("DEPLOY_TOOLS_BIN").expect("DEPLOY_TOOLS_BIN (set by make test)");
    let path = format!("{tools}:{}", std::env::var("PATH").unwrap_or_default());
    let mut command = Command::new("bash");
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../infra/platform-apps.sh"
        ))
        .args(["--prefix", prefix, "--app", "chat", "--apns-key"])
        .arg(dir.join("AuthKey_TESTKEY123.p8"))
        .args([
            "--key-id",
            "TESTKEY123",
            "--team-id",
            "TEAM123456",
            "--bundle-id",
            "org.example.chat",
        ])
        .args(extra)
        .arg("--fcm-service-account")
        .arg(dir.join("service-account.json"))
        .args([
            "--events-topic",
            "arn:aws:sns:us-east-1:123456789012:push-events",
        ])
        .env("PATH", path);
    for (k, v) in env {
        match v {
            Some(v) => command.env(k, v),
            None => command.env_remove(k),
        };
    }
    command.output().expect("run infra/platform-apps.sh")
}

/// A platform application's attributes, as SNS has them.
async fn application_attributes(arn: &str) -> std::collections::HashMap<String, String> {
    sns()
        .await
        .get_platform_application_attributes()
        .platform_application_arn(arn)
        .send()
        .await
        .expect("GetPlatformApplicationAttributes")
        .attributes
        .unwrap_or_default()
}

/// A folder with a stand-in APNs key and FCM service account.
fn credentials() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("platform-apps-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("AuthKey_TESTKEY123.p8"), "key material\n").unwrap();
    std::fs::write(
        dir.join("service-account.json"),
        r#"{"type": "service_account"}"#,
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn platform_apps_script_takes_the_region_from_aws_region_and_fails_loudly() {
    let dir = credentials();
    let name = format!("r{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    // AWS_REGION alone, as the README says (the CLI itself reads only
    // AWS_DEFAULT_REGION).
    let ok = run_platform_apps(
        &name,
        &["--sandbox", "--default"],
        &dir,
        &[("AWS_DEFAULT_REGION", None)],
    );
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains(&format!("ApnsPlatformApplicationArn=arn:aws:sns:us-east-1:123456789012:app/APNS_SANDBOX/{name}.chat-apns-sandbox")),
        "{stdout}"
    );
    // No region at all: a clear message, a non-zero exit, no ARNs.
    let none = run_platform_apps(
        &name,
        &["--default"],
        &dir,
        &[("AWS_DEFAULT_REGION", None), ("AWS_REGION", None)],
    );
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no region"));
    assert!(!String::from_utf8_lossy(&none.stdout).contains("Pass these"));
    // AWS refusing (here: unreachable): non-zero, and no empty ARN offered.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let endpoint = format!("http://127.0.0.1:{closed}");
    let down = run_platform_apps(
        &name,
        &["--default"],
        &dir,
        &[
            ("AWS_ENDPOINT_URL", Some(&endpoint)),
            ("AWS_MAX_ATTEMPTS", Some("1")),
        ],
    );
    let stdout = String::from_utf8_lossy(&down.stdout);
    assert!(!down.status.success(), "{stdout}");
    assert!(!stdout.contains("Pass these"), "{stdout}");
    assert!(String::from_utf8_lossy(&down.stderr).contains("platform-apps:"));
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn platform_apps_script_creates_both_apns_environments_from_one_key_then_updates_in_place() {
    let dir = std::env::temp_dir().join(format!("platform-apps-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = format!("not-a-real-key-{}", uuid::Uuid::new_v4());
    std::fs::write(
        dir.join("AuthKey_TESTKEY123.p8"),
        format!("{secret}\nline two\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("service-account.json"),
        r#"{"type": "service_account", "project_id": "p"}"#,
    )
    .unwrap();
    let name = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);

    let first = run_platform_apps(&name, &[], &dir, &[]);
    let stdout = String::from_utf8_lossy(&first.stdout).to_string();
    let stderr = String::from_utf8_lossy(&first.stderr).to_string();
    assert!(first.status.success(), "{stdout}\n{stderr}");
    let arn = |platform: &str, suffix: &str| {
        format!("arn:aws:sns:us-east-1:123456789012:app/{platform}/{name}.chat-{suffix}")
    };
    let (apns_arn, sandbox_arn, gcm_arn) = (
        arn("APNS", "apns"),
        arn("APNS_SANDBOX", "apns-sandbox"),
        arn("GCM", "fcm"),
    );
    // Not the default app: the entry of the Apps parameter, which the
    // functions read as they are (push_aws::App::parse_list).
    let entry = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("chat="))
        .unwrap_or_else(|| panic!("no Apps entry: {stdout}"));
    assert_eq!(entry, format!("chat={apns_arn},{sandbox_arn},{gcm_arn}"));
    let apps = push_aws::App::parse_list(entry).expect("a valid Apps entry");
    apps[0].check_prefix(&name).expect("named with the prefix");
    assert!(
        stdout.contains(&format!("PlatformApplicationPrefix={name}")),
        "{stdout}"
    );
    assert!(stderr.contains("created"), "{stderr}");
    assert!(
        !stdout.contains(&secret) && !stderr.contains(&secret),
        "the key is never printed"
    );

    let attrs = application_attributes(&apns_arn).await;
    assert_eq!(
        attrs.get("EventDeliveryFailure").map(String::as_str),
        Some("arn:aws:sns:us-east-1:123456789012:push-events")
    );
    assert_eq!(
        attrs.get("EventEndpointDeleted").map(String::as_str),
        Some("arn:aws:sns:us-east-1:123456789012:push-events")
    );
    assert_eq!(
        attrs.get("PlatformPrincipal").map(String::as_str),
        Some("TESTKEY123")
    );
    // Both environments from the one key.
    for environment in [&apns_arn, &sandbox_arn] {
        let attrs = application_attributes(environment).await;
        assert_eq!(
            attrs.get("PlatformPrincipal").map(String::as_str),
            Some("TESTKEY123"),
            "{environment}"
        );
        assert_eq!(
            attrs.get("ApplePlatformBundleID").map(String::as_str),
            Some("org.example.chat")
        );
    }

    // Rotation: run again with a new key; the same applications are updated.
    std::fs::write(dir.join("AuthKey_TESTKEY123.p8"), "rotated key material\n").unwrap();
    let second = run_platform_apps(&name, &[], &dir, &[]);
    let stdout2 = String::from_utf8_lossy(&second.stdout).to_string();
    let stderr2 = String::from_utf8_lossy(&second.stderr).to_string();
    assert!(second.status.success(), "{stdout2}\n{stderr2}");
    assert!(
        stderr2.contains("updated") && !stderr2.contains("created"),
        "{stderr2}"
    );
    assert!(stdout2.contains(&apns_arn) && stdout2.contains(&sandbox_arn));
    // The default app's parameters, both environments.
    let default = run_platform_apps(&name, &["--default"], &dir, &[]);
    let stdout3 = String::from_utf8_lossy(&default.stdout).to_string();
    assert!(default.status.success(), "{stdout3}");
    assert!(
        stdout3.contains(&format!(
            "DefaultAppName=chat PlatformApplicationPrefix={name} ApnsPlatformApplicationArn={apns_arn} ApnsSandboxPlatformApplicationArn={sandbox_arn} GcmPlatformApplicationArn={gcm_arn}"
        )),
        "{stdout3}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
