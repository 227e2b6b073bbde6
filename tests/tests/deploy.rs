//! The operator's deploy helpers, run for real against the emulator.

use std::process::Command;

use api_tests::*;

fn run_platform_apps(name: &str, dir: &std::path::Path) -> std::process::Output {
    let tools = std::env::var("DEPLOY_TOOLS_BIN").expect("DEPLOY_TOOLS_BIN (set by make test)");
    let path = format!("{tools}:{}", std::env::var("PATH").unwrap_or_default());
    Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../infra/platform-apps.sh"
        ))
        .args(["--name", name, "--apns-key"])
        .arg(dir.join("AuthKey_TESTKEY123.p8"))
        .args([
            "--key-id",
            "TESTKEY123",
            "--team-id",
            "TEAM123456",
            "--bundle-id",
            "org.example.chat",
            "--sandbox",
        ])
        .arg("--fcm-service-account")
        .arg(dir.join("service-account.json"))
        .args([
            "--events-topic",
            "arn:aws:sns:us-east-1:123456789012:push-events",
        ])
        .env("PATH", path)
        .output()
        .expect("run infra/platform-apps.sh")
}

#[tokio::test]
async fn platform_apps_script_creates_then_updates_in_place() {
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

    let first = run_platform_apps(&name, &dir);
    let stdout = String::from_utf8_lossy(&first.stdout).to_string();
    let stderr = String::from_utf8_lossy(&first.stderr).to_string();
    assert!(first.status.success(), "{stdout}\n{stderr}");
    let apns_arn = format!("arn:aws:sns:us-east-1:123456789012:app/APNS_SANDBOX/{name}-apns");
    let gcm_arn = format!("arn:aws:sns:us-east-1:123456789012:app/GCM/{name}-fcm");
    assert!(
        stdout.contains(&format!("ApnsPlatformApplicationArn={apns_arn}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("GcmPlatformApplicationArn={gcm_arn}")),
        "{stdout}"
    );
    assert!(stderr.contains("created"), "{stderr}");
    assert!(
        !stdout.contains(&secret) && !stderr.contains(&secret),
        "the key is never printed"
    );

    let sns = sns().await;
    let attrs = sns
        .get_platform_application_attributes()
        .platform_application_arn(&apns_arn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
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

    // Rotation: run again with a new key; the same applications are updated.
    std::fs::write(dir.join("AuthKey_TESTKEY123.p8"), "rotated key material\n").unwrap();
    let second = run_platform_apps(&name, &dir);
    let stdout2 = String::from_utf8_lossy(&second.stdout).to_string();
    let stderr2 = String::from_utf8_lossy(&second.stderr).to_string();
    assert!(second.status.success(), "{stdout2}\n{stderr2}");
    assert!(
        stderr2.contains("updated") && !stderr2.contains("created"),
        "{stderr2}"
    );
    assert!(stdout2.contains(&apns_arn));
    std::fs::remove_dir_all(&dir).ok();
}
